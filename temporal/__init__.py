"""Temporal plumbing: client factory, data converter, dev server launcher, search attributes."""
