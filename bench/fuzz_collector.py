"""The long fuzz campaign: decoders under atheris, the collector over HTTP under hypothesis and
under fast mutation of what hypothesis generated. One process at a time (run it niced).

1. ``atheris``: coverage-guided libFuzzer on ``inferwatch.codecs.decode`` (every protocol, forced
   or detected, several content types), ``--atheris-runs`` inputs, ``-timeout=1``
   (bench/fuzz_decoders_atheris.py). Any exception but ``DecodeError``, or an input slower than
   1 s, stops it as a crash.
2. ``hypothesis``: ``--hypothesis`` deliveries from tests/fuzzing.py (every protocol's real
   encoding, damaged or not; CloudEvents binary with raw or percent-encoded headers, structured,
   batches; ``/v1/records``; hostile bodies up to 1 MB) sent to the collector in-process (the real
   app, Ingestor and codecs over an in-memory log) and checked by the oracle.
3. ``mutation``: ``--mutations`` deliveries made by mutating phase 2's deliveries at random (bytes
   flipped, cut, repeated up to 1 MB, headers dropped or re-encoded, nesting spliced in), the
   same oracle.

Prints one JSON object with the figures: payloads generated, answers by status, crashes (5xx or
an uncaught exception), hangs (an answer slower than ``--max-seconds`` of wall-clock time, which
on a shared machine includes time the process was not scheduled) and CPU hangs (a request that
used more than ``--max-seconds`` of the process's CPU time), oracle violations.

    nice -n 10 python bench/fuzz_collector.py --atheris-runs 1000000 --hypothesis 3000 --mutations 300000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from inferwatch.config import load_config  # noqa: E402
from tests.fuzzing import Delivery, Harness, deliveries  # noqa: E402

MB = 1 << 20


def run_atheris(runs: int, workdir: Path) -> dict[str, Any]:
    corpus = workdir / "corpus"
    script = ROOT / "bench" / "fuzz_decoders_atheris.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script), "--seeds", str(corpus)], check=True, env=env)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(script), f"-runs={runs}", "-timeout=1", f"-max_len={MB}",
                        "-print_final_stats=1", f"-artifact_prefix={workdir}/", str(corpus)],
                       capture_output=True, text=True, env=env, cwd=workdir)
    out = p.stdout + p.stderr
    done = re.search(r"stat::number_of_executed_units:\s+(\d+)", out)
    slowest = re.search(r"stat::slowest_unit_time_sec:\s+(\d+)", out)
    crashed = p.returncode != 0
    return {"runs": int(done.group(1)) if done else None, "returncode": p.returncode,
            "crashes": 1 if crashed else 0, "seconds": round(time.monotonic() - t0, 1),
            "slowest_unit_s": int(slowest.group(1)) if slowest else None,
            "crash_report": out[-3000:] if crashed else None,
            "artifacts": sorted(str(a) for a in workdir.glob("crash-*")) + sorted(str(a) for a in workdir.glob("timeout-*"))}


def mutate(d: Delivery, rng: random.Random) -> Delivery:
    body = bytearray(d.body)
    headers = dict(d.headers)
    op = rng.randrange(9)
    if op == 0 and body:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    elif op == 1 and body:  # cut
        body = body[: rng.randrange(len(body))]
    elif op == 2 and body:  # repeat a slice up to ~1 MB
        i = rng.randrange(len(body))
        piece = body[i: i + rng.randint(1, 4096)]
        body[i:i] = piece * min(rng.randint(1, 4000), MB // max(len(piece), 1))
    elif op == 3 and headers:  # drop a header
        headers.pop(rng.choice(sorted(headers)))
    elif op == 4 and headers:  # percent-encode / garble a header value
        k = rng.choice(sorted(headers))
        headers[k] = rng.choice(["%", "%zz", "%C3%28", "a%20b", headers[k] + "%00", "", "%FF%FE"])
    elif op == 5:  # splice deep nesting somewhere
        depth = rng.choice([254, 255, 256, 600, 1023, 1024])
        deep = (b"[" * depth + b"1" + b"]" * depth) if rng.random() < 0.5 else (b'{"a":' * depth + b"1" + b"}" * depth)
        i = rng.randrange(len(body) + 1)
        body[i:i] = deep
    elif op == 6 and body:  # swap two slices
        i, j = sorted(rng.randrange(len(body)) for _ in range(2))
        body[i:j] = bytes(reversed(body[i:j]))
    elif op == 7:  # another route or content type
        d = Delivery(rng.choice(["/", "/v1/records", "/cloudevents"]), headers, bytes(body), d.kind, d.events)
        return d
    else:  # duplicate a JSON array element many times (same-named tensors, long batches)
        m = re.search(rb"\[\{", bytes(body))
        if m:
            end = body.find(b"}", m.end())
            if end > 0:
                elem = body[m.start() + 1: end + 1] + b","
                body[m.start() + 1: m.start() + 1] = elem * min(rng.randint(10, 20000), MB // max(len(elem), 1))
    kind = d.kind if op in (3, 4) else "mutated"
    return Delivery(d.path, headers, bytes(body), kind, d.events)


async def _send_all(h: Harness, items: list[Delivery]) -> None:
    for d in items:
        await h.send(d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--atheris-runs", type=int, default=1_000_000)
    ap.add_argument("--hypothesis", type=int, default=3000)
    ap.add_argument("--mutations", type=int, default=300_000)
    ap.add_argument("--max-seconds", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    logging.getLogger("inferwatch").setLevel(logging.CRITICAL)
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="iw-fuzz-") as tmp:
        work = Path(tmp)
        if a.atheris_runs:
            report["atheris"] = run_atheris(a.atheris_runs, work / "atheris")
            print(json.dumps({"atheris": report["atheris"]}), flush=True)
        cfg = load_config(None, env={}, overrides={"data_dir": str(work / "data"), "collector.port": 0,
                                                   "collector.max_body_bytes": MB})
        loop = asyncio.new_event_loop()
        h = Harness(cfg, max_seconds=a.max_seconds)
        pool: list[Delivery] = []
        t0 = time.monotonic()

        @settings(max_examples=a.hypothesis, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(deliveries)
        def generated(d: Delivery) -> None:
            if len(pool) < 20_000:
                pool.append(d)
            loop.run_until_complete(h.send(d))

        if a.hypothesis:
            generated()
        report["hypothesis"] = {**h.tally.summary(), "seconds": round(time.monotonic() - t0, 1)}
        print(json.dumps({"hypothesis": report["hypothesis"]}), flush=True)
        h.tally = type(h.tally)()
        rng = random.Random(a.seed)
        t0 = time.monotonic()
        chunk = 1000
        for start in range(0, a.mutations, chunk):
            batch = [mutate(rng.choice(pool), rng) for _ in range(min(chunk, a.mutations - start))] if pool else []
            loop.run_until_complete(_send_all(h, batch))
            if (start // chunk) % 50 == 0:
                tally = {k: v for k, v in h.tally.summary().items() if k != "examples"}
                print(json.dumps({"mutation_progress": tally, "s": round(time.monotonic() - t0)}), flush=True)
            if sum(map(len, h.log.topics.values())) > 50_000:  # keep memory bounded
                h.log.topics.clear()
        report["mutation"] = {**h.tally.summary(), "seconds": round(time.monotonic() - t0, 1)}
        loop.run_until_complete(h.aclose())
    ath = report.get("atheris", {})
    report["total_payloads"] = (ath.get("runs") or 0) + report["hypothesis"]["payloads"] + report["mutation"]["payloads"]
    report["total_crashes"] = ath.get("crashes", 0) + report["hypothesis"]["crashes"] + report["mutation"]["crashes"]
    report["total_hangs"] = report["hypothesis"]["hangs"] + report["mutation"]["hangs"]
    report["total_cpu_hangs"] = report["hypothesis"]["cpu_hangs"] + report["mutation"]["cpu_hangs"]
    report["total_violations"] = report["hypothesis"]["violations"] + report["mutation"]["violations"]
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text)
    sys.exit(1 if report["total_crashes"] or report["total_hangs"] or report["total_violations"] else 0)


if __name__ == "__main__":
    main()
