"""Audit throughput and latency on the real stack (python -m stack up first).

Prints, from one run on the same Kafka topic contents and the same Elasticsearch node:

1. inferwatch audit (Kafka -> AuditWorker -> bulk upserts) docs/s, divided by a raw ``_bulk``
   loader sending the identical documents (the ceiling). Goal >= 0.8. With each, the CPU this
   process spent per document (``time.process_time``: every thread of the role or the loader,
   not the broker's or the node's), and a third audit run with a per-stage CPU timer (fetch,
   decode, document building, serialisation, bulk I/O, commit; bench_detect.Stages).
2. inferwatch docs/s divided by the per-request style of Seldon Core's request logger (one
   upsert per document with refresh on write). Goal >= 20.
3. End to end: collector POST -> document searchable, median and p99 at a fixed offered load.

    python bench/bench_audit.py [--records 50000] [--rate 200] [--seconds 20] [--no-e2e] [--no-stages]
                                [--clients kafka-python,confluent]

The audit role runs on each client library of the Kafka log's consumers (``--clients``, the
``kafka.client`` setting), alternated with the loader; the stage run of each client also reads
the topic through the log's consumer alone first (process CPU: librdkafka's own threads count,
which the stage timer's thread CPU does not see), and the fetch per record is printed per client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import orjson
from bench_detect import (  # the bench directory
    Stages,
    es_stages,
    print_fetch_by_client,
    print_stages,
    timer_cost,
)
from elasticsearch import Elasticsearch

from inferwatch.audit import record_documents
from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.log import LogEntry
from inferwatch.metrics import Metrics
from inferwatch.pipeline import Pipeline
from inferwatch.record import InferenceRecord
from inferwatch.wiring import log_message
from inferwatch.workers import AuditWorker, tune_gc
from sinks.elasticsearch import ElasticsearchAuditStore
from sinks.elasticsearch import audit_documents as made_audit_documents

ES = os.environ.get("INFERWATCH_ELASTICSEARCH_HOSTS", "http://127.0.0.1:19200")
KAFKA = os.environ.get("INFERWATCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")


def records(n: int, tag: str) -> list[InferenceRecord]:
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        feats = {f"f{j}": [round((i * 7 + j * 13) % 1000 / 10.0, 1)] for j in range(10)}
        out.append(InferenceRecord(
            id=f"{tag}-{i}", model="bench", version="v1", timestamp=t0 + timedelta(milliseconds=i),
            protocol="kserve-v1", inputs={**feats, "city": [f"city{i % 50}"]}, outputs={"score": [i % 100 / 100]},
            request=orjson.dumps({"instances": [{k: v[0] for k, v in feats.items()}]}).decode(),
            response=orjson.dumps({"predictions": [i % 100 / 100]}).decode(), latency_ms=3.2, part="both"))
    return out


def cleanup(es: Elasticsearch, prefix: str) -> None:
    names = list(es.indices.get(index=f"{prefix}*", allow_no_indices=True).body)
    if names:
        es.indices.delete(index=",".join(names))


class _NoIndices:
    def exists(self, **_: object) -> bool:  # no labels waiting for their predictions
        return False


class _NoClient:
    """A client the store never calls while building complete records' documents."""
    indices = _NoIndices()


def loader_documents(recs: list[InferenceRecord], batch: int = 5000) -> list[dict[str, Any]]:
    """The documents the audit role sends for ``recs``: built by the store itself (row documents,
    ``input_num``, full text), so the loader's documents stay identical to the role's."""
    store = ElasticsearchAuditStore(load_config(None, env={}).elasticsearch, client=_NoClient(), setup=False)
    return [a.doc for k in range(0, len(recs), batch) for a in store._record_actions(recs[k:k + batch])]


def send_bulks(es: Elasticsearch, lines: list[bytes], chunk: int, **kw: Any) -> None:
    """`_bulk` requests of ``chunk`` ready action-and-document lines each; an item error fails the run."""
    for i in range(0, len(lines), chunk):
        resp = es.bulk(operations=b"".join(lines[i:i + chunk]), **kw)  # type: ignore[arg-type]
        assert not resp["errors"], str(resp)[:500]


