from __future__ import annotations

import hashlib
import re

import pytest

from adapters.auth import hash_secret, mint_api_key, parse_api_key, secret_matches

KEY_SHAPE = re.compile(r"^ce_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")


def test_minted_key_has_documented_shape() -> None:
    minted = mint_api_key()

    assert KEY_SHAPE.match(minted.token)
    assert minted.token == f"ce_{minted.key_id}_{minted.secret}"


def test_minted_keys_differ_each_time() -> None:
    tokens = {mint_api_key().token for _ in range(100)}

    assert len(tokens) == 100


def test_parse_returns_id_and_secret_of_minted_key() -> None:
    minted = mint_api_key()

    assert parse_api_key(minted.token) == (minted.key_id, minted.secret)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "ce_",
        "ce_0123456789abcdef",
        "ce_0123456789abcdef_",
        "ce_0123456789ABCDEF_" + "a" * 43,  # id is lower-case hex
        "ce_0123456789abcde_" + "a" * 43,  # id one digit short
        "ce_0123456789abcdef_" + "a" * 42,  # secret one character short
        "ce_0123456789abcdef_" + "a" * 44,
        "ce_0123456789abcdef_" + "a" * 42 + "=",
        "xx_0123456789abcdef_" + "a" * 43,
        " ce_0123456789abcdef_" + "a" * 43,
    ],
)
def test_parse_refuses_malformed_key(token: str) -> None:
    assert parse_api_key(token) is None


def test_secret_with_underscores_parses() -> None:
    secret = "_" * 10 + "-" * 10 + "a" * 23

    assert parse_api_key(f"ce_0123456789abcdef_{secret}") == ("0123456789abcdef", secret)


def test_hash_is_sha256_hex_of_secret() -> None:
    minted = mint_api_key()

    assert hash_secret(minted.secret) == hashlib.sha256(minted.secret.encode()).hexdigest()
    assert minted.secret not in hash_secret(minted.secret)


def test_secret_matches_only_its_own_hash() -> None:
    one, other = mint_api_key(), mint_api_key()

    assert secret_matches(one.secret, hash_secret(one.secret))
    assert not secret_matches(other.secret, hash_secret(one.secret))
    assert not secret_matches(one.secret, "")


def test_minted_key_repr_hides_secret() -> None:
    minted = mint_api_key()

    assert minted.secret not in repr(minted)
    assert minted.key_id in repr(minted)
