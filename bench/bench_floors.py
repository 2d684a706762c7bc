"""The floor of each stage of the audit role, each measured on its own, and the best ratio they allow.

Issue 12's goal is the audit role at >= 0.8 of a raw ``_bulk`` loader of the same documents.
On a 2-core machine both the role (or the loader) and the Elasticsearch node are CPU-bound, so
the wall rate follows the CPU both spend per document: ratio ~ (loader CPU + node CPU under the
loader) / (role CPU + node CPU under the role). This script measures, in one run on the same
records (``bench_audit.records``: 11 features plus request and response bodies), CPU
microseconds per document of:

* the Elasticsearch node (``/proc/<pid>/stat`` of the stack's node, user + system, every JVM
  thread, including the refresh and a settling second after the load; the node's idle rate
  just before is measured and subtracted; the index is made first) for the audit role's documents
  (built by the store itself) sent with explicit ids in bulks of ``elasticsearch.chunk_actions``:
  with ``index`` by bench_audit's raw loader, with ``create`` as the role sends them (create
  keeps a label or an outlier score that arrived before the row, merging on a 409), and, for
  reference, with ``index`` without their ``input_num`` field;
* the raw loader itself (serialise + ``_bulk``, bench_audit's ``raw_load``), and the bulk client
  I/O alone (the role's requests on prebuilt bodies: the client's side of ``_bulk``);
* the Kafka fetch alone per client library: the bare client (kafka-python ``poll``,
  confluent-kafka ``consume``), and the log's consumer (client + a ``LogEntry`` per message,
  what the role polls), process CPU (librdkafka's and kafka-python's own threads count); the
  offset commit of each batch;
* the role's Python stages alone, on entries as the collector writes them (``audit.prepared``:
  each record's documents built there, in a header): decoding (reading the documents' header
  line, as the role's ``_decode``), the write actions (the store's ``_record_actions``, against a
  client that is never called) and serialisation (the action lines and the bulk bodies); and the
  same stages when the role builds the documents itself (``InferenceRecord.from_json``; row
  documents, ``input_num``, full text), and what building them costs the collector.

Beside them, the audit role itself (``AuditWorker`` on each client, into a fresh index) with the
node's CPU under it: the role's CPU beyond the sum of its floors is its own overhead (threads,
the batching engine, metrics), and the ratio of CPU per document is what its wall ratio follows.

Then it prints the predicted best ratio = (raw loader + node under ``index``) / (sum of the
role's floors with the cheaper client + node under ``create``): what the audit role would reach
if every stage ran at its floor and nothing else cost anything. Each figure is the median of
``--repeat`` runs (alternated); the machine is shared, so the load average is printed.

    python bench/bench_floors.py [--records 20000] [--repeat 3] [--clients kafka-python,confluent] [--no-role]

Needs the stack (``python -m stack up``; ``INFERWATCH_STACK_DIR`` names it, for the node's pid).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from bench_audit import (  # the bench directory
    ES,
    KAFKA,
    _NoClient,
    cleanup,
    fetch_alone,
    raw_load,
    records,
    send_bulks,
)
from elasticsearch import Elasticsearch

from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog, _client_config
from inferwatch.log import LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import InferenceRecord
from inferwatch.wiring import log_message
from inferwatch.workers import AuditWorker, _decode_entries, tune_gc
from sinks.elasticsearch import _OPTS_LINE, ElasticsearchAuditStore, _head, _line, audit_documents

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: what the store asks back from a bulk (sinks.elasticsearch._Bulk.send)
FILTER = "errors,items.*.status,items.*.error"


# -- the node's CPU ---------------------------------------------------------------------------
def node_pid() -> int:
    stack = Path(os.environ.get("INFERWATCH_STACK_DIR") or Path(__file__).resolve().parents[1] / ".stack")
    pidfile = stack / "run" / "elasticsearch.pid"
    try:
        text = pidfile.read_text()
    except OSError as exc:
        raise SystemExit(f"no Elasticsearch pid file at {pidfile} (set INFERWATCH_STACK_DIR): {exc}") from exc
    pid = int(json.loads(text)["pid"]) if text.lstrip().startswith("{") else int(text)
    if not Path(f"/proc/{pid}/stat").exists():
        raise SystemExit(f"Elasticsearch pid {pid} (from {pidfile}) is not running")
    return pid


def node_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) the node has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def idle_rate(pid: int, seconds: float = 2.0) -> float:
    """The node's CPU seconds per second with nothing of ours running (other clients, housekeeping)."""
    c0, t0 = node_cpu(pid), time.perf_counter()
    time.sleep(seconds)
    return (node_cpu(pid) - c0) / (time.perf_counter() - t0)


