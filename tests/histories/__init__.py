"""Recorded workflow histories, replayed by tests/integration/workflows/test_replay.py."""
