"""The API application: FastAPI for the REST surface, with the bid route dispatched before it.

``create_app`` takes finished services; building them (adapters, pipeline, transports) is the
job of ``workers``, the composition root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.deps import AuthServices, access_rules, served_routes
from api.errors import install_error_handlers
from api.journeys import JourneyServices
from api.lifecycle import CampaignServices
from api.routes import (
    activations,
    approvals,
    brand,
    health,
    inbox,
    ingest,
    journeys,
    management,
    notices,
    platform,
    webhooks,
)
from api.routes.activations import ActivationServices
from api.routes.bid import BidEndpoint, BidIntake, Receive, Scope, Send
from api.routes.brand import BrandServices
from api.routes.health import DependencyCheck
from api.routes.inbox import InboxServices
from api.routes.ingest import IngestServices
from api.webhooks import WebhookServices
from domain.bidding.settlement import NoticeDesk
from domain.openrtb import BidRequest, BidResponse

BID_PATH = "/v1/bid"


@dataclass
class ApiServices:
    bid_intake: BidIntake
    notice_desk: NoticeDesk
    max_body_bytes: int
    auth: AuthServices
    campaigns: CampaignServices
    brand: BrandServices
    journeys: JourneyServices
    ingest: IngestServices
    webhooks: WebhookServices
    activations: ActivationServices
    inbox: InboxServices
    dependency_checks: list[DependencyCheck] = field(default_factory=list)
    liveness: Callable[[], dict[str, bool]] = dict


class HotPathDispatch:
    """Send the bid route straight to its handler; everything else goes to FastAPI."""

    def __init__(self, app: FastAPI, bid: BidEndpoint) -> None:
        self.app = app
        self._bid = bid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == BID_PATH:
            await self._bid(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _document_access(app: FastAPI, schema: dict[str, Any]) -> None:
    """Show each route's gate in the OpenAPI schema as ``x-permission``."""
    for route in served_routes(app):
        rules = access_rules(route)
        operations = schema["paths"].get(route.path_format or "", {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if rules and operation is not None:
                operation["x-permission"] = [rule.permission or rule.kind for rule in rules]


def _document_bid_route(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Put the bare bid route into the OpenAPI schema FastAPI generates for the rest."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        _document_access(app, schema)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        _, bid_schemas = msgspec.json.schema_components(
            (BidRequest, BidResponse), ref_template="#/components/schemas/{name}"
        )
        components.update(bid_schemas)
        error = {"$ref": "#/components/schemas/Error"}
        components["Error"] = {
            "type": "object",
            "properties": {"error": {"type": "object"}},
            "description": "code, message and details of what was wrong",
        }
        schema["paths"][BID_PATH] = {
            "post": {
                "tags": ["bidding"],
                "summary": "OpenRTB 2.6 bid request",
                "description": "Answers within tmax: 200 with a BidResponse, or 204 for no bid. "
                "Responses carry `x-openrtb-version: 2.6`. Bodies may be gzip-encoded.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/BidRequest"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "a bid",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BidResponse"}
                            }
                        },
                    },
                    "204": {"description": "no bid"},
                    "400": {
                        "description": "not JSON, or not a valid BidRequest",
                        "content": {"application/json": {"schema": error}},
                    },
                    "413": {
                        "description": "body too large",
                        "content": {"application/json": {"schema": error}},
                    },
                    "415": {
                        "description": "not application/json",
                        "content": {"application/json": {"schema": error}},
                    },
                },
            }
        }
        app.openapi_schema = schema
        return schema

    return openapi


def create_app(services: ApiServices) -> HotPathDispatch:
    app = FastAPI(
        title="CampaignExpress",
        version="0.1.0",
        description="Real-time offers over OpenRTB 2.6; campaigns, journeys and approvals.",
    )
    install_error_handlers(app)
    app.state.notice_desk = services.notice_desk
    app.state.dependency_checks = services.dependency_checks
    app.state.liveness = services.liveness
    app.state.auth = services.auth
    app.state.campaigns = services.campaigns
    app.state.brand = services.brand
    app.state.journeys = services.journeys
    app.state.ingest = services.ingest
    app.state.webhooks = services.webhooks
    app.state.activations = services.activations
    app.state.inbox = services.inbox
    app.include_router(health.router)
    app.include_router(notices.router)
    app.include_router(platform.router)
    app.include_router(management.router)
    app.include_router(approvals.router)
    app.include_router(brand.router)
    app.include_router(brand.calendar_router)
    app.include_router(journeys.router)
    app.include_router(ingest.router)
    app.include_router(webhooks.router)
    app.include_router(activations.router)
    app.include_router(inbox.router)
    app.openapi = _document_bid_route(app)  # type: ignore[method-assign]
    bid = BidEndpoint(services.bid_intake, max_body_bytes=services.max_body_bytes)
    return HotPathDispatch(app, bid)
