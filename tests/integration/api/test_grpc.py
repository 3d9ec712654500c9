"""gRPC BiddingService over a real channel: same answers as HTTP."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import orjson
import pytest

from api.grpc import bidding_pb2, bidding_pb2_grpc
from api.grpc.service import BiddingService, add_bidding_service
from tests.integration.api.conftest import Platform
from tests.support.openrtb_schema import schema_errors
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def stub(platform: Platform) -> AsyncIterator[bidding_pb2_grpc.BiddingServiceStub]:
    services = await platform.runtime.api_services()
    server = grpc.aio.server()
    add_bidding_service(server, BiddingService(services.bid_intake, lambda: True))
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield bidding_pb2_grpc.BiddingServiceStub(channel)  # type: ignore[no-untyped-call]
    await server.stop(None)


async def test_process_bid_answers_with_a_valid_bid(
    stub: bidding_pb2_grpc.BiddingServiceStub, conformance_dir: Path
) -> None:
    example = conformance_dir / "examples" / "bid-requests" / "simple-banner.json"
    reply = await stub.ProcessBid(bidding_pb2.BidRequest(openrtb_json=example.read_bytes()))
    assert reply.status == bidding_pb2.BidResponse.BID
    assert reply.request_id == "80ce30c53c16e6ede735f123ef6e32361bfc7b22"
    assert schema_errors(orjson.loads(reply.openrtb_json)) == []


async def test_process_bid_refuses_bad_json(stub: bidding_pb2_grpc.BiddingServiceStub) -> None:
    reply = await stub.ProcessBid(bidding_pb2.BidRequest(openrtb_json=b"{nope"))
    assert reply.status == bidding_pb2.BidResponse.INVALID
    assert reply.error.code == "invalid_json"


async def test_process_bid_no_bid_says_why(stub: bidding_pb2_grpc.BiddingServiceStub) -> None:
    body = b'{"id": "x", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]}'
    reply = await stub.ProcessBid(bidding_pb2.BidRequest(openrtb_json=body))
    assert reply.status == bidding_pb2.BidResponse.NO_BID
    assert reply.no_bid_reason == "no_matching_campaign"
    assert reply.request_id == "x"


async def test_health_check_serves(stub: bidding_pb2_grpc.BiddingServiceStub) -> None:
    reply = await stub.HealthCheck(bidding_pb2.HealthCheckRequest())
    assert reply.status == bidding_pb2.HealthCheckResponse.SERVING


async def test_stream_bids_answers_every_request(
    stub: bidding_pb2_grpc.BiddingServiceStub,
) -> None:
    def requests() -> list[bidding_pb2.BidRequest]:
        return [
            bidding_pb2.BidRequest(
                openrtb_json=orjson.dumps(
                    {"id": f"s{n}", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}
                )
            )
            for n in range(25)
        ] + [
            bidding_pb2.BidRequest(openrtb_json=b"[]"),
            bidding_pb2.BidRequest(openrtb_json=b"[" * 5000 + b"]" * 5000),  # past any parser
        ]

    replies = [reply async for reply in stub.StreamBids(iter(requests()))]

    assert len(replies) == 27
    assert {r.request_id for r in replies if r.status == bidding_pb2.BidResponse.BID} == {
        f"s{n}" for n in range(25)
    }
    assert [r.status for r in replies].count(bidding_pb2.BidResponse.INVALID) == 2


def test_generated_stubs_match_the_proto(tmp_path: Path) -> None:
    proto = Path("api/grpc/bidding.proto")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(proto)],
        cwd=REPO,
        check=True,
    )  # fmt: skip
    for name in ("bidding_pb2.py", "bidding_pb2.pyi", "bidding_pb2_grpc.py"):
        assert filecmp.cmp(tmp_path / "api" / "grpc" / name, REPO / "api" / "grpc" / name), (
            f"{name} is stale: regenerate it (see api/grpc/__init__.py)"
        )
