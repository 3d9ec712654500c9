"""The HTTP exchange every sender shares: one client and one guard per vendor account.

An attempt is retried when the vendor answers 408, 429 or 5xx, or the connection fails or
times out: after the Retry-After the vendor sent (seconds or an HTTP date, capped), else after
an exponential backoff with jitter, within a bounded number of attempts and a total time. Any
other 4xx is the vendor refusing this message: no retry, and no count against the vendor's
breaker (it answered).

A retry after a lost answer may send a message twice: the request may have taken effect.
Senders for vendors that can be asked afterwards (``resend_when_unsure=False``) stop at such an
attempt with ``SendOutcomeUnknown`` instead: a read timeout or a dropped connection once the
request was written, or a 500, 502 or 504. Only what provably did nothing is retried in
process: a connection never made, a 408, a 429 or a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters import metrics
from adapters.channels.destinations import CheckedTransport, DestinationRule
from adapters.channels.ports import (
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
    Vendor,
    VendorUnavailable,
)
from adapters.resilience import CircuitOpen, Guard, TryAgainLater
from domain.errors import DependencyUnavailable

USER_AGENT = "campaign-express"
# Each attempt has its own deadline, the guard's a moment later: a timeout the attempt sees is
# then known to be the request running late (and maybe taking effect), never the guard's.
GUARD_GRACE_S = 1.0
# Failures before the request left: sending again cannot make a second message.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers saying the request was not acted on: the server gave up reading it (408), or turned
# it away before doing anything (429, 503).
_NOT_ACTED_ON = frozenset({408, 429, 503})

Sleep = Callable[[float], Awaitable[None]]
Attempt = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
Refuse = Callable[[httpx.Response], PermanentSendError]


class RetryPolicy(BaseModel):
    """How hard a sender tries before it hands the failure back. A Temporal activity that
    sends should allow ``attempts * timeout_s`` plus the waits, bounded by ``total_s``."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(default=10.0, gt=0, description="one attempt, end to end")
    connect_timeout_s: float = Field(default=3.0, gt=0)
    attempts: int = Field(default=4, ge=1)
    total_s: float = Field(default=30.0, gt=0, description="no attempt starts after this")
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    retry_after_max_s: float = Field(
        default=20.0, ge=0, description="longest Retry-After honoured in process"
    )
    failures_to_open: int = Field(default=5, ge=1)
    reset_after_s: float = Field(default=30.0, gt=0)


class VendorBusy(TryAgainLater):
    """The vendor answered with a status worth retrying."""

    def __init__(
        self, status: int, *, code: str | None, detail: str, retry_after_s: float | None
    ) -> None:
        super().__init__(f"HTTP {status}", retry_after_s)
        self.status = status
        self.code = code
        self.detail = detail


