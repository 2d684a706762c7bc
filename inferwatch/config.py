"""Configuration: one YAML or TOML file plus ``INFERWATCH_*`` environment overrides.

Every key of every section can be overridden by ``INFERWATCH_<SECTION>_<KEY>`` (upper case),
and the top-level keys by ``INFERWATCH_<KEY>``. Lists are comma separated; mappings are JSON.

>>> cfg = load_config(None, env={"INFERWATCH_LOG_BACKEND": "kafka",
...                              "INFERWATCH_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
>>> cfg.log.backend, cfg.kafka.bootstrap_servers
('kafka', '127.0.0.1:9092')
>>> load_config(None, env={"INFERWATCH_COLLECTOR_PORT": "http"})
Traceback (most recent call last):
...
inferwatch.errors.ConfigError: invalid configuration: collector.port: Input should be a valid integer, unable to parse string as an integer (from INFERWATCH_COLLECTOR_PORT='http')
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from inferwatch.errors import ConfigError
from inferwatch.masking import MASK, register, secret_field

__all__ = [
    "AlertmanagerConfig",
    "AuditConfig",
    "CollectorConfig",
    "Config",
    "DetectConfig",
    "ElasticsearchConfig",
    "KafkaConfig",
    "LogConfig",
    "MetricsConfig",
    "PrometheusConfig",
    "PushgatewayConfig",
    "RedactConfig",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PluginNames(Protocol):
    """What configuration checking needs of a plug-in registry (the wiring's registries)."""

    kind: str

    def __contains__(self, name: object) -> bool: ...

    def names(self) -> list[str]: ...


def _registered(info: ValidationInfo, key: str, name: str) -> str:
    """``name`` if the registry the caller passed for ``key`` knows it.

    The core knows no plug-in: :func:`inferwatch.wiring.load_config` passes the wiring's
    registries (``plugins=``), so a registered plug-in's name is valid and an unknown name is
    refused naming the key; without them the name is checked when the wiring builds the part.
    """
    reg: PluginNames | None = (info.context or {}).get("plugins", {}).get(key)
    if reg is not None and name not in reg:
        raise ValueError(f"unknown {reg.kind} {name!r}; registered: {', '.join(reg.names())}")
    return name


class KafkaConfig(_Section):
    bootstrap_servers: str = "127.0.0.1:19092"
    #: the client library of the log's consumers: kafka-python (the default) or confluent-kafka
    #: (librdkafka; ``pip install 'inferwatch[confluent]'``), which fetches at a fraction of the
    #: CPU per record (bench/bench_audit.py --client); producers and admin stay on kafka-python
    client: Literal["kafka-python", "confluent"] = "kafka-python"
    client_id: str = "inferwatch"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = secret_field()
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    partitions: int = Field(3, ge=1)
    replication_factor: int = Field(1, ge=1)
    retention_ms: int | None = None
    compression_type: Literal["gzip", "snappy", "lz4", "zstd", "none"] = "lz4"
    linger_ms: int = 5
    batch_size: int = 262144
    #: an append not acknowledged within this many seconds fails, and the producer is made
    #: anew (after a long broker outage kafka-python's producer stayed disconnected for good)
    append_timeout_s: float = Field(30.0, gt=0)
    max_poll_records: int = 5000
    #: consumer fetch sizes: how much one fetch response may bring in all and per partition
    #: (large: a busy stream is read in few round trips; bench/bench_detect.py --fetch compares)
    fetch_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_partition_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    #: a fetch waits for this many bytes, at most fetch_max_wait_ms (kafka-python's defaults: 1, 500)
    fetch_min_bytes: int = Field(1, ge=1)
    fetch_max_wait_ms: int = Field(500, ge=0)
    #: static group membership: a stable id per process (e.g. ``detect-1``); a restarted member
    #: with the same id gets its partitions back without a rebalance
    group_instance_id: str | None = None
    #: how long the group waits for a silent member before moving its partitions
    session_timeout_ms: int = Field(10_000, ge=1000)
    heartbeat_interval_ms: int = Field(2_000, ge=100)
    #: a consumer left without partitions this long while its group has entries waiting and its
    #: committed positions stand still (30 s apart) is made anew (kafka-python: a member whose
    #: rejoin never completed was seen holding nothing for good after a rebalance, in a group of one)
    unassigned_timeout_s: float = Field(180.0, gt=0)


class ElasticsearchConfig(_Section):
    hosts: list[str] = ["http://127.0.0.1:19200"]
    username: str | None = None
    password: str | None = secret_field()
    api_key: str | None = secret_field()
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    index_prefix: str = "inferwatch"
    daily_indices: bool = True
    data_stream: bool = False
    ilm_policy: str | None = None
    shards: int = 1
    replicas: int = 0
    chunk_actions: int = 2000
    chunk_bytes: int = 5 * 1024 * 1024
    max_retries: int = 10
    max_backoff_s: float = 30.0


class PrometheusConfig(_Section):
    url: str = "http://127.0.0.1:19090"


class PushgatewayConfig(_Section):
    url: str | None = None
    job: str = "inferwatch"


class AlertmanagerConfig(_Section):
    url: str | None = None
    webhook_url: str | None = None
    resolve_timeout_s: float = 300.0
    # added to every direct alert: set them to Prometheus's external_labels, so that a rule's alert
    # and this sink's alert for the same window are one alert in Alertmanager
    labels: dict[str, str] = {}


class LogConfig(_Section):
    backend: str = "sqlite"  # a name in the wiring's LOGS: sqlite | kafka | a registered plug-in

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str, info: ValidationInfo) -> str:
        return _registered(info, "log.backend", v)
    path: str | None = None
    records_topic: str = "inferwatch.records"
    detections_topic: str = "inferwatch.detections"
    deadletter_topic: str = "inferwatch.deadletter"


