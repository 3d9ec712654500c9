"""The ``CE_TEMPORAL__*`` group."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.settings import Settings


def test_dev_server_ports_and_cluster_options_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CE_TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("CE_TEMPORAL__PORT", "17233")
    monkeypatch.setenv("CE_TEMPORAL__UI_PORT", "18233")
    monkeypatch.setenv("CE_TEMPORAL__HTTP_PORT", "17243")
    monkeypatch.setenv("CE_TEMPORAL__METRICS_PORT", "17244")
    monkeypatch.setenv("CE_TEMPORAL__API_KEY", "secret-key")

    settings = Settings()

    assert settings.temporal_address == "temporal.internal:7233"
    assert (settings.temporal.port, settings.temporal.ui_port) == (17233, 18233)
    assert (settings.temporal.http_port, settings.temporal.metrics_port) == (17243, 17244)
    assert settings.temporal.api_key is not None
    assert "secret-key" not in repr(settings)
    assert not settings.temporal.uses_tls  # the SDK turns TLS on for an API key itself


def test_any_tls_file_turns_tls_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_TEMPORAL__TLS_CA_CERT", "/etc/temporal/ca.pem")

    assert Settings().temporal.uses_tls


def test_a_client_cert_without_its_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_TEMPORAL__TLS_CLIENT_CERT", "/etc/temporal/client.pem")

    with pytest.raises(ValidationError, match="go together"):
        Settings()