def on_node(pid: int, es: Elasticsearch, index: str, load: Callable[[], None],
            settle: float = 1.0) -> tuple[float, float, float]:
    """Run ``load`` (bulks into ``index``, made first from the role's template: the role writes
    into a day's index that exists), refresh, let the node settle; returns (node CPU seconds net
    of its idle rate, this process's CPU seconds in ``load``, the idle rate)."""
    es.indices.create(index=index)
    es.cluster.health(index=index, wait_for_status="yellow", timeout="30s")
    idle = idle_rate(pid)
    n0, t0 = node_cpu(pid), time.perf_counter()
    c0 = time.process_time()
    load()
    client = time.process_time() - c0
    es.indices.refresh(index=index)
    time.sleep(settle)
    return node_cpu(pid) - n0 - idle * (time.perf_counter() - t0), client, idle


# -- the documents ---------------------------------------------------------------------------
def without_input_num(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents as they were before ``input_num`` (the numerical inputs again as doubles)."""
    return [{k: v for k, v in d.items() if k != "input_num"} for d in docs]


# -- the Kafka side --------------------------------------------------------------------------
def bare_fetch(client: str, topic: str, n: int, batch: int, cfg: Any) -> float:
    """Process CPU seconds for the bare client library to read ``n`` messages of ``topic`` from
    the start (partitions assigned, no group join timed)."""
    k = cfg.kafka
    if client == "confluent":
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": k.bootstrap_servers, "group.id": f"floors-{uuid.uuid4().hex[:8]}",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "fetch.max.bytes": k.fetch_max_bytes, "max.partition.fetch.bytes": k.max_partition_fetch_bytes,
                      "isolation.level": "read_committed"})
        try:
            parts = c.list_topics(topic, timeout=10).topics[topic].partitions
            c0 = time.process_time()
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            got = 0
            while got < n:
                got += sum(1 for m in c.consume(num_messages=batch, timeout=1.0) if m.error() is None)
            return time.process_time() - c0
        finally:
            c.close()
    import kafka

    kc = kafka.KafkaConsumer(**_client_config(k), enable_auto_commit=False, max_poll_records=batch,
                             isolation_level="read_committed", fetch_max_bytes=k.fetch_max_bytes,
                             max_partition_fetch_bytes=k.max_partition_fetch_bytes)
    try:
        tps = [kafka.TopicPartition(topic, p) for p in sorted(kc.partitions_for_topic(topic) or ())]
        c0 = time.process_time()
        kc.assign(tps)
        kc.seek_to_beginning(*tps)
        got = 0
        while got < n:
            got += sum(len(v) for v in kc.poll(timeout_ms=1000, max_records=batch).values())
        return time.process_time() - c0
    finally:
        kc.close()


def role_run(cfg: Any, client: str, topics: tuple[str, str, str], group: str, prefix: str, n: int, pid: int,
             es: Elasticsearch) -> tuple[float, float, float, float]:
    """The audit role itself (``AuditWorker``, consumers on ``client``) over the records topic, into a
    fresh index: (node CPU seconds, the role's process CPU seconds, wall seconds, the node's idle rate)."""
    c = load_config(None, env={}, overrides={
        "kafka.client": client, "log.backend": "kafka", "kafka.bootstrap_servers": KAFKA,
        "log.records_topic": topics[0], "log.detections_topic": topics[1], "log.deadletter_topic": topics[2],
        "audit.backend": "elasticsearch", "elasticsearch.hosts": [ES], "elasticsearch.index_prefix": prefix,
        "audit.group": group})
    lg = KafkaLog(c.kafka)
    store = ElasticsearchAuditStore(c.elasticsearch)
    worker = AuditWorker(c, lg, store, Metrics())
    try:
        worker.ensure_connected()
        worker.connected = True
        while not worker.consumers[0][0].poll(1, timeout=1.0):  # joined, before the clock starts
            pass
        worker.consumers[0][0].seek_to_committed()
        wall = [0.0]

        def load() -> None:
            t0 = time.perf_counter()
            while worker.documents < n:
                worker.step()
            worker._finish()
            wall[0] = time.perf_counter() - t0

        node, cpu, idle = on_node(pid, es, store.records_index("bench", datetime(2026, 2, 1, tzinfo=UTC)), load)
        assert worker.documents == n
        return node, cpu, wall[0], idle
    finally:
        worker.close()
        store.close()
        lg.close()


def cpu_of(fn: Callable[[], object]) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-role", dest="role", action="store_false",
                    help="skip the runs of the audit role itself (its CPU beside the sum of its floors)")
    ap.add_argument("--clients", default="kafka-python,confluent",
                    help="the Kafka client libraries to measure the fetch of, comma separated")
    args = ap.parse_args()
    n, clients = args.records, args.clients.split(",")
    tag = uuid.uuid4().hex[:8]
    prefix = f"bench-{tag}-fl"
    cfg = load_config(None, env={}, overrides={
        "log.backend": "kafka", "kafka.bootstrap_servers": KAFKA, "elasticsearch.hosts": [ES],
        "elasticsearch.index_prefix": prefix})
    batch, chunk = cfg.audit.batch_size, cfg.elasticsearch.chunk_actions
    pid = node_pid()
    load0 = os.getloadavg()
    print(f"{n} records (11 features + request and response bodies); batches of {batch}, bulks of {chunk}; "
          f"load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} (2 cores, shared)")
    es = Elasticsearch(ES, request_timeout=120)
    ElasticsearchAuditStore(cfg.elasticsearch)  # the role's templates for every index below
    tune_gc()  # as every worker process
    recs = records(n, tag)
    msgs = [r.to_json() for r in recs]
    store = ElasticsearchAuditStore(cfg.elasticsearch, client=_NoClient(), setup=False)  # never called
    actions = [a for k in range(0, n, batch) for a in store._record_actions(recs[k:k + batch])]
    assert all(a.op == "create" for a in actions) and len(actions) == n
    docs = [a.doc for a in actions]  # what bench_audit's raw loader sends too (loader_documents)
    plain = without_input_num(docs)
    per: dict[str, list[float]] = {}

    rep = -1

    def add(name: str, seconds: float) -> None:
        if rep >= 0:
            per.setdefault(name, []).append(seconds / n * 1e6)

    lg = KafkaLog(cfg.kafka)
    topic = f"bench-{tag}.floors"
    lg.create_topics([topic, f"{topic}-detections", f"{topic}-dl"])
    # as the collector writes them (audit.prepared): each record with its documents in a header
    es_cfg = load_config(None, env={}, overrides={"log.backend": "kafka", "audit.backend": "elasticsearch"})
    message = log_message(lg, es_cfg)
    messages = [message(r) for r in recs]
    assert all(len(m) == 3 and m[1] == msg for m, msg in zip(messages, msgs, strict=True))
    for i in range(0, n, 5000):
        lg.append(topic, messages[i:i + 5000])
    prepared = [store.prepared(m[1], m[2]) for m in messages]  # type: ignore[misc]
    prepared_actions = [a for k in range(0, n, batch) for a in store._record_actions(prepared[k:k + batch])]
    assert [_line(a) for a in prepared_actions[:100]] == [_line(a) for a in actions[:100]]
    del messages
    entries: list[LogEntry] = []
    idles: list[float] = []
    walls: dict[str, list[float]] = {}
    try:
        for rep in range(-1, args.repeat):  # a first round to warm the node up, not counted
            # -- the node, and the client side of the bulks ----------------------------------
            ix = f"{prefix}-records-raw{rep + 1}"
            node, client, idle = on_node(pid, es, ix, lambda ix=ix: raw_load(es, docs, ix, chunk))  # type: ignore[misc]
            add("node: index (the raw loader)", node)
            add("raw loader (serialise + _bulk index)", client)
            idles.append(idle)
            ix = f"{prefix}-records-create{rep + 1}"
            lines = [_head("create", ix, d["doc_id"]) + orjson.dumps(d, option=_OPTS_LINE) for d in docs]
            node, client, idle = on_node(pid, es, ix, lambda ix=ix, lines=lines: send_bulks(  # type: ignore[misc]
                es, lines, chunk, refresh=False, filter_path=FILTER))
            add("node: create (the audit role's bulks)", node)
            add("bulk client I/O alone (create, prebuilt bodies)", client)
            idles.append(idle)
            ix = f"{prefix}-records-plain{rep + 1}"
            node, _, idle = on_node(pid, es, ix, lambda ix=ix: raw_load(es, plain, ix, chunk))  # type: ignore[misc]
            add("node: index, documents without input_num", node)
            idles.append(idle)
            # -- Kafka ------------------------------------------------------------------------
            for client_name in clients:
                add(f"fetch, bare {client_name}", bare_fetch(client_name, topic, n, batch, cfg))
                lgc = KafkaLog(cfg.kafka.model_copy(update={"client": client_name}))
                fetch, commit, got = fetch_alone(lgc, topic, f"floors-{tag}-{client_name}-{rep}", n, batch, commit=True)
                lgc.close()
                add(f"fetch, log consumer on {client_name}", fetch)
                add(f"commit, {client_name}", commit)
                entries = got
            # -- the role itself, for the slack: what it spends beyond the sum of its floors ------
            if args.role:
                for i, client_name in enumerate(clients):
                    node, cpu, wall, idle = role_run(cfg, client_name, (topic, f"{topic}-detections", f"{topic}-dl"),
                                                     f"floors-role-{tag}-{rep}-{i}", f"{prefix}-role{rep + 1}{i}", n, pid, es)
                    add(f"the audit role on {client_name} (process CPU)", cpu)
                    add(f"node: under the audit role on {client_name}", node)
                    walls.setdefault(client_name, []).append(wall)
                    idles.append(idle)
            # -- the role's Python stages, alone -----------------------------------------------
            ent = entries[:n]
            # each batch made and dropped, as in the role (memory is reused, not all held at once).
            # Documents prepared (the default): the entries read with their documents
            add("decode (prepared: the documents' header line, as _decode)",
                cpu_of(lambda ent=ent: [len(_decode_entries(ent[k:k + batch], InferenceRecord.from_json,
                                                            store.prepared)[0]) for k in range(0, n, batch)]))
            add("document building (prepared: the write actions)",
                cpu_of(lambda: [len(list(store._record_actions(prepared[k:k + batch]))) for k in range(0, n, batch)]))
            add("serialisation (prepared: action lines + bulk bodies)",
                cpu_of(lambda: [len(b"".join([_line(a) for a in prepared_actions[k:k + chunk]]))
                                for k in range(0, n, chunk)]))
            # documents built by the role (audit.prepared off, or a log that carries no documents)
            add("decode (built: InferenceRecord.from_json)",
                cpu_of(lambda ent=ent: [len(_decode_entries(ent[k:k + batch], InferenceRecord.from_json)[0])
                                        for k in range(0, n, batch)]))
            add("document building (built: _record_actions)",
                cpu_of(lambda: [len(list(store._record_actions(recs[k:k + batch]))) for k in range(0, n, batch)]))
            add("serialisation (built: action lines + bulk bodies)",
                cpu_of(lambda: [len(b"".join([_line(a) for a in actions[k:k + chunk]])) for k in range(0, n, chunk)]))
            add("at the collector, not the role: the documents (audit_documents)",
                cpu_of(lambda: [audit_documents(r) for r in recs]))
    finally:
        lg.delete_topics([topic, f"{topic}-detections", f"{topic}-dl"])
        lg.close()
        cleanup(es, prefix)
    med = {k: statistics.median(v) for k, v in per.items()}
    print(f"node idle rate before each load: {min(idles) * 100:.0f}-{max(idles) * 100:.0f}% of a core "
          "(subtracted)")
    print(f"CPU µs per document, each alone, median of {args.repeat} (all runs in brackets):")
    for k, v in per.items():
        print(f"  {k:50s} {med[k]:7.1f}   [{' '.join(f'{x:.1f}' for x in v)}]")
    fetch_client = min(clients, key=lambda c: med[f"fetch, log consumer on {c}"] + med[f"commit, {c}"])
    role = {"fetch": med[f"fetch, log consumer on {fetch_client}"],
            "decode": med["decode (prepared: the documents' header line, as _decode)"],
            "document building": med["document building (prepared: the write actions)"],
            "serialisation": med["serialisation (prepared: action lines + bulk bodies)"],
            "bulk client I/O": med["bulk client I/O alone (create, prebuilt bodies)"],
            "commit": med[f"commit, {fetch_client}"]}
    role_sum = sum(role.values())
    raw_role, raw_node = med["raw loader (serialise + _bulk index)"], med["node: index (the raw loader)"]
    node_create = med["node: create (the audit role's bulks)"]
    best = (raw_role + raw_node) / (role_sum + node_create)
    print(f"role floors (log consumer on {fetch_client}): "
          + " + ".join(f"{k} {v:.1f}" for k, v in role.items()) + f" = {role_sum:.1f} µs")
    print(f"predicted best ratio = (raw loader {raw_role:.1f} + node, index {raw_node:.1f}) / "
          f"(role floors {role_sum:.1f} + node, create {node_create:.1f}) = "
          f"{raw_role + raw_node:.1f} / {role_sum + node_create:.1f} = {best:.2f}   (goal >= 0.8)")
    print(f"  with the role's documents sent with index instead (node {raw_node:.1f}): "
          f"{(raw_role + raw_node) / (role_sum + raw_node):.2f}; with the role's Python at zero (create): "
          f"{(raw_role + raw_node) / node_create:.2f}")
    for client_name in walls:
        r, nr = med[f"the audit role on {client_name} (process CPU)"], med[f"node: under the audit role on {client_name}"]
        print(f"the audit role on {client_name}: {r:.1f} µs (its floors {role_sum:.1f} with the cheaper client's "
              f"fetch; the rest is the role's own overhead) + node {nr:.1f} µs: CPU ratio "
              f"{(raw_role + raw_node) / (r + nr):.2f}; {n / statistics.median(walls[client_name]):.0f} docs/s "
              f"(median wall)")
    need = (raw_role + raw_node) / 0.8 - node_create
    print(f"  0.8 needs role + node <= {(raw_role + raw_node) / 0.8:.1f} µs: with the node under create, "
          f"the role at <= {need:.1f} µs per document (its floors sum to {role_sum:.1f})")


if __name__ == "__main__":
    main()
