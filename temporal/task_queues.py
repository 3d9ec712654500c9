"""Task queue names.

One queue, ``campaign-express``, for every workflow and activity of the platform. Every worker
process hosts the whole registry, so a queue per area would buy nothing yet: Temporal spreads
tasks over however many worker processes poll, and more processes is how this scales. A
separate queue earns its place when a group of activities needs limits of its own (a vendor's
rate limit, a slow batch export that must not starve approvals): add it here then, with a
worker that sets ``max_activities_per_second`` or its own concurrency for it.
"""

from __future__ import annotations

PLATFORM = "campaign-express"

ALL: tuple[str, ...] = (PLATFORM,)
