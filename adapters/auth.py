"""Credentials: API keys, passwords, JWTs, and turning a bearer credential into a Principal.

API keys look like ``ce_<key id>_<secret>``: the id (16 hex digits) finds the stored row, the
secret (``secrets.token_urlsafe(32)``, 256 random bits) is checked against its SHA-256. A
plain hash is enough for a secret that random: no one can search 2^256 values, so the slow,
salted hashes passwords need would only cost every request time. The key in clear exists once,
in what ``create_api_key`` returns.

Passwords are hashed with scrypt (N=2^15, r=8, p=1: 32 MiB and ~0.1 s per hash on the
development machine, the OWASP-recommended floor for scrypt), 16-byte random salt per user,
32-byte output, stored as ``scrypt$N$r$p$<salt>$<hash>`` so the parameters can be raised later
without breaking old hashes.

JWTs are HS256 or RS256 (``AuthSettings``), carry the user id (``sub``), tenant (``tid``) and
role, and are checked against the stored user on every request (cached briefly), so a disabled
or deleted user's tokens stop working.

    AuthenticationError    a credential that is missing, malformed, unknown, revoked or expired
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cachetools import TTLCache
from cryptography.hazmat.primitives import serialization
from sqlalchemy.exc import SQLAlchemyError

from adapters.db.platform import ApiKeyRepository, TenantAccountRepository, UserRepository
from adapters.settings import AuthSettings
from adapters.throttle import Throttle
from domain.bidding.ports import Clock
from domain.identity import Actor, ApiKey, User, normalize_email
from domain.platform import Principal, Role

log = logging.getLogger(__name__)

API_KEY_PREFIX = "ce"
_API_KEY = re.compile(r"^ce_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
MAX_CREDENTIAL_LENGTH = 4096

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
SCRYPT_HASH_BYTES = 32
# Refuse stored parameters that would make one check eat the machine.
_SCRYPT_MAX_N = 2**20

JWT_LEEWAY_S = 10
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "tid", "role"]

DEFAULT_CACHE_SIZE = 10_000


class AuthenticationError(Exception):
    """Why a credential was refused; the message is safe to show the caller."""


# --- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MintedApiKey:
    key_id: str
    secret: str

    @property
    def token(self) -> str:
        return f"{API_KEY_PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:  # keeps the secret out of tracebacks and debug output
        return f"MintedApiKey(key_id={self.key_id!r})"


def mint_api_key() -> MintedApiKey:
    return MintedApiKey(key_id=secrets.token_hex(8), secret=secrets.token_urlsafe(32))


def parse_api_key(token: str) -> tuple[str, str] | None:
    """(key id, secret), or None when ``token`` is not shaped like one of our keys."""
    match = _API_KEY.match(token)
    return (match.group(1), match.group(2)) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


async def create_api_key(
    api_keys: ApiKeyRepository,
    *,
    tenant_id: str,
    label: str,
    role: Role,
    created_by: Actor,
    now: datetime,
    owner: Principal | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key (its hash only) and return it with the key in clear, for showing once.
    ``owner``: the caller making it, whose person the key acts for; none, it acts for itself."""
    minted = mint_api_key()
    key = ApiKey(
        id=minted.key_id,
        tenant_id=tenant_id,
        label=label,
        role=role,
        created_at=now,
        created_by=created_by.reference,
        owner_id=owner.person if owner is not None else minted.key_id,
    )
    await api_keys.create(key, hash_secret(minted.secret))
    return key, minted.token


# --- passwords -----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # hashlib refuses by default above 32 MiB, which N=2^15, r=8 needs exactly.
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=length
    )


