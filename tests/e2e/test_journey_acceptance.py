"""The customer journeys issue's acceptance, against ``campaign-express up`` as a user runs it,
with SendGrid's stand-in in a process of its own as the email vendor.

1. The shipped abandoned-cart journey posts as it is and publishes over REST; its next version
   (the same journey, then waiting up to two minutes for the reminder to be opened) too.
2. A ``cart_abandoned`` for Ada through ``/v1/channels/ingest``: her run shows in Temporal Web
   and in the embedded server's visibility.
3. Ada gets exactly one reminder email once the purchase window closes; Bo abandons a cart and
   buys within the window: his run ends on the exit event and no email ever goes to him.
4. SendGrid's signed ``open`` of Ada's email, POSTed to ``/v1/webhooks/sendgrid``, wakes her
   run's wait for ``email_open``; the same request redelivered is a duplicate, a forged one 401.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from temporal.dev_server import find_binary
from tests.support.processes import CLI, CliProcess
from tests.support.services import free_port
from tests.support.vendors import RemoteStandIn, StandInProcess

# Startup, a journey's own timers and the polling together can outlast the suite's default
# 120 s on a loaded machine; a real hang still ends.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "journeys" / "abandoned-cart.json"

STARTUP_S = 120
# The reminder leaves ~12 s after entry (a 2 s pause, a 10 s purchase window); a shared two-core
# machine may take a good while longer.
WAIT_S = 120.0
POLL_S = 0.5
CLI_TIMEOUT_S = 120
HTTP_TIMEOUT_S = 30
JOURNEYS = "/api/v1/journeys"
INGEST = "/v1/channels/ingest"
SENDGRID_WEBHOOK = "/v1/webhooks/sendgrid"
SENDGRID_KEY = "SG.e2e-journeys"
SENDER = "shop@brand.example"
# Long enough that the open is surely sent while the run still waits for it.
OPEN_WAIT = "PT2M"
RUNNING = "WORKFLOW_EXECUTION_STATUS_RUNNING"
COMPLETED = "WORKFLOW_EXECUTION_STATUS_COMPLETED"


@dataclass(frozen=True)
class Shopper:
    customer_id: str
    email: str
    first_name: str

    @property
    def cart_url(self) -> str:
        return f"https://brand.example/cart/{self.customer_id}"


ADA = Shopper("e2e-customer-ada", "ada@shoppers.example", "Ada")
BO = Shopper("e2e-customer-bo", "bo@shoppers.example", "Bo")


@dataclass(frozen=True)
class Manager:
    tenant_id: str
    headers: dict[str, str]


def daytime_zone(now: datetime) -> str:
    """An IANA zone where it is early afternoon at ``now``: far from the default quiet hours
    (21:00-08:00 local), so the reminder goes at once whenever the test runs."""
    offset = (13 - now.astimezone(UTC).hour) % 24
    if offset > 14:  # zones reach from UTC-12 to UTC+14
        offset -= 24
    # POSIX signs: Etc/GMT-5 is five hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def with_open_wait(example: dict[str, Any]) -> dict[str, Any]:
    """The example, its reminder then waiting for the email to be opened."""
    nodes = [
        node | {"next": "open_wait"} if node["id"] == "reminder" else node
        for node in example["nodes"]
    ]
    nodes += [
        {
            "id": "open_wait",
            "type": "wait_for_event",
            "event": "email_open",
            "timeout": OPEN_WAIT,
            "on_event": "opened",
            "on_timeout": "reminded",
        },
        {"id": "opened", "type": "exit"},
    ]
    return example | {"nodes": nodes}


# --- the processes -------------------------------------------------------------------------------


@pytest.fixture
def sendgrid(tmp_path: Path) -> Iterator[RemoteStandIn]:
    with StandInProcess("sendgrid", {"api_key": SENDGRID_KEY}, log=tmp_path / "sendgrid.log") as sg:
        yield sg


@pytest.fixture
def env(tmp_path: Path, sendgrid: RemoteStandIn) -> dict[str, str]:
    return {
        "CE_HOME": str(tmp_path / "home"),
        "CE_API_PORT": str(free_port()),
        "CE_GRPC_PORT": str(free_port()),
        "CE_METRICS_PORT": str(free_port()),
        "CE_TEMPORAL__PORT": str(free_port()),
        "CE_TEMPORAL__UI_PORT": str(free_port()),
        "CE_TEMPORAL__HTTP_PORT": str(free_port()),
        "CE_TEMPORAL__METRICS_PORT": str(free_port()),
        "CE_SENDGRID_API_KEY": SENDGRID_KEY,
        "CE_SENDGRID_BASE_URL": sendgrid.base_url,
        "CE_SENDGRID_FROM": f"Brand Shop <{SENDER}>",
        "CE_SENDGRID_WEBHOOK_PUBLIC_KEY": sendgrid.public_key(),
    }


@pytest.fixture
def manager(env: dict[str, str]) -> Manager:
    """``campaign-express apikey create``, as an operator runs it: the tenant's id is on its
    first line, the key on its last."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CE_")} | env
    created = subprocess.run(
        [CLI, "apikey", "create", "--tenant", "acme", "--role", "manager", "--label", "journeys"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    key = lines[-1]
    assert key.startswith("ce_"), created.stdout
    tenant_id = lines[0].rsplit("(", 1)[-1].rstrip(")")
    return Manager(tenant_id=tenant_id, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def up(env: dict[str, str], manager: Manager, tmp_path: Path) -> Iterator[CliProcess]:
    process = CliProcess(["up"], env, tmp_path / "up.log")
    try:
        process.wait_for_output("running", timeout_s=STARTUP_S)
        yield process
    finally:
        process.terminate()


# --- talking to it -------------------------------------------------------------------------------


def api(env: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{env['CE_API_PORT']}", timeout=HTTP_TIMEOUT_S)


def eventually(check: Callable[[], T | None], what: str) -> T:
    """Poll ``check`` until it returns something: the journey moves on its own timers."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(POLL_S)


def publish(client: httpx.Client, manager: Manager, journey_id: str) -> dict[str, Any]:
    published = client.post(f"{JOURNEYS}/{journey_id}/publish", headers=manager.headers)
    assert published.status_code == 200, published.text
    journey: dict[str, Any] = published.json()
    return journey


def ingest(client: httpx.Client, manager: Manager, *events: dict[str, Any]) -> None:
    response = client.post(INGEST, headers=manager.headers, json={"events": list(events)})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(events), "duplicates": 0}


def event(
    event_id: str, shopper: Shopper, name: str, at: datetime, **properties: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": shopper.customer_id,
        "name": name,
        "source": "web",
        "timestamp": at.isoformat(),
        "properties": properties,
        "traits": {
            "email": shopper.email,
            "first_name": shopper.first_name,
            "timezone": daytime_zone(at),
        },
    }


def cart_abandoned(shopper: Shopper, at: datetime) -> dict[str, Any]:
    cart_id = f"{shopper.customer_id}-cart"
    return event(cart_id, shopper, "cart_abandoned", at, cart_url=shopper.cart_url)


def temporal(env: dict[str, str], *args: str) -> str:
    """The ``temporal`` CLI against the embedded server, JSON out."""
    ran = subprocess.run(
        [
            str(find_binary("temporal")),
            *args,
            "--address",
            f"127.0.0.1:{env['CE_TEMPORAL__PORT']}",
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def run_state(env: dict[str, str], workflow_id: str) -> dict[str, Any]:
    """The run's ``state`` query (a JourneyRunState), running or finished."""
    query = ["workflow", "query", "--workflow-id", workflow_id, "--type", "state"]
    answered = json.loads(temporal(env, *query, "--output", "json"))
    (state,) = answered["queryResult"]
    found: dict[str, Any] = state
    return found


def web_execution(web: str, workflow_id: str) -> dict[str, Any] | None:
    """The run as Temporal Web's own API (the one its pages call) lists it."""
    response = httpx.get(
        f"{web}/api/v1/namespaces/default/workflows",
        params={"query": f'WorkflowId="{workflow_id}"'},
        timeout=HTTP_TIMEOUT_S,
    )
    if response.status_code == 503:  # the UI server's first seconds: not connected yet
        return None
    assert response.status_code == 200, response.text
    executions = response.json().get("executions", [])
    if not executions:
        return None
    (execution,) = executions
    found: dict[str, Any] = execution
    return found


def web_keyword(execution: dict[str, Any], name: str) -> str:
    encoded = execution["searchAttributes"]["indexedFields"][name]["data"]
    decoded: str = json.loads(base64.b64decode(encoded))
    return decoded


def emails_to(sendgrid: RemoteStandIn, shopper: Shopper) -> list[dict[str, Any]]:
    mails = [request.json() for request in sendgrid.accepted()]
    return [
        mail for mail in mails if mail["personalizations"][0]["to"][0]["email"] == shopper.email
    ]


def outcomes(state: dict[str, Any]) -> list[tuple[str, str]]:
    # The CLI prints an empty list as null.
    return [(step["node_id"], step["outcome"]) for step in state["steps"] or []]


# --- the acceptance ------------------------------------------------------------------------------


def test_abandoned_cart_reminds_the_shopper_spares_the_buyer_and_hears_the_open(
    up: CliProcess, env: dict[str, str], manager: Manager, sendgrid: RemoteStandIn
) -> None:
    example = json.loads(EXAMPLE.read_text())
    web = f"http://127.0.0.1:{env['CE_TEMPORAL__UI_PORT']}"

    def workflow_id(shopper: Shopper) -> str:
        return f"journey-{manager.tenant_id}-{journey_id}-{shopper.customer_id}"

    with api(env) as client:
        # 1. The example as shipped is version 1; with the open wait appended, version 2.
        created = client.post(JOURNEYS, headers=manager.headers, json=example)
        assert created.status_code == 201, created.text
        journey_id: str = created.json()["id"]
        first = publish(client, manager, journey_id)
        assert (first["status"], first["published_version"]) == ("published", 1)
        replaced = client.put(
            f"{JOURNEYS}/{journey_id}", headers=manager.headers, json=with_open_wait(example)
        )
        assert replaced.status_code == 200, replaced.text
        second = publish(client, manager, journey_id)
        assert (second["status"], second["published_version"]) == ("published", 2)
        shipped = client.get(f"{JOURNEYS}/{journey_id}/versions/1", headers=manager.headers)
        assert shipped.status_code == 200, shipped.text
        assert [n["id"] for n in shipped.json()["definition"]["nodes"]] == [
            n["id"] for n in example["nodes"]
        ]

        # 2-3. Bo abandons his cart and buys within the window; Ada only abandons hers.
        now = datetime.now(UTC)
        ingest(client, manager, cart_abandoned(BO, now))
        bought = event("e2e-bo-purchase", BO, "purchase", now + timedelta(seconds=1), order="o-1")
        ingest(client, manager, bought)
        ingest(client, manager, cart_abandoned(ADA, now))

    ada_run = eventually(lambda: web_execution(web, workflow_id(ADA)), "Ada's run in Temporal Web")
    assert ada_run["type"]["name"] == "Journey"
    assert web_keyword(ada_run, "CustomerId") == ADA.customer_id
    assert web_keyword(ada_run, "JourneyId") == journey_id
    listed = temporal(env, "workflow", "list", "--query", f'CustomerId="{ADA.customer_id}"')
    assert workflow_id(ADA) in listed
    assert "Journey" in listed

    def closed(shopper: Shopper) -> dict[str, Any] | None:
        found = web_execution(web, workflow_id(shopper))
        return found if found is not None and found["status"] != RUNNING else None

    def state_when(shopper: Shopper, holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            state = run_state(env, workflow_id(shopper))
            return state if holds(state) else None

        return eventually(check, f"{shopper.first_name}'s run state")

    bo_closed = eventually(lambda: closed(BO), "Bo's run closed")
    assert bo_closed["status"] == COMPLETED, bo_closed
    bo_state = run_state(env, workflow_id(BO))
    assert bo_state["finished"] is True
    assert bo_state["exit_reason"] == "exit event purchase"
    # Left wherever the purchase found him, before the reminder.
    assert bo_state["node_id"] in ("pause", "purchase_window"), bo_state
    assert "reminder" not in [node for node, _ in outcomes(bo_state)]

    mail = eventually(lambda: emails_to(sendgrid, ADA) or None, "Ada's reminder at SendGrid")
    (reminder,) = mail
    assert reminder["subject"] == "You left something in your cart"
    text = " ".join(part["value"] for part in reminder["content"])
    assert "Hello Ada" in text
    assert ADA.cart_url in text
    assert reminder["from"]["email"] == SENDER

    waiting = state_when(ADA, lambda state: state["node_id"] == "open_wait")
    assert outcomes(waiting)[:2] == [("pause", "waited"), ("purchase_window", "timeout")]
    assert outcomes(waiting)[2][0] == "reminder"
    assert outcomes(waiting)[2][1].startswith("sent"), outcomes(waiting)

    # 4. SendGrid reports the open, signed with the account's key.
    body, headers = sendgrid.signed_event(0, "open")
    with api(env) as client:
        opened = client.post(SENDGRID_WEBHOOK, content=body, headers=headers)
        assert opened.status_code == 200, opened.text
        assert opened.json() == {"received": 1, "applied": 1, "duplicates": 0}

        ada_state = state_when(ADA, lambda state: bool(state["finished"]))
        assert outcomes(ada_state)[-2:] == [("open_wait", "event"), ("opened", "exit")]
        assert ada_state["exit_reason"] == "exit at opened"

        again = client.post(SENDGRID_WEBHOOK, content=body, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == {"received": 1, "applied": 0, "duplicates": 1}

        forged_body = body.replace(b'"open"', b'"click"')
        assert forged_body != body
        forged = client.post(SENDGRID_WEBHOOK, content=forged_body, headers=headers)
        assert forged.status_code == 401, forged.text
        assert forged.json()["error"]["code"] == "invalid_signature"

    ada_closed = eventually(lambda: closed(ADA), "Ada's run closed")
    assert ada_closed["status"] == COMPLETED, ada_closed
    # Long past Bo's purchase window, and after everything else: one email, Ada's.
    assert len(sendgrid.accepted()) == 1
    assert emails_to(sendgrid, BO) == []
