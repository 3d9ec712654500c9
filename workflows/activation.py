"""ActivationWorkflow: one message to one customer outside any journey, by the same delivery
rules (``workflows.delivery``). Id ``activation-{tenant}-{activation id}``.

The ``outcome`` update answers as soon as the message is sent, skipped, failed or scheduled for
later (quiet hours), so the API can tell the caller; a scheduled message then waits in the
workflow, visible in Temporal Web, and is planned again when its time comes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from temporalio import workflow

from workflows.delivery import deliver

with workflow.unsafe.imports_passed_through():
    from domain.activations import ActivationInput, ActivationOutcome
    from domain.delivery import Message
    from temporal.search_attributes import CUSTOMER_ID, TENANT_ID

_STATUS: dict[str, Literal["sent", "skipped", "failed"]] = {
    "sent": "sent",
    "sent_earlier": "sent",  # a replay of an activation that had sent: it did
    "skipped": "skipped",
    "failed": "failed",
}


@workflow.defn(name="Activation")
class ActivationWorkflow:
    @workflow.init
    def __init__(self, request: ActivationInput) -> None:
        self._outcome: ActivationOutcome | None = None
        self._activation_id = request.activation_id

    @workflow.run
    async def run(self, request: ActivationInput) -> ActivationOutcome:
        workflow.upsert_search_attributes(
            [TENANT_ID.value_set(request.tenant_id), CUSTOMER_ID.value_set(request.customer_id)]
        )
        delivered = await deliver(
            Message(
                tenant_id=request.tenant_id,
                customer_id=request.customer_id,
                channel=request.channel,
                template=request.template,
                transactional=request.transactional,
                idempotency_key=f"activation:{request.tenant_id}:{request.activation_id}",
            ),
            wait=self._sleep_until,
            on_deferred=self._deferred,
        )
        self._outcome = ActivationOutcome(
            activation_id=request.activation_id,
            status=_STATUS[delivered.status],
            detail=delivered.detail,
            vendor_message_id=delivered.vendor_message_id,
        )
        return self._outcome

    @workflow.update
    async def outcome(self) -> ActivationOutcome:
        await workflow.wait_condition(lambda: self._outcome is not None)
        assert self._outcome is not None
        return self._outcome

    @workflow.query
    def current(self) -> ActivationOutcome | None:
        return self._outcome

    def _deferred(self, until: datetime) -> None:
        self._outcome = ActivationOutcome(
            activation_id=self._activation_id, status="scheduled", send_at=until
        )

    async def _sleep_until(self, until: datetime) -> None:
        await workflow.sleep(until - workflow.now())
