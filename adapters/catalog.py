"""Keeps a bid process's catalog of live campaigns current.

Two triggers rebuild it: a campaign-change message (immediate) and a poll of the database's
catalog revision every ``interval_s`` (the safety net for a lost message, and the way a change
made by another process reaches an embedded one). The rebuilt catalog replaces the old one in a
single assignment, so a bid in flight keeps the catalog it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters import metrics
from adapters.bus.campaign_changes import CampaignChanges
from adapters.db.repositories import CampaignRepository
from domain.bidding.catalog import Catalog

log = logging.getLogger(__name__)


class CatalogHolder:
    def __init__(
        self,
        campaigns: CampaignRepository,
        *,
        default_seat: str,
        interval_s: float,
    ) -> None:
        self._campaigns = campaigns
        self._default_seat = default_seat
        self._interval = interval_s
        self._catalog = Catalog.empty()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def current(self) -> Catalog:
        return self._catalog

    async def refresh(self) -> None:
        revision = await self._campaigns.catalog_revision()
        campaigns = await self._campaigns.list_live()
        self._catalog = Catalog.build(campaigns, self._default_seat, revision=revision)
        metrics.active_campaigns.set(len(self._catalog))
        log.info("catalog revision %d: %d live campaigns", revision, len(self._catalog))

    async def _on_change(self, campaign_id: str) -> None:
        self._wake.set()

    async def start(self, changes: CampaignChanges | None = None) -> None:
        await self.refresh()
        if changes is not None:
            await changes.subscribe(self._on_change)
        self._task = asyncio.create_task(self._watch(), name="catalog-watch")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if woken or await self._campaigns.catalog_revision() != self._catalog.revision:
                    await self.refresh()
            except Exception:  # the database may be away; keep bidding on what we have
                log.exception("catalog not refreshed; keeping revision %d", self._catalog.revision)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
