"""The client factory's failures and its TLS options, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from temporal.client import TemporalUnavailable, connect, tls_config
from tests.support.services import free_port


async def test_connect_names_the_address_when_nothing_answers() -> None:
    address = f"127.0.0.1:{free_port()}"

    with pytest.raises(TemporalUnavailable, match=f"not answering at {address}"):
        await connect(address, "default", wait_s=0.3)


def test_tls_config_reads_the_pem_files(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"ca")
    (tmp_path / "client.pem").write_bytes(b"cert")
    (tmp_path / "client.key").write_bytes(b"key")

    tls = tls_config(
        ca_cert=tmp_path / "ca.pem",
        client_cert=tmp_path / "client.pem",
        client_key=tmp_path / "client.key",
        server_name="temporal.internal",
    )

    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key) == (
        b"ca",
        b"cert",
        b"key",
    )
    assert tls.domain == "temporal.internal"


def test_tls_config_refuses_a_client_cert_without_its_key(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_bytes(b"cert")

    with pytest.raises(ValueError, match="private key"):
        tls_config(client_cert=tmp_path / "client.pem")
