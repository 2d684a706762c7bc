"""Latency the logging proxy adds over calling the model server directly, in one run.

A model server (uvicorn, its own process, a KServe v1 ``:predict`` that sums each row of a
10-feature batch) and ``inferwatch proxy`` (its own process, logging every exchange to the
embedded SQLite log, or with ``--kafka`` to the stack's Kafka) run side by side. The load
generator (this process, aiohttp, keep-alive connections) measures:

1. a fixed offered rate (default 200 requests/s), open loop, latency counted from each request's
   scheduled send time (no coordinated omission); direct and proxied blocks alternate
   (ABAB..., 5 s each) so both see the same machine; p50 and p99 of each, and the difference;
2. the highest rate the machine sustains: closed loop, ``--concurrency`` callers, for each path;
   throughput, p50 and p99.

After the run the proxy must have logged every proxied exchange (the log's record count) and
dropped none. Goal at the fixed rate: at most 1 ms added at p50 and 3 ms at p99.

    python bench/bench_proxy.py [--rate 200] [--seconds 20] [--concurrency 16] [--kafka]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402


async def model_app(scope, receive, send):  # the upstream: KServe v1 predict
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    if scope["path"] == "/healthz":
        out = b'{"ok": true}'
    else:
        rows = orjson.loads(body)["instances"]
        out = orjson.dumps({"predictions": [sum(r) for r in rows]})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


HEADERS = {"content-type": "application/json"}
ERRORS: dict[str, int] = {}
LAST_ERROR: dict[str, str] = {}
BODY = orjson.dumps({"instances": [[round(i * 0.1 + j, 2) for j in range(10)] for i in range(4)]})
PATH = "/v1/models/bench:predict"


async def open_loop(session, urls: list[str], rate: float, seconds: float) -> list[list[float]]:
    """Latencies (ms) from each request's scheduled time, ``rate`` requests/s for ``seconds``, the
    requests going to ``urls`` in turn; one list per url. One dispatcher starts each request at its
    time (a late dispatcher shows as latency on both paths alike)."""
    n = int(rate * seconds)
    lat: list[list[float]] = [[] for _ in urls]
    tasks = []

    import aiohttp

    async def one(i: int, due: float) -> None:
        url = urls[i % len(urls)]
        try:
            async with session.post(url + PATH, data=BODY, headers=HEADERS) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}: {(await r.text())[:120]}")
        except (aiohttp.ClientError, RuntimeError) as exc:  # counted and shown, per path
            key = "direct" if i % len(urls) == 0 else "proxy"
            ERRORS[key] = ERRORS.get(key, 0) + 1
            LAST_ERROR[key] = repr(exc)[:200]
            return
        lat[i % len(urls)].append((time.perf_counter() - due) * 1000)

    t0 = time.perf_counter() + 0.05
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return lat


async def closed_loop(session, url: str, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    lat: list[float] = []
    end = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < end:
            t = time.perf_counter()
            async with session.post(url + PATH, data=BODY, headers=HEADERS) as r:
                await r.read()
            lat.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return len(lat) / (time.perf_counter() - start), lat


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def measure(direct: str, proxied: str, rate: float, seconds: float, concurrency: int) -> dict:
    import aiohttp

    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        for url in (direct, proxied):  # warm up both paths and their connections
            await open_loop(session, [url], 100, 1.0)
        # direct and proxied requests interleaved one by one, each path at `rate`: both see the same machine
        fixed = await open_loop(session, [direct, proxied], 2 * rate, seconds)
        sat = {}
        for name, url in (("direct", direct), ("proxy", proxied)):
            sat[name] = await closed_loop(session, url, concurrency, min(seconds, 10.0))
    return {"fixed": {"direct": fixed[0], "proxy": fixed[1]}, "saturated": sat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="per path at the fixed rate")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--kafka", action="store_true", help="log to the stack's Kafka instead of SQLite")
    ap.add_argument("--no-logging", action="store_true",
                    help="send X-Inferwatch-Skip: the proxy forwards only (what logging costs, by difference)")
    ap.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.no_logging:
        HEADERS["x-inferwatch-skip"] = "1"
    if args.serve_upstream:
        import uvicorn

        uvicorn.run(model_app, host="127.0.0.1", port=args.serve_upstream, log_level="warning", access_log=False)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    up_port, proxy_port = free_port(), free_port()
    tag = uuid.uuid4().hex[:8]
    cfg = {"data_dir": str(tmp), "log_level": "WARNING",
           "log": {"backend": "kafka" if args.kafka else "sqlite", "records_topic": f"bench-proxy-{tag}.records",
                   "deadletter_topic": f"bench-proxy-{tag}.deadletter",
                   "detections_topic": f"bench-proxy-{tag}.detections"}}
    (tmp / "cfg.json").write_bytes(orjson.dumps(cfg))
    (tmp / "cfg.yaml").write_text((tmp / "cfg.json").read_text())  # JSON is YAML
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(up_port)], env=env),
        subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "proxy", "-c", str(tmp / "cfg.yaml"),
                          "--upstream", f"http://127.0.0.1:{up_port}", "--port", str(proxy_port)], env=env),
    ]
    direct, proxied = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{proxy_port}"
    try:
        wait_http(direct + "/healthz")
        wait_http(proxied + "/.inferwatch/healthz")
        r = asyncio.run(measure(direct, proxied, args.rate, args.seconds, args.concurrency))
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            health = httpx.get(proxied + "/.inferwatch/healthz").json()
            if health["pending"] == 0:
                break
            time.sleep(0.5)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    from inferwatch.config import load_config
    from inferwatch.wiring import build_log

    lg = build_log(load_config(tmp / "cfg.yaml"))
    logged = lg.size(cfg["log"]["records_topic"])
    proxied_n = len(r["fixed"]["proxy"]) + len(r["saturated"]["proxy"][1]) + 100  # + warm-up
    load = os.getloadavg()
    fd, fp = r["fixed"]["direct"], r["fixed"]["proxy"]
    d50, d99, p50, p99 = pct(fd, .5), pct(fd, .99), pct(fp, .5), pct(fp, .99)
    print(f"inferwatch proxy benchmark ({'Kafka' if args.kafka else 'SQLite'} log); machine shared with other "
          f"jobs while measured (load average {load[0]:.1f} on {os.cpu_count()} CPUs): figures are noisy, "
          f"compare within this run")
    print(f"\n1. fixed rate {args.rate:.0f} req/s per path, open loop, {len(fd)} requests per path, "
          f"direct and proxied interleaved")
    print(f"   direct : p50 {d50:6.2f} ms   p99 {d99:6.2f} ms   mean {statistics.fmean(fd):6.2f} ms")
    print(f"   proxy  : p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   mean {statistics.fmean(fp):6.2f} ms")
    print(f"   added  : p50 {p50 - d50:+6.2f} ms (goal <= 1)   p99 {p99 - d99:+6.2f} ms (goal <= 3)   "
          f"ratio p50 {p50 / d50:.2f}x")
    print(f"\n2. highest sustained rate, closed loop, {args.concurrency} callers")
    for name in ("direct", "proxy"):
        rps, lat = r["saturated"][name]
        print(f"   {name:6} : {rps:7.0f} req/s   p50 {pct(lat, .5):6.2f} ms   p99 {pct(lat, .99):6.2f} ms")
    ratio = r["saturated"]["proxy"][0] / r["saturated"]["direct"][0]
    print(f"   proxy throughput / direct: {ratio:.2f}")
    if ERRORS:
        print(f"\n   failed requests at the fixed rate: {ERRORS}; last: {LAST_ERROR}")
    print(f"\n3. logging: {logged} records on the log for {proxied_n} proxied requests; "
          f"dropped {health['dropped']}; pending {health['pending']}")


if __name__ == "__main__":
    main()
