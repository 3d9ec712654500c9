"""Connecting to Temporal: the one client factory for the CLI, the API, workers and benches.

Every client uses :data:`temporal.converter.DATA_CONVERTER`. A process that starts beside its
server (compose, ``up``) may come up first, so :func:`connect` retries for a bounded time and
then fails with the address in the message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from temporal.converter import DATA_CONVERTER

log = logging.getLogger(__name__)

# One attempt: the TCP connect, then the first RPC (a port that answers but does not speak
# Temporal's gRPC would otherwise hold the attempt forever).
ATTEMPT_TIMEOUT_S = 5.0
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 1.0


class TemporalUnavailable(RuntimeError):
    """No Temporal frontend answered at the address within the wait."""


def tls_config(
    *,
    ca_cert: Path | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    server_name: str | None = None,
) -> TLSConfig:
    """TLS for a real cluster: system roots unless ``ca_cert``; mTLS with a client cert and key."""
    if (client_cert is None) != (client_key is None):
        raise ValueError("a client certificate needs its private key, and the other way round")
    return TLSConfig(
        server_root_ca_cert=ca_cert.read_bytes() if ca_cert is not None else None,
        client_cert=client_cert.read_bytes() if client_cert is not None else None,
        client_private_key=client_key.read_bytes() if client_key is not None else None,
        domain=server_name,
    )


async def connect(
    address: str,
    namespace: str,
    *,
    tls: TLSConfig | None = None,
    api_key: str | None = None,
    wait_s: float = 15.0,
) -> Client:
    """A client for ``namespace`` at ``address`` (``host:port``).

    ``tls`` None means plain TCP, unless ``api_key`` is given (Temporal Cloud), which turns on
    TLS with the system's roots. Retries refused or silent connections for ``wait_s`` seconds,
    then raises :class:`TemporalUnavailable`.
    """
    deadline = time.monotonic() + wait_s
    pause = FIRST_PAUSE_S
    while True:
        remaining = deadline - time.monotonic()
        attempt_s = max(min(ATTEMPT_TIMEOUT_S, remaining), 0.1)
        try:
            async with asyncio.timeout(attempt_s):
                return await Client.connect(
                    address,
                    namespace=namespace,
                    api_key=api_key,
                    tls=tls if tls is not None else (None if api_key else False),
                    data_converter=DATA_CONVERTER,
                    connect_timeout=timedelta(seconds=attempt_s),
                )
        # The SDK reports every failed connect as a RuntimeError ("Failed client connect: ...").
        except (RuntimeError, TimeoutError) as error:
            reason = "no answer" if isinstance(error, TimeoutError) else str(error)
            if time.monotonic() + pause >= deadline:
                raise TemporalUnavailable(
                    f"Temporal is not answering at {address} (namespace {namespace}) after "
                    f"{wait_s:g} s: {reason}"
                ) from error
            log.debug("Temporal at %s not answering yet: %s", address, reason)
        await asyncio.sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_S)