def raw_load(es: Elasticsearch, docs: list[dict[str, Any]], index: str, chunk: int = 2000) -> None:
    """What any loader must do with built documents: serialise them and send `_bulk` index actions."""
    send_bulks(es, [orjson.dumps({"index": {"_index": index, "_id": doc["doc_id"]}}) + b"\n"
                    + orjson.dumps(doc, option=orjson.OPT_UTC_Z) + b"\n" for doc in docs], chunk)


def raw_bulk(es: Elasticsearch, recs: list[InferenceRecord], index: str) -> tuple[float, float]:
    """The ceiling: a plain loader. The identical documents (:func:`loader_documents`) are built
    before the clock starts; timed is only :func:`raw_load` and the refresh.
    Returns (wall seconds, CPU seconds of this process)."""
    docs = loader_documents(recs)
    t0, c0 = time.perf_counter(), time.process_time()
    raw_load(es, docs, index)
    es.indices.refresh(index=index)
    return time.perf_counter() - t0, time.process_time() - c0


def _wrap_stages(worker: AuditWorker, store: ElasticsearchAuditStore, st: Stages) -> None:
    """The per-stage CPU timer around the audit role's stages (as bench_detect.run_audit; the
    serialiser and the bulk call are timed by bench_detect.es_stages, around the run)."""
    for c, kind in worker.consumers:
        c.poll = st.wrap("fetch" if kind == "records" else "fetch (quiet topics)", c.poll)  # type: ignore[method-assign]
        c.commit = st.wrap("commit", c.commit)  # type: ignore[method-assign]
    worker._decode = st.wrap("decode", worker._decode)  # type: ignore[method-assign]
    worker._write_retrying = st.wrap("writer thread, all", worker._write_retrying)  # type: ignore[method-assign]
    store._record_actions = st.wrap_iter("  document building", store._record_actions)  # type: ignore[method-assign]


def fetch_alone(lg: KafkaLog, topic: str, group: str, n: int, batch: int, *, commit: bool = False
                ) -> tuple[float, float, list[LogEntry]]:
    """(CPU seconds of this process (every thread: librdkafka's count) to read ``n`` entries of
    ``topic`` through the log's consumer alone, after joining the group; with ``commit``, CPU
    seconds of then committing each polled batch, else 0; the entries)."""
    c = lg.consumer(topic, group)
    try:
        while not c.poll(1, timeout=1.0):
            pass
        c.seek_to_committed()
        polled: list[list[LogEntry]] = []
        got = 0
        c0 = time.process_time()
        while got < n:
            polled.append(c.poll(batch, timeout=1.0))
            got += len(polled[-1])
        fetch = time.process_time() - c0
        c0 = time.process_time()
        for entries in polled if commit else ():
            if entries:
                c.commit(entries)
        return fetch, time.process_time() - c0 if commit else 0.0, [e for entries in polled for e in entries]
    finally:
        c.close()


def inferwatch_audit(recs: list[InferenceRecord], tag: str, stages: Stages | None = None,
                     client: str = "kafka-python", alone: list[float] | None = None,
                     prepared: bool = True, made: list[float] | None = None) -> tuple[float, float]:
    """Kafka -> the audit role -> Elasticsearch; (wall seconds, CPU seconds of this process). The
    log's consumers run on ``client``; with ``alone``, the fetch alone is measured first (appended).
    The topic is filled as the collector fills it (:func:`inferwatch.wiring.log_message`): with
    ``prepared``, each record's documents built there and carried in a header (the CPU seconds
    that took are appended to ``made``), else the records alone (the role builds the documents)."""
    cfg = load_config(None, env={}, overrides={
        "kafka.client": client, "audit.prepared": prepared,
        "log.backend": "kafka", "log.records_topic": f"bench-{tag}.records",
        "log.detections_topic": f"bench-{tag}.detections", "log.deadletter_topic": f"bench-{tag}.deadletter",
        "audit.backend": "elasticsearch",
        "kafka.bootstrap_servers": KAFKA, "elasticsearch.hosts": [ES],
        "elasticsearch.index_prefix": f"bench-{tag}-iw", "audit.group": f"bench-audit-{tag}"})
    lg = KafkaLog(cfg.kafka)
    lg.create_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
    message = log_message(lg, cfg)
    c0 = time.process_time()
    messages = [message(r) for r in recs]
    if made is not None:
        made.append(time.process_time() - c0)
    assert all((len(m) == 3) == prepared for m in messages)
    for i in range(0, len(recs), 5000):
        lg.append(cfg.log.records_topic, messages[i:i + 5000])
    del messages
    if alone is not None:
        alone.append(fetch_alone(lg, cfg.log.records_topic, f"bench-alone-{tag}", len(recs), cfg.audit.batch_size)[0])
    store = ElasticsearchAuditStore(cfg.elasticsearch)
    tune_gc()  # what `inferwatch run` does in every worker process
    worker = AuditWorker(cfg, lg, store, Metrics())
    worker.ensure_connected()  # consumers are made on connect (what the run loop does first)
    worker.connected = True
    while not worker.consumers[0][0].poll(1, timeout=1.0):  # join the group before timing
        pass
    worker.consumers[0][0].seek_to_committed()
    if stages is not None:
        _wrap_stages(worker, store, stages)
    with es_stages(stages):
        t0, c0 = time.perf_counter(), time.process_time()
        while worker.documents < len(recs):
            worker.step()
        store.refresh()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    worker.close()
    assert store.es.count(index=f"bench-{tag}-iw-records-*")["count"] == len(recs)
    store.close()
    lg.delete_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
    lg.close()
    return elapsed, cpu