class AuditConfig(_Section):
    backend: str = "sqlite"  # a name in inferwatch.wiring.STORES: sqlite | elasticsearch | a registered plug-in

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str, info: ValidationInfo) -> str:
        return _registered(info, "audit.backend", v)
    group: str = "inferwatch-audit"
    path: str | None = None
    #: the collector builds each record's audit documents once and the log carries them beside the
    #: record (Kafka: a header), so the audit role sends them as they are instead of decoding the
    #: record and building them again; when the log is Kafka and the store Elasticsearch. Off, the
    #: audit role builds every document from the record (also those a collector sent with it)
    prepared: bool = True
    #: a record whose log message would pass this many bytes with its documents goes without them
    #: (the documents repeat the payload: about 2-3 times the record's JSON); keep it under the
    #: topic's max.message.bytes
    prepared_max_bytes: int = Field(512 * 1024, ge=0)
    batch_size: int = Field(5000, ge=1)
    poll_timeout_s: float = 0.3


class CollectorConfig(_Section):
    kinds: list[str] = ["http"]  # the ways in the collector role runs (inferwatch.wiring.COLLECTORS)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return [_registered(info, "collector.kinds", k) for k in v]
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    feedback_topic: str = "inferwatch.feedback"  # ground truth as messages (collector kind feedback_topic)
    feedback_group: str = "inferwatch-feedback"
    max_body_bytes: int = 16 * 1024 * 1024
    # the decode budget of one delivery (a request over it gets 413/400 naming the limit) and
    # the threads that decode large deliveries off the event loop
    max_depth: int = Field(64, ge=1, le=200)
    max_columns: int | None = Field(100_000, ge=1)
    max_events: int = Field(1000, ge=1)  # events in one batch, items in one /v1/records list
    max_cells: int | None = Field(100_000_000, ge=1)
    decode_seconds: float = Field(0.5, gt=0)
    decode_workers: int = Field(2, ge=1)
    inline_decode_bytes: int = Field(65_536, ge=0)
    default_protocol: str | None = None
    allowed_headers: list[str] = ["x-request-id", "traceparent", "user-agent", "content-type"]
    #: when set, every endpoint but /healthz needs ``Authorization: Bearer <token>`` or ``X-API-Key``
    auth_tokens: list[str] = secret_field([])
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    #: an append not durable within this many seconds is answered 503 with Retry-After
    append_deadline_s: float = Field(3.0, gt=0)
    retry_after_s: float = Field(2.0, ge=0)
    #: bounds of the work in flight; over them requests are refused at once (503, Retry-After)
    max_inflight_requests: int = Field(64, ge=1)
    max_inflight_bytes: int = Field(64 * 1024 * 1024, ge=1)
    #: a request carrying one of these headers with a true value is not logged (answered 204)
    skip_headers: list[str] = ["seldon-skip-logging", "inferwatch-skip-logging"]
    #: keys of recently acknowledged records: a resend answered 202 without appending again
    recent_keys: int = Field(100_000, ge=1)
    #: a record that brings no id of its own gets a new one per attempt, so a client's resend
    #: after a timeout is a second record. Exactly once needs a client id (the record's ``id``,
    #: ``Ce-Id``/``Ce-Requestid``, ``X-Request-Id``), or an ``Idempotency-Key`` header (the
    #: same key and body give the same ids), or ``id_from_content``: ids derived from a keyed
    #: hash (HMAC-SHA256 with ``id_key``) of the route, the item's place in the request, its
    #: header fields and body. Opt-in, because two genuinely separate identical requests then
    #: count once.
    id_from_content: bool = False
    id_key: str | None = secret_field()

    @model_validator(mode="after")
    def _content_ids_need_a_key(self) -> CollectorConfig:
        if self.id_from_content and not self.id_key:
            raise ValueError("collector.id_from_content needs collector.id_key (the key of the ids' hash; "
                             "the same on every collector and across restarts)")
        return self


