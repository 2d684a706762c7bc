"""The wiring: everything the pipeline runs, built from the configuration, one registry per kind.

This module (with the runner and the CLI) is the only part of the core that knows the plug-ins;
everything else stands on the core's protocols. Registries, each name -> factory:

=================  ==========================================  =================================
registry           protocol                                    chosen by
=================  ==========================================  =================================
:data:`LOGS`       :class:`inferwatch.log.Log`                 ``log.backend``
:data:`STORES`     :class:`inferwatch.audit.AuditStore`        ``audit.backend``
:data:`COLLECTORS` :class:`inferwatch.ingest.Collector`        ``collector.kinds``
:data:`SINKS`      :class:`inferwatch.sink.DetectionSink`      always ``prometheus``; ``alertmanager``
                                                               when ``alertmanager.url`` or
                                                               ``webhook_url`` is set
:data:`DETECTORS`  :class:`inferwatch.detector.Detector`       ``type`` of each
                                                               ``detect.detectors`` entry
=================  ==========================================  =================================

Detectors: :data:`DETECTORS` (a :class:`~inferwatch.detector.DetectorRegistry`) maps the
``type`` of a ``detect.detectors`` entry to a detector class, imported on first use;
:func:`monitor_from` / :func:`build_monitor` hand it to the detectors' runtime.

A new plug-in is one module plus one registration, e.g.::

    from inferwatch.wiring import STORES
    STORES.register("mystore", lambda cfg, parts: MyStore(cfg))

Plug-in modules are imported inside the factories, so the embedded default never imports a
cluster client.

>>> sorted(LOGS.names()), sorted(STORES.names())
(['kafka', 'sqlite'], ['elasticsearch', 'sqlite'])
>>> STORES.build("nope", None, Parts())
Traceback (most recent call last):
...
inferwatch.errors.ConfigError: unknown audit store 'nope'; registered: elasticsearch, sqlite
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from inferwatch import config
from inferwatch.audit import AuditStore
from inferwatch.config import Config
from inferwatch.detector import DetectorRegistry
from inferwatch.errors import ConfigError
from inferwatch.ingest import Collector, plain_message
from inferwatch.log import KeyValue, Log
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, InferenceRecord
from inferwatch.sink import DetectionSink
from inferwatch.sqlite_log import SQLiteLog

if TYPE_CHECKING:
    from detectors.runtime.monitor import Monitor as RuntimeMonitor
    from inferwatch.references import ReferenceStore
    from inferwatch.workers import Monitor

__all__ = ["COLLECTORS", "DETECTORS", "LOGS", "SINKS", "STORES", "Parts", "Registry", "build_audit_store",
           "build_collectors", "build_log", "build_monitor", "build_sinks", "load_config", "monitor_from"]

T = TypeVar("T")


@dataclass(slots=True)
class Parts:
    """What factories may need besides the configuration (the parts built before them)."""

    log: Log | None = None
    metrics: Metrics | None = None
    ready: Callable[[], bool] | None = None


Factory = Callable[[Config, Parts], T]


class Registry(Generic[T]):
    """Name -> factory for one kind of plug-in."""

    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Factory[T]] = {}

    def register(self, name: str, factory: Factory[T]) -> Factory[T]:
        """Register (or replace) ``name``; returns the factory (usable as a decorator via partial)."""
        self._factories[name] = factory
        return factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def build(self, name: str, cfg: Config, parts: Parts) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}") from None
        return factory(cfg, parts)


LOGS: Registry[Log] = Registry("log")
STORES: Registry[AuditStore] = Registry("audit store")
COLLECTORS: Registry[Collector] = Registry("collector")
SINKS: Registry[DetectionSink] = Registry("detection sink")


# -- logs ------------------------------------------------------------------------------------
def _kafka_log(cfg: Config, parts: Parts) -> Log:
    from inferwatch.kafka_log import KafkaLog

    return KafkaLog(cfg.kafka)


LOGS.register("sqlite", lambda cfg, parts: SQLiteLog(cfg.log_path))
LOGS.register("kafka", _kafka_log)


def _to_log(cfg: Config, lg: Log | None) -> Callable[[list[DeadLetter]], None] | None:
    """A callback appending dead letters to the log's dead-letter topic (``None`` without a log)."""
    if lg is None:
        return None

    def to_log(letters: list[DeadLetter]) -> None:
        lg.append(cfg.log.deadletter_topic, [(dl.source.encode(), dl.to_json()) for dl in letters])

    return to_log