def seldon_style(es: Elasticsearch, recs: list[InferenceRecord], index: str) -> float:
    """Seldon Core's request logger: one upsert per document, refresh=True on every write."""
    t0 = time.perf_counter()
    for r in recs:
        for doc in record_documents(r):
            es.update(index=index, id=doc["doc_id"], doc=doc, doc_as_upsert=True, refresh=True)
    return time.perf_counter() - t0


def end_to_end(tag: str, rate: float, seconds: float) -> list[float]:
    cfg = load_config(None, env={}, overrides={
        "log.backend": "kafka", "log.records_topic": f"e2e-{tag}.records",
        "log.detections_topic": f"e2e-{tag}.detections", "log.deadletter_topic": f"e2e-{tag}.deadletter",
        "audit.backend": "elasticsearch", "kafka.bootstrap_servers": KAFKA, "elasticsearch.hosts": [ES],
        "elasticsearch.index_prefix": f"bench-{tag}-e2e", "collector.port": 0, "kafka.linger_ms": 2,
        "audit.group": f"bench-e2e-{tag}"})
    pipe = Pipeline(cfg, ["collector", "audit"])
    pipe.start()
    es = Elasticsearch(ES)
    sent: dict[str, float] = {}
    found: dict[str, float] = {}
    stop = threading.Event()

    def poll_found() -> None:
        while not stop.is_set() or len(found) < len(sent):
            pending = [i for i in list(sent) if i not in found]
            if pending:
                resp = es.search(index=f"bench-{tag}-e2e-records-*", query={"ids": {"values": pending[:1000]}},
                                 size=1000, source=False, ignore_unavailable=True, allow_no_indices=True)
                now = time.perf_counter()
                for h in resp["hits"]["hits"]:
                    found.setdefault(h["_id"], now)
            if stop.is_set() and time.perf_counter() - stop_time[0] > 30:
                break
            time.sleep(0.02)

    stop_time = [0.0]
    poller = threading.Thread(target=poll_found)
    poller.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}") as c:
        # warm up the consumer group and the index
        c.post("/v1/records", json={"model": "e2e", "id": "warm", "inputs": {"x": [0]}})
        time.sleep(5)
        t_start = time.perf_counter()
        n = int(rate * seconds)
        for k in range(n):
            target = t_start + k / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            rid = f"e{k}"
            sent[f"{rid}-0"] = time.perf_counter()
            r = c.post("/v1/records", json={"model": "e2e", "id": rid, "inputs": {"x": [k]}})
            assert r.status_code == 202, r.text
    stop_time[0] = time.perf_counter()
    stop.set()
    poller.join()
    pipe.stop()
    cleanup(es, f"bench-{tag}-e2e")
    KafkaLog(cfg.kafka).delete_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
    missing = [i for i in sent if i not in found]
    assert not missing, f"{len(missing)} never became searchable"
    return sorted(found[i] - sent[i] for i in sent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--seldon-records", type=int, default=1_000)
    ap.add_argument("--rate", type=float, default=200.0, help="offered load for the end-to-end run (req/s)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end latency run")
    ap.add_argument("--no-stages", action="store_true", help="skip the audit run with the per-stage timer")
    ap.add_argument("--clients", default="kafka-python,confluent",
                    help="the Kafka log's client libraries to run the audit role on (kafka.client), comma separated")
    ap.add_argument("--modes", default="prepared,built",
                    help="how the role gets its documents, comma separated: prepared (built by the collector, "
                         "carried on the log: audit.prepared, the default) and/or built (the role decodes the "
                         "records and builds them)")
    args = ap.parse_args()
    clients = args.clients.split(",")
    modes = args.modes.split(",")
    runs = [(c, m) for c in clients for m in modes]
    print(f"{args.records} records; load average {os.getloadavg()[0]:.1f} (2 cores here: CPU per record is the "
          "figure to compare, wall rates move with the machine's load)")
    tag = uuid.uuid4().hex[:8]
    es = Elasticsearch(ES, request_timeout=120)
    recs = records(args.records, tag)
    ElasticsearchAuditStore(load_config(None, env={}).elasticsearch.model_copy(
        update={"hosts": [ES], "index_prefix": f"bench-{tag}-raw"}))  # same templates for the ceiling
    stages: dict[tuple[str, str], Stages] = {}
    alone: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    c0 = time.process_time()
    for r in recs:
        made_audit_documents(r)
    made = time.process_time() - c0
    try:
        # alternate the loader and the audit role on each client and mode, twice, and keep each
        # one's best run: the node warms up as it goes
        raw_runs: list[tuple[float, float]] = []
        iw_runs: dict[tuple[str, str], list[tuple[float, float]]] = {r: [] for r in runs}
        for rep in range(2):
            raw_runs.append(raw_bulk(es, recs, f"bench-{tag}-raw-records-x{rep}"))
            for i, (client, mode) in enumerate(runs):
                iw_runs[client, mode].append(inferwatch_audit(recs, f"{tag}{rep}c{i}", client=client,
                                                              prepared=mode == "prepared"))
        if not args.no_stages:
            for i, (client, mode) in enumerate(runs):
                stages[client, mode] = Stages()
                inferwatch_audit(recs, f"{tag}st{i}", stages[client, mode], client=client, alone=alone[client, mode],
                                 prepared=mode == "prepared")
        seldon = recs[: args.seldon_records]
        t_seldon = seldon_style(es, seldon, f"bench-{tag}-raw-records-seldon")
    finally:
        cleanup(es, f"bench-{tag}")
    n = args.records
    t_raw, c_raw = min(raw_runs)  # the best (fastest) run
    raw, sel = n / t_raw, len(seldon) / t_seldon
    print(f"raw _bulk ceiling      : {raw:10.0f} docs/s ({n} docs in {t_raw:.1f} s, best of 2)   "
          f"{c_raw / n * 1e6:6.1f} µs CPU/doc (the loader's Python: serialise + send)")
    for client, mode in runs:
        t_iw, c_iw = min(iw_runs[client, mode])
        iw = n / t_iw
        print(f"inferwatch Kafka->ES   : {iw:10.0f} docs/s ({n} docs in {t_iw:.1f} s, best of 2)   "
              f"{c_iw / n * 1e6:6.1f} µs CPU/doc (the audit role, every thread; consumers on {client}; "
              f"documents {mode})")
        print(f"  ratio inferwatch / raw _bulk    = {iw / raw:.2f}   (goal >= 0.8)")
        print(f"  ratio inferwatch / Seldon-style = {iw / sel:.1f}   (goal >= 20)")
    print(f"Seldon-style per doc   : {sel:10.0f} docs/s ({len(seldon)} docs in {t_seldon:.1f} s)")
    print(f"documents built at the collector (audit.prepared): {made / n * 1e6:.1f} µs CPU per record there "
          "(sinks.elasticsearch.audit_documents, on the decode that already happens)")
    for (client, mode), st in stages.items():
        print_stages(f"audit role on {client}, documents {mode} (third run)", st, n, timer_cost())
    for mode in modes:
        if any(m == mode for _, m in stages):
            print(f"documents {mode}:")
            print_fetch_by_client({c: (alone[c, m][0], stages[c, m].cpu["fetch"]) for c, m in stages if m == mode}, n)
    if args.no_e2e:
        return
    lat = end_to_end(tag, args.rate, args.seconds)
    print(f"end to end at {args.rate:.0f} req/s for {args.seconds:.0f} s ({len(lat)} records): "
          f"median {statistics.median(lat) * 1000:.0f} ms, p99 {lat[int(0.99 * (len(lat) - 1))] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
