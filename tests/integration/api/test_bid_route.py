"""POST /v1/bid as an exchange sees it: IAB examples, bad input, headers, encodings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pytest

from tests.integration.api.conftest import Platform
from tests.support.openrtb_schema import example_requests, schema_errors

JSON = {"content-type": "application/json"}
BANNER_EXAMPLES = {"simple-banner.json", "mobile-app.json", "pmp-direct-deal.json"}


@pytest.mark.parametrize("example", example_requests(), ids=lambda path: path.name)
async def test_iab_example_gets_a_schema_valid_answer(platform: Platform, example: Path) -> None:
    response = await platform.client.post("/v1/bid", content=example.read_bytes(), headers=JSON)

    assert response.status_code in (200, 204)
    assert response.headers["x-openrtb-version"] == "2.6"
    if example.name in BANNER_EXAMPLES:
        assert response.status_code == 200, f"{example.name} got no bid from the demo campaigns"
    if response.status_code == 200:
        body = response.json()
        assert schema_errors(body) == []
        assert body["id"] == json.loads(example.read_text())["id"]


async def test_pmp_example_is_bought_through_its_deal(
    platform: Platform, conformance_dir: Path
) -> None:
    body = (conformance_dir / "examples" / "bid-requests" / "pmp-direct-deal.json").read_bytes()
    response = await platform.client.post("/v1/bid", content=body, headers=JSON)
    (seat,) = response.json()["seatbid"]
    assert seat["seat"] == "Agency1"
    assert seat["bid"][0]["dealid"] == "AB-Agency1-0001"
    assert seat["bid"][0]["price"] >= 2.5


async def test_mobile_example_respects_its_blocks(
    platform: Platform, conformance_dir: Path
) -> None:
    example = conformance_dir / "examples" / "bid-requests" / "mobile-app.json"
    request = json.loads(example.read_text())
    response = await platform.client.post("/v1/bid", content=example.read_bytes(), headers=JSON)
    bid = response.json()["seatbid"][0]["bid"][0]
    assert not set(bid.get("cat", [])) & set(request["bcat"])
    assert not set(bid["adomain"]) & set(request["badv"])
    assert (bid["w"], bid["h"]) == (728, 90)
    assert bid["price"] >= request["imp"][0]["bidfloor"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"id": "1", "imp": [', "invalid_json"),
        (b"", "invalid_json"),
        (b'{"id": "1"}', "invalid_bid_request"),
        (b'{"id": "1", "imp": []}', "invalid_bid_request"),
        (b'{"id": 7, "imp": [{"id": "1"}]}', "invalid_bid_request"),
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": "cheap"}]}', "invalid_bid_request"),
        # NaN and Infinity are not JSON; numbers in strings are read, but must be finite
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": NaN}]}', "invalid_json"),
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": Infinity}]}', "invalid_json"),
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": 1e400}]}', "invalid_bid_request"),
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": "inf"}]}', "invalid_bid_request"),
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": "nan"}]}', "invalid_bid_request"),
        (
            b'{"id": "1", "imp": [{"id": "1", "pmp": {"deals": [{"id": "d", "bidfloor": "inf"}]}}]}',  # noqa: E501
            "invalid_bid_request",
        ),
        (
            b'{"id": "1", "imp": [{"id": "1"}], "device": {"geo": {"lat": "nan"}}}',
            "invalid_bid_request",
        ),
        (
            b'{"id": "1", "imp": [{"id": "1", "pmp": {"deals": [{"id": "d", "bidfloor": -1}]}}]}',
            "invalid_bid_request",
        ),
        (b'{"id": "1", "imp": {"id": "1"}}', "invalid_bid_request"),
        (b'{"id": "1", "imp": [{"id": "1"}], "tmax": -5}', "invalid_bid_request"),
        (b'[{"id": "1"}]', "invalid_bid_request"),
        (
            b'{"id": "1", "imp": [{"id": "1"}], "ext": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
            "invalid_json",
        ),
    ],
)
async def test_bad_request_is_a_400_naming_the_problem(
    platform: Platform, body: bytes, code: str
) -> None:
    response = await platform.client.post("/v1/bid", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


async def test_wrong_type_names_the_field(platform: Platform) -> None:
    body = b'{"id": "1", "imp": [{"id": "1", "bidfloor": "cheap"}]}'
    response = await platform.client.post("/v1/bid", content=body, headers=JSON)
    details = response.json()["error"]["details"]
    assert details[0]["loc"] == ["imp", 0, "bidfloor"]


async def test_unknown_fields_are_tolerated(platform: Platform) -> None:
    request = {
        "id": "unknown-fields",
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250, "vendor_flag": True}, "zz": 1}],
        "site": {"id": "s", "brand_new_26_field": {"a": [1, 2]}},
        "exchange_specific": "whatever",
    }
    response = await platform.client.post("/v1/bid", content=orjson.dumps(request), headers=JSON)
    assert response.status_code == 200


async def test_openrtb_25_ext_fields_are_read(platform: Platform) -> None:
    request = {
        "id": "ext",
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
        "user": {"id": "55816b39711f9b5acf3b90e313ed29e51665623f", "ext": {"consent": "CO-abc"}},
        "regs": {"ext": {"gdpr": 1, "us_privacy": "1YNN"}},
        "source": {"ext": {"schain": {"complete": 1, "ver": "1.0", "nodes": [
            {"asi": "exchange.example", "sid": "1", "hp": 1}]}}},
    }  # fmt: skip
    response = await platform.client.post("/v1/bid", content=orjson.dumps(request), headers=JSON)
    assert response.status_code == 200


async def test_oversized_body_is_413(platform: Platform) -> None:
    limit = platform.settings.bid.max_body_bytes
    padding = "x" * limit
    body = orjson.dumps({"id": "1", "imp": [{"id": "1"}], "ext": {"pad": padding}})
    response = await platform.client.post("/v1/bid", content=body, headers=JSON)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


async def test_oversized_gzip_bomb_is_413(platform: Platform) -> None:
    limit = platform.settings.bid.max_body_bytes
    body = gzip.compress(b'{"id": "1", "imp": [{"id": "1"}], "ext": {"pad": "' + b"x" * limit * 4)
    headers = JSON | {"content-encoding": "gzip"}
    response = await platform.client.post("/v1/bid", content=body, headers=headers)
    assert response.status_code == 413


async def test_gzip_body_is_accepted(platform: Platform, conformance_dir: Path) -> None:
    example = conformance_dir / "examples" / "bid-requests" / "simple-banner.json"
    headers = JSON | {"content-encoding": "gzip"}
    response = await platform.client.post(
        "/v1/bid", content=gzip.compress(example.read_bytes()), headers=headers
    )
    assert response.status_code == 200


async def test_broken_gzip_is_400(platform: Platform) -> None:
    headers = JSON | {"content-encoding": "gzip"}
    response = await platform.client.post("/v1/bid", content=b"not gzip", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_encoding"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_is_415(platform: Platform, content_type: str) -> None:
    response = await platform.client.post(
        "/v1/bid",
        content=b'{"id": "1", "imp": [{"id": "1"}]}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_json_with_charset_is_accepted(platform: Platform) -> None:
    body = b'{"id": "1", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]}'
    headers = {"content-type": "application/json; charset=utf-8"}
    response = await platform.client.post("/v1/bid", content=body, headers=headers)
    assert response.status_code == 204


async def test_get_is_405(platform: Platform) -> None:
    response = await platform.client.get("/v1/bid")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_no_bid_is_204_with_the_version_header(platform: Platform) -> None:
    body = b'{"id": "1", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]}'
    response = await platform.client.post("/v1/bid", content=body, headers=JSON)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-openrtb-version"] == "2.6"


async def test_openapi_documents_the_bid_route(platform: Platform) -> None:
    schema = (await platform.client.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/bid"]["post"]
    assert set(operation["responses"]) >= {"200", "204", "400", "413", "415"}
    assert "BidRequest" in schema["components"]["schemas"]
    assert "/v1/notice/{kind}" in schema["paths"]
    assert (await platform.client.get("/docs")).status_code == 200
