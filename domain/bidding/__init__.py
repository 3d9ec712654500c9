"""The bid pipeline: pure steps over injected ports (see ``ports``)."""
