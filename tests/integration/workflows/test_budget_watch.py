"""Spend reaching the budget moves a live campaign's lifecycle to Completed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.bidding.catalog import Catalog
from domain.bidding.ledger import InMemoryLedger
from domain.bidding.ports import NoticeKind, SettledNotice
from domain.campaigns import CampaignStatus
from domain.lifecycle import LifecycleInput
from tests.integration.workflows.conftest import Lifecycle
from tests.support.temporal import running_worker, time_skipping_server
from workers.budget_watch import BudgetWatch
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as server:
        yield server


async def test_spent_budget_completes_the_campaign(
    env: WorkflowEnvironment, lifecycle: Lifecycle
) -> None:
    campaign_id = await lifecycle.new_campaign(budget=Decimal("0.02"), max_bid=Decimal(5))
    async with running_worker(
        env.client, workflows=[CampaignLifecycleWorkflow], activities=lifecycle.activities.all()
    ) as queue:
        now = await env.get_current_time()
        handle = await env.client.start_workflow(
            CampaignLifecycleWorkflow.run,
            LifecycleInput(
                tenant_id=lifecycle.tenant_id,
                campaign_id=campaign_id,
                budget_usd=Decimal("0.02"),
                start_at=now,
                end_at=now + timedelta(days=30),
                submitted_by="someone",
            ),
            id=workflow_id(lifecycle.tenant_id, campaign_id),
            task_queue=queue,
        )
        await env.sleep(timedelta(minutes=1))
        campaign = await lifecycle.campaigns.get(campaign_id)
        assert campaign is not None
        assert campaign.status is CampaignStatus.LIVE
        ledger = InMemoryLedger(window_minutes=10)
        watch = BudgetWatch(lambda: Catalog.build([campaign], "seat"), ledger, env.client)

        assert await watch.check() == []  # nothing spent yet
        # 0.02 budget at 5 CPM (0.005 an impression): after four, not one more fits.
        for n in range(4):
            await ledger.settle(
                SettledNotice(
                    kind=NoticeKind.WIN,
                    bid_id=f"bid-{n}",
                    campaign_id=campaign_id,
                    user_key=None,
                    bid_time=now,
                    bid_price_micros=5_000,
                    clearing_price_micros=5_000,
                    loss_reason=None,
                )
            )
        assert await watch.check() == [campaign_id]
        assert await watch.check() == []  # once

        await env.sleep(timedelta(seconds=5))
        state = await handle.query(CampaignLifecycleWorkflow.state)
        assert state.status is CampaignStatus.COMPLETED
        assert state.history[-1].reason == "budget spent"


async def test_a_campaign_without_a_lifecycle_is_skipped(
    env: WorkflowEnvironment, lifecycle: Lifecycle
) -> None:
    campaign_id = await lifecycle.new_campaign(budget=Decimal("0.001"), status=CampaignStatus.LIVE)
    campaign = await lifecycle.campaigns.get(campaign_id)
    assert campaign is not None
    ledger = InMemoryLedger(window_minutes=10)
    watch = BudgetWatch(lambda: Catalog.build([campaign], "seat"), ledger, env.client)
    assert await watch.check() == [campaign_id]  # spent from the start; nobody to tell
    assert await watch.check() == []
