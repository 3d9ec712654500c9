from __future__ import annotations

import pytest

from adapters.auth import SCRYPT_N, SCRYPT_P, SCRYPT_R, hash_password, verify_password


def test_password_verifies_against_its_hash() -> None:
    encoded = hash_password("correct horse battery staple")

    assert verify_password("correct horse battery staple", encoded)


def test_wrong_password_does_not_verify() -> None:
    encoded = hash_password("correct horse battery staple")

    assert not verify_password("correct horse battery stapler", encoded)
    assert not verify_password("", encoded)


def test_hash_carries_parameters_and_never_the_password() -> None:
    encoded = hash_password("s3cret-password")

    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P)
    assert salt
    assert digest
    assert "s3cret-password" not in encoded


def test_same_password_gets_a_different_salt_each_time() -> None:
    assert hash_password("same password") != hash_password("same password")


def test_hash_with_other_parameters_still_verifies() -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"older hash", salt=salt, n=2**10, r=8, p=1, dklen=32)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    assert verify_password("older hash", f"scrypt$1024$8$1${b64(salt)}${b64(digest)}")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain",
        "bcrypt$12$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$abc$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$1024$8$1$c2FsdA",
        f"scrypt${2**24}$8$1$c2FsdA$ZGlnZXN0",  # would take gigabytes: refused, not tried
    ],
)
def test_malformed_or_unsafe_hash_never_verifies(encoded: str) -> None:
    assert not verify_password("anything", encoded)
