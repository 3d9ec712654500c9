"""Vendor accounts from settings, and a tenant's laid over them without reaching ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.channels.config import (
    FcmConfig,
    InvalidVendorOverrides,
    SendGridConfig,
    VendorConfigs,
)
from adapters.settings import Settings


def platform(**env: object) -> VendorConfigs:
    return VendorConfigs.from_settings(Settings(**env))  # type: ignore[arg-type]


def test_settings_fill_each_vendor() -> None:
    configs = platform(
        sendgrid_api_key="SG.platform",
        sendgrid_from="Shop <shop@example.com>",
        sendgrid_base_url="http://127.0.0.1:9000",
        twilio_account_sid="AC1",
        twilio_auth_token="token",
        twilio_from="+15005550006",
        public_base_url="https://ce.example.com/",
        webhook_signing_secret="hook-secret",
    )

    assert configs.sendgrid.api_key == SecretStr("SG.platform")
    assert configs.sendgrid.from_ == "Shop <shop@example.com>"
    assert configs.sendgrid.base_url == "http://127.0.0.1:9000"
    assert configs.sendgrid.missing() == []
    assert configs.twilio.status_callback_url == "https://ce.example.com/v1/webhooks/twilio"
    assert configs.twilio.missing() == []
    assert configs.webhook.missing() == []


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_SENDGRID_API_KEY", "SG.env")
    monkeypatch.setenv("CE_SENDGRID_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("CE_APNS_KEY_FILE", "/keys/AuthKey.p8")

    settings = Settings()

    assert settings.sendgrid_api_key == SecretStr("SG.env")
    assert settings.sendgrid_base_url == "http://127.0.0.1:9999"
    assert settings.apns_key_file == Path("/keys/AuthKey.p8")
    assert settings.twilio_base_url == "https://api.twilio.com"
    assert "SG.env" not in repr(settings)


def test_unset_vendor_names_the_settings_it_needs() -> None:
    configs = platform()

    assert configs.sendgrid.missing() == ["CE_SENDGRID_API_KEY", "CE_SENDGRID_FROM"]
    assert configs.fcm.missing() == ["CE_FCM_PROJECT_ID", "CE_FCM_SERVICE_ACCOUNT_FILE"]
    assert "CE_APNS_KEY_FILE" in configs.apns.missing()


def test_tenant_override_replaces_only_what_it_names() -> None:
    configs = platform(sendgrid_api_key="SG.platform", sendgrid_from="shop@platform.example")

    mine = configs.overlay({"sendgrid": {"api_key": "SG.tenant", "from": "news@tenant.example"}})

    assert mine.sendgrid.api_key == SecretStr("SG.tenant")
    assert mine.sendgrid.from_ == "news@tenant.example"
    assert mine.sendgrid.base_url == configs.sendgrid.base_url
    assert mine.twilio == configs.twilio
    assert configs.sendgrid.api_key == SecretStr("SG.platform")


def test_no_overrides_give_the_platform_accounts() -> None:
    configs = platform(sendgrid_api_key="SG.platform")

    assert configs.overlay(None) is configs
    assert configs.overlay({}) is configs


def test_tenant_pointing_a_vendor_elsewhere_brings_its_own_credentials() -> None:
    configs = platform(sendgrid_api_key="SG.platform", sendgrid_from="shop@platform.example")

    with pytest.raises(InvalidVendorOverrides, match="api_key"):
        configs.overlay({"sendgrid": {"base_url": "https://collector.example"}})
    with pytest.raises(InvalidVendorOverrides, match="service_account_info"):
        configs.overlay({"fcm": {"token_url": "https://collector.example/token"}})

    own = configs.overlay(
        {"sendgrid": {"base_url": "https://eu.api.sendgrid.com", "api_key": "SG.tenant"}}
    )
    assert own.sendgrid.base_url == "https://eu.api.sendgrid.com"


def test_tenant_never_names_a_file_on_our_machines() -> None:
    configs = platform()

    with pytest.raises(InvalidVendorOverrides, match="platform's to set"):
        configs.overlay({"apns": {"key_file": "/etc/ssl/private/server.key"}})
    with pytest.raises(InvalidVendorOverrides, match="platform's to set"):
        configs.overlay({"twilio": {"status_callback_url": "https://collector.example"}})


def test_invalid_override_named_without_its_secret_value() -> None:
    configs = platform()

    with pytest.raises(InvalidVendorOverrides) as raised:
        configs.overlay({"twilio": {"auth_token": ["secret-in-a-list"], "colour": "blue"}})

    assert "auth_token" in str(raised.value)
    assert "secret-in-a-list" not in str(raised.value)


@pytest.mark.parametrize(
    "overrides",
    [{"mailchimp": {}}, {"sendgrid": "SG.key"}, {"push_provider": "huawei"}],
    ids=["unknown-vendor", "not-an-object", "unknown-push-service"],
)
def test_overrides_of_the_wrong_shape_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidVendorOverrides):
        platform().overlay(overrides)


def test_default_push_is_fcm_unless_only_apns_is_configured() -> None:
    apns_only = VendorConfigs.model_validate(
        {
            "apns": {
                "team_id": "T",
                "key_id": "K",
                "key": "-----BEGIN PRIVATE KEY-----",
                "topic": "com.example",
            }
        }
    )

    assert platform().default_push() == "fcm"
    assert apns_only.default_push() == "apns"
    assert apns_only.overlay({"push_provider": "fcm"}).default_push() == "fcm"


def test_equal_configs_are_one_account() -> None:
    first = SendGridConfig(api_key=SecretStr("k"), from_="a@b.example")
    second = SendGridConfig.model_validate({"api_key": "k", "from": "a@b.example"})

    assert first == second
    assert hash(first) == hash(second)
    assert hash(FcmConfig(project_id="p")) != hash(FcmConfig(project_id="q"))
