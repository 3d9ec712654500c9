"""The benchmark's baseline: a bare Starlette route that only parses the OpenRTB body.

Whatever the platform does on top of this (validation, the pipeline, scoring, the ledger, the
response) is what bench/bid.py's ratios measure.
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def bid(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(status_code=204)


app = Starlette(routes=[Route("/v1/bid", bid, methods=["POST"])])
