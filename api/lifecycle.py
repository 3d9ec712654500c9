"""The API's side of campaign lifecycles: start a submission, send an update, read its state.

Routes call these; they translate Temporal's answers into HTTP ones (a refused update is a
409 naming why, a campaign nobody submitted is a 409, a dead server a 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import HTTPException
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.db.brand import BrandRepository
from adapters.db.lifecycle import LifecycleRepository
from adapters.db.repositories import CampaignRepository
from domain.campaigns import Campaign
from domain.lifecycle import LifecycleInput, LifecycleState
from domain.money import FxTable
from domain.platform import Principal
from temporal.search_attributes import CAMPAIGN_ID, CAMPAIGN_STATUS, TENANT_ID
from temporal.task_queues import PLATFORM
from workflows.campaign_lifecycle import CampaignLifecycleWorkflow, workflow_id

log = logging.getLogger(__name__)

# A start, query or update that the workflow has not answered by then is a 503: the worker or
# the server is away, and a REST call must not hang on it.
WORKFLOW_CALL_TIMEOUT_S = 10.0


@dataclass
class CampaignServices:
    """Built by ``workers.runtime``; the management and approval routes read it from app state."""

    campaigns: CampaignRepository
    lifecycle: LifecycleRepository
    brand: BrandRepository
    # Connected on first use: routes that never touch a workflow never need Temporal.
    temporal: Callable[[], Awaitable[Client]]
    fx: FxTable
    # Where lifecycles start; a test gives each of its workers a queue of its own.
    task_queue: str = PLATFORM


def conflict(code: str, message: str) -> HTTPException:
    return HTTPException(status_code=409, detail={"code": code, "message": message})


def _unavailable(error: Exception) -> HTTPException:
    log.warning("temporal call failed: %s", error)
    return HTTPException(
        status_code=503,
        detail={"code": "workflows_unavailable", "message": "the workflow service did not answer"},
        headers={"Retry-After": "2"},
    )


async def _client(services: CampaignServices) -> Client:
    try:
        return await services.temporal()
    except (RuntimeError, OSError) as error:
        raise _unavailable(error) from error


async def handle(
    services: CampaignServices, tenant_id: str, campaign_id: str
) -> WorkflowHandle[Any, Any]:
    client = await _client(services)
    return client.get_workflow_handle(workflow_id(tenant_id, campaign_id))


def budget_in_usd(services: CampaignServices, campaign: Campaign) -> Any:
    rate = services.fx.rate(campaign.currency, "USD")
    if rate is None:
        raise HTTPException(
            status_code=422,
            detail={
                "code": "unsupported_currency",
                "message": f"no exchange rate for {campaign.currency}",
            },
        )
    return campaign.budget * type(campaign.budget)(str(rate))


async def start_submission(
    services: CampaignServices, principal: Principal, campaign: Campaign, request: LifecycleInput
) -> LifecycleState:
    """Start the lifecycle and answer once it has put the submission on record: from then on
    every read (GET, the approvers' list) shows the campaign in review, and no edit or delete
    slips in between the submission and the database catching up."""
    client = await _client(services)
    start = WithStartWorkflowOperation(
        CampaignLifecycleWorkflow.run,
        request,
        id=workflow_id(principal.tenant_id, campaign.id),
        task_queue=services.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TENANT_ID, principal.tenant_id),
                SearchAttributePair(CAMPAIGN_ID, campaign.id),
                SearchAttributePair(CAMPAIGN_STATUS, "in_review"),
            ]
        ),
    )
    try:
        async with asyncio.timeout(WORKFLOW_CALL_TIMEOUT_S):
            state: LifecycleState = await client.execute_update_with_start_workflow(
                CampaignLifecycleWorkflow.submission, start_workflow_operation=start
            )
    except WorkflowAlreadyStartedError:
        await _settle(start)
        raise conflict("already_submitted", "this campaign is already submitted") from None
    except WorkflowUpdateFailedError as error:  # changed_concurrently: edited meanwhile
        refused(error)
    except RPCError as error:
        await _settle(start)
        raise _unavailable(error) from error
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
        raise _unavailable(error) from error
    return state


async def _settle(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Read the error a failed start also leaves on the operation's handle: unread, asyncio
    logs it as never retrieved."""
    with contextlib.suppress(Exception):
        await start.workflow_handle()


async def query_state(
    services: CampaignServices, tenant_id: str, campaign_id: str
) -> LifecycleState | None:
    """The lifecycle's state, or None when the campaign was never submitted."""
    try:
        workflow = await handle(services, tenant_id, campaign_id)
        async with asyncio.timeout(WORKFLOW_CALL_TIMEOUT_S):
            state: LifecycleState = await workflow.query(CampaignLifecycleWorkflow.state)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise _unavailable(error) from error
    except TimeoutError as error:
        raise _unavailable(error) from error
    return state


def refused(error: WorkflowUpdateFailedError) -> NoReturn:
    """A refused update: the workflow's validator (or handler) said why, as an error type."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        raise conflict(cause.type or "refused", cause.message) from None
    raise conflict("refused", str(cause or error)) from None


async def send_update(
    services: CampaignServices, tenant_id: str, campaign_id: str, update: Any, argument: Any
) -> Any:
    try:
        workflow = await handle(services, tenant_id, campaign_id)
        async with asyncio.timeout(WORKFLOW_CALL_TIMEOUT_S):
            return await workflow.execute_update(update, argument)
    except WorkflowUpdateFailedError as error:
        refused(error)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise conflict(
                "not_submitted", "this campaign has no running lifecycle: submit it first"
            ) from None
        raise _unavailable(error) from error
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
        # The update may still be applied; a retry then answers why not (a duplicate vote).
        raise _unavailable(error) from error
