"""Email through SendGrid's v3 Mail Send API, and its Email Activity API to settle lost answers.

    POST {base}/v3/mail/send   Authorization: Bearer <api key>
    {"personalizations": [{"to": [{"email": ...}]}], "from": {"email": ..., "name": ...},
     "subject": ..., "content": [{"type": "text/plain", ...}, {"type": "text/html", ...}],
     "custom_args": {"ce_send_key": ..., "ce_tenant_id": ..., ...}}
    -> 202 Accepted, X-Message-Id: <id>

    GET {base}/v3/messages?limit=10&query=unique_args['ce_send_key']="<idempotency key>"
    -> 200 {"messages": [{"msg_id": "<X-Message-Id>.filter...", "status": "processed", ...}]}

SendGrid copies ``custom_args`` into every Event Webhook event of the message, which is how an
open or a bounce finds its way back to the journey that sent it. Every message carries our
idempotency key among them, so when a send's answer was lost (a timeout, a worker killed
mid-call) the Email Activity API can say whether SendGrid took it.

Caveats of that lookup, from SendGrid's documentation: the Email Activity API is a paid add-on
("additional email activity history") and the API key needs Email Activity access; an account
without them answers 401/403, and the message is then sent again (at least once). The feed is
filled from SendGrid's processing, not at the 202: SendGrid documents no delay, so we trust a
"not found" only ``ACTIVITY_LAG_S`` after the last attempt; a message SendGrid holds in its own
queues longer than that (an incident on its side) is not seen and may go twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

import httpx

from adapters.channels.config import SendGridConfig
from adapters.channels.destinations import DestinationRule
from adapters.channels.http import RetryPolicy, Sleep, VendorClient, excerpt
from adapters.channels.ports import (
    ECHO_PREFIX,
    SEND_KEY,
    ChannelMisconfigured,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendReceipt,
    TransientSendError,
    Vendor,
)

MAIL_SEND_PATH = "/v3/mail/send"
ACTIVITY_PATH = "/v3/messages"
# How long after SendGrid accepts a message we wait before trusting that the Email Activity
# feed does not show it. Undocumented by SendGrid; its "processed" events usually show within
# seconds, and a lost answer costs the message this much delay at most.
ACTIVITY_LAG_S = 30.0
SEND_KEY_ARG = f"{ECHO_PREFIX}{SEND_KEY}"


def mail_body(message: OutboundMessage, sender: str) -> dict[str, Any]:
    name, address = parseaddr(sender)
    from_: dict[str, str] = {"email": address}
    if name:
        from_["name"] = name
    # SendGrid wants text/plain before text/html.
    content = [{"type": "text/plain", "value": message.body}]
    if message.html:
        content.append({"type": "text/html", "value": message.html})
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": message.to}]}],
        "from": from_,
        "subject": message.subject,
        "content": content,
    }
    # The key always rides along: it is what the Email Activity lookup searches for.
    body["custom_args"] = message.echo() | {SEND_KEY_ARG: message.idempotency_key}
    return body


def activity_query(idempotency_key: str) -> str | None:
    """The Email Activity query for the message carrying our key (SendGrid's query language:
    ``unique_args['name']="value"``, custom args being unique args to the feed); None for a key
    the language cannot quote (ours are built from ids and never hold quotes)."""
    if '"' in idempotency_key or "\\" in idempotency_key:
        return None
    return f"unique_args['{SEND_KEY_ARG}']=\"{idempotency_key}\""


def activity_refusal(response: httpx.Response) -> PermanentSendError:
    status = response.status_code
    if status in (401, 403, 404):
        return ChannelMisconfigured(
            "sendgrid",
            "Email Activity API refused (needs the add-on and a key with email activity access)",
            status=status,
            detail=excerpt(response),
        )
    return PermanentSendError(
        "sendgrid", "Email Activity query refused", status=status, detail=excerpt(response)
    )


def found_in_activity(response: httpx.Response) -> SendReceipt | None:
    """The first message the Email Activity answer lists, as a receipt of its acceptance."""
    try:
        messages = response.json().get("messages") or []
    except (ValueError, AttributeError):
        # Not an answer to trust either way: ask again later rather than send blind.
        raise TransientSendError(
            "sendgrid", "Email Activity answer unreadable", detail=excerpt(response)
        ) from None
    for found in messages:
        if not isinstance(found, dict) or not isinstance(found.get("msg_id"), str):
            continue
        return SendReceipt(
            vendor=Vendor.SENDGRID,
            # The feed's msg_id is the X-Message-Id with SendGrid's filter suffix, as in events.
            vendor_message_id=found["msg_id"].split(".", 1)[0],
            accepted_at=_event_time(found.get("last_event_time")),
        )
    return None


def _event_time(value: object) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


def refusal(response: httpx.Response) -> PermanentSendError:
    detail = excerpt(response)
    field = _first_error_field(response)
    status = response.status_code
    if status in (401, 403):
        return ChannelMisconfigured("sendgrid", "API key or sender refused", status=status)
    if status == 400 and field is not None and _is_recipient_field(field):
        return RecipientRejected("sendgrid", "recipient refused", status=status, detail=detail)
    return PermanentSendError("sendgrid", "message refused", status=status, detail=detail)


def _is_recipient_field(field: str) -> bool:
    # "personalizations.0.to.0.email": the address itself, not something we built wrong.
    return field.startswith("personalizations") and ".to" in field


def _first_error_field(response: httpx.Response) -> str | None:
    try:
        errors = response.json().get("errors") or []
        field = errors[0].get("field") if errors else None
    except (ValueError, AttributeError):
        return None
    return field if isinstance(field, str) else None


class SendGridSender:
    lookup_lag_s: float | None = ACTIVITY_LAG_S

    def __init__(
        self,
        config: SendGridConfig,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        destinations: DestinationRule | None = None,
    ) -> None:
        if config.api_key is None or not config.from_:
            raise ValueError(f"SendGrid is not configured: {', '.join(config.missing())}")
        base = config.base_url.rstrip("/")
        self._url = f"{base}{MAIL_SEND_PATH}"
        self._activity_url = f"{base}{ACTIVITY_PATH}"
        self._authorization = f"Bearer {config.api_key.get_secret_value()}"
        self._from = config.from_
        self._client = VendorClient(Vendor.SENDGRID, policy, sleep=sleep, destinations=destinations)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if not message.subject.strip():
            raise PermanentSendError("sendgrid", "an email needs a subject")
        body = mail_body(message, self._from)

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post(
                self._url, json=body, headers={"Authorization": self._authorization}
            )

        response = await self._client.exchange(attempt, refusal, resend_when_unsure=False)
        return SendReceipt(
            vendor=Vendor.SENDGRID,
            vendor_message_id=response.headers.get("X-Message-Id"),
            accepted_at=datetime.now(UTC),
        )

    async def find_accepted(self, message: OutboundMessage, since: datetime) -> SendReceipt | None:
        query = activity_query(message.idempotency_key)
        if query is None:
            raise PermanentSendError("sendgrid", "this idempotency key cannot be searched for")
        # The key names one message; ``since`` narrows nothing further.
        params = {"query": query, "limit": "10"}

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            return await http.get(
                self._activity_url, params=params, headers={"Authorization": self._authorization}
            )

        response = await self._client.exchange(attempt, activity_refusal)
        return found_in_activity(response)

    async def aclose(self) -> None:
        await self._client.aclose()