class _OutcomeLost(Exception):
    """An attempt whose request may have taken effect: neither retried by the guard (it is no
    failure the guard knows) nor excused to the breaker (the vendor did fail to answer)."""

    def __init__(self, reason: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.detail = detail


def is_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from ``now``: either delay-seconds or an HTTP date (RFC 9110
    10.2.3). Unreadable values are ignored rather than trusted."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


def excerpt(response: httpx.Response) -> str:
    return response.text[:500]


def new_http_client(
    policy: RetryPolicy, *, http2: bool = False, destinations: DestinationRule | None = None
) -> httpx.AsyncClient:
    """``destinations``: for URLs a tenant supplied (``adapters.channels.destinations``)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(policy.timeout_s, connect=policy.connect_timeout_s),
        # APNs speaks HTTP/2 only: prior knowledge on http://, ALPN on https://.
        http1=not http2,
        http2=http2,
        transport=(
            None
            if destinations is None
            else CheckedTransport(destinations, http1=not http2, http2=http2)
        ),
        # Proxies from the environment would resolve checked names themselves.
        trust_env=destinations is None,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,  # a redirect could lead a checked destination anywhere
    )


class VendorClient:
    """An httpx client (timeouts always set) behind a ``Guard`` for one vendor account.

    ``http``: a client shared with other guards (the caller closes it), else one of its own."""

    def __init__(
        self,
        vendor: Vendor,
        policy: RetryPolicy,
        *,
        dependency: str | None = None,
        http: httpx.AsyncClient | None = None,
        http2: bool = False,
        destinations: DestinationRule | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.vendor = vendor
        self._owns_http = http is None
        self.http = (
            http
            if http is not None
            else new_http_client(policy, http2=http2, destinations=destinations)
        )
        self._attempt_timeout_s = policy.timeout_s
        self.guard = Guard(
            dependency or vendor.value,
            timeout_s=policy.timeout_s + GUARD_GRACE_S,
            failures_to_open=policy.failures_to_open,
            reset_after_s=policy.reset_after_s,
            attempts=policy.attempts,
            failures=(httpx.TransportError,),
            refusals=(PermanentSendError,),
            backoff_initial_s=policy.backoff_initial_s,
            backoff_max_s=policy.backoff_max_s,
            retry_after_max_s=policy.retry_after_max_s,
            total_s=policy.total_s,
            sleep=sleep,
        )

    async def exchange(
        self, attempt: Attempt, refuse: Refuse, *, resend_when_unsure: bool = True
    ) -> httpx.Response:
        """Run ``attempt`` until the vendor accepts (a 2xx, returned), refuses (``refuse``
        names the error) or the retries are spent (``TransientSendError``). ``attempt`` may
        itself raise ``PermanentSendError`` or ``VendorBusy`` (a token endpoint's answer).

        ``resend_when_unsure`` False: an attempt that may have taken effect ends the exchange
        with ``SendOutcomeUnknown`` rather than being repeated (see the module's docstring)."""

        async def once() -> httpx.Response:
            try:
                async with asyncio.timeout(self._attempt_timeout_s):
                    response = await attempt(self.http)
            except _NEVER_SENT:
                raise
            except (httpx.TransportError, TimeoutError) as error:
                if resend_when_unsure:
                    raise
                if isinstance(error, TimeoutError | httpx.TimeoutException):
                    raise _OutcomeLost("timed out once the request was sent") from error
                raise _OutcomeLost(f"no answer ({type(error).__name__})") from error
            if response.is_success:
                return response
            status = response.status_code
            if is_retryable(status) and not resend_when_unsure and status not in _NOT_ACTED_ON:
                raise _OutcomeLost("server error", status=status, detail=excerpt(response))
            if is_retryable(status):
                raise VendorBusy(
                    response.status_code,
                    code=None,
                    detail=excerpt(response),
                    retry_after_s=retry_after_seconds(
                        response.headers.get("Retry-After"), datetime.now(UTC)
                    ),
                )
            raise refuse(response)

        try:
            return await self.guard.call(once)
        except _OutcomeLost as lost:
            metrics.dependency_errors.labels(self.guard.dependency).inc()
            raise SendOutcomeUnknown(
                self.vendor.value, lost.reason, status=lost.status, detail=lost.detail
            ) from lost
        except CircuitOpen as error:
            raise VendorUnavailable(self.vendor.value, "circuit open") from error
        except DependencyUnavailable as error:
            raise _transient(self.vendor, error) from error

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()


def _transient(vendor: Vendor, error: DependencyUnavailable) -> TransientSendError:
    cause = error.__cause__
    if isinstance(cause, VendorBusy):
        return TransientSendError(
            vendor.value,
            "retries spent",
            status=cause.status,
            code=cause.code,
            detail=cause.detail,
            retry_after_s=cause.retry_after_s,
        )
    if isinstance(cause, TimeoutError | httpx.TimeoutException):
        return TransientSendError(vendor.value, "timed out, retries spent")
    return TransientSendError(vendor.value, f"{error.reason}, retries spent")
