"""Process entry points and the composition root: the CLI, servers, bidder fleet, sinks."""
