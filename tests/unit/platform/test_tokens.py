from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from adapters.auth import AuthenticationError, TokenCodec, read_or_create_secret
from adapters.settings import AuthSettings, Settings
from domain.identity import User
from domain.platform import Role

SECRET = "an-hs256-secret-that-is-long-enough-0123"
OTHER_SECRET = "another-hs256-secret-long-enough-9876543"


def make_user(**overrides: object) -> User:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "id": "user-1",
        "tenant_id": "tenant-1",
        "email": "ann@brand.example",
        "display_name": "Ann",
        "role": Role.MANAGER,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return User.model_validate(values)


def hs256(secret: str = SECRET, **overrides: object) -> TokenCodec:
    settings = AuthSettings.model_validate({"jwt_secret": secret, **overrides})
    return TokenCodec.from_settings(settings, Path("/nonexistent"))


@pytest.fixture(scope="module")
def rsa_key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder = tmp_path_factory.mktemp("rsa")
    private = folder / "jwt.pem"
    public = folder / "jwt.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def rs256(private: Path, public: Path | None) -> TokenCodec:
    settings = AuthSettings(
        jwt_algorithm="RS256", jwt_private_key_file=private, jwt_public_key_file=public
    )
    return TokenCodec.from_settings(settings, Path("/nonexistent"))


def test_hs256_token_round_trips_user_tenant_and_role() -> None:
    codec = hs256()
    issued = codec.issue(make_user(), datetime.now(UTC))

    claims = codec.verify(issued.token)

    assert (claims.user_id, claims.tenant_id, claims.role) == ("user-1", "tenant-1", Role.MANAGER)
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


@pytest.mark.parametrize("with_public_file", [True, False])
def test_rs256_token_round_trips(rsa_key_files: tuple[Path, Path], with_public_file: bool) -> None:
    private, public = rsa_key_files
    codec = rs256(private, public if with_public_file else None)

    claims = codec.verify(codec.issue(make_user(role=Role.VIEWER), datetime.now(UTC)).token)

    assert claims.role is Role.VIEWER


def test_rs256_token_verifies_with_public_key_alone(rsa_key_files: tuple[Path, Path]) -> None:
    private, public = rsa_key_files
    token = rs256(private, public).issue(make_user(), datetime.now(UTC)).token

    claims = jwt.decode(
        token,
        public.read_bytes(),
        algorithms=["RS256"],
        audience="campaign-express-api",
        issuer="campaign-express",
    )

    assert claims["tid"] == "tenant-1"


def test_expired_token_is_refused() -> None:
    codec = hs256(token_ttl_s=60)
    issued = codec.issue(make_user(), datetime.now(UTC) - timedelta(hours=1))

    with pytest.raises(AuthenticationError, match="expired"):
        codec.verify(issued.token)


def test_token_signed_with_another_secret_is_refused() -> None:
    forged = hs256(OTHER_SECRET).issue(make_user(), datetime.now(UTC)).token

    with pytest.raises(AuthenticationError, match="not valid"):
        hs256().verify(forged)


def test_token_for_another_audience_is_refused() -> None:
    token = hs256(audience="someone-else").issue(make_user(), datetime.now(UTC)).token

    with pytest.raises(AuthenticationError, match="not valid"):
        hs256().verify(token)


def test_token_from_another_issuer_is_refused() -> None:
    token = hs256(issuer="someone-else").issue(make_user(), datetime.now(UTC)).token

    with pytest.raises(AuthenticationError, match="not valid"):
        hs256().verify(token)


def _b64(document: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def test_unsigned_token_is_refused() -> None:
    codec = hs256()
    token = codec.issue(make_user(), datetime.now(UTC)).token
    payload = jwt.decode(token, options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."

    with pytest.raises(AuthenticationError):
        codec.verify(unsigned)


def test_token_with_raised_role_is_refused() -> None:
    codec = hs256()
    token = codec.issue(make_user(role=Role.VIEWER), datetime.now(UTC)).token
    header, _, signature = token.split(".")
    payload = jwt.decode(token, options={"verify_signature": False})
    payload["role"] = "admin"

    with pytest.raises(AuthenticationError):
        codec.verify(f"{header}.{_b64(payload)}.{signature}")


def test_hs256_token_made_with_rs256_public_key_is_refused(
    rsa_key_files: tuple[Path, Path],
) -> None:
    private, public = rsa_key_files
    codec = rs256(private, public)
    payload = jwt.decode(
        codec.issue(make_user(), datetime.now(UTC)).token, options={"verify_signature": False}
    )
    # The classic algorithm-confusion forgery: HMAC keyed with the (public) RSA key.
    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(payload)
    mac = hmac.new(public.read_bytes(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    with pytest.raises(AuthenticationError):
        codec.verify(f"{header}.{body}.{signature}")


def test_token_missing_tenant_claim_is_refused() -> None:
    now = datetime.now(UTC)
    token = jwt.encode(
        {
            "iss": "campaign-express",
            "aud": "campaign-express-api",
            "sub": "user-1",
            "role": "admin",
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + 60,
        },
        SECRET,
        algorithm="HS256",
    )

    with pytest.raises(AuthenticationError):
        hs256().verify(token)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "ce_notakey"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(AuthenticationError):
        hs256().verify(garbage)


def test_issued_token_repr_hides_token() -> None:
    issued = hs256().issue(make_user(), datetime.now(UTC))

    assert issued.token not in repr(issued)


# --- settings ------------------------------------------------------------------------------------


def test_prod_without_jwt_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="CE_AUTH__JWT_SECRET"):
        Settings(
            environment="prod",
            database_url="postgresql://db/ce",
            notice_signing_key="k" * 32,
            public_base_url="https://ads.example",
        )


def test_prod_with_jwt_secret_is_accepted() -> None:
    settings = Settings(
        environment="prod",
        database_url="postgresql://db/ce",
        notice_signing_key="k" * 32,
        public_base_url="https://ads.example",
        auth={"jwt_secret": SECRET},
    )

    assert settings.auth.has_explicit_key


def test_auth_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CE_AUTH__JWT_SECRET", SECRET)
    monkeypatch.setenv("CE_AUTH__TOKEN_TTL_S", "120")
    monkeypatch.setenv("CE_AUTH__AUDIENCE", "ads")

    auth = Settings().auth

    assert auth.jwt_secret is not None
    assert auth.jwt_secret.get_secret_value() == SECRET
    assert (auth.token_ttl_s, auth.audience) == (120, "ads")


def test_short_jwt_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        AuthSettings(jwt_secret="too-short")


def test_rs256_without_private_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="PRIVATE_KEY_FILE"):
        AuthSettings(jwt_algorithm="RS256")


def test_dev_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = TokenCodec.from_settings(AuthSettings(), tmp_path)
    token = first.issue(make_user(), datetime.now(UTC)).token

    second = TokenCodec.from_settings(AuthSettings(), tmp_path)

    assert second.verify(token).user_id == "user-1"
    key_file = tmp_path / "jwt.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) >= 43


def test_read_or_create_secret_keeps_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "some.key"
    path.write_text("existing-secret\n")

    assert read_or_create_secret(path) == "existing-secret"
    assert list(tmp_path.iterdir()) == [path]
