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
    batch_max: int = Field(default=64, gt=0)
    batch_wait_us: int = Field(default=0, ge=0)
    onnx_providers: list[str] = Field(
        default_factory=list,
        description="onnxruntime execution providers in order of preference; empty picks the best "
        "available (CUDA, ROCm, CoreML, then CPU)",
    )


class AnalyticsSettings(BaseModel):
    batch_size: int = Field(default=500, gt=0)
    flush_interval_s: float = Field(default=5.0, gt=0)
    queue_max: int = Field(default=200_000, gt=0)
    stream: str = Field(default="analytics", description="JetStream stream (cluster mode)")
    subject: str = Field(default="analytics.events", description="its subject")


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

    features: FeatureFlags = Field(default_factory=FeatureFlags)
    bid: BidSettings = Field(default_factory=BidSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)

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