# -- audit stores ----------------------------------------------------------------------------
def _elasticsearch_store(cfg: Config, parts: Parts) -> AuditStore:
    """Documents Elasticsearch rejects (mapping or parse errors) also go to the log's dead-letter
    topic, beside the dead-letter index, when there is a log."""
    from sinks.elasticsearch import ElasticsearchAuditStore

    return ElasticsearchAuditStore(cfg.elasticsearch, on_deadletter=_to_log(cfg, parts.log))


def _sqlite_store(cfg: Config, parts: Parts) -> AuditStore:
    from sinks.sqlite_audit import SQLiteAuditStore

    return SQLiteAuditStore(cfg.audit_path)


STORES.register("sqlite", _sqlite_store)
STORES.register("elasticsearch", _elasticsearch_store)


# -- collectors ------------------------------------------------------------------------------
def _http_collector(cfg: Config, parts: Parts) -> Collector:
    from collectors.http import HTTPCollector

    return HTTPCollector(cfg.collector, ready=parts.ready)


def _seldon_v2_collector(cfg: Config, parts: Parts) -> Collector:
    from collectors.seldon_v2 import SeldonV2Collector

    return SeldonV2Collector.from_config(cfg)


def _proxy_collector(cfg: Config, parts: Parts) -> Collector:
    from collectors.proxy import LoggingProxy

    return LoggingProxy.from_config(cfg, log_factory=build_log)


COLLECTORS.register("http", _http_collector)
COLLECTORS.register("seldon-v2", _seldon_v2_collector)
COLLECTORS.register("proxy", _proxy_collector)


def _feedback_topic_collector(cfg: Config, parts: Parts) -> Collector:
    from collectors.feedback_topic import FeedbackTopicCollector

    return FeedbackTopicCollector(cfg.collector)


COLLECTORS.register("feedback_topic", _feedback_topic_collector)


# -- detection sinks -------------------------------------------------------------------------
def _prometheus_sink(cfg: Config, parts: Parts) -> DetectionSink:
    from sinks.prometheus import PrometheusSink

    return PrometheusSink(parts.metrics or Metrics(series_cap=cfg.metrics.series_cap))


def _alert_sink(cfg: Config, parts: Parts) -> DetectionSink:
    """Alerts the service refuses (4xx) go to the log's dead-letter topic, when there is a log."""
    from sinks.alertmanager import AlertSink

    am = cfg.alertmanager
    return AlertSink(am.url, am.webhook_url, am.resolve_timeout_s, on_deadletter=_to_log(cfg, parts.log),
                     extra_labels=am.labels)


SINKS.register("prometheus", _prometheus_sink)
SINKS.register("alertmanager", _alert_sink)


# -- detectors -------------------------------------------------------------------------------
DETECTORS = DetectorRegistry()
"""Detector types by the ``type`` a ``detect.detectors`` entry names (imported on first use)."""

DETECTORS.register("ks", "detectors.drift.ks:KSDrift")
DETECTORS.register("cvm", "detectors.drift.cvm:CVMDrift")
DETECTORS.register("anderson", "detectors.drift.anderson:AndersonDrift")
DETECTORS.register("chi2", "detectors.drift.chisquare:ChiSquareDrift")
DETECTORS.register("fet", "detectors.drift.fisher:FETDrift")
DETECTORS.register("tabular", "detectors.drift.tabular:TabularDrift")
DETECTORS.register("psi", "detectors.drift.psi:PSIDrift")
DETECTORS.register("js", "detectors.drift.jensen_shannon:JSDrift")
DETECTORS.register("hellinger", "detectors.drift.hellinger:HellingerDrift")
DETECTORS.register("wasserstein", "detectors.drift.wasserstein:WassersteinDrift")
DETECTORS.register("mmd", "detectors.drift.mmd:MMDDrift")
DETECTORS.register("classifier", "detectors.drift.classifier:ClassifierDrift")
DETECTORS.register("online_cvm", "detectors.drift.online_cvm:OnlineCVMDrift")
DETECTORS.register("page_hinkley", "detectors.drift.page_hinkley:PageHinkley")
DETECTORS.register("prediction", "detectors.drift.prediction:PredictionDrift", on="outputs")
DETECTORS.register("confidence", "detectors.drift.confidence:ConfidenceDrift", on="outputs")
DETECTORS.register("mahalanobis", "detectors.outlier.mahalanobis:MahalanobisOutlier")
DETECTORS.register("isolation_forest", "detectors.outlier.isolation_forest:IsolationForestOutlier")
DETECTORS.register("zscore", "detectors.outlier.zscore:ZScoreOutlier")
DETECTORS.register("iqr", "detectors.outlier.iqr:IQROutlier")
DETECTORS.register("quality", "detectors.quality.data_quality:DataQuality")
DETECTORS.register("alibi", "detectors.adapters.alibi:AlibiDetector")
# performance: from labels in the window's rows, estimated before labels (fitted on a labelled
# reference), and the live versions of a model against each other (late labels: detect.performance)
DETECTORS.register("realized", "detectors.performance.realized:RealizedPerformance", on="outputs")
DETECTORS.register("cbpe", "detectors.performance.cbpe:CBPE", on="outputs")
DETECTORS.register("dle", "detectors.performance.dle:DLE", on="both")
DETECTORS.register("variant_drift", "detectors.performance.variants:VariantComparison", on="both",
                   across_versions=True)