def hash_password(password: str) -> str:
    salt = os.urandom(SCRYPT_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        params = int(n), int(r), int(p)
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        return False
    if scheme != "scrypt" or not 1 < params[0] <= _SCRYPT_MAX_N or params[1] > 32 or params[2] > 16:
        return False
    actual = _scrypt(password, salt_bytes, *params, len(expected))
    return hmac.compare_digest(actual, expected)


@functools.cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _check_password(password: str, encoded: str | None) -> bool:
    """``encoded`` None (no such user) still costs one scrypt, and never matches."""
    return verify_password(password, encoded or _decoy_hash()) and encoded is not None


# --- JWTs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    tenant_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime
    ttl_s: int

    def __repr__(self) -> str:
        return f"IssuedToken(expires_at={self.expires_at.isoformat()})"


def read_or_create_secret(path: Path) -> str:
    """The secret in ``path``, created (0600) with 256 random bits if missing.

    Written aside and linked into place: processes starting together on one CE_HOME all end
    up with the first secret, and none ever reads a half-written file.
    """
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


class TokenCodec:
    """Issues and verifies the platform's JWTs with one algorithm and key (pair)."""

    def __init__(
        self,
        *,
        algorithm: str,
        signing_key: Any,
        verification_key: Any,
        issuer: str,
        audience: str,
        ttl_s: int,
    ) -> None:
        self.algorithm = algorithm
        self._signing_key = signing_key
        self._verification_key = verification_key
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    @classmethod
    def from_settings(cls, auth: AuthSettings, home: Path) -> TokenCodec:
        """The configured keys; in dev without any, a secret generated into ``home``."""
        signing: Any
        verifying: Any
        if auth.jwt_algorithm == "RS256":
            assert auth.jwt_private_key_file is not None  # AuthSettings refuses RS256 without
            private = serialization.load_pem_private_key(
                auth.jwt_private_key_file.read_bytes(), password=None
            )
            signing = private
            verifying = (
                serialization.load_pem_public_key(auth.jwt_public_key_file.read_bytes())
                if auth.jwt_public_key_file is not None
                else private.public_key()
            )
        else:
            secret = (
                auth.jwt_secret.get_secret_value()
                if auth.jwt_secret is not None
                else read_or_create_secret(home / "jwt.key")
            )
            signing = verifying = secret.encode()
        return cls(
            algorithm=auth.jwt_algorithm,
            signing_key=signing,
            verification_key=verifying,
            issuer=auth.issuer,
            audience=auth.audience,
            ttl_s=auth.token_ttl_s,
        )

    def issue(self, user: User, now: datetime) -> IssuedToken:
        expires_at = now + timedelta(seconds=self.ttl_s)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user.id,
            "tid": user.tenant_id,
            "role": user.role.value,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)
        return IssuedToken(token, expires_at, self.ttl_s)

    def verify(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._verification_key,
                algorithms=[self.algorithm],  # one only: no algorithm confusion
                audience=self.audience,
                issuer=self.issuer,
                leeway=JWT_LEEWAY_S,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("the token has expired") from error
        except jwt.InvalidTokenError as error:
            raise AuthenticationError("the token is not valid") from error
        try:
            return TokenClaims(str(claims["sub"]), str(claims["tid"]), Role(claims["role"]))
        except ValueError as error:
            raise AuthenticationError("the token is not valid") from error


# --- authentication ------------------------------------------------------------------------------


class Authenticator:
    """Bearer credential (API key or JWT) in, Principal out, or AuthenticationError.

    Keys and users are cached for ``cache_ttl_s`` (monotonic time), so a key revoked or a user
    disabled in another process stops working within that bound; ``forget_*`` drops an entry
    at once (this process's own changes). A key's last use is written at most once per
    ``last_used_interval`` per process, and the write itself is skipped by the database when
    another process wrote within the interval.
    """

    def __init__(
        self,
        *,
        api_keys: ApiKeyRepository,
        users: UserRepository,
        tokens: TokenCodec,
        clock: Clock,
        cache_ttl_s: float,
        last_used_interval: timedelta,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._api_keys = api_keys
        self._users = users
        self._tokens = tokens
        self._clock = clock
        self._interval = last_used_interval
        self._keys: TTLCache[str, tuple[ApiKey, str]] | None = None
        self._user_cache: TTLCache[str, User] | None = None
        if cache_ttl_s > 0:
            self._keys = TTLCache(cache_size, cache_ttl_s, timer=clock.monotonic)
            self._user_cache = TTLCache(cache_size, cache_ttl_s, timer=clock.monotonic)
        self._last_used: dict[str, datetime] = {}

    def forget_api_key(self, key_id: str) -> None:
        if self._keys is not None:
            self._keys.pop(key_id, None)

    def forget_user(self, user_id: str) -> None:
        if self._user_cache is not None:
            self._user_cache.pop(user_id, None)

    async def authenticate(self, credential: str) -> Principal:
        if not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
            raise AuthenticationError("the bearer credential is malformed")
        if credential.startswith(f"{API_KEY_PREFIX}_"):
            return await self._by_api_key(credential)
        return await self._by_token(credential)

    async def _by_api_key(self, credential: str) -> Principal:
        parsed = parse_api_key(credential)
        if parsed is None:
            raise AuthenticationError("the API key is malformed")
        key_id, secret = parsed
        record = self._keys.get(key_id) if self._keys is not None else None
        if record is None:
            record = await self._api_keys.credential(key_id)
            if record is None:
                raise AuthenticationError("unknown API key")
            if self._keys is not None:
                self._keys[key_id] = record
        key, secret_hash = record
        if not secret_matches(secret, secret_hash):
            raise AuthenticationError("unknown API key")
        if key.revoked:
            raise AuthenticationError("the API key has been revoked")
        await self._note_use(key)
        return Principal(
            tenant_id=key.tenant_id,
            subject_id=key.id,
            role=key.role,
            kind="api_key",
            name=key.label,
            person_id=key.owner_id,
        )

    async def _note_use(self, key: ApiKey) -> None:
        now = self._clock.now()
        last = self._last_used.get(key.id, key.last_used_at)
        if last is not None and now - last < self._interval:
            return
        # Marked before the write, so requests arriving meanwhile do not write too.
        self._last_used[key.id] = now
        try:
            await self._api_keys.touch(key.id, now=now, interval=self._interval)
        except SQLAlchemyError as error:
            # Bookkeeping only: the caller is authenticated either way.
            log.warning("could not record the use of API key %s: %s", key.id, error)

    async def _by_token(self, credential: str) -> Principal:
        claims = self._tokens.verify(credential)
        user = self._user_cache.get(claims.user_id) if self._user_cache is not None else None
        if user is None:
            user = await self._users.get_unscoped(claims.user_id)
            if user is None:
                raise AuthenticationError("the token's user no longer exists")
            if self._user_cache is not None:
                self._user_cache[claims.user_id] = user
        if user.tenant_id != claims.tenant_id:
            raise AuthenticationError("the token is not valid")
        if user.disabled:
            raise AuthenticationError("the token's user is disabled")
        # The stored role, not the token's: a demotion takes effect within the cache bound.
        return Principal(
            tenant_id=user.tenant_id,
            subject_id=user.id,
            role=user.role,
            kind="user",
            name=user.email,
        )


class TooManyAttempts(AuthenticationError):
    """Sign-in refused unchecked: too many attempts for this email and tenant lately."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many sign-in attempts for this email; try again later")
        self.retry_after_s = retry_after_s


class PasswordSignIn:
    """Email, password and tenant (id or name) in, a JWT out.

    Every refusal reads the same and costs one scrypt, so neither the message nor the time
    tells whether the tenant or the email exists. ``attempts`` throttles guessing: per tenant
    and email, a burst of attempts, then one more per interval; an attempt that signs in is
    given back, so only failures use them up. A throttled attempt is refused before the scrypt,
    the same whether the email exists or not.
    """

    REFUSAL = "wrong email, password or tenant"

    def __init__(
        self,
        *,
        tenants: TenantAccountRepository,
        users: UserRepository,
        tokens: TokenCodec,
        clock: Clock,
        attempts: Throttle | None = None,
    ) -> None:
        self._tenants = tenants
        self._users = users
        self._tokens = tokens
        self._clock = clock
        self._attempts = attempts

    async def __call__(self, *, tenant: str, email: str, password: str) -> IssuedToken:
        try:
            normalized = normalize_email(email)
        except ValueError:
            normalized = ""
        found = await self._tenants.find(tenant)
        # Per account: the tenant's id whether it was given by id or name, and the email as
        # normalised for the lookup. No such tenant: the text exactly as looked up, so that
        # spellings share attempts alike whether the tenant exists or not.
        tenant_key = found.id if found is not None else tenant
        key = f"{tenant_key}\n{normalized or email.strip().lower()}"
        if self._attempts is not None:
            wait_s = await self._attempts.take(key)
            if wait_s > 0:
                raise TooManyAttempts(wait_s)
        credentials = (
            await self._users.credentials(found.id, normalized)
            if found is not None and normalized
            else None
        )
        encoded = credentials[1] if credentials is not None else None
        matches = await asyncio.to_thread(_check_password, password, encoded)
        if credentials is None or not matches or credentials[0].disabled:
            raise AuthenticationError(self.REFUSAL)
        if self._attempts is not None:
            await self._attempts.give_back(key)
        return self._tokens.issue(credentials[0], self._clock.now())
