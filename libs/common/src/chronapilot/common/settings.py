"""ChronaPilot's configuration: the only reader of the environment.

Every setting is an environment variable with the prefix ``CHRONAPILOT_`` (for example
``CHRONAPILOT_API_PORT``), except the two standard names ``MONGODB_URI`` and
``KAFKA_BOOTSTRAP_SERVERS``. :class:`Settings` is built once in a service's ``__main__`` and
passed down; nothing else reads ``os.environ``.

The settings are grouped into sub-models (Mongo, Kafka, crypto, provider endpoints, ports, …);
each group keeps the flat variable names above, so the README's configuration table and
``docker-compose.yml`` use one name per setting.
"""

from __future__ import annotations

import base64
import binascii
import enum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo.uri_parser import parse_uri

ENV_PREFIX = "CHRONAPILOT_"


def _config(prefix: str = ENV_PREFIX) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", frozen=True, populate_by_name=True)


class Environment(enum.StrEnum):
    """``development`` tolerates generated keys and sandbox defaults; ``production`` does not."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class MongoSettings(BaseSettings):
    """Where the MongoDB-protocol server is, and which database ChronaPilot owns."""

    model_config = _config(ENV_PREFIX + "MONGODB_")

    uri: str = Field(
        default="mongodb://127.0.0.1:27017/?directConnection=true",
        validation_alias="MONGODB_URI",
        description="MongoDB connection string (standard name). A replica set is required (transactions).",
    )
    database: str = Field(default="chronapilot", description="Database name.")
    timeout_s: float = Field(default=5.0, gt=0, description="Server selection and connect timeout.")
    operation_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest one MongoDB operation (a transaction: all its attempts) may take; "
        "past it the caller gets a store error.",
    )

    @field_validator("uri")
    @classmethod
    def _valid_uri(cls, value: str) -> str:
        try:
            parse_uri(value, validate=True, warn=False, connect_timeout=1)
        except Exception as exc:  # noqa: BLE001 - pymongo raises several types for bad URIs
            raise ValueError(f"not a valid MongoDB URI ({exc})") from None
        return value


class KafkaSettings(BaseSettings):
    """The Kafka-protocol broker and how ChronaPilot uses it."""

    model_config = _config(ENV_PREFIX + "KAFKA_")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="Comma-separated host:port list (standard name).",
    )
    topic_prefix: str = Field(
        default="chronapilot",
        description="Prefix of every topic name (`<prefix>.connections.v1`, …).",
    )
    topic_partitions: int = Field(
        default=12,
        ge=1,
        description="Partitions of each topic created at start.",
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        description="Replication factor of each topic created at start.",
    )
    consumer_max_attempts: int = Field(
        default=5,
        ge=1,
        description="Handler attempts before a message goes to the dead-letter topic.",
    )
    consumer_backoff_s: float = Field(
        default=0.2,
        gt=0,
        description="First retry delay of a failing handler (doubles, jittered, capped at 30 s).",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _valid_servers(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port…], got {server.strip()!r}")
        return value


class CryptoSettings(BaseSettings):
    """Keys for encrypting provider credentials at rest (AES-256-GCM, rotatable by key id)."""

    model_config = _config()

    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated `key_id:base64(32 bytes)` pairs. Required outside development.",
    )
    encryption_active_key_id: str | None = Field(
        default=None,
        description="Key id used for new ciphertexts (default: the first key listed).",
    )

    def parsed_keys(self) -> dict[str, bytes]:
        """The key ring, ``{key_id: 32-byte key}``; empty when no key is configured."""
        if self.encryption_keys is None:
            return {}
        return parse_key_ring(self.encryption_keys.get_secret_value())

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_key_ring(value.get_secret_value())
        return value


def parse_key_ring(text: str) -> dict[str, bytes]:
    """Parse ``kid:base64key,kid2:base64key`` into a key ring; raises ``ValueError``."""
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise ValueError("each key must be written `key_id:base64key`")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
        ring[kid] = key
    if not ring:
        raise ValueError("no key given")
    return ring


class ProviderSettings(BaseSettings):
    """Provider endpoints and OAuth clients. Defaults are the real providers."""

    model_config = _config()

    google_auth_url: str = Field(
        default="https://accounts.google.com/o/oauth2/v2/auth",
        description="Google authorization endpoint.",
    )
    google_token_url: str = Field(
        default="https://oauth2.googleapis.com/token", description="Google token endpoint."
    )
    google_revoke_url: str = Field(
        default="https://oauth2.googleapis.com/revoke", description="Google revocation endpoint."
    )
    google_userinfo_url: str = Field(
        default="https://openidconnect.googleapis.com/v1/userinfo",
        description="Google OpenID Connect userinfo endpoint.",
    )
    google_api_url: str = Field(
        default="https://www.googleapis.com/calendar/v3", description="Google Calendar API v3 base."
    )
    google_client_id: str | None = Field(default=None, description="Google OAuth client id.")
    google_client_secret: SecretStr | None = Field(default=None, description="Google OAuth secret.")
    microsoft_login_url: str = Field(
        default="https://login.microsoftonline.com",
        description="Microsoft identity platform host (`/{tenant}/oauth2/v2.0/...`).",
    )
    microsoft_tenant: str = Field(default="common", description="Microsoft tenant segment.")
    microsoft_graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0", description="Microsoft Graph base."
    )
    microsoft_client_id: str | None = Field(default=None, description="Microsoft app (client) id.")
    microsoft_client_secret: SecretStr | None = Field(default=None, description="Microsoft client secret.")
    icloud_caldav_url: str = Field(
        default="https://caldav.icloud.com", description="iCloud CalDAV server root."
    )
    http_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of every provider call.")

    @field_validator(
        "google_auth_url",
        "google_token_url",
        "google_revoke_url",
        "google_userinfo_url",
        "google_api_url",
        "microsoft_login_url",
        "microsoft_graph_url",
        "icloud_caldav_url",
    )
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")


class ServiceSettings(BaseSettings):
    """Where each service listens, and process-level behaviour."""

    model_config = _config()

    host: str = Field(default="127.0.0.1", description="Interface every service binds to.")
    api_port: int = Field(default=8080, ge=0, le=65535, description="Public REST API port.")
    webhook_gateway_port: int = Field(default=8081, ge=0, le=65535, description="Webhook gateway port.")
    sync_worker_port: int = Field(
        default=8082, ge=0, le=65535, description="Sync worker health/metrics port."
    )
    token_refresher_port: int = Field(
        default=8083, ge=0, le=65535, description="Token refresher health/metrics port."
    )
    webhook_dispatcher_port: int = Field(
        default=8085, ge=0, le=65535, description="Webhook dispatcher health/metrics port."
    )
    ops_port: int = Field(
        default=8084, ge=0, le=65535, description="Ops console port (internal: operators only, never public)."
    )
    ops_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the ops console and its `/metrics` require. Required outside "
        "`development`; in development the console is open on its (loopback) port.",
    )
    api_metrics_port: int = Field(
        default=8086,
        ge=0,
        le=65535,
        description="Internal listener of the API for `/metrics`, `/healthz`, `/readyz` (the public port "
        "serves no `/metrics`).",
    )
    webhook_gateway_metrics_port: int = Field(
        default=8087,
        ge=0,
        le=65535,
        description="Internal listener of the webhook gateway for `/metrics`, `/healthz`, `/readyz`.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="Public URL of the API (consent callbacks, hosted pages). "
        "Default: http://<host>:<api_port>.",
    )
    webhook_base_url: str | None = Field(
        default=None,
        description="Public URL of the webhook gateway that providers call. "
        "Default: http://<host>:<webhook_gateway_port>.",
    )
    startup_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a service keeps retrying MongoDB and Kafka at start before giving up.",
    )
    shutdown_timeout_s: float = Field(
        default=20.0, gt=0, description="Grace period for in-flight work on SIGTERM."
    )
    outbox_poll_interval_s: float = Field(
        default=0.05, gt=0, description="How often the outbox relay looks for unsent events."
    )
    outbox_lease_s: float = Field(
        default=10.0, gt=0, description="Lease of the outbox relay leader (one relay publishes)."
    )
    idempotency_lock_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a POST holds its `Idempotency-Key` while it runs: a retry within it "
        "gets 409, after it (the first request died) runs. Longer than any POST takes, and than "
        "`CHRONAPILOT_MONGODB_OPERATION_TIMEOUT_S`.",
    )


class TokenSettings(BaseSettings):
    """Token health: proactive refresh, on-demand refresh, backoff, revocation on disconnect."""

    model_config = _config(ENV_PREFIX + "TOKEN_")

    refresh_margin_s: float = Field(
        default=600.0, gt=0, description="Refresh an access token when less than this is left."
    )
    min_validity_s: float = Field(
        default=60.0,
        ge=0,
        description="On-demand access: a stored token with less than this left is refreshed first.",
    )
    refresh_tick_interval_s: float = Field(
        default=15.0, gt=0, description="How often the refresher looks for tokens due."
    )
    refresh_batch_size: int = Field(
        default=100, ge=1, description="Tokens one refresher takes (leases) per query."
    )
    refresh_concurrency: int = Field(
        default=16, ge=1, description="Refreshes one refresher process runs at once."
    )
    refresh_lease_s: float = Field(
        default=45.0,
        gt=0,
        description="How long a process holds a connection's refresh (longer than a provider call).",
    )
    refresh_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="Consecutive transient refresh failures before a connection goes to `error`.",
    )
    refresh_backoff_base_s: float = Field(
        default=30.0,
        gt=0,
        description="First retry delay after a transient refresh failure (doubles, jittered).",
    )
    refresh_backoff_cap_s: float = Field(
        default=900.0, gt=0, description="Longest retry delay after transient refresh failures."
    )
    revoke_attempts: int = Field(
        default=4, ge=1, description="Attempts at the provider's revocation endpoint on disconnect."
    )
    revoke_backoff_s: float = Field(
        default=1.0, gt=0, description="First retry delay of a failed revocation (doubles, jittered)."
    )


class LogSettings(BaseSettings):
    """Logging."""

    model_config = _config()

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: str = Field(default="json", description="`json` (default) or `console`.")

    @field_validator("log_level")
    @classmethod
    def _valid_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper

    @field_validator("log_format")
    @classmethod
    def _valid_format(cls, value: str) -> str:
        if value not in {"json", "console"}:
            raise ValueError("must be json or console")
        return value


class SyncSettings(BaseSettings):
    """The sync worker: concurrency, retries and the polling schedule."""

    model_config = _config(ENV_PREFIX + "SYNC_")

    concurrency: int = Field(
        default=8, ge=1, le=256, description="Connections one sync worker syncs at once."
    )
    max_attempts: int = Field(
        default=5, ge=1, description="Attempts of a calendar sync on retryable provider errors."
    )
    backoff_s: float = Field(
        default=1.0, gt=0, description="First retry delay (doubles, jittered; Retry-After wins)."
    )
    lease_s: float = Field(
        default=60.0, gt=0, description="Lease that keeps one connection on one worker at a time."
    )
    poll_interval_s: float = Field(
        default=300.0, gt=0, description="How often connections in polling mode are synced."
    )
    poll_tick_s: float = Field(
        default=15.0, gt=0, description="How often the polling schedule looks for due connections."
    )
    polling_enabled: bool = Field(default=True, description="Run the polling schedule.")
    safety_net_interval_s: float = Field(
        default=21600.0,
        gt=0,
        description=(
            "How often a realtime connection gets an incremental sync anyway (jittered ±20%), "
            "so a lost notification is reconciled."
        ),
    )
    calendar_list_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description=(
            "How old a connection's calendar list may grow before a sync of one calendar lists "
            "the provider's calendars again. Full syncs and syncs of every calendar (polls, "
            "safety nets) always do; a sync of one calendar does only when the list is older, "
            "names a calendar the mirror does not know, or a calendar turned out to be gone."
        ),
    )
    retry_after_max_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Longest provider `Retry-After` a sync waits out in place; a longer one fails the sync "
            "and schedules the next attempt at that time instead of holding the worker."
        ),
    )
    raw_max_bytes: int = Field(
        default=32768, ge=1024, description="Size cap of the provider payload kept per event."
    )


class RealtimeSettings(BaseSettings):
    """Webhook subscriptions and notifications (the webhook gateway)."""

    model_config = _config()

    subscription_ttl_s: float = Field(
        default=604800.0,
        gt=0,
        description="Lifetime asked for each webhook subscription; providers may grant less "
        "(Microsoft: at most 10,080 minutes).",
    )
    subscription_renew_margin_s: float = Field(
        default=3600.0,
        gt=0,
        description="Renew a subscription this long before it expires (at most half its lifetime).",
    )
    subscription_scan_interval_s: float = Field(
        default=1.0, gt=0, description="How often the gateway looks for subscriptions due for work."
    )
    subscription_batch_size: int = Field(
        default=50, ge=1, description="Subscriptions one gateway process claims per scan."
    )
    subscription_lease_s: float = Field(
        default=60.0, gt=0, description="How long a claimed subscription is reserved for its claimer."
    )
    subscription_retry_base_s: float = Field(
        default=5.0, gt=0, description="First retry delay after a failed create or renew (doubles, jittered)."
    )
    subscription_retry_cap_s: float = Field(
        default=300.0, gt=0, description="Longest retry delay after failed creates or renews."
    )
    webhook_debounce_s: float = Field(
        default=1.0,
        ge=0,
        description="Per-calendar window in which further notifications fold into one more sync request.",
    )
    webhook_secret_cache_s: float = Field(
        default=60.0, ge=0, description="How long the gateway caches a subscription's secret hash."
    )
    webhook_unknown_cache_s: float = Field(
        default=1.0, ge=0, description="How long an unknown subscription id stays known as unknown."
    )
    webhook_dedupe_s: float = Field(
        default=600.0, ge=0, description="How long a notification is remembered to drop its duplicates."
    )


def _durations(value: str) -> list[float]:
    """``"5s,5m,30m,2h"`` → seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    out: list[float] = []
    for part in value.split(","):
        part = part.strip().lower()
        if not part:
            continue
        number, unit = (part[:-1], part[-1]) if part[-1] in units else (part, "s")
        try:
            seconds = float(number) * units[unit]
        except ValueError:
            raise ValueError(f"{part!r} is not a duration (e.g. 30s, 5m, 2h, 1d)") from None
        if seconds < 0:
            raise ValueError(f"{part!r} is negative")
        out.append(seconds)
    if not out:
        raise ValueError("the retry schedule is empty")
    return out