# -- configuration -------------------------------------------------------------------------
def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """:func:`inferwatch.config.load_config` with the plug-in names checked against these
    registries (``log.backend``, ``audit.backend``, ``collector.kinds``): what the commands use."""
    return config.load_config(path, env=env, overrides=overrides, plugins={
        "log.backend": LOGS, "audit.backend": STORES, "collector.kinds": COLLECTORS})


# -- builders --------------------------------------------------------------------------------
def build_log(cfg: Config) -> Log:
    """The configured log with the pipeline's topics created."""
    lg = LOGS.build(cfg.log.backend, cfg, Parts())
    lg.create_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
    return lg


def log_message(lg: Log, cfg: Config) -> Callable[[InferenceRecord], KeyValue]:
    """How a record goes onto the log (:class:`~inferwatch.ingest.Ingestor`'s ``message``): keyed by
    its model, its JSON as the value, and, when the log carries them (:attr:`Log.carries_audit`) and
    the audit store takes them (``audit.prepared``, Elasticsearch), its audit documents built here
    once (:func:`sinks.elasticsearch.audit_documents`) unless the message would pass
    ``audit.prepared_max_bytes`` with them."""
    if not (cfg.audit.prepared and cfg.audit.backend == "elasticsearch"):
        return plain_message
    from sinks.elasticsearch import audit_documents

    cap = cfg.audit.prepared_max_bytes

    carries: list[bool] = []  # asked of the log at the first record (a log still down is opened then)

    def message(r: InferenceRecord) -> KeyValue:
        key, value = r.model.encode(), r.to_json()
        if not carries:
            try:
                carries.append(bool(getattr(lg, "carries_audit", False)))
            except Exception:  # the log cannot be opened yet: its append says so; asked again next time
                return key, value
        if not carries[0] or 2 * len(value) > cap:  # the documents are at least as large as the record
            return key, value
        audit = audit_documents(r)
        if audit is None or len(value) + len(audit) > cap:
            return key, value
        return key, value, audit

    return message


def build_audit_store(cfg: Config, lg: Log | None = None) -> AuditStore:
    """The configured audit store (with a log, refused documents also reach its dead letters)."""
    return STORES.build(cfg.audit.backend, cfg, Parts(log=lg))


def build_collectors(cfg: Config, ready: Callable[[], bool] | None = None) -> list[Collector]:
    """The configured ways in (``collector.kinds``)."""
    return [COLLECTORS.build(kind, cfg, Parts(ready=ready)) for kind in cfg.collector.kinds]


def build_sinks(cfg: Config, metrics: Metrics, lg: Log | None = None) -> list[DetectionSink]:
    """The detection sinks: metrics always, alerts when an Alertmanager or webhook is configured."""
    names = ["prometheus"]
    if cfg.alertmanager.url or cfg.alertmanager.webhook_url:
        names.append("alertmanager")
    return [SINKS.build(n, cfg, Parts(log=lg, metrics=metrics)) for n in names]


def monitor_from(detect: Mapping[str, Any] | None, references: ReferenceStore) -> RuntimeMonitor:
    """A monitor from a ``detect``-style mapping (``window``, ``detectors``, ``models``: see
    :mod:`detectors.runtime.config`) whose detector types are looked up in :data:`DETECTORS`.
    What the detect role and ``inferwatch report`` both run."""
    from detectors.runtime.monitor import build_monitor as runtime_monitor

    return runtime_monitor(detect, references, DETECTORS)


def build_monitor(cfg: Config) -> Monitor:
    """The detect role's monitor: ``detect.window``, ``detect.detectors`` and ``detect.models``,
    with the references under ``references_path``; with ``detect.performance``, beside it the
    ground-truth join and performance windows (:mod:`detectors.performance.monitor`)."""
    from inferwatch.references import ReferenceStore

    det_cfg: dict[str, Any] = {k: v for k, v in cfg.detect.model_dump().items()
                               if k in ("window", "detectors", "models")}
    drift = monitor_from(det_cfg, ReferenceStore(Path(cfg.references_path)))
    if not cfg.detect.performance:
        return drift
    from detectors.performance.monitor import MonitorPair, build_performance_monitor

    return MonitorPair(drift, build_performance_monitor(cfg.detect.performance))
