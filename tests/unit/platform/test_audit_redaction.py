from __future__ import annotations

from datetime import UTC, datetime

from domain.identity import REDACTED, Actor, ApiKey, new_audit_entry, redact_secrets
from domain.platform import Role

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_redact_replaces_secret_fields_at_any_depth() -> None:
    document = {
        "email": "a@b.example",
        "password": "hunter22",
        "nested": {"Token": "abc", "items": [{"secret": "x", "label": "keep"}]},
    }

    assert redact_secrets(document) == {
        "email": "a@b.example",
        "password": REDACTED,
        "nested": {"Token": REDACTED, "items": [{"secret": REDACTED, "label": "keep"}]},
    }


def test_audit_entry_stores_models_as_json_and_redacts() -> None:
    key = ApiKey(
        id="0123456789abcdef",
        tenant_id="t",
        label="ci",
        role=Role.VIEWER,
        created_at=NOW,
        created_by="user:u",
        owner_id="u",
    )

    entry = new_audit_entry(
        entry_id="e",
        tenant_id="t",
        at=NOW,
        actor=Actor(kind="user", id="u", name="a@b.example"),
        action="api_key.create",
        target_type="api_key",
        target_id=key.id,
        before={"key": "ce_0123456789abcdef_secret", "when": NOW},
        after=key,
    )

    assert entry.after is not None
    assert entry.after["created_at"] == "2026-01-01T00:00:00Z"
    assert entry.after["role"] == "viewer"
    assert entry.before == {"key": REDACTED, "when": "2026-01-01T00:00:00Z"}
