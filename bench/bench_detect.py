"""The detect role's rate and CPU per record against the audit role's, in one run.

On the same log contents (records of 50 features: 40 numeric, 10 categorical, one model),
for the stack's Kafka (``python -m stack up``) and the embedded SQLite log:

1. the detect role (``DetectWorker``: poll, decode, dedup, windows of 1,000 rows, the
   ``tabular`` detector set — KS on the numeric and chi-squared on the categorical features,
   one correction — against a 2,000-row reference, detections to the log, checkpoint);
2. the audit role (``AuditWorker``) into its store (Elasticsearch for Kafka, SQLite for the
   embedded log), consumed to the end;

then prints records/s (wall) and CPU µs per record (``time.process_time`` of this process:
every thread of the role, not the broker's or the node's), and the ratio detect / audit of
both. The machine is usually shared: the CPU ratio is the figure to trust, wall rates move
with the load.

A second pass of each role runs with a per-stage CPU timer (``time.thread_time`` around the
stages, wrapped here in the harness, not in the roles): fetch, decode, dedup, window update,
detector tests, log appends and commit for detect; fetch, decode, document building,
serialisation, bulk I/O (the client's side) and commit for audit. The timer's own cost per
call is measured and printed.

    python bench/bench_detect.py [--records 20000] [--logs kafka,sqlite] [--clients kafka-python,confluent]
                                 [--detect-batch 500,5000] [--fetch]

On Kafka, both roles run on each client library of the log's consumers (``--clients``, the
``kafka.client`` setting) over the same topic; each also reads the topic through the log's
consumer alone (process CPU, so librdkafka's own threads count, which the stage timer's thread
CPU does not see), and the fetch per record of each client is printed side by side.

``--fetch`` also reads the topic with the Kafka consumer alone under fetch settings, and with
confluent-kafka (``inferwatch[confluent]``) when it is installed: the client library's floor.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from inferwatch.config import Config
from inferwatch.dedup import SeenKeys
from inferwatch.metrics import Metrics
from inferwatch.record import InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.wiring import build_audit_store, build_log, build_monitor, load_config, log_message
from inferwatch.workers import AuditWorker, DetectWorker, tune_gc

ES = os.environ.get("INFERWATCH_ELASTICSEARCH_HOSTS", "http://127.0.0.1:19200")
KAFKA = os.environ.get("INFERWATCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
NUM = [f"x{j}" for j in range(40)]
CAT = [f"c{j}" for j in range(10)]
MODEL = "bench-detect"


def reference(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f: rng.normal(size=n) for f in NUM}
    for f in CAT:
        data[f] = rng.choice([f"k{i}" for i in range(8)], n)
    return pd.DataFrame(data)


def records(n: int, tag: str) -> list[InferenceRecord]:
    df = reference(n, seed=2)
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    cols = {f: df[f].tolist() for f in NUM + CAT}
    return [InferenceRecord(id=f"{tag}-{i}", model=MODEL, version="v1", timestamp=t0 + timedelta(milliseconds=i),
                            protocol="kserve-v1", inputs={f: [cols[f][i]] for f in cols},
                            outputs={"score": [0.5]}, latency_ms=2.0, part="both")
            for i in range(n)]


# -- the per-stage timer (harness only) ------------------------------------------------------
class Stages:
    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock, cpu, calls = time.thread_time, self.cpu, self.calls

        def timed(*a: Any, **k: Any) -> Any:
            t = clock()
            try:
                return fn(*a, **k)
            finally:
                cpu[name] += clock() - t
                calls[name] += 1
        return timed

    def wrap_iter(self, name: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        """Time the work of each step of a generator (what it does between yields)."""
        clock, cpu, calls = time.thread_time, self.cpu, self.calls

        def timed(*a: Any, **k: Any) -> Iterator[Any]:
            it = fn(*a, **k)
            while True:
                t = clock()
                try:
                    item = next(it)
                except StopIteration:
                    cpu[name] += clock() - t
                    return
                cpu[name] += clock() - t
                calls[name] += 1
                yield item
        return timed


@contextlib.contextmanager
def es_stages(st: Stages | None) -> Iterator[None]:
    """Time the Elasticsearch store's serialiser (``_line``) and its ``_bulk`` call for one run,
    and put the originals back after: they are module-level, so a second run's timer wrapped
    around the first's counted every later call in both runs' figures."""
    import sinks.elasticsearch as es_store

    line, send = es_store._line, es_store._Bulk.send
    if st is not None:
        es_store._line = st.wrap("  serialisation", line)  # type: ignore[assignment]
        es_store._Bulk.send = st.wrap("bulk I/O (client side)", send)  # type: ignore[method-assign]
    try:
        yield
    finally:
        es_store._line, es_store._Bulk.send = line, send  # type: ignore[method-assign]


def timer_cost() -> float:
    """CPU seconds one wrapped call adds (two thread_time calls and the bookkeeping)."""
    s = Stages()
    f = s.wrap("x", lambda: None)
    n = 200_000
    c0 = time.thread_time()
    for _ in range(n):
        f()
    t_wrapped = time.thread_time() - c0
    g = lambda: None  # noqa: E731
    c0 = time.thread_time()
    for _ in range(n):
        g()
    return max(0.0, (t_wrapped - (time.thread_time() - c0)) / n)


# -- the roles --------------------------------------------------------------------------------
def config(kind: str, tag: str, root: Path, detect_batch: int) -> Config:
    over: dict[str, Any] = {
        "data_dir": str(root / "data"), "log.records_topic": f"bd-{tag}.records",
        "log.detections_topic": f"bd-{tag}.detections", "log.deadletter_topic": f"bd-{tag}.deadletter",
        "audit.group": f"bd-audit-{tag}", "detect.group": f"bd-detect-{tag}",
        "detect.window": {"type": "count", "size": 1000},
        "detect.detectors": [{"type": "tabular", "p_val": 0.05}],
        "detect.batch_size": detect_batch, "detect.references_dir": str(root / "refs"),
    }
    if kind == "kafka":
        over.update({"log.backend": "kafka", "kafka.bootstrap_servers": KAFKA, "audit.backend": "elasticsearch",
                     "elasticsearch.hosts": [ES], "elasticsearch.index_prefix": f"bd-{tag}"})
    else:
        over.update({"log.backend": "sqlite", "audit.backend": "sqlite"})
    return load_config(None, env={}, overrides=over)


def _join(consumer: Any) -> None:
    """Join the group (and assign partitions) before the clock starts, then rewind."""
    deadline = time.monotonic() + 60
    while not consumer.poll(1, timeout=1.0):
        if time.monotonic() > deadline:
            raise RuntimeError("no records after 60 s")
    consumer.seek_to_committed()


def run_detect(cfg: Config, n: int, stages: Stages | None) -> tuple[float, float, int]:
    lg = build_log(cfg)
    worker = DetectWorker(cfg, lg, build_monitor(cfg), metrics=Metrics())
    worker.ensure_connected()
    worker.connected = True
    assert worker.consumer is not None
    _join(worker.consumer)
    saved = InferenceRecord.__dict__["from_json"]
    # the worker makes a monitor and a dedup horizon per partition when it first sees one: their
    # classes' methods are timed (and put back after the run)
    mon_cls = type(build_monitor(cfg))
    patched = [(SeenKeys, "first", "dedup"), (mon_cls, "process", "windows + detectors"),
               (mon_cls, "_run", "  of which detector tests")]
    originals = [(cls, name, cls.__dict__[name]) for cls, name, _ in patched]
    if stages is not None:
        c = worker.consumer
        c.poll = stages.wrap("fetch", c.poll)  # type: ignore[method-assign]
        c.commit = stages.wrap("commit + checkpoint", c.commit)  # type: ignore[method-assign]
        InferenceRecord.from_json = stages.wrap("decode", InferenceRecord.from_json)  # type: ignore[method-assign]
        for cls, name, label in patched:
            setattr(cls, name, stages.wrap(label, getattr(cls, name)))
        lg.append = stages.wrap("log appends", lg.append)  # type: ignore[method-assign]
    done = 0
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        # records stepped through can pass n before every window closed: a rebalance right after
        # the first join (kafka-python does one) repositions and reads entries again (recognised,
        # not counted twice in windows); so also until every window is there (bounded)
        deadline = time.monotonic() + 300
        while (done < n or len(worker.detections) < n // 1000) and time.monotonic() < deadline:
            done += worker.step()
        worker.checkpoint()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        InferenceRecord.from_json = saved  # type: ignore[method-assign]
        for cls, name, original in originals:
            setattr(cls, name, original)
        worker.close()
        lg.close()
    return wall, cpu, len(worker.detections)


def audit_config(cfg: Config, run: str) -> Config:
    """A fresh group and fresh indices (a second run into the same indices would be a replay)."""
    return cfg.model_copy(update={
        "audit": cfg.audit.model_copy(update={"group": f"{cfg.audit.group}-{run}",
                                              "path": f"{cfg.data_dir}/audit-{run}.db"}),
        "elasticsearch": cfg.elasticsearch.model_copy(update={"index_prefix": f"{cfg.elasticsearch.index_prefix}-{run}"})})


def run_audit(cfg: Config, n: int, stages: Stages | None) -> tuple[float, float]:
    lg = build_log(cfg)
    store = build_audit_store(cfg, lg)
    worker = AuditWorker(cfg, lg, store, Metrics())
    worker.ensure_connected()
    worker.connected = True
    _join(worker.consumers[0][0])
    if stages is not None:
        for c, kind in worker.consumers:
            c.poll = stages.wrap("fetch" if kind == "records" else "fetch (quiet topics)", c.poll)  # type: ignore[method-assign]
            c.commit = stages.wrap("commit", c.commit)  # type: ignore[method-assign]
        worker._decode = stages.wrap("decode", worker._decode)  # type: ignore[method-assign]
        worker._write_retrying = stages.wrap("writer thread, all", worker._write_retrying)  # type: ignore[method-assign]
        if hasattr(store, "_record_actions"):  # Elasticsearch: document building, lines, the _bulk calls
            store._record_actions = stages.wrap_iter("  document building", store._record_actions)  # type: ignore[attr-defined]
    es = stages is not None and hasattr(store, "_record_actions")
    try:
        with es_stages(stages if es else None):
            w0, c0 = time.perf_counter(), time.process_time()
            while worker.documents < n:
                worker.step()
            worker._finish()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        worker.close()
        store.close()
        lg.close()
    return wall, cpu


def fetch_only(cfg: Config, n: int, variant: dict[str, Any], group: str) -> float:
    """CPU seconds of reading the records topic to its end through the log's consumer alone."""
    kcfg = cfg.model_copy(update={"kafka": cfg.kafka.model_copy(update=variant)})
    lg = build_log(kcfg)
    c = lg.consumer(kcfg.log.records_topic, group)
    try:
        _join(c)
        got = 0
        c0 = time.process_time()
        while got < n:
            got += len(c.poll(kcfg.audit.batch_size, timeout=1.0))
        return time.process_time() - c0
    finally:
        c.close()
        lg.close()


