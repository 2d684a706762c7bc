"""Fault-injection harness: a loopback TCP proxy that cuts connections, process control, a
retrying client and the result table.

* :class:`TcpProxy` forwards a loopback port to a service (Elasticsearch's HTTP port, or a
  Kafka broker that advertises the proxy's port). ``cut()`` resets every open connection,
  ``block()`` also refuses new ones until ``unblock()``, ``hang()`` accepts but forwards nothing
  (a black hole, as a dropped network looks to a client) until ``unblock()``.
* :class:`Role` runs one ``inferwatch run --role ...`` process with its own log file, and kills
  (any signal), pauses (SIGSTOP/SIGCONT) and restarts it; :func:`signal_pidfile` does the same
  to a stack service through the pid file ``python -m stack`` wrote.
* :class:`Sender` posts records with fixed ids and retries each request until it gets 202, as a
  careful client would; it keeps what was acknowledged.
* :class:`FaultResult` and :func:`format_table` print the table the issue asks for: fault,
  sent, acknowledged, audited, duplicated, lost, detections expected and found, recovery time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

__all__ = ["FaultResult", "Role", "Sender", "TcpProxy", "format_table", "free_port", "signal_pidfile"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the proxy ------------------------------------------------------------------------------------


class TcpProxy:
    """A threaded loopback TCP proxy whose connections can be cut, refused or black-holed."""

    def __init__(self, target: tuple[str, int], port: int = 0, host: str = "127.0.0.1"):
        self.target = target
        self._server = socket.create_server((host, port), reuse_port=False)
        self._server.settimeout(0.2)
        self.host, self.port = self._server.getsockname()[:2]
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._mode = "pass"  # pass | block | hang
        self._stop = threading.Event()
        self.accepted = 0
        self.cut_count = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- faults ------------------------------------------------------------------------------------
    def cut(self) -> int:
        """Reset every open connection (RST, as a crashed peer or a middlebox would); returns how many."""
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for s in conns:
            _reset(s)
        self.cut_count += len(conns)
        return len(conns)

    def block(self) -> None:
        """Cut everything and refuse new connections until :meth:`unblock`."""
        self._mode = "block"
        self.cut()

    def hang(self) -> None:
        """Cut everything; new connections are accepted but nothing is forwarded until :meth:`unblock`."""
        self._mode = "hang"
        self.cut()

    def unblock(self) -> None:
        self._mode = "pass"

    @property
    def mode(self) -> str:
        return self._mode

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            mode = self._mode
            if mode == "block":
                _reset(client)
                continue
            if mode == "hang":
                with self._lock:
                    self._conns.add(client)  # held open, never answered; cut() or unblock+cut frees it
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self._mode == "hang":
                    break
                dst.sendall(data)
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()


def _reset(s: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER 0), so the peer sees a reset connection."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        s.close()


# --- processes ------------------------------------------------------------------------------------


def signal_pidfile(pid_file: Path, sig: int) -> int:
    """Send ``sig`` to the process in a ``python -m stack`` pid file (checked against its start
    time, so a reused pid is never signalled); returns the pid."""
    sys.path.insert(0, str(REPO))
    from stack import _proc

    record = _proc.read_pid(pid_file)
    if record is None or not _proc.alive(record):
        raise RuntimeError(f"no live process in {pid_file}")
    os.kill(record.pid, sig)
    return record.pid


@dataclass
class Role:
    """One ``inferwatch run --role ROLE`` process (or several roles), restartable."""

    roles: Sequence[str]
    env: Mapping[str, str]
    log_dir: Path
    name: str = ""
    args: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.name or "+".join(self.roles)

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> Role:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "inferwatch.cli", "run", *(f"--role={r}" for r in self.roles), *self.args]
        env = {**os.environ, **self.env}  # the installed package, not the checkout
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== start {self.starts + 1} {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_dir,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        self.signal(signal.SIGKILL)
        self.wait(30)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, as an orchestrator's graceful stop; SIGKILL after ``timeout``."""
        self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill()
        return self.proc.returncode if self.proc is not None else None

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.exits.append(code)
        return code

    def restart(self) -> Role:
        if self.running:
            self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def running(*roles: Role) -> Iterator[tuple[Role, ...]]:
    """Start the roles; stop them all at the end (whatever happened)."""
    try:
        for r in roles:
            r.start()
        yield roles
    finally:
        for r in roles:
            if r.running:
                r.stop(30)


# --- the client -----------------------------------------------------------------------------------


@dataclass
class Sender:
    """Posts batches of records to ``/v1/records`` and retries each batch until it is accepted.

    A retried batch keeps its record ids, exactly as a client resending after a timeout or a 503
    would: the system must count each id once."""

    url: str
    timeout: float = 5.0
    give_up_after: float = 900.0
    headers: Mapping[str, str] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    attempts: int = 0
    answers: dict[int, int] = field(default_factory=dict)
    retry_after: list[float] = field(default_factory=list)

    def send(self, records: Sequence[Mapping[str, Any]], stop: Callable[[], bool] | None = None) -> bool:
        import httpx

        ids = [str(r["id"]) for r in records]
        self.sent.update(ids)
        body = json.dumps(list(records)).encode()
        deadline = time.monotonic() + self.give_up_after
        delay = 0.1
        with httpx.Client(timeout=self.timeout) as client:
            while time.monotonic() < deadline and not (stop and stop()):
                self.attempts += 1
                try:
                    r = client.post(self.url, content=body,
                                    headers={"content-type": "application/json", **self.headers})
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                    r = None
                self.answers[status] = self.answers.get(status, 0) + 1
                if status == 202:
                    self.acked.update(ids)
                    return True
                if r is not None and status == 503 and r.headers.get("retry-after"):
                    with contextlib.suppress(ValueError):
                        self.retry_after.append(float(r.headers["retry-after"]))
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return False


# --- the table ------------------------------------------------------------------------------------


@dataclass
class FaultResult:
    fault: str
    sent: int
    acknowledged: int
    audited: int
    duplicated: int
    lost: int
    detections_expected: int | None = None
    detections_found: int | None = None
    recovery_s: float | None = None
    roles_up: bool = True
    note: str = ""
    #: every window's detection found once (by window number), not only the right count
    windows_ok: bool = True

    @property
    def ok(self) -> bool:
        dets_ok = self.detections_expected is None or self.detections_expected == self.detections_found
        return self.lost == 0 and self.duplicated == 0 and dets_ok and self.windows_ok and self.roles_up


#: results of the session's fault scenarios, printed by tests/faults/conftest.py
RESULTS: list[FaultResult] = []

COLUMNS = ("fault", "sent", "acked", "audited", "dup", "lost", "det exp", "det found", "recovery s", "roles up")


def format_table(results: Sequence[FaultResult]) -> str:
    """A plain-text table (fixed-width columns), one row per fault, and a verdict line."""

    def cells(r: FaultResult) -> list[str]:
        return [r.fault, str(r.sent), str(r.acknowledged), str(r.audited), str(r.duplicated), str(r.lost),
                "-" if r.detections_expected is None else str(r.detections_expected),
                "-" if r.detections_found is None else str(r.detections_found),
                "-" if r.recovery_s is None else f"{r.recovery_s:.1f}", "yes" if r.roles_up else "NO"]

    rows = [list(COLUMNS), *(cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    bad = [r.fault for r in results if not r.ok]
    lines.append(f"{len(results) - len(bad)} passed, {len(bad)} failed" if results else "no faults run")
    notes = [f"  {r.fault}: {r.note}" for r in results if r.note]
    return "\n".join(lines + notes)
