"""API keys, passwords and tokens are never stored or logged in clear.

Everything runs with every logger at DEBUG (SQLAlchemy then logs each statement with its
parameters), and afterwards the log records and the database files themselves, WAL included,
are searched byte for byte.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import make_url

from adapters.auth import mint_api_key
from domain.platform import Role
from tests.integration.platform.support import PlatformApi, bearer, platform_api

BASE = "/api/v1/platform"
PASSWORD = "Pw-that-must-never-show-7f3a"


def database_bytes(database_url: str) -> bytes:
    path = Path(make_url(database_url).database or "")
    files = [path, *path.parent.glob(f"{path.name}-*")]  # the -wal and -shm files too
    return b"".join(file.read_bytes() for file in files if file.exists())


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


async def exercise(api: PlatformApi) -> list[str]:
    """Create, use, misuse and revoke a key; add a user who signs in. The secrets seen."""
    admin = await api.key("tenant-a", Role.ADMIN)
    created = await api.client.post(
        f"{BASE}/api-keys", headers=bearer(admin), json={"label": "ci", "role": "operator"}
    )
    key = created.json()["key"]
    assert (await api.client.get(f"{BASE}/me", headers=bearer(key))).status_code == 200
    wrong_secret = f"ce_{key.split('_')[1]}_{mint_api_key().secret}"
    assert (await api.client.get(f"{BASE}/me", headers=bearer(wrong_secret))).status_code == 401
    user = await api.client.post(
        f"{BASE}/users",
        headers=bearer(admin),
        json={
            "email": "ann@a.example",
            "display_name": "Ann",
            "role": "viewer",
            "password": PASSWORD,
        },
    )
    assert user.status_code == 201
    await api.client.patch(
        f"{BASE}/users/{user.json()['id']}",
        headers=bearer(admin),
        json={"password": PASSWORD + "-2"},
    )
    signed_in = await api.client.post(
        f"{BASE}/auth/token",
        json={"tenant": "tenant-a", "email": "ann@a.example", "password": PASSWORD + "-2"},
    )
    token = signed_in.json()["access_token"]
    assert (await api.client.get(f"{BASE}/me", headers=bearer(token))).status_code == 200
    refused = await api.client.post(
        f"{BASE}/auth/token",
        json={"tenant": "tenant-a", "email": "ann@a.example", "password": PASSWORD},
    )
    assert refused.status_code == 401
    await api.client.delete(f"{BASE}/api-keys/{key.split('_')[1]}", headers=bearer(admin))
    assert (await api.client.get(f"{BASE}/me", headers=bearer(key))).status_code == 401
    return [admin, key, wrong_secret, PASSWORD, PASSWORD + "-2", token]


async def test_secrets_never_logged_or_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy keeps its own loggers at WARNING unless told otherwise.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    database_url = f"sqlite:///{tmp_path / 'db' / 'campaign.db'}"
    async with platform_api(tmp_path, database_url) as api:
        secrets_seen = await exercise(api)
        logs = log_text(caplog)
        stored = database_bytes(database_url)

    # Statements were logged with their parameters, so a secret in one would show.
    assert "INSERT INTO api_keys" in logs
    for secret in secrets_seen:
        part = secret.split("_", 2)[2] if secret.startswith("ce_") else secret
        for needle in {secret, part}:
            assert needle not in logs
            assert needle.encode() not in stored
