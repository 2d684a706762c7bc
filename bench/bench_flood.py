"""The collector under a flood: peak memory and answers, with and without load shedding.

32 connections send 1,000-record requests back to back with a 1 s client timeout (a client
that gives up and sends the next request), for ``--seconds`` against a collector process
(``inferwatch run --role collector``, embedded SQLite log by default, Kafka with ``--kafka``).
The same flood runs twice in this script:

* **baseline** — shedding switched off: unbounded requests and bytes in flight and a 120 s
  append deadline (how the collector behaved before: hold every request until the log took it);
* **bounded** — the defaults: 64 requests / 64 MiB in flight, 3 s append deadline, 503 with
  Retry-After beyond, requests of clients that have gone dropped before decoding.

It prints, for each, the collector's resident memory at rest and at its peak (sampled from
/proc every 0.1 s), the answers (202, 503 with Retry-After, client timeouts) and the records
acknowledged, and the ratios bounded / baseline. Absolute numbers depend on the machine (and
on what else runs on it); the ratios are the result.

    python bench/bench_flood.py [--seconds 30] [--connections 32] [--records 1000] [--kafka]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _body(conn: int, n: int, records: int) -> bytes:
    rows = [{"id": f"c{conn}-r{n}-{i}", "model": "flood",
             "inputs": {"age": [30 + i % 40], "income": [1000.5 + i], "city": ["Lyon"]}} for i in range(records)]
    return json.dumps(rows).encode()


def run(label: str, env_extra: dict[str, str], seconds: float, connections: int, records: int,
        base_env: dict[str, str]) -> dict[str, float]:
    port = _free_port()
    data = tempfile.mkdtemp(prefix="iw-flood-")
    env = {**os.environ, "PYTHONPATH": str(REPO), "INFERWATCH_DATA_DIR": data,
           "INFERWATCH_COLLECTOR_PORT": str(port), "INFERWATCH_COLLECTOR_MAX_BODY_BYTES": str(64 * 1024 * 1024),
           "INFERWATCH_LOG_LEVEL": "ERROR", **base_env, **env_extra}
    proc = subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "run", "--role", "collector"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(1.0)
        rest = _rss_kib(proc.pid)
        peak = rest
        counts = {"202": 0, "503": 0, "503 with Retry-After": 0, "timeout": 0, "other": 0}
        acked = 0
        lock = threading.Lock()
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss_kib(proc.pid))
                time.sleep(0.1)

        def client(conn: int) -> None:
            nonlocal acked
            n = 0
            with httpx.Client(timeout=1.0) as c:
                while not stop.is_set():
                    body = _body(conn, n, records)
                    n += 1
                    try:
                        r = c.post(url + "/v1/records", content=body, headers={"content-type": "application/json"})
                        key = str(r.status_code) if r.status_code in (202, 503) else "other"
                        with lock:
                            counts[key] += 1
                            if r.status_code == 202:
                                acked += records
                            if r.status_code == 503 and r.headers.get("retry-after"):
                                counts["503 with Retry-After"] += 1
                    except httpx.TimeoutException:
                        with lock:
                            counts["timeout"] += 1
                    except httpx.HTTPError:
                        with lock:
                            counts["other"] += 1

        threads = [threading.Thread(target=sample, daemon=True)]
        threads += [threading.Thread(target=client, args=(i,), daemon=True) for i in range(connections)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(10)
        alive = proc.poll() is None
        # after the flood: is the collector still answering promptly?
        t0 = time.monotonic()
        try:
            after = httpx.post(url + "/v1/records", json=[{"id": "after", "model": "flood", "inputs": {"age": [1]}}],
                               timeout=30).status_code
        except httpx.HTTPError:
            after = 0
        after_s = time.monotonic() - t0
        total = sum(v for k, v in counts.items() if k != "503 with Retry-After")
        print(f"\n[{label}] rss at rest {rest / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB; "
              f"requests {total}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
              + f"; records acknowledged {acked}; alive {alive}; next request {after} in {after_s:.2f}s")
        return {"rest": rest, "peak": peak, "timeouts": counts["timeout"], "total": total, "acked": acked,
                "after_s": after_s}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--kafka", action="store_true", help="use the Kafka log of `python -m stack env`")
    args = p.parse_args()
    base_env: dict[str, str] = {}
    if args.kafka:
        env = json.loads(subprocess.run([sys.executable, "-m", "stack", "env", "--json"], cwd=REPO, check=True,
                                        capture_output=True, text=True).stdout)
        base_env = {**env, "INFERWATCH_LOG_BACKEND": "kafka",
                    "INFERWATCH_LOG_RECORDS_TOPIC": f"iw-flood-{os.getpid()}.records",
                    "INFERWATCH_LOG_DEADLETTER_TOPIC": f"iw-flood-{os.getpid()}.deadletter",
                    "INFERWATCH_LOG_DETECTIONS_TOPIC": f"iw-flood-{os.getpid()}.detections"}
    print(f"flood: {args.connections} connections x {args.records}-record requests, 1 s client timeout, "
          f"{args.seconds:g} s, log {'kafka' if args.kafka else 'sqlite'} (machine shared: absolute numbers are noisy)")
    unbounded = {"INFERWATCH_COLLECTOR_MAX_INFLIGHT_REQUESTS": "1000000",
                 "INFERWATCH_COLLECTOR_MAX_INFLIGHT_BYTES": str(1 << 40),
                 "INFERWATCH_COLLECTOR_APPEND_DEADLINE_S": "120"}
    try:
        base = run("baseline: no shedding", unbounded, args.seconds, args.connections, args.records, base_env)
        bounded = run("bounded: defaults", {}, args.seconds, args.connections, args.records, base_env)
    finally:
        if args.kafka:  # the flood's topics hold hundreds of megabytes: do not leave them on the broker
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=base_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"].split(","))
            try:
                admin.delete_topics([base_env[f"INFERWATCH_LOG_{t}_TOPIC"] for t in ("RECORDS", "DEADLETTER",
                                                                                       "DETECTIONS")],
                                    raise_errors=False)
            finally:
                admin.close()
    print(f"\npeak RSS bounded / baseline: {bounded['peak'] / max(base['peak'], 1):.2f}; "
          f"growth over rest bounded / baseline: "
          f"{(bounded['peak'] - bounded['rest']) / max(base['peak'] - base['rest'], 1):.2f}; "
          f"client timeouts bounded / baseline: {bounded['timeouts'] / max(base['timeouts'], 1):.2f}; "
          f"records acknowledged bounded / baseline: {bounded['acked'] / max(base['acked'], 1):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
