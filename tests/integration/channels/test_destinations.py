"""The transport that keeps tenant-supplied URLs out of the platform's network, on its own."""

from __future__ import annotations

import httpx
import pytest

from adapters.channels import RetryPolicy
from adapters.channels.destinations import POOL_LIMITS, DestinationRule
from adapters.channels.http import new_http_client
from tests.integration.channels.conftest import fixed_resolver
from tests.support.vendors import WebhookReceiver


class Refused(Exception):
    pass


def client(answers: dict[str, list[str]], allowed: set[str]) -> httpx.AsyncClient:
    rule = DestinationRule(
        refuse=Refused, allow=allowed.__contains__, resolve=fixed_resolver(answers)
    )
    return new_http_client(RetryPolicy(), destinations=rule)


def port_of(receiver: WebhookReceiver) -> int:
    return httpx.URL(receiver.url).port or 80


async def test_connection_goes_to_the_address_checked_under_the_urls_name(
    receiver: WebhookReceiver,
) -> None:
    # hooks.example resolves nowhere but in the rule's resolver: reaching the receiver at all
    # means the connection went to the address that was checked, not to a second lookup.
    port = port_of(receiver)
    async with client({"hooks.example": ["127.0.0.1"]}, {"127.0.0.1"}) as http:
        await http.post(f"http://hooks.example:{port}/hooks/ce", content=b"{}")

    [request] = receiver.requests()
    assert request.headers["host"] == f"hooks.example:{port}"


async def test_next_checked_address_is_dialled_when_one_does_not_answer(
    receiver: WebhookReceiver,
) -> None:
    port = port_of(receiver)
    answers = {"hooks.example": ["127.0.0.2", "127.0.0.1"]}  # the receiver listens on .1 only
    async with client(answers, {"127.0.0.1", "127.0.0.2"}) as http:
        await http.post(f"http://hooks.example:{port}/hooks/ce", content=b"{}")

    assert len(receiver.requests()) == 1


async def test_one_refused_address_refuses_the_name_and_the_pool_serves_on(
    receiver: WebhookReceiver,
) -> None:
    port = port_of(receiver)
    answers = {"inside.example": ["127.0.0.1", "10.0.0.7"], "hooks.example": ["127.0.0.1"]}
    async with client(answers, {"127.0.0.1"}) as http:
        # More than the pool has connections: a refusal must not keep its slot.
        for _ in range((POOL_LIMITS.max_connections or 0) + 10):
            with pytest.raises(Refused, match="not public"):
                await http.post(f"http://inside.example:{port}/hooks/ce", content=b"{}")
        await http.post(f"http://hooks.example:{port}/hooks/ce", content=b"{}")

    [request] = receiver.requests()
    assert request.headers["host"] == f"hooks.example:{port}"
