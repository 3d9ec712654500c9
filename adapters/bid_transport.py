"""How the API hands a validated bid request to the pipeline: in-process, or over NATS.

Over NATS it is core request/reply on subject ``bids`` to queue group ``bidders``: no
persistence, because a bid older than ``tmax`` is worthless. The time left travels in a header
as milliseconds (monotonic clocks are per process), and a bidder drops a request that arrives
with no time left. No answer in time, no bidder at all, or a lost connection: the API answers
no-bid, never an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import nats.errors
from nats.aio.client import Client as NatsClient

from adapters import metrics
from domain.bidding.pipeline import BidPipeline, DeadlineExceeded
from domain.errors import DependencyUnavailable
from domain.openrtb import BidRequest

log = logging.getLogger(__name__)

BID_SUBJECT = "bids"
BIDDER_QUEUE = "bidders"
TIME_LEFT_HEADER = "Ce-Time-Left-Ms"
NO_BID_HEADER = "Ce-No-Bid"


@dataclass(frozen=True, slots=True)
class BidAnswer:
    body: bytes | None  # None: no bid
    reason: str | None = None


class BidTransport(Protocol):
    name: str

    async def bid(self, request: BidRequest, body: bytes, deadline: float) -> BidAnswer:
        """``deadline`` is on ``time.monotonic()``; the answer comes before it."""
        ...


async def run_pipeline(pipeline: BidPipeline, request: BidRequest, deadline: float) -> BidAnswer:
    """The pipeline under its deadline; shared by the in-process path and the bidder agents."""
    try:
        async with asyncio.timeout_at(_loop_deadline(deadline)):
            outcome = await pipeline.bid(request, deadline)
    except (TimeoutError, DeadlineExceeded):
        outcome = pipeline.no_bid_on_timeout(request)
    except DependencyUnavailable:
        # Counted per dependency and logged when its breaker opens; not once per bid.
        return BidAnswer(None, "dependency_unavailable")
    if outcome.response is None:
        return BidAnswer(None, outcome.no_bid.value if outcome.no_bid else None)
    return BidAnswer(outcome.response.to_json())


def _loop_deadline(deadline: float) -> float:
    """Translate a ``time.monotonic()`` deadline onto the event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


class InProcessBids:
    name = "inproc"

    def __init__(self, pipeline: BidPipeline) -> None:
        self._pipeline = pipeline

    async def bid(self, request: BidRequest, body: bytes, deadline: float) -> BidAnswer:
        return await run_pipeline(self._pipeline, request, deadline)


class NatsBids:
    name = "nats"

    def __init__(self, nc: NatsClient, subject: str = BID_SUBJECT) -> None:
        self._nc = nc
        self._subject = subject

    async def bid(self, request: BidRequest, body: bytes, deadline: float) -> BidAnswer:
        time_left = deadline - time.monotonic()
        if time_left <= 0:
            return BidAnswer(None, "timeout")
        try:
            reply = await self._nc.request(
                self._subject,
                body,
                timeout=time_left,
                headers={TIME_LEFT_HEADER: str(int(time_left * 1000))},
            )
        except (nats.errors.TimeoutError, TimeoutError):
            return BidAnswer(None, "timeout")
        except nats.errors.NoRespondersError:
            return BidAnswer(None, "no_bidders")
        except (nats.errors.Error, OSError) as error:
            metrics.dependency_errors.labels("nats").inc()
            log.warning("bid not forwarded: %s", error)
            return BidAnswer(None, "dependency_unavailable")
        if not reply.data:
            return BidAnswer(None, (reply.headers or {}).get(NO_BID_HEADER))
        return BidAnswer(reply.data)
