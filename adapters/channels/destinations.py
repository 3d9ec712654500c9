"""Keeping URLs a tenant supplies out of the platform's own network.

A webhook endpoint, or the base URL of a tenant's own vendor account, is the tenant's data: it
could name the cloud's metadata service at 169.254.169.254, Redis, or ClickHouse's HTTP port.
``CheckedTransport`` resolves a host when it opens a connection to it, refuses unless every
address is allowed (public, by default), and connects to the address it checked. A DNS answer
that changes between the check and the connection cannot lead it inside, and URL, ``Host``,
TLS server name and certificate check stay the host's own, as does the connection pool's key:
two names on one address never share a connection. Redirects are never followed
(``new_http_client``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpcore
import httpx

log = logging.getLogger(__name__)

Resolve = Callable[[str, int], Awaitable[list[str]]]
"""Every address a host name resolves to (an address literal resolves to itself)."""


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: IPv4 in the last 32 bits
# Missed by 3.11's is_global: IETF protocol assignments, NAT64 local-use (where its IPv4 sits
# depends on the network's prefix length), and the old site-local space.
_NOT_GLOBAL = (
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("fec0::/10"),
)


def is_public(address: str) -> bool:
    """Routable on the internet: not loopback, private, link-local, shared, reserved or
    multicast, nor an IPv6 form of such an IPv4 address (mapped, compatible, 6to4, NAT64)."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 zone is link-local anyway
    if isinstance(ip, ipaddress.IPv6Address):
        compatible = int(ip) >> 32 == 0 and int(ip) > 1  # ::a.b.c.d
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in _NAT64 or compatible):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            return is_public(str(embedded))
    if any(ip in network for network in _NOT_GLOBAL):
        return False
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """Which addresses connections may go to, and the error a refused one raises (the caller's
    to choose: a webhook's endpoint is the recipient's, a vendor's base URL the configuration's).
    """

    refuse: Callable[[str], Exception]
    allow: Callable[[str], bool] = is_public
    resolve: Resolve = resolve_host


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, rule: DestinationRule) -> None:
        self._rule = rule
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._rule.resolve(host, port)
        except UnicodeError:  # the name cannot be encoded (IDNA): no retry will change that
            raise self._rule.refuse(f"{host!r} is not a valid host name") from None
        except OSError as error:  # unknown name, or no resolver: a network failure, retried
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        # All of them: one inside is enough to get in, and which one is dialled is up to us.
        refused = [address for address in addresses if not self._rule.allow(address)]
        if refused:
            # The address goes to our log, not into the error: that reaches the tenant, and
            # would map our internal names for them.
            log.warning("refused a connection to %s: it resolves to %s", host, refused[0])
            raise self._rule.refuse(f"{host} resolves to an address that is not public")
        failure: Exception | None = None
        for address in addresses:  # the next one when an address does not answer
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("no unix sockets for checked destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpx's own defaults, which its transport would have had.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose connections ``rule`` checks first."""

    def __init__(self, rule: DestinationRule, *, http1: bool = True, http2: bool = False) -> None:
        # No proxies from the environment: a proxy would resolve the name itself, unchecked.
        super().__init__(http1=http1, http2=http2, trust_env=False, limits=POOL_LIMITS)
        # httpx (0.28) takes no network backend, so its pool is replaced by an equal one that
        # has ours; tests/integration/channels/test_webhook_sender.py sends through it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=POOL_LIMITS.max_connections,
            max_keepalive_connections=POOL_LIMITS.max_keepalive_connections,
            keepalive_expiry=POOL_LIMITS.keepalive_expiry,
            http1=http1,
            http2=http2,
            network_backend=_CheckedBackend(rule),
        )