class WebhookSettings(BaseSettings):
    """Customer webhooks: how the webhook dispatcher delivers (ARCHITECTURE §9)."""

    model_config = _config()

    webhook_delivery_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="How long one delivery attempt waits for an answer."
    )
    webhook_retry_schedule: str = Field(
        default="5s,5m,30m,2h,5h,10h,10h",
        description="Delays before the 2nd, 3rd, ... attempt of a failing delivery (s, m, h, d units); "
        "after the last the delivery fails. The default retries for 27 h 35 min over 8 attempts.",
    )
    webhook_disable_after_s: float = Field(
        default=432000.0,
        gt=0,
        description="An endpoint that has failed every attempt for this long is disabled "
        "(`disabled_reason: failing`). Default 5 days.",
    )
    webhook_max_endpoints: int = Field(
        default=100, ge=1, description="Most webhook endpoints one application may hold."
    )
    webhook_secret_overlap_s: float = Field(
        default=86400.0,
        ge=0,
        description="How long the old signing secret keeps signing after a rotation "
        "(both signatures are sent).",
    )
    webhook_poll_interval_s: float = Field(
        default=0.5, gt=0, description="How often the dispatcher looks for deliveries that fell due."
    )
    webhook_concurrency: int = Field(
        default=64, ge=1, description="Deliveries one dispatcher process sends at once."
    )
    webhook_response_max_bytes: int = Field(
        default=4096, ge=0, description="How much of an endpoint's answer is read (the rest is dropped)."
    )

    webhook_allow_private_destinations: bool = Field(
        default=False,
        description="Deliver to plain http and to loopback/private addresses outside development "
        "(for test rigs; always allowed in development, refused in production).",
    )

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        _durations(value)
        return value

    @property
    def retry_delays_s(self) -> list[float]:
        return _durations(self.webhook_retry_schedule)

    @property
    def lease_s(self) -> float:
        """How long an attempt holds its delivery: longer than the attempt can take."""
        return self.webhook_delivery_timeout_s + 5.0


