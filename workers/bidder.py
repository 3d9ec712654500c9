"""The bid worker fleet: N agents per process on NATS subject ``bids``, queue group ``bidders``.

Each agent is one queue subscription, handling one request at a time, so ``--agents`` bounds
the requests a process works on at once; NATS spreads requests over every agent of every
process. A request whose time ran out before an agent took it is dropped unanswered: the API
has already answered no-bid.
"""

from __future__ import annotations

import logging
import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from adapters import metrics
from adapters.bid_transport import (
    BID_SUBJECT,
    BIDDER_QUEUE,
    NO_BID_HEADER,
    TIME_LEFT_HEADER,
    run_pipeline,
)
from domain.bidding.pipeline import BidPipeline
from domain.openrtb import InvalidBidRequest, parse_bid_request

log = logging.getLogger(__name__)

# Kept back from the time left so the reply still reaches the API before its deadline.
REPLY_ALLOWANCE_S = 0.001
# Pending messages per agent before NATS drops them as a slow consumer: a queue deeper than a
# few hundred bids would be answered too late anyway.
PENDING_PER_AGENT = 512


class BidderFleet:
    def __init__(
        self, nc: NatsClient, pipeline: BidPipeline, agents: int, subject: str = BID_SUBJECT
    ) -> None:
        self._nc = nc
        self._pipeline = pipeline
        self._agents = agents
        self._subject = subject
        self._subscriptions: list[Subscription] = []
        self._handled = metrics.nats_messages_processed.labels(subject)

    @property
    def running(self) -> bool:
        return bool(self._subscriptions) and not self._nc.is_closed

    def queue_depth(self) -> int:
        return sum(subscription.pending_msgs for subscription in self._subscriptions)

    async def start(self) -> None:
        for _ in range(self._agents):
            self._subscriptions.append(
                await self._nc.subscribe(
                    self._subject,
                    queue=BIDDER_QUEUE,
                    cb=self._handle,
                    pending_msgs_limit=PENDING_PER_AGENT,
                )
            )
        await self._nc.flush(timeout=2)
        metrics.agent_queue_depth.set_function(self.queue_depth)
        log.info("%d bid agents on %r (queue %r)", self._agents, self._subject, BIDDER_QUEUE)

    async def stop(self) -> None:
        """Stop taking new requests and finish the ones in hand."""
        for subscription in self._subscriptions:
            await subscription.drain()  # type: ignore[no-untyped-call]
        self._subscriptions.clear()

    async def _handle(self, message: Msg) -> None:
        received = time.monotonic()
        self._handled.inc()
        headers = message.headers or {}
        try:
            time_left = int(headers.get(TIME_LEFT_HEADER, "0")) / 1000
        except ValueError:
            time_left = 0.0
        deadline = received + time_left - REPLY_ALLOWANCE_S
        if deadline <= received or not message.reply:
            return
        try:
            request = parse_bid_request(message.data)
        except InvalidBidRequest:
            await self._reply(message, None, "invalid_request")
            return
        try:
            answer = await run_pipeline(self._pipeline, request, deadline)
        except Exception:  # one request's failure must not take the agent down
            log.exception("bid request %s failed in the bidder", request.id)
            await self._reply(message, None, "error")
            return
        await self._reply(message, answer.body, answer.reason)

    async def _reply(self, message: Msg, body: bytes | None, reason: str | None) -> None:
        if body is not None:
            await self._nc.publish(message.reply, body)
        else:
            await self._nc.publish(message.reply, b"", headers={NO_BID_HEADER: reason or "no_bid"})
