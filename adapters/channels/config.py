"""Vendor accounts: the platform's from settings, a tenant's laid over them.

A tenant's ``tenant_channel_settings.vendors`` JSON uses the settings' names without the
``CE_<VENDOR>_`` prefix, one object per vendor, plus the default push service:

    {"sendgrid": {"api_key": "SG...", "from": "Shop <shop@example.com>"},
     "twilio": {"account_sid": "AC...", "auth_token": "...", "from": "+15005550006"},
     "fcm": {"project_id": "shop-app", "service_account_info": "{...key file JSON...}"},
     "apns": {"team_id": "...", "key_id": "...", "key": "-----BEGIN PRIVATE KEY-----...",
              "topic": "com.example.shop"},
     "webhook": {"signing_secret": "..."},
     "push_provider": "apns"}

Two rules keep one tenant from reaching the platform's secrets or the server's files: a tenant
that points a vendor at another address (a base or token URL) brings all of that vendor's
credentials, and a tenant gives keys inline, never as a path to a file on our machines.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from adapters.settings import Settings


class _VendorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # What a send needs (setting names for the error), what routes it, what a tenant may not set.
    required: ClassVar[dict[str, str]] = {}
    credentials: ClassVar[tuple[str, ...]] = ()
    routing: ClassVar[tuple[str, ...]] = ()
    platform_only: ClassVar[tuple[str, ...]] = ()

    def missing(self) -> list[str]:
        """Settings still needed before this vendor can send, by name."""
        return [
            setting
            for field, setting in self.required.items()
            if getattr(self, field) in (None, "")
        ]


class SendGridConfig(_VendorConfig):
    api_key: SecretStr | None = None
    base_url: str = "https://api.sendgrid.com"
    from_: str | None = Field(default=None, alias="from")
    webhook_public_key: str | None = None

    required: ClassVar[dict[str, str]] = {
        "api_key": "CE_SENDGRID_API_KEY",
        "from_": "CE_SENDGRID_FROM",
    }
    credentials: ClassVar[tuple[str, ...]] = ("api_key",)
    routing: ClassVar[tuple[str, ...]] = ("base_url",)


class TwilioConfig(_VendorConfig):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    base_url: str = "https://api.twilio.com"
    from_: str | None = Field(default=None, alias="from")
    # Where Twilio reports delivery (our /v1/webhooks/twilio); the platform's for every tenant.
    status_callback_url: str | None = None

    required: ClassVar[dict[str, str]] = {
        "account_sid": "CE_TWILIO_ACCOUNT_SID",
        "auth_token": "CE_TWILIO_AUTH_TOKEN",
        "from_": "CE_TWILIO_FROM",
    }
    credentials: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token")
    routing: ClassVar[tuple[str, ...]] = ("base_url",)
    platform_only: ClassVar[tuple[str, ...]] = ("status_callback_url",)


class FcmConfig(_VendorConfig):
    project_id: str | None = None
    service_account_file: Path | None = None
    service_account_info: SecretStr | None = Field(
        default=None, description="the key file's JSON itself (how a tenant gives it)"
    )
    base_url: str = "https://fcm.googleapis.com"
    token_url: str | None = None

    required: ClassVar[dict[str, str]] = {"project_id": "CE_FCM_PROJECT_ID"}
    credentials: ClassVar[tuple[str, ...]] = ("service_account_info",)
    routing: ClassVar[tuple[str, ...]] = ("base_url", "token_url")
    platform_only: ClassVar[tuple[str, ...]] = ("service_account_file",)

    def missing(self) -> list[str]:
        needed = super().missing()
        if self.service_account_file is None and self.service_account_info is None:
            needed.append("CE_FCM_SERVICE_ACCOUNT_FILE")
        return needed


class ApnsConfig(_VendorConfig):
    team_id: str | None = None
    key_id: str | None = None
    key_file: Path | None = None
    key: SecretStr | None = Field(default=None, description="the .p8 key's PEM text")
    topic: str | None = None
    base_url: str = "https://api.push.apple.com"

    required: ClassVar[dict[str, str]] = {
        "team_id": "CE_APNS_TEAM_ID",
        "key_id": "CE_APNS_KEY_ID",
        "topic": "CE_APNS_TOPIC",
    }
    credentials: ClassVar[tuple[str, ...]] = ("team_id", "key_id", "key")
    routing: ClassVar[tuple[str, ...]] = ("base_url",)
    platform_only: ClassVar[tuple[str, ...]] = ("key_file",)

    def missing(self) -> list[str]:
        needed = super().missing()
        if self.key_file is None and self.key is None:
            needed.append("CE_APNS_KEY_FILE")
        return needed


class WebhookConfig(_VendorConfig):
    signing_secret: SecretStr | None = None

    required: ClassVar[dict[str, str]] = {"signing_secret": "CE_WEBHOOK_SIGNING_SECRET"}


PushProvider = Literal["fcm", "apns"]


class VendorConfigs(BaseModel):
    """Every vendor's account for one tenant (or the platform's, with no overrides)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sendgrid: SendGridConfig = Field(default_factory=SendGridConfig)
    twilio: TwilioConfig = Field(default_factory=TwilioConfig)
    fcm: FcmConfig = Field(default_factory=FcmConfig)
    apns: ApnsConfig = Field(default_factory=ApnsConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    push_provider: PushProvider | None = Field(
        default=None, description="for bare push tokens; FCM when it is configured, else APNs"
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> VendorConfigs:
        return cls(
            sendgrid=SendGridConfig(
                api_key=settings.sendgrid_api_key,
                base_url=settings.sendgrid_base_url,
                from_=settings.sendgrid_from,
                webhook_public_key=settings.sendgrid_webhook_public_key,
            ),
            twilio=TwilioConfig(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token,
                base_url=settings.twilio_base_url,
                from_=settings.twilio_from,
                status_callback_url=f"{settings.notice_base_url}/v1/webhooks/twilio",
            ),
            fcm=FcmConfig(
                project_id=settings.fcm_project_id,
                service_account_file=settings.fcm_service_account_file,
                base_url=settings.fcm_base_url,
                token_url=settings.fcm_token_url,
            ),
            apns=ApnsConfig(
                team_id=settings.apns_team_id,
                key_id=settings.apns_key_id,
                key_file=settings.apns_key_file,
                topic=settings.apns_topic,
                base_url=settings.apns_base_url,
            ),
            webhook=WebhookConfig(signing_secret=settings.webhook_signing_secret),
        )

    def default_push(self) -> PushProvider:
        if self.push_provider is not None:
            return self.push_provider
        return "apns" if self.fcm.missing() and not self.apns.missing() else "fcm"

    def overlay(self, overrides: Mapping[str, Any] | None) -> VendorConfigs:
        """These accounts with a tenant's overrides laid over them.

        Raises ``InvalidVendorOverrides`` (a ``ValueError``) naming the offending fields, never
        their values: they are secrets."""
        if not overrides:
            return self
        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            raise InvalidVendorOverrides(f"unknown vendors: {', '.join(unknown)}")
        update: dict[str, Any] = {}
        for name, given in overrides.items():
            if name == "push_provider":
                if given not in (None, "fcm", "apns"):
                    raise InvalidVendorOverrides("push_provider: 'fcm' or 'apns'")
                update[name] = given
                continue
            if not isinstance(given, Mapping):
                raise InvalidVendorOverrides(f"{name}: an object of settings")
            update[name] = _overlay_one(name, getattr(self, name), given)
        return self.model_copy(update=update)


class InvalidVendorOverrides(ValueError):
    """A tenant's vendor settings cannot be used as given."""


def _overlay_one(name: str, base: _VendorConfig, given: Mapping[str, Any]) -> _VendorConfig:
    config_type = type(base)
    aliases = {field.alias or key: key for key, field in config_type.model_fields.items()}
    fields = {aliases.get(key, key): value for key, value in given.items()}
    forbidden = sorted(set(fields) & set(config_type.platform_only))
    if forbidden:
        raise InvalidVendorOverrides(f"{name}: {', '.join(forbidden)} is the platform's to set")
    lacking = [key for key in config_type.credentials if not fields.get(key)]
    if set(fields) & set(config_type.routing) and lacking:
        # Otherwise the platform's own key would be sent to an address the tenant chose.
        raise InvalidVendorOverrides(
            f"{name}: a tenant pointing it elsewhere brings its own {', '.join(lacking)}"
        )
    merged = {key: getattr(base, key) for key in config_type.model_fields} | fields
    try:
        return config_type.model_validate(merged)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors(include_input=False)
        )
        raise InvalidVendorOverrides(f"{name}: {problems}") from None
