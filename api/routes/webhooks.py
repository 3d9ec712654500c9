"""``POST /v1/webhooks/{sendgrid,twilio,stripe}``: the vendors report on our messages and
payments.

No API key: the vendor's signature is the credential, checked over the raw body before
anything is read (``adapters.channels.inbound``). A forged or stale request is 401 and
changes nothing; an authentic body that is not what the vendor documents is 400; a
redelivered event is answered 200 like the first delivery and applied once
(``api.webhooks``). 503 means we could not take it now (no verification key set, the queue
down): the vendors retry.

Behind a proxy, ``CE_PUBLIC_BASE_URL`` gives the scheme and host Twilio signed the URL with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, SecretStr

from adapters.bus.events import EventQueueUnavailable
from adapters.channels.inbound import (
    MalformedWebhook,
    VendorEvent,
    WebhookRejected,
    sendgrid_events,
    signed_url,
    stripe_event,
    twilio_event,
)
from adapters.channels.ports import Vendor
from api.webhooks import WebhookNotConfigured, WebhookServices

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Twilio reads the answer to an inbound message as TwiML: an empty one sends no reply.
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def get_webhook_services(request: Request) -> WebhookServices:
    services: WebhookServices = request.app.state.webhooks
    return services


ServicesDep = Annotated[WebhookServices, Depends(get_webhook_services)]


class WebhookApplied(BaseModel):
    received: int
    applied: int
    duplicates: int


_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "signed, but not the payload the vendor documents"},
    401: {"description": "the signature is missing, wrong or too old"},
    413: {"description": "the body is larger than a vendor sends"},
    503: {"description": "not configured, or the event queue is down: the vendor retries"},
}


@router.post("/sendgrid", summary="SendGrid Event Webhook", responses=_RESPONSES)
async def sendgrid(request: Request, services: ServicesDep) -> WebhookApplied:
    body = await _body(request, services)

    def verify(key: str | SecretStr) -> list[VendorEvent]:
        return sendgrid_events(body, request.headers, _plain(key), now=services.clock.now())

    with _refusals():
        events, account = await services.verified(
            Vendor.SENDGRID, services.sendgrid_public_key, verify, "webhook_public_key"
        )
        applied = await services.apply(events, account)
    return WebhookApplied(**vars(applied))


@router.post(
    "/twilio",
    summary="Twilio status callbacks and inbound messages",
    responses={200: {"content": {"application/xml": {}}}, **_RESPONSES},
    response_class=Response,
)
async def twilio(request: Request, services: ServicesDep) -> Response:
    body = await _body(request, services)
    url = signed_url(str(request.url), services.public_base_url)

    def verify(token: str | SecretStr) -> list[VendorEvent]:
        return [twilio_event(url, body, request.headers, token, now=services.clock.now())]

    with _refusals():
        events, account = await services.verified(
            Vendor.TWILIO, services.twilio_auth_token, verify, "auth_token"
        )
        await services.apply(events, account)
    return Response(EMPTY_TWIML, media_type="application/xml")


@router.post("/stripe", summary="Stripe events", responses=_RESPONSES)
async def stripe(request: Request, services: ServicesDep) -> WebhookApplied:
    body = await _body(request, services)

    def verify(secret: str | SecretStr) -> list[VendorEvent]:
        return [stripe_event(body, request.headers, secret, now=services.clock.now())]

    with _refusals():
        # The platform's Stripe account alone: tenants bring no Stripe account of their own.
        events, account = await services.verified(Vendor.STRIPE, services.stripe_secret, verify)
        applied = await services.apply(events, account)
    return WebhookApplied(**vars(applied))


@contextmanager
def _refusals() -> Iterator[None]:
    """The vendor's answer for each way a request can be refused."""
    try:
        yield
    except WebhookNotConfigured as error:
        raise _refusal(503, "webhook_not_configured", str(error)) from None
    except MalformedWebhook as error:
        raise _refusal(400, "malformed_webhook", str(error)) from None
    except WebhookRejected as error:
        raise _refusal(401, "invalid_signature", str(error)) from None
    except EventQueueUnavailable:
        raise _refusal(503, "queue_unavailable", "the event could not be queued") from None


async def _body(request: Request, services: WebhookServices) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > services.max_body_bytes:
        raise _too_large(services)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > services.max_body_bytes:
            raise _too_large(services)
    return bytes(body)


def _too_large(services: WebhookServices) -> HTTPException:
    return _refusal(413, "payload_too_large", f"at most {services.max_body_bytes} bytes")


def _refusal(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail={"code": code, "message": message})


def _plain(key: str | SecretStr) -> str:
    return key.get_secret_value() if isinstance(key, SecretStr) else key