class OpsSettings(BaseSettings):
    """The ops console: what it samples for its charts and how often it recomputes its gauges
    (its port and token are ``CHRONAPILOT_OPS_PORT`` / ``CHRONAPILOT_OPS_TOKEN``)."""

    model_config = _config(ENV_PREFIX + "OPS_")

    scrape_targets: str | None = Field(
        default=None,
        description="Comma-separated `name=url` of the `/metrics` the console scrapes for its charts. "
        "Default: every service's internal port on `CHRONAPILOT_HOST` (api 8086, webhook-gateway 8087, "
        "sync-worker 8082, token-refresher 8083, webhook-dispatcher 8085).",
    )
    sample_interval_s: float = Field(
        default=30.0, gt=0, description="How often the console records a chart sample (kept 24 h)."
    )
    gauges_interval_s: float = Field(
        default=15.0, gt=0, description="How often the console recomputes its fleet gauges."
    )
    session_ttl_s: float = Field(
        default=43200.0, gt=0, description="How long a console login (its session cookie) lasts."
    )

    def targets(self, service: ServiceSettings) -> dict[str, str]:
        """Scrape targets by name (the setting, or the services' internal ports)."""
        if self.scrape_targets:
            pairs = (item.split("=", 1) for item in self.scrape_targets.split(",") if "=" in item)
            return {name.strip(): url.strip() for name, url in pairs}
        host = service.host
        ports = {
            "api": service.api_metrics_port,
            "webhook-gateway": service.webhook_gateway_metrics_port,
            "sync-worker": service.sync_worker_port,
            "token-refresher": service.token_refresher_port,
            "webhook-dispatcher": service.webhook_dispatcher_port,
        }
        return {name: f"http://{host}:{port}/metrics" for name, port in ports.items()}


