"""One message to one customer by the delivery rules, from inside a workflow: plan it
(suppression, daily caps, fatigue, quiet hours, send-time optimisation), wait if the plan
says later, plan again after waiting, send. A journey's action nodes and an activation
(``POST /v1/channels/activate``) both deliver through here.

The idempotency key names the message for good: a plan finds a message already sent under it,
and the send activity records it before it leaves, so neither a retried activity nor a
replayed workflow sends twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.journeys import DeliveryPlan, JourneyActivities, PlanDelivery, SendMessage
    from domain.delivery import Delivered, Message

READ_TIMEOUT = timedelta(seconds=30)
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# Sends retry longer: a vendor outage should delay messages, not drop them.
SEND_TIMEOUT = timedelta(minutes=2)
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=20,
)
# Plans per message: after waiting out quiet hours the next plan says "now" (or skips on a
# cap that filled meanwhile); a third deferral would mean the rules disagree with themselves.
MAX_PLANS = 3


async def deliver(
    message: Message,
    wait: Callable[[datetime], Awaitable[object]],
    on_deferred: Callable[[datetime], None] | None = None,
) -> Delivered:
    """``wait(until)`` sits out a deferral (a journey's wait also watches its exit events and
    raises to leave); ``on_deferred`` hears when the message was put off, and until when."""
    for plans in range(1, MAX_PLANS + 1):
        plan: DeliveryPlan = await workflow.execute_activity_method(
            JourneyActivities.plan_delivery,
            PlanDelivery(
                tenant_id=message.tenant_id,
                customer_id=message.customer_id,
                channel=message.channel,
                transactional=message.transactional,
                idempotency_key=message.idempotency_key,
                now=workflow.now(),
            ),
            start_to_close_timeout=READ_TIMEOUT,
            retry_policy=READ_RETRY,
        )
        if plan.verdict == "already_sent":
            return Delivered("sent_earlier", plan.reason)
        if plan.verdict == "skip":
            return Delivered("skipped", plan.reason)
        if plan.send_at is None or plan.send_at <= workflow.now():
            break
        if plans == MAX_PLANS:
            # Rules that keep moving the time are a fault; never send outside them regardless.
            return Delivered("skipped", f"still deferred after {MAX_PLANS} plans")
        if on_deferred is not None:
            on_deferred(plan.send_at)
        await wait(plan.send_at)  # then plan again: caps may have moved while we waited
    outcome = await workflow.execute_activity_method(
        JourneyActivities.send_message,
        SendMessage(
            tenant_id=message.tenant_id,
            customer_id=message.customer_id,
            journey_id=message.journey_id,
            node_id=message.node_id,
            workflow_id=workflow.info().workflow_id,
            channel=message.channel,
            template=message.template,
            context_event_id=message.context_event_id,
            transactional=message.transactional,
            idempotency_key=message.idempotency_key,
            now=workflow.now(),
        ),
        start_to_close_timeout=SEND_TIMEOUT,
        retry_policy=SEND_RETRY,
    )
    return Delivered(outcome.status, outcome.detail, outcome.vendor_message_id)
