"""Every /api/v1 route x every role, against domain.platform's permission matrix.

The routes come from the app itself, so routes added later are walked too. A route under
/api/v1 that declares no gate (``requires``, ``requires_any_role`` or ``public``) fails here.
Calls use made-up ids and empty bodies: a 404 or 422 behind the gate is fine, the point is
the gate itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext

from api.deps import AccessRule, access_rules, requires, served_routes
from domain.platform import Permission, Role
from tests.integration.platform.support import PlatformApi, bearer

PREFIX = "/api/v1/"
BODY_METHODS = {"POST", "PUT", "PATCH"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    path: str
    rules: tuple[AccessRule, ...]

    def admits(self, role: Role) -> bool:
        return all(rule.admits(role) for rule in self.rules)

    @property
    def public(self) -> bool:
        return all(rule.kind == "public" for rule in self.rules)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _placeholder(route: RouteContext, name: str) -> str:
    """A made-up value of the path parameter's type."""
    for param in route.dependant.path_params:
        if param.name == name and param.field_info.annotation is int:
            return "987654321"
    return str(uuid.uuid4())


def api_v1_endpoints(app: FastAPI) -> tuple[list[Endpoint], list[str]]:
    """(endpoints with their gates, routes under /api/v1 that declare none)."""
    endpoints: list[Endpoint] = []
    ungated: list[str] = []
    for route in served_routes(app):
        path = route.path or ""
        if not path.startswith(PREFIX):
            continue
        if not isinstance(route.original_route, APIRoute):
            ungated.append(f"{path} (not a FastAPI route: its gate cannot be read)")
            continue
        rules = tuple(access_rules(route))
        concrete = path
        for name in route.param_convertors:
            concrete = concrete.replace(f"{{{name}}}", _placeholder(route, name))
        for method in sorted(route.methods or ()):
            if not rules:
                ungated.append(f"{method} {path}")
            endpoints.append(Endpoint(method, path, concrete, rules))
    return endpoints, ungated


async def test_every_api_v1_route_declares_its_gate(api: PlatformApi) -> None:
    endpoints, ungated = api_v1_endpoints(api.app)

    walked = {f"{endpoint.method} {endpoint.template}" for endpoint in endpoints}
    assert {
        "GET /api/v1/platform/me",
        "POST /api/v1/platform/auth/token",
        "DELETE /api/v1/platform/users/{user_id}",
        "GET /api/v1/platform/audit-log",
    } <= walked
    assert not ungated, f"routes without requires(...)/requires_any_role()/public(): {ungated}"


async def test_ungated_route_is_detected() -> None:
    app = FastAPI()

    @app.get("/api/v1/forgotten")
    async def forgotten() -> None: ...

    @app.get("/api/v1/gated", dependencies=[requires(Permission.REPORTS)])
    async def gated() -> None: ...

    endpoints, ungated = api_v1_endpoints(app)

    assert ungated == ["GET /api/v1/forgotten"]
    assert [endpoint.rules for endpoint in endpoints if endpoint.template == "/api/v1/gated"] == [
        (AccessRule("permission", Permission.REPORTS),)
    ]


async def test_every_route_answers_each_role_as_matrix_says(api: PlatformApi) -> None:
    keys = {role: bearer(await api.key("matrix-tenant", role)) for role in Role}
    endpoints, _ = api_v1_endpoints(api.app)
    wrong: list[str] = []

    for endpoint in endpoints:
        body: dict[str, object] | None = {} if endpoint.method in BODY_METHODS else None
        anonymous = await api.client.request(endpoint.method, endpoint.path, json=body)
        if not endpoint.public and anonymous.status_code != 401:
            wrong.append(f"{endpoint} without credentials: {anonymous.status_code}")
        for role, headers in keys.items():
            response = await api.client.request(
                endpoint.method, endpoint.path, json=body, headers=headers
            )
            status = response.status_code
            if not endpoint.admits(role):
                if status != 403 or response.json()["error"]["code"] != "forbidden":
                    wrong.append(f"{endpoint} as {role}: {status}, expected 403")
            elif status in (401, 403) or status >= 500:
                wrong.append(f"{endpoint} as {role}: {status} {response.text[:200]}")

    assert not wrong, "\n".join(wrong)


async def test_openapi_shows_each_route_gate(api: PlatformApi) -> None:
    schema = (await api.client.get("/openapi.json")).json()

    users = schema["paths"]["/api/v1/platform/users"]["get"]
    me = schema["paths"]["/api/v1/platform/me"]["get"]
    assert users["x-permission"] == ["system:config"]
    assert me["x-permission"] == ["any_role"]
    assert users["security"] == [{"HTTPBearer": []}]
