"""Decoding bid requests and encoding responses: the rules exchanges meet on the way in."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from domain.openrtb import (
    Bid,
    BidResponse,
    InvalidBidRequest,
    MediaType,
    SeatBid,
    bid_request_from,
    parse_bid_request,
)

EIDS = [{"source": "s", "uids": [{"id": "x"}]}]
SCHAIN = {"complete": 1, "ver": "1.0", "nodes": [{"asi": "exchange.example", "sid": "1", "hp": 1}]}


def request(**fields: Any) -> dict[str, Any]:
    return {"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}], **fields}


def test_openrtb_25_ext_fields_are_promoted_to_their_26_places() -> None:
    parsed = bid_request_from(
        request(
            user={"id": "u", "ext": {"consent": "CO-abc", "eids": EIDS}},
            regs={"ext": {"gdpr": 1, "us_privacy": "1YNN"}},
            source={"ext": {"schain": SCHAIN}},
        )
    )  # fmt: skip

    user, regs, source = parsed.user, parsed.regs, parsed.source
    assert user is not None
    assert regs is not None
    assert source is not None
    assert user.consent == "CO-abc"
    assert [eid.uids[0].id for eid in user.eids or ()] == ["x"]
    assert (regs.gdpr, regs.us_privacy) == (1, "1YNN")
    assert source.schain is not None
    assert source.schain.nodes[0].asi == "exchange.example"
    assert parsed.personal_data_allowed()  # gdpr, with a consent string


def test_the_26_place_wins_over_ext() -> None:
    parsed = bid_request_from(request(regs={"gdpr": 0, "ext": {"gdpr": 1}}))

    assert parsed.regs is not None
    assert parsed.regs.gdpr == 0


def test_an_ext_value_of_the_wrong_shape_is_refused_like_the_field_itself() -> None:
    with pytest.raises(InvalidBidRequest) as refused:
        bid_request_from(request(user={"ext": {"eids": "not a list"}}))

    assert not refused.value.json_broken
    assert refused.value.loc == ("user", "ext", "eids")
    assert refused.value.message == "Expected `array`, got `str`"


def test_a_problem_inside_an_ext_value_is_located_inside_it() -> None:
    with pytest.raises(InvalidBidRequest) as refused:
        bid_request_from(request(user={"ext": {"eids": [{"source": "s"}]}}))

    assert refused.value.loc == ("user", "ext", "eids", 0)
    assert "uids" in refused.value.message


@pytest.mark.parametrize("flag", [True, False])
def test_flags_may_come_as_booleans(flag: bool) -> None:
    parsed = bid_request_from(
        request(test=flag, regs={"coppa": flag, "ext": {"gdpr": flag}}, device={"dnt": flag})
    )

    assert parsed.regs is not None
    assert parsed.test == parsed.regs.coppa == parsed.regs.gdpr == int(flag)
    assert parsed.personal_data_allowed() is not flag  # coppa


def test_json_nested_past_any_request_is_refused_as_json() -> None:
    body = b'{"id": "1", "imp": [{"id": "1"}], "ext": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"

    with pytest.raises(InvalidBidRequest) as refused:
        parse_bid_request(body)

    assert refused.value.json_broken


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": "cheap"}]}', ("imp", 0, "bidfloor")),
        (b'{"id": "1", "imp": []}', ("imp",)),
        (b'{"id": "1", "imp": [{"id": "1", "pmp": {"deals": [{"id": "d", "bidfloor": -1}]}}]}',
         ("imp", 0, "pmp", "deals", 0, "bidfloor")),
        (b'{"id": "1", "imp": [{"id": "1", "bidfloor": "inf"}]}', ("imp", 0, "bidfloor")),
        (b'{"id": "1", "imp": [{"id": "1"}], "device": {"geo": {"lat": "nan"}}}',
         ("device", "geo", "lat")),
        (b'{"id": 1, "imp": [{"id": "1"}]}', ("id",)),
        (b'[]', ()),
    ],
)  # fmt: skip
def test_a_request_that_is_json_but_not_a_bid_request_names_where(
    body: bytes, loc: tuple[str | int, ...]
) -> None:
    with pytest.raises(InvalidBidRequest) as refused:
        parse_bid_request(body)

    assert (refused.value.json_broken, refused.value.loc) == (False, loc)


@pytest.mark.parametrize("body", [b"", b'{"id": "1", "imp": [', b'{"id": "1", "bidfloor": NaN}'])
def test_what_is_not_json_is_told_apart(body: bytes) -> None:
    with pytest.raises(InvalidBidRequest) as refused:
        parse_bid_request(body)

    assert refused.value.json_broken


def test_numbers_in_strings_are_read_as_numbers() -> None:
    parsed = parse_bid_request(
        b'{"id": "1", "imp": [{"id": "1", "bidfloor": "0.5"}], "tmax": "80"}'
    )

    assert (parsed.imp[0].bidfloor, parsed.tmax) == (0.5, 80)


def test_unknown_fields_are_skipped() -> None:
    parsed = bid_request_from(request(zz=1, site={"id": "s", "brand_new": {"a": [1]}}))

    assert parsed.site is not None
    assert parsed.site.id == "s"


def test_a_response_leaves_out_what_it_does_not_carry() -> None:
    bid = Bid(id="b1", impid="1", price=1.25, adm="<div/>", crid="cr", mtype=MediaType.BANNER)
    response = BidResponse(id="r1", seatbid=[SeatBid(bid=[bid], seat="s")], cur="USD")

    assert orjson.loads(response.to_json()) == {
        "id": "r1",
        "seatbid": [
            {"bid": [{"id": "b1", "impid": "1", "price": 1.25, "adm": "<div/>", "crid": "cr",
                      "mtype": 1}], "seat": "s"}
        ],
        "cur": "USD",
    }  # fmt: skip