def fetch_confluent(cfg: Config, n: int, entries: bool) -> float:
    """CPU seconds of reading the records topic to its end with confluent-kafka (librdkafka; its
    threads count: process CPU), ``consume(num_messages=batch)`` on every partition assigned from
    the beginning; with ``entries``, also a :class:`~inferwatch.log.LogEntry` per message (what a
    log backend hands the roles). The floor a second Kafka client library would give the fetch."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from inferwatch.log import LogEntry

    k = cfg.kafka
    c = Consumer({"bootstrap.servers": k.bootstrap_servers, "group.id": f"bd-confluent-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.max.bytes": k.fetch_max_bytes,
                  "max.partition.fetch.bytes": k.max_partition_fetch_bytes, "isolation.level": "read_committed"})
    try:
        parts = c.list_topics(cfg.log.records_topic, timeout=10).topics[cfg.log.records_topic].partitions
        c0 = time.process_time()
        c.assign([TopicPartition(cfg.log.records_topic, p, OFFSET_BEGINNING) for p in parts])
        got = 0
        while got < n:
            msgs = c.consume(num_messages=cfg.audit.batch_size, timeout=1.0)
            if entries:
                out = []
                for m in msgs:
                    if m.error() is None:
                        out.append(LogEntry(m.topic(), m.partition(), m.offset(), m.key(), m.value(),  # type: ignore[arg-type]
                                            m.timestamp()[1] / 1000.0))
                got += len(out)
            else:
                got += sum(1 for m in msgs if m.error() is None)
        return time.process_time() - c0
    finally:
        c.close()


FETCH_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("defaults", {}),
    ("max_poll_records 10000", {"max_poll_records": 10_000}),
    ("fetch_min_bytes 1 MiB, max wait 100 ms", {"fetch_min_bytes": 1 << 20, "fetch_max_wait_ms": 100}),
    ("small fetches (1 MiB, 256 KiB/partition)", {"fetch_max_bytes": 1 << 20, "max_partition_fetch_bytes": 1 << 18}),
]


def print_stages(title: str, st: Stages, n: int, cost: float) -> None:
    print(f"  {title}: CPU µs per record by stage (thread CPU; timer cost {cost * 1e6:.2f} µs per call "
          "included)")
    for name, v in st.cpu.items():
        print(f"    {name:42s} {v / n * 1e6:8.1f} µs   ({st.calls[name]} calls)")


def with_client(cfg: Config, client: str) -> Config:
    """``cfg`` with the Kafka log's consumers on ``client`` (kafka-python or confluent)."""
    return cfg.model_copy(update={"kafka": cfg.kafka.model_copy(update={"client": client})})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--logs", default="kafka,sqlite")
    ap.add_argument("--clients", default="kafka-python,confluent",
                    help="the Kafka log's client libraries to run the roles on (kafka.client), comma separated")
    ap.add_argument("--detect-batch", default="500,5000", help="detect.batch_size values to compare")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--fetch", action="store_true", help="also: the Kafka consumer alone under fetch settings")
    args = ap.parse_args()
    tune_gc()  # what every worker process does
    cost = timer_cost()
    n = args.records
    batches = [int(b) for b in args.detect_batch.split(",")]
    print(f"{n} records, 50 features (40 numeric, 10 categorical), window 1000, tabular (KS + chi-squared); "
          f"load average {os.getloadavg()[0]:.1f}")
    for kind in args.logs.split(","):
        tag = uuid.uuid4().hex[:8]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            cfg = config(kind, tag, root, batches[0])
            ReferenceStore(cfg.references_path).register(MODEL, reference(2000), version="v1", source="bench")
            recs = records(n, tag)
            lg = build_log(cfg)
            lg.create_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
            message = log_message(lg, cfg)  # as the collector writes them (Kafka: documents in a header)
            for i in range(0, n, 5000):
                lg.append(cfg.log.records_topic, [message(r) for r in recs[i:i + 5000]])
            del recs
            fetch_by_client: dict[str, tuple[float, float]] = {}
            try:
                for client in args.clients.split(",") if kind == "kafka" else [""]:
                    ccfg = with_client(cfg, client) if client else cfg
                    c = client.replace("-", "")
                    # plain runs for the rates (a fresh group each), alternated
                    res: dict[str, tuple[float, float]] = {}
                    for rep in range(2):
                        wall, cpu = run_audit(audit_config(ccfg, f"{c}{rep}"), n, None)
                        res["audit"] = min(res.get("audit", (wall, cpu)), (wall, cpu), key=lambda x: x[1])
                        for b in batches:
                            dcfg = ccfg.model_copy(update={"detect": ccfg.detect.model_copy(
                                update={"group": f"{ccfg.detect.group}-{c}-{b}-{rep}", "batch_size": b})})
                            wall, cpu, ndet = run_detect(dcfg, n, None)
                            key = f"detect batch {b}"
                            assert ndet == n // 1000, f"{ndet} detections from {n // 1000} windows"
                            res[key] = min(res.get(key, (wall, cpu)), (wall, cpu), key=lambda x: x[1])
                    aw, ac = res["audit"]
                    on = f" on {client}" if client else ""
                    print(f"\n[{kind} log{on}, {'Elasticsearch' if kind == 'kafka' else 'SQLite'} audit store] "
                          f"best of 2 by CPU")
                    print(f"  audit role              : {n / aw:9.0f} rec/s  {ac / n * 1e6:7.1f} µs CPU/record")
                    for b in batches:
                        dw, dc = res[f"detect batch {b}"]
                        print(f"  detect role, batch {b:5d}: {n / dw:9.0f} rec/s  {dc / n * 1e6:7.1f} µs CPU/record"
                              f"   ratio detect/audit: wall {aw / dw:.2f}, CPU {ac / dc:.2f}  (goal >= 1)")
                    if kind == "kafka":
                        # the fetch through the log's consumer alone: process CPU (librdkafka's own
                        # threads count), which the per-stage thread timer below does not see
                        alone = min(fetch_only(ccfg, n, {}, f"bd-alone-{tag}-{c}-{rep}") for rep in range(2))
                        print(f"  fetch alone (the log's consumer, process CPU): {alone / n * 1e6:7.1f} µs/record")
                        fetch_by_client[client] = (alone, fetch_by_client.get(client, (0.0, 0.0))[1])
                    if args.fetch and client == "kafka-python":
                        print("  Kafka consumer alone, CPU µs per record (best of 2, alternated):")
                        best: dict[str, float] = {}
                        for rep in range(2):
                            for name, variant in FETCH_VARIANTS:
                                t = fetch_only(ccfg, n, variant, f"bd-fetch-{tag}-{len(best)}-{rep}-{name[:8]}")
                                best[name] = min(best.get(name, t), t)
                        for name, _ in FETCH_VARIANTS:
                            print(f"    {name:42s} {best[name] / n * 1e6:8.1f} µs   "
                                  f"(ratio to defaults {best[name] / best['defaults']:.2f})")
                        try:
                            import confluent_kafka  # noqa: F401
                        except ImportError:
                            print("    (confluent-kafka not installed: pip install 'inferwatch[confluent]' to compare)")
                        else:
                            for label, entries in (("confluent-kafka consume()", False),
                                                   ("confluent-kafka consume() + LogEntry", True)):
                                t = min(fetch_confluent(ccfg, n, entries) for _ in range(2))
                                print(f"    {label:42s} {t / n * 1e6:8.1f} µs   "
                                      f"(ratio to kafka-python defaults {t / best['defaults']:.2f})")
                    if not args.no_stages:
                        st = Stages()
                        run_audit(audit_config(ccfg, f"{c}st"), n, st)
                        print_stages(f"audit role{on}", st, n, cost)
                        if client:
                            fetch_by_client[client] = (fetch_by_client[client][0], st.cpu["fetch"])
                        for b in batches:
                            st = Stages()
                            dcfg = ccfg.model_copy(update={"detect": ccfg.detect.model_copy(
                                update={"group": f"{ccfg.detect.group}-{c}-{b}-st", "batch_size": b})})
                            run_detect(dcfg, n, st)
                            print_stages(f"detect role{on}, batch {b}", st, n, cost)
                print_fetch_by_client(fetch_by_client, n)
            finally:
                if kind == "kafka":
                    from elasticsearch import Elasticsearch

                    es = Elasticsearch(ES)
                    names = list(es.indices.get(index=f"bd-{tag}*", allow_no_indices=True).body)
                    if names:
                        es.indices.delete(index=",".join(names))
                    lg.delete_topics([cfg.log.records_topic, cfg.log.detections_topic,  # type: ignore[attr-defined]
                                      cfg.log.deadletter_topic])
                lg.close()


def print_fetch_by_client(fetch: dict[str, tuple[float, float]], n: int) -> None:
    """The fetch per record of each client library, and each one's ratio to kafka-python's."""
    if not fetch:
        return
    base = fetch.get("kafka-python")
    print("  fetch per record by client library: alone (process CPU, all threads) / in the audit role's "
          "stage timer (caller's thread only)")
    for client, (alone, stage) in fetch.items():
        ratio = f"   ratio to kafka-python {alone / base[0]:.2f} / {stage / base[1]:.2f}" \
            if base and client != "kafka-python" and base[0] and base[1] else ""
        print(f"    {client:14s} {alone / n * 1e6:7.1f} µs / {stage / n * 1e6:7.1f} µs{ratio}")


if __name__ == "__main__":
    main()
