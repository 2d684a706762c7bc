"""Collector throughput: requests/s on small binary-mode CloudEvents over 8 keep-alive connections,
a baseline git ref against the working tree, in the same run.

Each side is exported to a temporary directory (``git archive`` of the ref; the working tree as
it is), started as ``inferwatch run --role collector`` with the embedded SQLite log in a fresh
data directory, and loaded by ``wrk`` (Debian's ``wrk``; without it, a bounded asyncio client
with the same number of keep-alive connections). Rounds alternate baseline/change so drift of a
shared machine hits both; the answer is the median per side and the ratio change/baseline.

    python bench/bench_collector.py [--base main] [--seconds 10] [--rounds 3] [--connections 8]

Every response must be 202; anything else is counted and reported (a run with errors is not a
throughput figure).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BODY = b'{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
HEADERS = {
    "Content-Type": "application/json",
    "Ce-Specversion": "1.0",
    "Ce-Type": "org.kubeflow.serving.inference.request",
    "Ce-Source": "bench",
    "Ce-Id": "bench-1",
    "Ce-Inferenceservicename": "sklearn-iris",
    "Ce-Namespace": "bench",
    "Ce-Endpoint": "default",
}
LUA = """
wrk.method = "POST"
wrk.body = [==[%s]==]
%s
local n = 0
request = function()
  n = n + 1
  wrk.headers["Ce-Id"] = "bench-" .. n
  return wrk.format()
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def export(ref: str | None, into: Path) -> Path:
    """The source tree of ``ref`` (``None``: the working tree) under ``into``."""
    into.mkdir(parents=True)
    if ref is None:
        for name in ("inferwatch", "collectors", "detectors", "sinks"):
            shutil.copytree(ROOT / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        return into
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "inferwatch", "collectors",
                              "detectors", "sinks"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


class Collector:
    def __init__(self, src: Path, work: Path):
        self.port = _free_port()
        cfg = work / "inferwatch.yaml"
        cfg.write_text(f"data_dir: {work / 'data'}\ncollector:\n  port: {self.port}\nlog_level: WARNING\n")
        env = {**os.environ, "PYTHONPATH": str(src)}
        env = {k: v for k, v in env.items() if not k.startswith("INFERWATCH_")}
        with open(work / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "run", "--role", "collector",
                                          "--config", str(cfg)], env=env, cwd=work,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited: {(work / 'stderr.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("collector did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def load_wrk(url: str, seconds: float, connections: int, work: Path) -> tuple[float, int, int]:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
    script = work / "post.lua"
    script.write_text(LUA % (BODY.decode(), headers))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url + "/"],
                         check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    bad += sum(int(n) for n in re.findall(r"\d+", errors.group(1))) if errors else 0
    return rps, total, bad


async def _load_httpx(url: str, seconds: float, connections: int) -> tuple[float, int, int]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    done = bad = 0
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        async def worker(w: int) -> None:
            nonlocal done, bad
            i = 0
            while time.monotonic() < stop:
                i += 1
                r = await client.post("/", content=BODY, headers={**HEADERS, "Ce-Id": f"bench-{w}-{i}"})
                done += 1
                bad += r.status_code != 202
        t0 = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(connections)))
        return done / (time.monotonic() - t0), done, bad


def worst_case_bodies() -> list[bytes]:
    """~1 MB bodies that cost the most to decode: 16,000 same-named tensors, 40,000 records."""
    t = b'{"name":"x","shape":[1],"datatype":"INT32","data":[1]}'
    tensors = b'{"inputs":[' + b",".join([t] * 16000) + b"]}"
    recs = b'{"instances":[' + b",".join(b'{"a":%d,"b":"x","c":[1,2]}' % i for i in range(40000)) + b"]}"
    return [tensors, recs]


_HEAVY = """
import sys, time, httpx, threading
sys.path.insert(0, sys.argv[3])
from bench.bench_collector import HEADERS, worst_case_bodies
bodies, stop = worst_case_bodies(), time.monotonic() + float(sys.argv[2])
def heavy(i):
    with httpx.Client(base_url=sys.argv[1], timeout=60) as c:
        while time.monotonic() < stop:
            c.post("/", content=bodies[i % len(bodies)], headers={**HEADERS, "Ce-Id": f"h{i}"})
ts = [threading.Thread(target=heavy, args=(i,)) for i in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
"""


def healthz_under_load(url: str, seconds: float) -> dict[str, float]:
    """/healthz latency while two clients (another process) keep posting worst-case bodies: the
    p50/p99/max of one probe every 20 ms."""
    heavy = subprocess.Popen([sys.executable, "-c", _HEAVY, url, str(seconds + 0.5), str(ROOT)])
    lat: list[float] = []
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            time.sleep(0.5)
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = client.get("/healthz")
                lat.append(time.perf_counter() - t0)
                assert r.status_code == 200
                time.sleep(0.02)
    finally:
        heavy.wait(120)
    lat.sort()
    return {"probes": len(lat), "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
            "max_ms": 1000 * lat[-1]}


def run(base: str, seconds: float, rounds: int, connections: int) -> dict[str, object]:
    use_wrk = shutil.which("wrk") is not None
    results: dict[str, list[float]] = {"baseline": [], "change": []}
    health: dict[str, list[dict[str, float]]] = {"baseline": [], "change": []}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="iw-bench-collector-") as tmp:
        trees = {"baseline": export(base, Path(tmp) / "base"), "change": export(None, Path(tmp) / "change")}
        for r in range(rounds):
            for side in ("baseline", "change") if r % 2 == 0 else ("change", "baseline"):
                work = Path(tmp) / f"{side}-{r}"
                work.mkdir()
                c = Collector(trees[side], work)
                try:
                    if use_wrk:
                        rps, total, bad = load_wrk(c.url, seconds, connections, work)
                    else:
                        rps, total, bad = asyncio.run(_load_httpx(c.url, seconds, connections))
                    health[side].append(healthz_under_load(c.url, seconds))
                finally:
                    c.stop()
                results[side].append(rps)
                if bad:
                    problems.append(f"{side} round {r}: {bad} of {total} responses were not 202")
                hz = health[side][-1]
                print(f"  round {r} {side:8s} {rps:8.1f} req/s ({total} requests, {bad} not 202); /healthz under "
                      f"worst-case bodies p50 {hz['p50_ms']:.1f} ms p99 {hz['p99_ms']:.1f} ms max {hz['max_ms']:.1f} ms "
                      f"({hz['probes']:.0f} probes)", flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    return {"client": "wrk" if use_wrk else "httpx", "connections": connections, "seconds": seconds,
            "baseline_ref": base, "baseline_rps": med["baseline"], "change_rps": med["change"],
            "ratio": med["change"] / med["baseline"], "problems": problems,
            "healthz_p99_ms": {k: statistics.median(h["p99_ms"] for h in v) for k, v in health.items()},
            "healthz_max_ms": {k: max(h["max_ms"] for h in v) for k, v in health.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    a = ap.parse_args()
    res = run(a.base, a.seconds, a.rounds, a.connections)
    print(f"collector, small binary-mode CloudEvents, {res['connections']} keep-alive connections ({res['client']}):")
    print(f"  baseline {res['baseline_ref']}: {res['baseline_rps']:.1f} req/s   change: {res['change_rps']:.1f} req/s"
          f"   ratio {res['ratio']:.2f}")
    print(f"  /healthz while worst-case bodies decode: p99 {res['healthz_p99_ms']} ms, max {res['healthz_max_ms']} ms")
    for p in res["problems"]:  # type: ignore[attr-defined]
        print("  PROBLEM:", p)
    if res["problems"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
