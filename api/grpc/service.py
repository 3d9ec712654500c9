"""The gRPC face of the bid intake: same validation, deadlines and no-bid rules as HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import grpc
import orjson

from api.grpc import bidding_pb2, bidding_pb2_grpc
from api.routes.bid import BidIntake, Refusal

log = logging.getLogger(__name__)

# In-flight unary calls on one channel beyond a few thousand come back CANCELLED (measured
# here); a stream is one call, so it bounds its own concurrency instead.
MAX_STREAM_IN_FLIGHT = 256


def _request_id(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    value = parsed.get("id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else ""


class BiddingService(bidding_pb2_grpc.BiddingServiceServicer):
    def __init__(self, intake: BidIntake, serving: Callable[[], bool]) -> None:
        self._intake = intake
        self._serving = serving

    async def _answer(self, request: bidding_pb2.BidRequest) -> bidding_pb2.BidResponse:
        started = time.monotonic()
        body = request.openrtb_json
        result = await self._intake.process(body, started)
        if isinstance(result, Refusal):
            return bidding_pb2.BidResponse(
                status=bidding_pb2.BidResponse.INVALID,
                error=bidding_pb2.Error(code=result.code, message=result.message),
                request_id=_request_id(body),
            )
        if result.body is None:
            return bidding_pb2.BidResponse(
                status=bidding_pb2.BidResponse.NO_BID,
                no_bid_reason=result.reason or "",
                request_id=_request_id(body),
            )
        return bidding_pb2.BidResponse(
            status=bidding_pb2.BidResponse.BID,
            openrtb_json=result.body,
            request_id=_request_id(body),
        )

    async def ProcessBid(
        self, request: bidding_pb2.BidRequest, context: grpc.aio.ServicerContext
    ) -> bidding_pb2.BidResponse:
        return await self._answer(request)

    async def HealthCheck(
        self, request: bidding_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> bidding_pb2.HealthCheckResponse:
        status = (
            bidding_pb2.HealthCheckResponse.SERVING
            if self._serving()
            else bidding_pb2.HealthCheckResponse.NOT_SERVING
        )
        return bidding_pb2.HealthCheckResponse(status=status)

    async def StreamBids(
        self,
        request_iterator: AsyncIterator[bidding_pb2.BidRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bidding_pb2.BidResponse]:
        answers: asyncio.Queue[bidding_pb2.BidResponse | None] = asyncio.Queue()
        slots = asyncio.Semaphore(MAX_STREAM_IN_FLIGHT)
        in_flight: set[asyncio.Task[None]] = set()

        async def answer(request: bidding_pb2.BidRequest) -> None:
            try:
                reply = await self._answer(request)
            except Exception:
                # Unanswered, it would hold the stream open for ever: the reader waits for all.
                log.exception("stream bid request failed; answering no-bid")
                reply = bidding_pb2.BidResponse(
                    status=bidding_pb2.BidResponse.NO_BID,
                    no_bid_reason="error",
                    request_id=_request_id(request.openrtb_json),
                )
            finally:
                slots.release()
            await answers.put(reply)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()
                    task = asyncio.create_task(answer(request))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if in_flight:
                    await asyncio.gather(*in_flight)
            except Exception:
                log.exception("bid stream stopped reading")
            finally:
                answers.put_nowait(None)  # whatever ended the reading, the stream ends too

        reader = asyncio.create_task(read())
        try:
            while (response := await answers.get()) is not None:
                yield response
        finally:
            reader.cancel()
            for task in list(in_flight):
                task.cancel()


def add_bidding_service(server: grpc.aio.Server, service: BiddingService) -> None:
    bidding_pb2_grpc.add_BiddingServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
