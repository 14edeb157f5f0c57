"""One settings object for every ``REFNET_*`` variable, read once at the edge.

Nothing below the CLI (or a test fixture) reads the environment: it is handed a
:class:`Settings`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from connectors.files import write_private_json
from connectors.kafka.auth import KafkaAuth, KafkaAuthError
from schemas.errors import RefnetError
from streams.decisions.limits import (
    DEFAULT_IDLE_EXPIRY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CLOCK_SKEW,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_RETENTION,
    Limits,
)
from streams.decisions.linkage import MIN_SECRET_BYTES
from streams.runtime.config import NetworkConfig

log = logging.getLogger(__name__)

ENV_PREFIX = "REFNET_"
#: Variables of the deploy/*.sh scripts, not of refnet itself.
SCRIPT_VARIABLES = frozenset({"REFNET_VENV"})


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "refnet"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "refnet"


class SettingsError(RefnetError, ValueError):
    """A ``REFNET_*`` variable that cannot be used; the message names it."""


class Settings(BaseModel):
    """refnet's settings. Each field is the variable ``REFNET_<FIELD NAME IN CAPS>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port,...). Unset: the embedded broker.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How to reach Kafka: PLAINTEXT or SASL_SSL (SCRAM)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL (SCRAM) username.")
    kafka_sasl_password: str | None = Field(default=None, description="SASL (SCRAM) password.")
    kafka_ssl_ca: Path | None = Field(
        default=None, description="PEM file of the CA that signed the brokers' certificates."
    )
    kafka_credentials: Path | None = Field(
        default=None,
        description=(
            "A credentials file written by 'refnet provision' (its 'kafka' member); "
            "overrides the four settings above and, if unset, REFNET_KAFKA_BOOTSTRAP."
        ),
    )
    kafka_admin_credentials: Path | None = Field(
        default=None,
        description=(
            "Credentials file of the principal that creates topics, credentials and ACLs "
            "(refnet topics apply, provision, deprovision). Unset: the workers' own settings."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL for the ledger. Unset: the embedded server (pgserver).",
    )
    topic_prefix: str = Field(default="sdoh", description="Prefix of every topic name.")
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="State of the embedded broker, database and worker tables.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Kafka jars resolved by Maven."
    )
    kafka_host: str = Field(default="127.0.0.1", description="Embedded broker's address.")
    kafka_port: int = Field(default=9092, ge=0, le=65535, description="Embedded broker's port.")
    kafka_version: str = Field(default="4.3.1", description="Embedded broker's Kafka version.")
    kafka_heap: str = Field(default="512m", description="Embedded broker's JVM heap (-Xmx).")
    partitions: int = Field(default=6, ge=1, description="Partitions of each catalog topic.")
    replication_factor: int = Field(default=1, ge=1, description="Replication of each topic.")
    app_id: str = Field(default="refnet", description="Faust app id (consumer group).")
    party_rate: float | None = Field(
        default=None,
        gt=0,
        description="Messages a second each clinic or organization may send, per worker;"
        " over it a message is refused as 'limit' (unset: no quota).",
    )
    party_burst: float = Field(
        default=1000.0, ge=1, description="Messages a party may send at once above its rate."
    )
    standby_replicas: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Standby copies of each table partition kept warm on other workers.",
    )
    shutdown_grace: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="Seconds a worker has to stop cleanly after SIGTERM before it exits anyway.",
    )
    default_response_sla: timedelta = Field(
        default=timedelta(hours=24),
        gt=timedelta(0),
        le=timedelta(days=90),
        description="respond_by for a service without response_sla (ISO 8601, at most P90D).",
    )
    max_message_bytes: int = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        le=900 * 1024,
        description="A party message larger than this is dead-lettered (kind limit).",
    )
    max_clock_skew: timedelta = Field(
        default=DEFAULT_MAX_CLOCK_SKEW,
        ge=timedelta(0),
        description="How far ahead of the network's clock an occurred_at may be (ISO 8601).",
    )
    referral_idle_expiry: timedelta = Field(
        default=DEFAULT_IDLE_EXPIRY,
        gt=timedelta(0),
        description="An accepted/in-progress/on-hold referral with no update this long expires.",
    )
    retention: timedelta = Field(
        default=DEFAULT_RETENTION,
        gt=timedelta(0),
        description="How long closed referrals stay in the worker's tables (ISO 8601).",
    )
    max_attempts: int = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        ge=1,
        le=100,
        description="Offers per referral before it ends failed/unmatched.",
    )
    timer_interval: float = Field(
        default=0.5, gt=0, description="Seconds between deadline checks of a worker."
    )
    pattern_refresh: float = Field(
        default=5.0, gt=0, description="Seconds between looks for newly provisioned topics."
    )
    view_snapshot_interval: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds between snapshots of the network view's record, from which a "
            "starting worker goes on instead of reading the whole event log."
        ),
    )
    session_timeout: float = Field(
        default=30.0,
        ge=6,
        description="Seconds before a silent worker's partitions move to the others.",
    )
    metrics_port: int | None = Field(
        default=None, description="Port of the Prometheus /metrics endpoint (unset: off)."
    )
    http_host: str = Field(
        default="127.0.0.1",
        description="Address the metrics and status endpoints listen on (0.0.0.0 in containers).",
    )
    status_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the worker's live status page (needs the ledger; unset: off).",
    )
    status_window: timedelta = Field(
        default=timedelta(days=30),
        gt=timedelta(0),
        description="The status page shows referrals opened within this window (ISO 8601).",
    )
    status_refresh: float = Field(
        default=5.0, ge=0.2, le=3600, description="Seconds between the status page's updates."
    )
    log_level: str = Field(default="info", description="Log level of the worker.")
    gateway_port: int = Field(
        default=8080, ge=1, le=65535, description="Port of 'refnet gateway' (FHIR API, inbox)."
    )
    gateway_base_url: str | None = Field(
        default=None,
        description="The gateway's public URL, for Location headers and notifications "
        "(unset: http://REFNET_HTTP_HOST:REFNET_GATEWAY_PORT).",
    )
    gateway_dev_http_webhooks: bool = Field(
        default=False,
        description="Testing and local development only: let webhooks and Subscriptions post "
        "to http://127.0.0.1 or localhost (otherwise https:// only).",
    )
    gateway_webhook_retry_base: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="Seconds before a failed webhook's first retry; doubles per attempt "
        "(capped at 1 h).",
    )
    gateway_webhook_ca: Path | None = Field(
        default=None,
        description="PEM file of a CA whose certificates webhook receivers may also present "
        "(added to the system's CAs).",
    )
    # -- the gateway's doors: receivers' addresses, per-party limits, connection deadlines
    gateway_allow_private_webhooks: bool = Field(
        default=False,
        description="Testing and local development only: let webhooks and Subscriptions reach "
        "loopback, private, link-local and other non-public addresses.",
    )
    gateway_webhook_deadline: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds one delivery attempt may take in all (connect to the answer's end).",
    )
    gateway_webhook_concurrency: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Delivery attempts in flight at once (one per receiver).",
    )
    gateway_delivery_lease: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds a gateway replica holds a claimed delivery: if it dies mid-attempt "
        "another replica attempts it after this (longer than REFNET_GATEWAY_WEBHOOK_DEADLINE).",
    )
    gateway_max_webhooks: int = Field(
        default=10, ge=0, le=10_000, description="Webhooks one organization may register."
    )
    gateway_max_subscriptions: int = Field(
        default=10, ge=0, le=10_000, description="FHIR Subscriptions one party may hold."
    )
    gateway_max_subscription_bytes: int = Field(
        default=16_384,
        ge=1024,
        le=1_000_000,
        description="The largest Subscription resource the gateway stores (bytes of JSON).",
    )
    gateway_read_timeout: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a whole request (headers and body) before "
        "the gateway closes its connection.",
    )
    gateway_max_connections: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="Connections and requests the gateway serves at once (more: 503).",
    )
    gateway_confirm_wait: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Seconds an organization's Task update (PATCH, PUT) waits for the "
        "network's answer before it is answered 202 (the report pending).",
    )
    gateway_replica: str = Field(
        default="",
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]*$",
        description="This gateway replica's name in its Kafka transactional ids (one per "
        "replica; empty: the host name and REFNET_GATEWAY_PORT).",
    )
    gateway_producers: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Kafka producers writing as parties the gateway holds open at once (the "
        "least recently used idle one is closed to make room).",
    )
    gateway_producer_idle: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="Seconds after which a producer writing as a party, unused, is closed.",
    )

    # ---- refnet mllp: HL7 v2 ADT over MLLP (docs/encounters.md)
    mllp_host: str = Field(
        default="127.0.0.1", description="Address 'refnet mllp' listens on (--host overrides)."
    )
    mllp_port: int = Field(
        default=2575, ge=0, le=65535, description="Port of 'refnet mllp' (--port overrides)."
    )
    mllp_max_message_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="An MLLP frame larger than this is answered AR and its connection closed.",
    )
    mllp_read_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds an MLLP connection may go without sending a whole frame.",
    )
    mllp_max_connections: int = Field(
        default=200, ge=1, le=100_000, description="MLLP connections open at once, in all."
    )
    mllp_max_connections_per_peer: int = Field(
        default=20, ge=1, le=100_000, description="MLLP connections open at once per address."
    )
    mllp_time_zone: str = Field(
        default="America/New_York",
        description="IANA time zone of HL7 times sent without an offset.",
    )
    mllp_facility_cache: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds the list of provisioned facilities (their topics) is reused.",
    )
    mllp_tls_cert: Path | None = Field(
        default=None, description="PEM certificate of the MLLP listener (with the key: TLS)."
    )
    mllp_tls_key: Path | None = Field(
        default=None, description="PEM private key of REFNET_MLLP_TLS_CERT."
    )
    mllp_tls_client_ca: Path | None = Field(
        default=None,
        description="PEM CA of facilities' client certificates: mutual TLS, and each "
        "certificate's CN must be the MSH-4 facility id.",
    )

    # ---------------------------------------------------------------- encounters
    linkage_secret: SecretStr | None = Field(
        default=None,
        description=(
            "The network's secret that keys patients' linkage keys (HMAC of their "
            f"demographics; at least {MIN_SECRET_BYTES} bytes, the same on every worker, "
            "never shown to parties). Unset: generated once into "
            "REFNET_DATA_DIR/linkage-secret.json (owner-only; local development)."
        ),
    )

    def linkage_secret_bytes(self) -> bytes:
        """The linkage secret: REFNET_LINKAGE_SECRET, else the local development one
        (generated once, kept owner-only under the data dir). Never logged."""
        if self.linkage_secret is not None:
            secret = self.linkage_secret.get_secret_value().encode("utf-8")
            if len(secret) < MIN_SECRET_BYTES:
                raise SettingsError(
                    f"REFNET_LINKAGE_SECRET: at least {MIN_SECRET_BYTES} bytes are needed"
                )
            return secret
        path = self.data_dir / "linkage-secret.json"
        try:
            stored = json.loads(path.read_text())["secret"]
        except FileNotFoundError:
            stored = secrets.token_hex(32)
            write_private_json(path, {"secret": stored})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            why = type(exc).__name__
            raise SettingsError(f"{path}: not a linkage secret file ({why})") from None
        if not isinstance(stored, str) or len(stored.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"{path}: the linkage secret is too short")
        log.warning(
            "linkage secret from %s (local development): every worker of one network needs "
            "the same one; set REFNET_LINKAGE_SECRET for workers that do not share the data dir",
            path,
        )
        return stored.encode("utf-8")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``REFNET_*`` variables; empty values count as unset."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw.strip() != "":
                values[name] = raw.strip()
        known = {ENV_PREFIX + n.upper() for n in cls.model_fields}
        unknown = sorted(
            k
            for k in env
            if k.startswith(ENV_PREFIX) and k not in known and k not in SCRIPT_VARIABLES
        )
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise SettingsError(problems) from None

    def kafka_auth(self) -> KafkaAuth:
        """How refnet's Kafka clients authenticate (a credentials file wins)."""
        try:
            if self.kafka_credentials is not None:
                return KafkaAuth.from_file(self.kafka_credentials)[1]
            return KafkaAuth(
                security_protocol=self.kafka_security_protocol,
                username=self.kafka_sasl_username,
                password=self.kafka_sasl_password,
                ca_location=str(self.kafka_ssl_ca) if self.kafka_ssl_ca else None,
            )
        except KafkaAuthError as exc:
            raise SettingsError(f"REFNET_KAFKA_*: {exc}") from None

    def kafka_admin_auth(self) -> KafkaAuth:
        """How the CLI's admin calls authenticate: REFNET_KAFKA_ADMIN_CREDENTIALS, else
        the workers' own settings (:meth:`kafka_auth`)."""
        if self.kafka_admin_credentials is None:
            return self.kafka_auth()
        try:
            return KafkaAuth.from_file(self.kafka_admin_credentials)[1]
        except KafkaAuthError as exc:
            raise SettingsError(f"REFNET_KAFKA_ADMIN_CREDENTIALS: {exc}") from None

    def network(self) -> NetworkConfig:
        """The worker's part of the settings, as plain values (streams/ never reads these)."""
        return NetworkConfig(
            app_id=self.app_id,
            topic_prefix=self.topic_prefix,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            data_dir=self.data_dir,
            database_url=self.database_url,
            timer_interval=self.timer_interval,
            pattern_refresh=self.pattern_refresh,
            view_snapshot_interval=self.view_snapshot_interval,
            session_timeout=self.session_timeout,
            standby_replicas=self.standby_replicas,
            party_rate=self.party_rate,
            party_burst=self.party_burst,
            http_host=self.http_host,
            status_port=self.status_port,
            status_window=self.status_window,
            status_refresh=self.status_refresh,
            kafka_auth=self.kafka_auth(),
            linkage_secret=self.linkage_secret_bytes(),
            limits=Limits(
                max_message_bytes=self.max_message_bytes,
                max_clock_skew=self.max_clock_skew,
                idle_expiry=self.referral_idle_expiry,
                retention=self.retention,
                max_attempts=self.max_attempts,
                default_response_sla=self.default_response_sla,
            ),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with fields replaced (validated)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for the README and --help."""
    rows = []
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = TypeAdapter(type(default)).dump_python(default, mode="json") if default else ""
        rows.append((ENV_PREFIX + name.upper(), str(shown), info.description or ""))
    return rows
