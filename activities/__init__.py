"""Temporal activities: thin side-effecting steps over the adapters, each idempotent."""
