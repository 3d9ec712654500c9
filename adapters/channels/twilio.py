"""SMS through Twilio's Messages API, and its Messages list to settle lost answers.

    POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json   (basic auth sid:token, a form)
    To=+33612345678 & From=+15005550006 (or MessagingServiceSid=MG...) & Body=...
      & StatusCallback={public base}/v1/webhooks/twilio?ce_tenant_id=...&ce_send_key=...
    -> 201 Created, {"sid": "SM...", "status": "queued", ...}

    GET {base}/2010-04-01/Accounts/{AccountSid}/Messages.json?To=...&From=...&PageSize=50
    -> 200 {"messages": [{"sid", "to", "from", "body", "direction", "date_created", ...}],
            "next_page_uri": ...}

Twilio posts each status change to the StatusCallback URL, query included, so our ids come
back with every delivery report (and are covered by its signature).

When a send's answer was lost, the Messages list says whether Twilio took it. A Message
resource carries neither our StatusCallback nor any other id of ours, so the match is on what
it does carry: an outbound message to the same number, from the same sender, with the same
body, created since the send began (less ``CLOCK_SKEW``). Caveats: two identical texts to one
number within that window look like one (the second would be taken as sent); Twilio's
``DateSent`` filter is not used because a message still queued at Twilio has no date_sent yet,
so the list is read newest first, at most ``LIST_PAGES`` pages; a body Twilio rewrites (Smart
Encoding, a trial account's prefix) does not match, and that message may go twice.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from adapters.channels.config import TwilioConfig
from adapters.channels.destinations import DestinationRule
from adapters.channels.http import RetryPolicy, Sleep, VendorClient, excerpt
from adapters.channels.ports import (
    ChannelMisconfigured,
    OutboundMessage,
    PermanentSendError,
    RecipientRejected,
    SendReceipt,
    TransientSendError,
    Vendor,
)

# The Message resource exists once the POST is answered; a list read a moment later shows it.
LIST_LAG_S = 5.0
LIST_PAGE_SIZE = 50
LIST_PAGES = 3
# Twilio's clock and ours may disagree this much.
CLOCK_SKEW = timedelta(minutes=2)

_MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().-]")

# Twilio error codes that are about the recipient (https://www.twilio.com/docs/api/errors).
_RECIPIENT_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21610,  # the recipient replied STOP: Twilio will not send until START
        21612,  # no route to the 'To' number
        21614,  # 'To' is not a mobile number
    }
)
_ACCOUNT_CODES = frozenset(
    {
        20003,  # authentication failed
        21408,  # the account may not send to that region
        21606,  # 'From' is not a number of the account able to send SMS
        21608,  # trial account, unverified recipient
        21703,  # messaging service has no sender
    }
)


def e164(phone: str) -> str | None:
    """The number without the spaces, dots, dashes and brackets people write; None when it is
    not an international number (a local one cannot be routed without its country)."""
    candidate = _PHONE_PUNCTUATION.sub("", phone)
    return candidate if _E164.match(candidate) else None


def status_callback(base: str, message: OutboundMessage) -> str:
    fields = message.echo()
    if not fields:
        return base
    return f"{base}{'&' if '?' in base else '?'}{urlencode(fields)}"


def message_form(message: OutboundMessage, to: str, config: TwilioConfig) -> dict[str, str]:
    form = {"To": to, "Body": message.body}
    sender = config.from_ or ""
    form["MessagingServiceSid" if _MESSAGING_SERVICE.match(sender) else "From"] = sender
    if config.status_callback_url:
        form["StatusCallback"] = status_callback(config.status_callback_url, message)
    return form


def refusal(response: httpx.Response) -> PermanentSendError:
    status = response.status_code
    detail = excerpt(response)
    try:
        found = response.json().get("code")
    except (ValueError, AttributeError):
        found = None
    code = found if isinstance(found, int) else None
    label = str(code) if code is not None else None
    if code in _RECIPIENT_CODES:
        return RecipientRejected(
            "twilio", "recipient refused", status=status, code=label, detail=detail
        )
    if status in (401, 403) or code in _ACCOUNT_CODES:
        return ChannelMisconfigured(
            "twilio", "account or sender refused", status=status, code=label, detail=detail
        )
    return PermanentSendError("twilio", "message refused", status=status, code=label, detail=detail)


def list_refusal(response: httpx.Response) -> PermanentSendError:
    if response.status_code in (401, 403):
        return ChannelMisconfigured(
            "twilio", "Messages list refused", status=response.status_code, detail=excerpt(response)
        )
    return PermanentSendError(
        "twilio", "Messages list query refused", status=response.status_code,
        detail=excerpt(response),
    )  # fmt: skip


def _created(resource: dict[str, Any]) -> datetime | None:
    value = resource.get("date_created")
    if not isinstance(value, str):
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def same_message(
    resource: dict[str, Any], message: OutboundMessage, to: str, form: dict[str, str]
) -> bool:
    """Whether a listed Message resource is ``message`` as we would have posted it."""
    if not str(resource.get("direction", "")).startswith("outbound"):
        return False
    if resource.get("to") != to or resource.get("body") != message.body:
        return False
    if "MessagingServiceSid" in form:
        return resource.get("messaging_service_sid") == form["MessagingServiceSid"]
    return resource.get("from") == form.get("From")


class TwilioSender:
    lookup_lag_s: float | None = LIST_LAG_S

    def __init__(
        self,
        config: TwilioConfig,
        policy: RetryPolicy,
        *,
        sleep: Sleep = asyncio.sleep,
        destinations: DestinationRule | None = None,
    ) -> None:
        if config.account_sid is None or config.auth_token is None or not config.from_:
            raise ValueError(f"Twilio is not configured: {', '.join(config.missing())}")
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._url = f"{self._base}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(config.account_sid, config.auth_token.get_secret_value())
        self._client = VendorClient(Vendor.TWILIO, policy, sleep=sleep, destinations=destinations)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        to = e164(message.to)
        if to is None:
            raise RecipientRejected("twilio", "not an international (E.164) phone number")
        form = message_form(message, to, self._config)

        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post(self._url, data=form, auth=self._auth)

        response = await self._client.exchange(attempt, refusal, resend_when_unsure=False)
        try:
            sid = response.json().get("sid")
        except (ValueError, AttributeError):
            sid = None
        return SendReceipt(
            vendor=Vendor.TWILIO,
            vendor_message_id=sid if isinstance(sid, str) else None,
            accepted_at=datetime.now(UTC),
        )

    async def find_accepted(self, message: OutboundMessage, since: datetime) -> SendReceipt | None:
        to = e164(message.to)
        if to is None:
            return None  # never sent: refused before any request
        form = message_form(message, to, self._config)
        params = {"To": to, "PageSize": str(LIST_PAGE_SIZE)}
        if "From" in form:
            params["From"] = form["From"]
        earliest = since - CLOCK_SKEW
        url: str = self._url
        query: dict[str, str] | None = params
        for _ in range(LIST_PAGES):
            page = await self._list_page(url, query)
            resources = [item for item in page.get("messages") or [] if isinstance(item, dict)]
            for resource in resources:
                created = _created(resource)
                if created is None or created < earliest:
                    continue
                if same_message(resource, message, to, form) and isinstance(
                    resource.get("sid"), str
                ):
                    return SendReceipt(
                        vendor=Vendor.TWILIO,
                        vendor_message_id=resource["sid"],
                        accepted_at=created,
                    )
            following = page.get("next_page_uri")
            older = [_created(item) for item in resources]
            if not isinstance(following, str) or all(
                moment is not None and moment < earliest for moment in older
            ):
                return None
            # Twilio's URIs are relative to the API's host; they carry the filters themselves.
            url, query = f"{self._base}{following}", None
        return None

    async def _list_page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        async def attempt(http: httpx.AsyncClient) -> httpx.Response:
            return await http.get(url, params=params, auth=self._auth)

        response = await self._client.exchange(attempt, list_refusal)
        try:
            page = response.json()
        except ValueError:
            page = None
        if not isinstance(page, dict):
            raise TransientSendError("twilio", "Messages list unreadable", detail=excerpt(response))
        return page

    async def aclose(self) -> None:
        await self._client.aclose()
