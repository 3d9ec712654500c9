"""Temporal workflow classes: deterministic orchestration, no I/O (activities do that).

``workflows.registry.WORKFLOWS`` lists the ones the platform's workers run. This file stays
empty: the sandbox runs it again for every workflow run (see ``workflows.registry``).
"""