class MetricsConfig(_Section):
    """The metrics/health endpoint of roles that run without the collector."""

    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65535)
    auth_tokens: list[str] = secret_field([])
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    # values of a data-driven label (feature, output, class) per model version; later ones: _other
    series_cap: int = Field(50, ge=1)


class RedactConfig(_Section):
    """Personal data removed by the collector before the log (see :mod:`inferwatch.redact`)."""

    fields: list[str] = []
    patterns: list[Literal["email", "card", "phone", "iban"]] = []
    mode: Literal["mask", "hash"] = "mask"
    key: str | None = secret_field()


class DetectConfig(_Section):
    model_config = ConfigDict(extra="allow")
    references_dir: str | None = None
    window: dict[str, Any] = {"type": "count", "size": 500}
    detectors: list[dict[str, Any]] = [{"type": "ks", "p_val": 0.05, "correction": "bonferroni"}]
    models: list[str] | None = None
    #: records per poll (as the audit role's): bench/bench_detect.py measured ~6% less CPU per
    #: record at 5000 than at 500 (Kafka and SQLite logs)
    batch_size: int = Field(5000, ge=1)
    group: str = "inferwatch-detect"
    performance: dict[str, Any] | None = None
    """Realized and estimated performance (detectors.performance.monitor); ``None``: off."""
    #: records already counted are recognised by key within this horizon (kept across restarts)
    dedup_keys: int = Field(20_000, ge=1)
    dedup_age_s: float = Field(900.0, gt=0)
    #: the position, open windows and recent keys are checkpointed at most this often
    checkpoint_interval_s: float = Field(1.0, ge=0)


class SeldonV2Config(_Section):
    """The Seldon Core v2 topic adapter (collector kind ``seldon-v2``)."""

    #: Seldon's Kafka, when not the ``kafka`` section's cluster (security settings are shared)
    bootstrap_servers: str | None = None
    prefix: str = "seldon"
    namespace: str | None = None  # None: every namespace
    pipelines: bool = True
    group: str = "inferwatch-seldon-v2"
    max_records: int = Field(1000, ge=1)
    start: Literal["earliest", "latest"] = "earliest"


