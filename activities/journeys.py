"""What a journey does to the world: read a customer's data, plan and send messages, update
the profile, close the entry.

Personal data lives here, not in the workflow: conditions on profile or event properties are
evaluated here and only the decision goes back; templates are rendered here. Every send is
recorded under its idempotency key (journey entry, node) before it leaves and marked sent
before the activity returns, so a retried or replayed activity sends once.

That record cannot cover the moment the message is with the vendor: a worker killed while the
call is in flight, or an answer lost to a timeout, leaves the send 'sending' whether or not
the vendor took it. So the record says when a hand-over began (its ``vendor`` names the
channel until the vendor's answer replaces it, and is cleared when the vendor provably took
nothing), and an attempt that finds a hand-over without an answer asks the vendor before
sending again (``ChannelSender.find_accepted``), trusting a "no" only once the vendor's records
have caught up (``lookup_lag_s`` after the earlier attempt ended). FCM, APNs and webhook
endpoints cannot be asked: there a lost answer means the message may arrive twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.channels import (
    ChannelSender,
    ChannelSenders,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendOutcomeUnknown,
    SendReceipt,
    TransientSendError,
)
from domain.delivery import DeliveryStore, Verdict, next_local, plan, zone
from domain.journey_runs import CustomerData
from domain.journeys import (
    BranchNode,
    Channel,
    Condition,
    Template,
    all_hold,
    lookup,
    render,
)
from domain.profiles import UserProfile

# --- activity inputs and outputs ----------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class CustomerRef(_Model):
    tenant_id: str
    customer_id: str


class MatchEvent(_Model):
    tenant_id: str
    customer_id: str
    event_id: str
    where: list[Condition]


class ChooseBranch(_Model):
    tenant_id: str
    customer_id: str
    context_event_id: str | None
    node: BranchNode


class LocalTime(_Model):
    tenant_id: str
    customer_id: str
    at: time
    after: datetime


class ProfileDate(_Model):
    tenant_id: str
    customer_id: str
    path: str


class PlanDelivery(_Model):
    tenant_id: str
    customer_id: str
    channel: Channel
    transactional: bool
    idempotency_key: str
    now: datetime


class DeliveryPlan(_Model):
    verdict: Literal["send", "skip", "already_sent"]
    send_at: datetime | None = None
    reason: str = ""


class SendMessage(_Model):
    tenant_id: str
    customer_id: str
    journey_id: str | None
    node_id: str | None
    workflow_id: str | None
    channel: Channel
    template: Template
    context_event_id: str | None
    transactional: bool
    idempotency_key: str
    now: datetime


class SendOutcome(_Model):
    status: Literal["sent", "skipped", "failed"]
    detail: str = ""
    vendor_message_id: str | None = None


class UpdateTraits(_Model):
    tenant_id: str
    customer_id: str
    traits: dict[str, Any]


class CloseEntry(_Model):
    entry_id: str
    reason: str
    at: datetime


log = logging.getLogger(__name__)

# How far back caps, fatigue (7 days) and send-time optimisation (opens) look.
HISTORY_WINDOW = timedelta(days=90)

_ADDRESS_TRAIT = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone",
    Channel.PUSH: "push_token",
    Channel.IN_APP: "customer_id",
}


def address_of(profile: UserProfile | None, channel: Channel, template: Template) -> str | None:
    """Where a message to this customer goes on ``channel``, if we know."""
    if channel is Channel.WEBHOOK:
        return template.url
    if profile is None:
        return None
    if channel is Channel.IN_APP:
        return profile.user_id
    value = profile.traits.get(_ADDRESS_TRAIT[channel])
    return str(value) if value else None


def _context(profile: UserProfile | None, event: dict[str, Any] | None) -> dict[str, Any]:
    traits: dict[str, Any] = dict(profile.traits) if profile is not None else {}
    if profile is not None:
        traits |= {
            "segments": profile.segments,
            "loyalty_tier": profile.loyalty_tier.value if profile.loyalty_tier else None,
            "timezone": profile.timezone,
        }
    return {"profile": traits, "event": event or {}}


def _retry_later(error: TransientSendError) -> ApplicationError:
    """Fail this attempt so that Temporal tries again (after the delay the vendor asked)."""
    return ApplicationError(
        str(error),
        type=type(error).__name__,
        next_retry_delay=timedelta(seconds=error.retry_after_s) if error.retry_after_s else None,
    )


async def _accepted_earlier(
    sender: ChannelSender, message: OutboundMessage, *, since: datetime
) -> SendReceipt | None:
    """The vendor's receipt for ``message`` if an earlier attempt's hand-over went through.

    The earlier attempt ended before this one was scheduled, so its hand-over is visible in the
    vendor's records from ``lookup_lag_s`` after that; a "not found" before then is asked again
    once it has passed. A vendor that cannot answer now fails the attempt (sending blind could
    send twice); one that refuses the question, or cannot be asked at all, gets the message
    again: at least once is then the best on offer."""
    lag = sender.lookup_lag_s
    if lag is None:
        log.warning(
            "%s send %s: an earlier attempt's outcome is unknown and the vendor cannot be "
            "asked; sending again (it may arrive twice)",
            message.channel,
            message.idempotency_key,
        )
        return None
    try:
        found = await sender.find_accepted(message, since)
        if found is not None:
            return found
        caught_up = activity.info().current_attempt_scheduled_time + timedelta(seconds=lag)
        wait = (caught_up - datetime.now(UTC)).total_seconds()
        if wait <= 0:
            return None
        await asyncio.sleep(wait)
        return await sender.find_accepted(message, since)
    except TransientSendError as error:
        raise _retry_later(error) from error
    except PermanentSendError as error:
        log.warning(
            "%s send %s: cannot ask whether an earlier attempt went out (%s); sending again "
            "(it may arrive twice)",
            message.channel,
            message.idempotency_key,
            error,
        )
        return None


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while the body runs, when the workflow gave the activity a heartbeat timeout:
    a worker killed mid-send is then noticed within that timeout rather than the whole
    start-to-close one, and its retry asks the vendor that much sooner."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(timeout.total_seconds() / 3)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


class JourneyActivities:
    def __init__(
        self, customers: CustomerData, delivery: DeliveryStore, senders: ChannelSenders
    ) -> None:
        self._customers = customers
        self._delivery = delivery
        self._senders = senders

    async def _context_for(
        self, tenant_id: str, customer_id: str, event_id: str | None
    ) -> tuple[UserProfile | None, dict[str, Any]]:
        profile = await self._customers.profile(tenant_id, customer_id)
        event = (
            await self._customers.event_properties(tenant_id, event_id)
            if event_id is not None
            else None
        )
        return profile, _context(profile, event)

    @activity.defn(name="journey.event_matches")
    async def event_matches(self, request: MatchEvent) -> bool:
        _, context = await self._context_for(
            request.tenant_id, request.customer_id, request.event_id
        )
        return all_hold(request.where, context)

    @activity.defn(name="journey.choose_branch")
    async def choose_branch(self, request: ChooseBranch) -> str:
        _, context = await self._context_for(
            request.tenant_id, request.customer_id, request.context_event_id
        )
        for branch in request.node.branches:
            if all_hold(branch.when, context):
                return branch.next
        return request.node.otherwise

    @activity.defn(name="journey.next_local_time")
    async def next_local_time(self, request: LocalTime) -> datetime:
        profile = await self._customers.profile(request.tenant_id, request.customer_id)
        return next_local(request.after, request.at, zone(profile.timezone if profile else "UTC"))

    @activity.defn(name="journey.profile_date")
    async def profile_date(self, request: ProfileDate) -> datetime | None:
        profile, context = await self._context_for(request.tenant_id, request.customer_id, None)
        found, value = lookup(context, request.path)
        if not found or value is None:
            return None
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
        if moment.tzinfo is None:  # a bare date or local time: the customer's midnight / clock
            moment = moment.replace(tzinfo=zone(profile.timezone if profile else "UTC"))
        return moment

    @activity.defn(name="journey.plan_delivery")
    async def plan_delivery(self, request: PlanDelivery) -> DeliveryPlan:
        existing = await self._delivery.send_record(request.idempotency_key)
        if existing is not None and existing.status in ("sent", "skipped"):
            return DeliveryPlan(verdict="already_sent", reason=existing.status)
        profile = await self._customers.profile(request.tenant_id, request.customer_id)
        policy = await self._delivery.policy(request.tenant_id)
        address = address_of(profile, request.channel, Template(body="-"))
        if address is None and request.channel is not Channel.WEBHOOK:
            return DeliveryPlan(verdict="skip", reason=f"no {request.channel} address")
        since = request.now - HISTORY_WINDOW
        decision = plan(
            policy=policy,
            channel=request.channel,
            now=request.now,
            timezone=profile.timezone if profile is not None else "UTC",
            suppressed=address is not None
            and await self._delivery.suppressed(
                request.tenant_id, request.channel, address, request.now
            ),
            transactional=request.transactional,
            history=await self._delivery.recent_sends(
                request.tenant_id, request.customer_id, since
            ),
            opens=await self._delivery.opens(request.tenant_id, request.customer_id, since),
        )
        if decision.verdict is Verdict.SKIP:
            return DeliveryPlan(verdict="skip", reason=decision.reason)
        return DeliveryPlan(verdict="send", send_at=decision.send_at, reason=decision.reason)

    @activity.defn(name="journey.send_message")
    async def send_message(self, request: SendMessage) -> SendOutcome:
        profile, context = await self._context_for(
            request.tenant_id, request.customer_id, request.context_event_id
        )
        key = request.idempotency_key
        record = await self._delivery.begin_send(
            key,
            {
                "tenant_id": request.tenant_id,
                "customer_id": request.customer_id,
                "channel": request.channel.value,
                "journey_id": request.journey_id,
                "node_id": request.node_id,
                "workflow_id": request.workflow_id,
                "transactional": request.transactional,
                "now": request.now,
                "timezone": profile.timezone if profile is not None else "UTC",
            },
        )
        if record.status == "sent":  # a retry, or a replay: it already left
            return SendOutcome(status="sent", vendor_message_id=record.vendor_message_id)
        if record.status == "skipped":
            return SendOutcome(status="skipped", detail="recorded earlier")
        if record.status == "failed":
            return SendOutcome(status="failed", detail="recorded earlier")
        address = address_of(profile, request.channel, request.template)
        if address is None:
            await self._delivery.finish_send(key, "skipped", "", None)
            return SendOutcome(status="skipped", detail=f"no {request.channel} address")
        overrides = await self._delivery.vendor_overrides(request.tenant_id)
        sender = self._senders.sender(request.channel, overrides)
        message = OutboundMessage(
            channel=request.channel,
            to=address,
            subject=render(request.template.subject, context),
            body=render(request.template.body, context),
            idempotency_key=key,
            metadata={
                "tenant_id": request.tenant_id,
                "journey_id": request.journey_id or "",
                "node_id": request.node_id or "",
                "workflow_id": request.workflow_id or "",
                "send_key": key,
            },
        )
        async with _heartbeating():
            if record.vendor:  # an earlier attempt handed it over and never heard back
                earlier = await _accepted_earlier(sender, message, since=request.now)
                if earlier is not None:
                    await self._delivery.finish_send(
                        key, "sent", earlier.vendor.value, earlier.vendor_message_id
                    )
                    return SendOutcome(
                        status="sent",
                        detail="accepted on an earlier attempt",
                        vendor_message_id=earlier.vendor_message_id,
                    )
            await self._delivery.finish_send(key, "sending", request.channel.value, None)
            try:
                receipt = await sender.send(message)
            except RecipientRejected as error:
                # A dead or opted-out address: never try it again on this channel.
                await self._delivery.suppress(
                    request.tenant_id, request.channel, address, f"rejected: {error.reason}"
                )
                await self._delivery.finish_send(key, "failed", "", None)
                return SendOutcome(status="failed", detail=str(error))
            except PermanentSendError as error:
                await self._delivery.finish_send(key, "failed", "", None)
                return SendOutcome(status="failed", detail=str(error))
            except SendOutcomeUnknown as error:
                # The hand-over stays recorded: the next attempt asks the vendor first.
                raise _retry_later(error) from error
            except TransientSendError as error:
                # The vendor took nothing: the next attempt need not ask before sending.
                await self._delivery.finish_send(key, "sending", "", None)
                raise _retry_later(error) from error
        await self._delivery.finish_send(
            key, "sent", receipt.vendor.value, receipt.vendor_message_id
        )
        return SendOutcome(status="sent", vendor_message_id=receipt.vendor_message_id)

    @activity.defn(name="journey.update_traits")
    async def update_traits(self, request: UpdateTraits) -> None:
        await self._customers.set_traits(request.tenant_id, request.customer_id, request.traits)

    @activity.defn(name="journey.close_entry")
    async def close_entry(self, request: CloseEntry) -> None:
        await self._customers.close_entry(request.entry_id, request.reason, request.at)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.event_matches,
            self.choose_branch,
            self.next_local_time,
            self.profile_date,
            self.plan_delivery,
            self.send_message,
            self.update_traits,
            self.close_entry,
        ]
