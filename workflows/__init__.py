"""Temporal workflow classes: deterministic orchestration, no I/O (activities do that)."""
