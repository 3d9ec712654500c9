"""``POST /v1/channels/activate``: one message to one customer, outside any journey, through
the same checks as a journey's messages; ``GET /v1/channels/activations/{id}`` tells how it
went since.

Each activation is an ``Activation`` workflow (``workflows.activation``), visible in Temporal
Web. The answer comes once the message was sent, skipped or scheduled: 200 with ``sent``,
``skipped`` or ``failed``; 202 with ``scheduled`` and ``send_at`` when quiet hours or
send-time optimisation put it off (it then leaves on its own), or with ``pending`` when the
vendor is slow to answer (read it later with GET). Retrying with the same ``activation_id``
answers the first outcome and never sends twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import TenantScopeDep, requires
from domain.activations import (
    ActivationId,
    ActivationInput,
    ActivationOutcome,
    ActivationRequest,
    activation_workflow_id,
)
from domain.platform import Permission
from temporal.search_attributes import CUSTOMER_ID, TENANT_ID
from temporal.task_queues import PLATFORM
from workflows.activation import ActivationWorkflow

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/channels", tags=["activation"])

# Past this the caller gets 202 "pending" rather than a held connection.
ANSWER_WITHIN_S = 10.0


@dataclass
class ActivationServices:
    """Built by ``workers.runtime``; the activation routes read it from app state."""

    temporal: Callable[[], Awaitable[Client]]
    task_queue: str = PLATFORM


def get_activation_services(request: Request) -> ActivationServices:
    services: ActivationServices = request.app.state.activations
    return services


ServicesDep = Annotated[ActivationServices, Depends(get_activation_services)]


@router.post(
    "/activate",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="Send one message to one customer",
    responses={
        202: {"model": ActivationOutcome, "description": "scheduled for later, or pending"},
        422: {"description": "the request is invalid: `details` names the field"},
        503: {"description": "the workflow service did not answer: retry with the same id"},
    },
)
async def activate(
    body: ActivationRequest, services: ServicesDep, scope: TenantScopeDep, response: Response
) -> ActivationOutcome:
    activation_id = body.activation_id or str(uuid.uuid4())
    client = await services.temporal()
    start = WithStartWorkflowOperation(
        ActivationWorkflow.run,
        ActivationInput(
            tenant_id=scope.tenant_id,
            activation_id=activation_id,
            customer_id=body.customer_id,
            channel=body.channel,
            template=body.template,
            transactional=body.transactional,
        ),
        id=activation_workflow_id(scope.tenant_id, activation_id),
        task_queue=services.task_queue,
        # A retry joins the running activation; one that finished answers from its result.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TENANT_ID, scope.tenant_id),
                SearchAttributePair(CUSTOMER_ID, body.customer_id),
            ]
        ),
    )
    try:
        async with asyncio.timeout(ANSWER_WITHIN_S):
            outcome: ActivationOutcome = await client.execute_update_with_start_workflow(
                ActivationWorkflow.outcome, start_workflow_operation=start
            )
    except WorkflowAlreadyStartedError:
        await _settle(start)
        outcome = await _finished(client, scope.tenant_id, activation_id)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        response.status_code = 202
        return ActivationOutcome(activation_id=activation_id, status="pending")
    except (RPCError, WorkflowUpdateFailedError) as error:
        await _settle(start)
        raise _unavailable(error) from error
    if outcome.status in ("scheduled", "pending"):
        response.status_code = 202
    return outcome


@router.get(
    "/activations/{activation_id}",
    dependencies=[requires(Permission.CAMPAIGN_WRITE)],
    summary="How an activation went",
    responses={404: {"description": "no such activation"}},
)
async def activation(
    activation_id: ActivationId, services: ServicesDep, scope: TenantScopeDep
) -> ActivationOutcome:
    client = await services.temporal()
    handle = client.get_workflow_handle_for(
        ActivationWorkflow.run, activation_workflow_id(scope.tenant_id, activation_id)
    )
    try:
        current = await handle.query(ActivationWorkflow.current)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise HTTPException(
                status_code=404,
                detail={"code": "not_found", "message": f"no activation {activation_id}"},
            ) from None
        raise _unavailable(error) from error
    return current or ActivationOutcome(activation_id=activation_id, status="pending")


async def _finished(client: Client, tenant_id: str, activation_id: str) -> ActivationOutcome:
    handle = client.get_workflow_handle_for(
        ActivationWorkflow.run, activation_workflow_id(tenant_id, activation_id)
    )
    return await handle.result()


async def _settle(start: WithStartWorkflowOperation[ActivationWorkflow, ActivationOutcome]) -> None:
    """Read the error a failed start also leaves on the operation (unread, asyncio logs it)."""
    with contextlib.suppress(Exception):
        await start.workflow_handle()


def _unavailable(error: Exception) -> HTTPException:
    log.warning("activation: temporal call failed: %s", error)
    return HTTPException(
        status_code=503,
        detail={"code": "workflows_unavailable", "message": "the workflow service did not answer"},
        headers={"Retry-After": "2"},
    )
