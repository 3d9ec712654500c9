"""``GET /v1/notice/{win,billing,loss}``: the exchange tells us how a bid ended.

The URLs are the ones each bid carried (``nurl``, ``burl``, ``lurl``), with the exchange's
macros filled in. Duplicates are answered like first deliveries and change nothing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from adapters import metrics
from domain.bidding.notices import NoticeError
from domain.bidding.settlement import NoticeDesk
from domain.errors import DependencyUnavailable

router = APIRouter(prefix="/v1/notice", tags=["notices"])


class NoticeKindPath(StrEnum):
    win = "win"
    billing = "billing"
    loss = "loss"


def get_notice_desk(request: Request) -> NoticeDesk:
    desk: NoticeDesk = request.app.state.notice_desk
    return desk


NoticeDeskDep = Annotated[NoticeDesk, Depends(get_notice_desk)]


@router.get(
    "/{kind}",
    status_code=204,
    summary="Win, billing or loss notice",
    responses={
        400: {"description": "malformed notice (missing parameter, unreadable price)"},
        403: {"description": "signature does not match: not a URL we issued"},
        410: {"description": "the bid is older than notices are accepted for; nothing booked"},
        503: {"description": "the spend ledger is unreachable; nothing was booked, retry"},
    },
)
async def receive_notice(kind: NoticeKindPath, request: Request, desk: NoticeDeskDep) -> Response:
    """Book a notice once per (bid id, notice type). ``p`` carries ``${AUCTION_PRICE}`` (or
    ``pb`` its ``:B64`` form), ``r`` carries ``${AUCTION_LOSS}``; the rest is our signed data."""
    try:
        receipt = await desk.receive(kind.value, dict(request.query_params))
    except NoticeError as error:
        metrics.notices.labels(kind.value, "refused").inc()
        raise HTTPException(
            status_code=403 if error.forged else 410 if error.expired else 400,
            detail={"code": error.code, "message": str(error)},
        ) from error
    except DependencyUnavailable as error:
        metrics.notices.labels(kind.value, "unavailable").inc()
        raise HTTPException(
            status_code=503,
            detail={"code": "ledger_unavailable", "message": str(error)},
            headers={"Retry-After": "1"},
        ) from error
    if receipt.duplicate:
        result = "duplicate"
    elif receipt.over_budget:
        result = "over_budget"  # booked all the same: the impression was bought
    else:
        result = "booked"
    metrics.notices.labels(kind.value, result).inc()
    return Response(status_code=204)
