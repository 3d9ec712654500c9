"""Campaign changes reach every bidder: NATS subject ``campaigns.changed``, or in-process.

A message only says "look again"; the catalog reloads from the database, which stays the one
source of truth. Every bidder also polls the catalog revision, so a lost message (or a change
made by another process in embedded mode) costs at most one poll interval.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from adapters import metrics

log = logging.getLogger(__name__)

CAMPAIGN_CHANGES_SUBJECT = "campaigns.changed"

Listener = Callable[[str], Awaitable[None]]


class CampaignChanges(Protocol):
    async def publish(self, campaign_id: str) -> None: ...

    async def subscribe(self, listener: Listener) -> None: ...


class InProcessCampaignChanges:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    async def publish(self, campaign_id: str) -> None:
        for listener in self._listeners:
            await listener(campaign_id)

    async def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)


class NatsCampaignChanges:
    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc

    async def publish(self, campaign_id: str) -> None:
        await self._nc.publish(CAMPAIGN_CHANGES_SUBJECT, campaign_id.encode())
        await self._nc.flush(timeout=2)

    async def subscribe(self, listener: Listener) -> None:
        async def on_message(message: Msg) -> None:
            metrics.nats_messages_processed.labels(CAMPAIGN_CHANGES_SUBJECT).inc()
            try:
                await listener(message.data.decode())
            except Exception:  # one bad refresh must not end the subscription
                log.exception("campaign change %r not applied", message.data)

        await self._nc.subscribe(CAMPAIGN_CHANGES_SUBJECT, cb=on_message)