class Settings(BaseSettings):
    """All of ChronaPilot's settings, validated at start."""

    model_config = _config()

    env: Environment = Field(
        default=Environment.DEVELOPMENT, description="`development`, `test` or `production`."
    )
    run_dir: Path = Field(
        default=Path(".run"),
        description="Where development state lives (generated keys, data, logs).",
    )
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    crypto: CryptoSettings = Field(default_factory=CryptoSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)

    @model_validator(mode="after")
    def _keys_required_outside_development(self) -> Settings:
        if self.env is Environment.PRODUCTION and not self.crypto.parsed_keys():
            raise ValueError("CHRONAPILOT_ENCRYPTION_KEYS is required when CHRONAPILOT_ENV=production")
        ring = self.crypto.parsed_keys()
        active = self.crypto.encryption_active_key_id
        if active is not None and ring and active not in ring:
            raise ValueError(f"CHRONAPILOT_ENCRYPTION_ACTIVE_KEY_ID {active!r} is not in the key ring")
        if self.env is Environment.PRODUCTION and self.webhooks.webhook_allow_private_destinations:
            raise ValueError(
                "CHRONAPILOT_WEBHOOK_ALLOW_PRIVATE_DESTINATIONS cannot be set when CHRONAPILOT_ENV=production"
            )
        if self.service.idempotency_lock_s <= self.mongo.operation_timeout_s:
            raise ValueError(
                "CHRONAPILOT_IDEMPOTENCY_LOCK_S must be longer than CHRONAPILOT_MONGODB_OPERATION_TIMEOUT_S "
                "(a request still running must keep its Idempotency-Key)"
            )
        return self

    @property
    def api_base_url(self) -> str:
        return (self.service.public_base_url or f"http://{self.service.host}:{self.service.api_port}").rstrip(
            "/"
        )

    @property
    def webhook_private_destinations_allowed(self) -> bool:
        """Customer webhooks to plain http and loopback/private addresses: in development, or
        where ``CHRONAPILOT_WEBHOOK_ALLOW_PRIVATE_DESTINATIONS`` allows them (never production)."""
        return self.env is Environment.DEVELOPMENT or self.webhooks.webhook_allow_private_destinations

    @property
    def webhook_base_url(self) -> str:
        default = f"http://{self.service.host}:{self.service.webhook_gateway_port}"
        return (self.service.webhook_base_url or default).rstrip("/")


def setting_env_names() -> dict[str, tuple[str, str]]:
    """Every environment variable ChronaPilot reads → (default, description). For docs and tests."""
    names: dict[str, tuple[str, str]] = {
        f"{ENV_PREFIX}ENV": ("development", Settings.model_fields["env"].description or ""),
        f"{ENV_PREFIX}RUN_DIR": (".run", Settings.model_fields["run_dir"].description or ""),
    }
    groups: list[type[BaseSettings]] = [
        MongoSettings,
        KafkaSettings,
        CryptoSettings,
        ProviderSettings,
        ServiceSettings,
        LogSettings,
        TokenSettings,
        SyncSettings,
        RealtimeSettings,
        WebhookSettings,
        OpsSettings,
    ]
    for group in groups:
        for name, field in group.model_fields.items():
            alias = field.validation_alias
            prefix = group.model_config.get("env_prefix", ENV_PREFIX)
            env = alias if isinstance(alias, str) else prefix + name.upper()
            default = "" if field.default is None else str(field.default)
            names[str(env)] = (default, field.description or "")
    return names
