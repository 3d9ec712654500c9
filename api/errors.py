"""One error shape for every 4xx and 5xx the API sends:

    {"error": {"code": "invalid_request", "message": "...", "details": [...]}}

``code`` is stable and machine-readable; ``message`` is for people; ``details`` (optional) lists
the offending fields (``loc``, ``msg``, ``type``), as pydantic reports them for REST bodies and
``/v1/bid`` reports its first for a bid request.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MAX_DETAILS = 20


def error_payload(code: str, message: str, details: Sequence[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)[:MAX_DETAILS]
    return {"error": error}


def error_bytes(code: str, message: str, details: Sequence[Any] | None = None) -> bytes:
    return orjson.dumps(error_payload(code, message, details))


def validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    """Field errors without echoing the input back (it may be large or personal)."""
    return [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in error.errors()
    ]


def _code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, dict) and "code" in detail:
            body = error_payload(
                detail["code"], str(detail.get("message", "")), detail.get("details")
            )
        else:
            body = error_payload(_code_for(exc.status_code), str(detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_payload(
                "invalid_request", "the request does not match the schema", validation_details(exc)
            ),
            status_code=422,
        )
