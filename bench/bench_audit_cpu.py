"""CPU the audit role spends per record in Python, without Kafka or Elasticsearch.

Timed on the same records in one run:

1. inferwatch: what the audit role does with a batch read from the log — ``InferenceRecord.from_json``
   (the one read form, with its checks), row documents, payload text, bulk action lines, through
   the batching sink to a client that answers "all written" without doing anything;
2. baseline: the least any loader does with the same messages — ``orjson.loads`` each message and
   ``orjson.dumps`` one prebuilt document per row with its action line.

The ratio (inferwatch / baseline, lower is better) tracks the per-record overhead of the audit
path independently of the machine's load on Elasticsearch. Then each stage alone, best of
``--repeat`` (the floors the note on issue 12 compares with): ``orjson.loads`` of the messages
(the parse any reader pays), ``InferenceRecord.from_json`` (parse + the record's checks and
object), the row documents (``record_documents``), the numerical inputs as doubles
(``_numbers``: ``input_num``), their full text and section JSON (``_with_fulltext``), and
``orjson.dumps`` of the finished documents with their action lines
(the serialiser alone).

``--wide`` uses the records of bench_detect.py (50 features: 40 numeric, 10 categorical, no raw
bodies) instead of 11 features with request and response bodies.

    python bench/bench_audit_cpu.py [--records 30000] [--repeat 5] [--wide]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from inferwatch.audit import record_documents
from inferwatch.config import ElasticsearchConfig
from inferwatch.record import InferenceRecord
from inferwatch.workers import tune_gc
from sinks.elasticsearch import ElasticsearchAuditStore, _numbers, _with_fulltext


def messages(n: int) -> list[bytes]:
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        feats = {f"f{j}": [round((i * 7 + j * 13) % 1000 / 10.0, 1)] for j in range(10)}
        out.append(InferenceRecord(
            id=f"cpu-{i}", model="bench", version="v1", timestamp=t0 + timedelta(milliseconds=i),
            protocol="kserve-v1", inputs={**feats, "city": [f"city{i % 50}"]}, outputs={"score": [i % 100 / 100]},
            request=orjson.dumps({"instances": [{k: v[0] for k, v in feats.items()}]}).decode(),
            response=orjson.dumps({"predictions": [i % 100 / 100]}).decode(), latency_ms=3.2,
            part="both").to_json())
    return out


class _NullIndices:
    def exists(self, **_: object) -> bool:  # no labels waiting for their predictions
        return False


class _NullClient:
    indices = _NullIndices()

    def bulk(self, operations: bytes, **_: object) -> dict[str, object]:
        return {"errors": False}

    def close(self) -> None:
        pass


def inferwatch_path(msgs: list[bytes], batch: int) -> float:
    store = ElasticsearchAuditStore(ElasticsearchConfig(), client=_NullClient(), setup=False)
    c0 = time.process_time()
    for k in range(0, len(msgs), batch):
        store.write_records([InferenceRecord.from_json(m) for m in msgs[k:k + batch]])
    elapsed = time.process_time() - c0
    store.close()
    return elapsed


def baseline(msgs: list[bytes]) -> float:
    docs = []
    for m in msgs:
        for d in record_documents(InferenceRecord.from_json(m)):
            _with_fulltext(d)
            docs.append(d)
    c0 = time.process_time()
    for m in msgs:
        orjson.loads(m)
    lines = [b'{"create":{"_index":"x","_id":' + orjson.dumps(d["doc_id"]) + b"}}\n"
             + orjson.dumps(d, option=orjson.OPT_UTC_Z) + b"\n" for d in docs]
    b"".join(lines)
    return time.process_time() - c0


def _all_with_fulltext(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_with_fulltext(d) for d in docs]


def _all_numbers(docs: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [_numbers(d.get("input")) for d in docs]


def _serialise(docs: list[dict[str, Any]]) -> bytes:
    return b"".join([b'{"create":{"_index":"x","_id":' + orjson.dumps(d["doc_id"]) + b"}}\n"
                     + orjson.dumps(d, option=orjson.OPT_UTC_Z) + b"\n" for d in docs])


def stages(msgs: list[bytes], repeat: int) -> dict[str, float]:
    """CPU seconds of each stage alone over all messages, best of ``repeat``."""
    recs = [InferenceRecord.from_json(m) for m in msgs]
    best: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        # without the cyclic GC: all the records and documents are kept alive here for the next
        # stage, so collections would scan them again and again; in the worker a batch is freed
        # long before the gen-0 threshold (tune_gc) lets a collection look at it
        gc.collect()
        gc.disable()
        try:
            c0 = time.process_time()
            out = fn()
            best[name] = min(best.get(name, float("inf")), time.process_time() - c0)
        finally:
            gc.enable()
        return out

    for _ in range(repeat):
        timed("parse alone (orjson.loads)", lambda: [orjson.loads(m) for m in msgs])
        timed("decode (InferenceRecord.from_json)", lambda: [InferenceRecord.from_json(m) for m in msgs])
        docs: Any = timed("row documents (record_documents)", lambda: [d for r in recs for d in record_documents(r)])
        timed("input_num (_numbers)", functools.partial(_all_numbers, docs))
        timed("full text + section JSON (_with_fulltext)", functools.partial(_all_with_fulltext, docs))
        timed("serialiser alone (orjson.dumps, action lines)", functools.partial(_serialise, docs))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=30_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wide", action="store_true", help="bench_detect's 50-feature records")
    args = ap.parse_args()
    if args.wide:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_detect import records

        msgs = [r.to_json() for r in records(args.records, "cpu")]
    else:
        msgs = messages(args.records)
    print(f"{args.records} records of {len(msgs[0])} bytes ({'50 features' if args.wide else '11 features + bodies'}); "
          f"load average {os.getloadavg()[0]:.1f}")
    tune_gc()  # what the stream workers do
    t_iw = t_base = float("inf")
    for _ in range(args.repeat):  # alternate, keep each one's best
        t_base = min(t_base, baseline(msgs))
        t_iw = min(t_iw, inferwatch_path(msgs, 5000))
    per = 1e6 / args.records
    print(f"baseline (parse + serialise) : {t_base * per:6.1f} µs CPU per record (best of {args.repeat})")
    print(f"inferwatch audit path        : {t_iw * per:6.1f} µs CPU per record (best of {args.repeat})")
    print(f"ratio inferwatch / baseline  = {t_iw / t_base:.2f}")
    print(f"each stage alone, µs CPU per record (best of {args.repeat}):")
    for name, t in stages(msgs, args.repeat).items():
        print(f"  {name:48s} {t * per:6.1f}")


if __name__ == "__main__":
    main()