class ProxyConfig(_Section):
    """``inferwatch proxy``: the logging reverse proxy in front of a model server."""

    upstream: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    #: the model name for paths that do not name one (Seldon v1, MLflow, any other POST)
    model: str | None = None
    #: where records go: ``log`` (the configured log, Kafka in production) or a collector URL
    send_to: str = "log"
    spool_path: str | None = None
    spool_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    max_queue: int = Field(10_000, ge=1)
    #: bodies larger than this are forwarded whole but logged truncated (``meta.truncated``)
    max_capture_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    timeout_s: float = 300.0


class Config(_Section):
    data_dir: str = "./inferwatch-data"
    log_level: str = "INFO"
    log: LogConfig = LogConfig()
    audit: AuditConfig = AuditConfig()
    collector: CollectorConfig = CollectorConfig()
    metrics: MetricsConfig = MetricsConfig()
    detect: DetectConfig = DetectConfig()
    redact: RedactConfig = RedactConfig()
    kafka: KafkaConfig = KafkaConfig()
    elasticsearch: ElasticsearchConfig = ElasticsearchConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    pushgateway: PushgatewayConfig = PushgatewayConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    seldon_v2: SeldonV2Config = SeldonV2Config()
    proxy: ProxyConfig = ProxyConfig()

    def path_in_data(self, value: str | None, default: str) -> Path:
        """``value`` if set, else ``default`` inside ``data_dir``."""
        return Path(value) if value else Path(self.data_dir) / default

    @property
    def log_path(self) -> Path:
        return self.path_in_data(self.log.path, "log.db")

    @property
    def audit_path(self) -> Path:
        return self.path_in_data(self.audit.path, "audit.db")

    @property
    def references_path(self) -> Path:
        return self.path_in_data(self.detect.references_dir, "references")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, not {type(data).__name__}")
    return data


def _env_value(raw: str, annotation: Any) -> Any:
    text = str(annotation)
    if raw.startswith(("{", "[")):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    if "list" in text:
        return [s.strip() for s in raw.split(",") if s.strip()]
    if raw == "" and "None" in text:
        return None
    return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Fold ``INFERWATCH_*`` variables into ``data``; returns {dotted key: variable name}."""
    origin: dict[str, str] = {}
    for name, field in Config.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            section = data.setdefault(name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"section {name!r} must be a mapping")
            for key, sub in ann.model_fields.items():
                var = f"INFERWATCH_{name}_{key}".upper()
                if var in env:
                    section[key] = _env_value(env[var], sub.annotation)
                    origin[f"{name}.{key}"] = var
        else:
            var = f"INFERWATCH_{name}".upper()
            if var in env:
                data[name] = _env_value(env[var], ann)
                origin[name] = var
    return origin


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None,
                plugins: Mapping[str, PluginNames] | None = None) -> Config:
    """Read ``path`` (YAML or TOML; ``None`` for defaults), apply env and explicit overrides.

    ``plugins`` maps ``log.backend``, ``audit.backend`` and ``collector.kinds`` to the registry
    their names must be in (:func:`inferwatch.wiring.load_config` passes the wiring's)."""
    data: dict[str, Any] = _read_file(Path(path)) if path else {}
    for key, value in (overrides or {}).items():
        section, _, sub = key.partition(".")
        if sub:
            data.setdefault(section, {})[sub] = value
        else:
            data[section] = value
    origin = _apply_env(data, os.environ if env is None else env)
    try:
        cfg = Config.model_validate(data, context={"plugins": dict(plugins or {})})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            where = origin.get(loc)
            shown = MASK if _is_secret_key(loc) else repr((env or os.environ).get(where or ""))
            src = f" (from {where}={shown})" if where else (f" (in {path})" if path else "")
            problems.append(f"{loc}: {err['msg']}{src}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    register(cfg)
    return cfg


def _is_secret_key(dotted: str) -> bool:
    """Whether ``section.key`` names a secret field (its value is never repeated in errors)."""
    section, _, key = dotted.partition(".")
    field = Config.model_fields.get(section)
    ann = field.annotation if field is not None else None
    if not (isinstance(ann, type) and issubclass(ann, BaseModel)) or key not in ann.model_fields:
        return False
    extra = ann.model_fields[key].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))
