"""Everything that talks to the outside: databases, caches, buses, stores and vendors."""
