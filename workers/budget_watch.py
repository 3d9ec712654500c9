"""Spend tracking for the lifecycle: a live campaign whose budget is spent gets a signal.

The ledger already stops bidding at the budget (that is the hard limit, held per bid); this is
the bookkeeping side, so the campaign's lifecycle moves to Completed. A campaign counts as
spent once what is left would not pay for one more impression at its highest bid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.bidding.catalog import Catalog
from domain.bidding.ports import DeliveryLedger
from domain.money import cpm_to_impression_micros
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id

log = logging.getLogger(__name__)

INTERVAL_S = 2.0


class BudgetWatch:
    def __init__(
        self,
        catalog: Callable[[], Catalog],
        ledger: DeliveryLedger,
        temporal: Client,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self._catalog = catalog
        self._ledger = ledger
        self._temporal = temporal
        self._interval = interval_s
        self._signalled: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> list[str]:
        """Signal every live campaign whose budget is spent; returns the ones signalled now."""
        signalled: list[str] = []
        seen: set[str] = set()
        for offer in self._catalog().offers:
            campaign = offer.campaign
            if campaign.id in seen or campaign.id in self._signalled:
                continue
            seen.add(campaign.id)
            spent = self._ledger.spend_view(campaign.id).spent_micros
            if spent + cpm_to_impression_micros(offer.max_bid) <= offer.budget_micros:
                continue
            handle = self._temporal.get_workflow_handle(
                workflow_id(campaign.tenant_id, campaign.id)
            )
            try:
                await handle.signal(CampaignLifecycleWorkflow.budget_exhausted)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    log.warning("budget of %s spent; signal failed: %s", campaign.id, error)
                    continue
                # Live without a lifecycle (loaded by `demo`): nothing to tell, and no retry.
            self._signalled.add(campaign.id)
            signalled.append(campaign.id)
            log.info("budget of campaign %s spent (%d micros)", campaign.id, spent)
        return signalled

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self._interval)
                try:
                    await self.check()
                except Exception:  # one bad round must not end the watch
                    log.exception("budget watch round failed")

        self._task = asyncio.create_task(loop(), name="budget-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
