"""The one settings object, read once at start-up from ``FLEET_*`` environment variables.

>>> s = Settings(kafka_bootstrap="kafka-1:9092,kafka-2:9092")
>>> s.bootstrap_servers
['kafka-1:9092', 'kafka-2:9092']
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from twins.decoding import InputLimits


class Settings(BaseSettings):
    """Every knob of the service. Environment variable = ``FLEET_`` + upper-case field name."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", env_file=".env", extra="ignore")

    # --- Kafka ---
    kafka_bootstrap: str | None = Field(
        None, description="Comma-separated bootstrap servers. Unset: `fleet run` starts the embedded Tansu broker."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    verify_end_offsets: bool = Field(
        False, description="Probe end offsets before changelog recovery (needed on the embedded Tansu broker)."
    )
    replication_factor: int = Field(1, ge=1, le=5, description="Replication of the topics we create.")
    partitions: int = Field(4, ge=1, le=1024, description="Partitions of the telemetry topic and the twin table.")

    # --- topics ---
    topic_telemetry: str = "fleet.telemetry"
    topic_telemetry_dlq: str = "fleet.telemetry.dlq"
    topic_weather: str = "fleet.weather"
    topic_weather_dlq: str = "fleet.weather.dlq"

    topic_maintenance: str = "fleet.maintenance"
    topic_maintenance_dlq: str = "fleet.maintenance.dlq"
    topic_charging_requests: str = "fleet.charging.requests"
    topic_grid: str = "fleet.grid"
    topic_charging_schedules: str = "fleet.charging.schedules"
    topic_charging_dlq: str = "fleet.charging.dlq"
    topic_alerts: str = "fleet.alerts"

    # --- charging ---
    charging_sites: Path | None = Field(
        None, description="JSON file with the charging sites (depots); unset = no charging planner."
    )
    charging_replan_minutes: int = Field(15, ge=1, le=1440, description="Re-plan every site at least this often.")

    # --- risk scoring ---
    risk_model_dir: Path | None = Field(
        None, description="Risk model artifact, or a directory of versioned artifacts (newest wins, hot reload)."
    )
    risk_score_interval_s: float = Field(300.0, gt=0, description="Score a changed vehicle at most this often.")
    risk_score_tick_s: float = Field(1.0, gt=0, description="How often the scorer looks for due vehicles.")
    risk_reload_s: float = Field(10.0, gt=0, description="How often the model directory is checked.")
    risk_batch_max: int = Field(4_000, ge=1, description="Most twins scored in one batch (~0.2 s of the event loop "
                                "for stored twins, which are decoded).")

    # --- alerts ---
    alert_rules: Path | None = Field(
        None, description="Alert rules TOML file; unset = the shipped twins/alerts/default_rules.toml."
    )
    alert_rules_reload_s: float = Field(5.0, gt=0, description="How often the rules file is checked for changes.")
    alert_sweep_s: float = Field(
        30.0, gt=0, description="How often silent vehicles are checked against the staleness rules."
    )
    alert_keep_resolved_h: float = Field(
        168.0, gt=0, description="Resolved alerts stay queryable in GET /alerts this long (the topic keeps all)."
    )
    sse_heartbeat_s: float = Field(15.0, gt=0, description="Keep-alive comment interval on GET /alerts/stream.")

    # --- weather join ---
    weather_cell_precision: int = Field(
        4, ge=2, le=7, description="Geohash characters of a weather cell (4 = about 39 km x 20 km)."
    )
    default_home_cell: str = Field(
        "dhwf", pattern=r"^[0-9b-hjkmnp-z]{2,7}$", description="Weather cell of vehicles without a fix or registry entry."
    )
    vehicle_registry: Path | None = Field(
        None, description="CSV with columns vin,home_lat,home_lon: home cell of vehicles that have no fix yet."
    )

    # --- Faust worker ---
    app_id: str = Field("fleet-assurance", pattern=r"^[A-Za-z0-9._-]+$")
    store: str = Field("memory://", description="Table store: memory:// (tests, dev) or rocksdb:// (production).")
    data_dir: Path = Path("var/worker")
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    web_bind: str | None = Field(
        None, description="Address the API listens on; unset = FLEET_WEB_HOST. 0.0.0.0 (all interfaces) only on "
                          "purpose, e.g. in a pod whose FLEET_WEB_HOST is its DNS name.")
    web_tls_cert_file: Path | None = Field(None, description="PEM certificate: serve the API over HTTPS.")
    web_tls_key_file: Path | None = Field(None, description="PEM private key of FLEET_WEB_TLS_CERT_FILE.")

    # --- API identity and access ---
    auth_mode: Literal["jwt", "off"] = Field(
        "jwt", description="jwt: every route but /healthz and /readyz needs a bearer token; off: development only.")
    auth_hs256_secret: SecretStr | None = Field(
        None, description="Shared secret of HS256 tokens (small set-ups; `fleet token` mints them).")
    auth_public_key_file: Path | None = Field(None, description="PEM public key (RS256 or ES256) of the token issuer.")
    auth_jwks_file: Path | None = Field(None, description="JWKS file of the identity provider (keys chosen by kid).")
    auth_issuer: str | None = Field(None, description="Required `iss` claim, when set.")
    auth_audience: str | None = Field(None, description="Required `aud` claim, when set.")
    auth_leeway_s: float = Field(30.0, ge=0, le=600, description="Clock skew allowed on exp and nbf.")
    auth_sse_query_token: bool = Field(
        False, description="Accept ?access_token= on GET /alerts/stream (browsers' EventSource sends no headers).")
    auth_service_token: SecretStr | None = Field(
        None, description="Token this worker sends to its peers (scatter-gather, forwarding) when it cannot mint "
                          "one itself (no HS256 secret).")
    metrics_access: Literal["open", "token", "port"] = Field(
        "open", description="/metrics: open, token (scope metrics:read), or port (served only on FLEET_METRICS_PORT).")
    metrics_port: int = Field(9464, ge=1, le=65535, description="Port of /metrics when FLEET_METRICS_ACCESS=port.")
    topic_audit: str = "fleet.audit"
    web_idle_timeout_s: float = Field(
        15.0, gt=0, le=3600,
        description="A connection without a complete request for this long (slow headers, idle keep-alive) "
                    "is closed.")
    session_timeout_s: float = Field(10.0, gt=0, description="Consumer group session timeout.")
    rebalance_timeout_s: float = Field(10.0, gt=0, description="Consumer group rebalance timeout.")
    heartbeat_interval_s: float = Field(1.0, gt=0)
    commit_interval_s: float = Field(1.0, gt=0, description="How often consumed offsets are committed.")
    log_level: Literal["debug", "info", "warn", "error", "crit"] = "info"
    shutdown_timeout_s: float = Field(
        10.0, gt=0, le=300, description="SIGTERM/SIGINT: the worker drains (flush, commit, leave the group, close "
        "SSE streams) for at most this long, then exits anyway."
    )

    # --- ingest fast path ---
    fetch_max_wait_ms: int = Field(
        100, ge=0, le=5000, description="Longest a fetch may wait on the broker for data (latency vs requests)."
    )
    ingest_max_records: int = Field(10_000, ge=1, description="Records per fetch handed to the batch ingest.")
    twin_flush_interval_s: float = Field(
        5.0, gt=0, le=60, description="Dirty twins are written to the changelog table at most this often."
    )
    twin_flush_max_dirty: int = Field(
        10_000, ge=1, description="Flush early once this many twins are dirty. Dirty twins are held as objects "
        "(~6-14 KB each, against ~1.5-2 KB stored), so this bounds their memory (~60-140 MB).")

    # --- input boundary (every topic) ---
    max_record_bytes: int = Field(
        256 * 1024, ge=1024, le=64 << 20,
        description="Records with a larger value are dead-lettered as too_large without being decoded.")
    max_future_skew_s: float = Field(
        300.0, ge=0, le=86_400,
        description="Event times further ahead of the worker's clock are dead-lettered as future_ts.")
    seq_jump_max: int = Field(
        100_000, ge=64, description="A seq further above a vehicle's highest is taken as a producer restart.")
    dlq_max_value_bytes: int = Field(
        1_000_000, ge=1024, le=64 << 20,
        description="Dead letters keep the original value up to this size (the broker's message limit less "
                    "headers); the rest is cut, with its length and SHA-256 in headers.")

    # --- twin semantics ---
    stale_after_s: float = Field(900.0, gt=0, description="A vehicle silent for longer is 'stale'.")

    # --- signed telemetry, Kafka TLS, model integrity (issue 16; README "Signed telemetry, Kafka security
    # and model integrity") ---
    signing_mode: Literal["off", "verify", "require"] = Field(
        "off", description="Record signatures on telemetry and maintenance: off; verify (signed records are "
                           "checked, unsigned ones accepted and counted); require (unsigned ones dead-lettered).")
    signing_keys: Path | None = Field(
        None, description="JSON keys file of the HMAC signing keys (twins.signing); the simulator signs with it "
                          "too. Needed for verify and require.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle (PEM) to verify the brokers (SSL, SASL_SSL).")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(None, description="Private key (PEM) of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="Password of an encrypted client key.")
    kafka_ssl_check_hostname: bool = Field(True, description="Check the broker's certificate names its host.")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        for server in v.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"FLEET_KAFKA_BOOTSTRAP entry {server!r} must look like host:port")
        return v

    @model_validator(mode="after")
    def _sasl_complete(self) -> "Settings":
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"FLEET_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "FLEET_KAFKA_SASL_MECHANISM, FLEET_KAFKA_SASL_USERNAME and FLEET_KAFKA_SASL_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _auth_has_keys(self) -> "Settings":
        if self.auth_hs256_secret is not None and len(self.auth_hs256_secret.get_secret_value()) < 32:
            raise ValueError("FLEET_AUTH_HS256_SECRET must be at least 32 characters")
        if (self.web_tls_cert_file is None) != (self.web_tls_key_file is None):
            raise ValueError("FLEET_WEB_TLS_CERT_FILE and FLEET_WEB_TLS_KEY_FILE go together")
        return self

    @model_validator(mode="after")
    def _signing_has_keys(self) -> "Settings":
        if self.signing_mode != "off" and self.signing_keys is None:
            raise ValueError(f"FLEET_SIGNING_MODE={self.signing_mode} needs FLEET_SIGNING_KEYS (the keys file)")
        tls_files = [n for n in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile") if getattr(self, n)]
        if tls_files and self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(f"FLEET_{tls_files[0].upper()} is set but FLEET_KAFKA_SECURITY_PROTOCOL="
                             f"{self.kafka_security_protocol} does not use TLS; set SSL or SASL_SSL")
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError("FLEET_KAFKA_SSL_KEYFILE needs FLEET_KAFKA_SSL_CERTFILE (its certificate)")
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """Bootstrap servers as a list (empty when the embedded broker is to be used)."""
        return [s.strip() for s in self.kafka_bootstrap.split(",")] if self.kafka_bootstrap else []

    @property
    def input_limits(self) -> "InputLimits":
        """The bounds of the decoding boundary (:class:`twins.decoding.InputLimits`)."""
        from twins.decoding import InputLimits

        return InputLimits(self.max_record_bytes, int(self.max_future_skew_s * 1000))

    @property
    def stale_after_ms(self) -> int:
        """:attr:`stale_after_s` in milliseconds."""
        return int(self.stale_after_s * 1000)

    def changelog_topic(self, table: str) -> str:
        """Faust's name for a table's changelog topic."""
        return f"{self.app_id}-{table}-changelog"

    @property
    def weather_changelog_topic(self) -> str:
        """Faust's name for the weather table's changelog."""
        return f"{self.app_id}-weather-changelog"

    @property
    def twin_changelog_topic(self) -> str:
        """Faust's name for the twin table's changelog."""
        return f"{self.app_id}-twins-changelog"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (plus explicit overrides), raising a clear error."""
    from pydantic import ValidationError

    from twins.errors import ConfigurationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"FLEET_{'_'.join(str(p) for p in e['loc']).upper() or '?'}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}. Fix the environment variables and restart.") from None
