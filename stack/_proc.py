"""Processes the stack starts: spawn, pid files, stop, log tails.

A pid file holds the pid and the process's start time (from ``/proc/<pid>/stat``), so ``down``
never signals an unrelated process that reused the pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: str
    command: list[str]


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields and fields[0] == "Z":  # a zombie is as good as dead
        return None
    return fields[19] if len(fields) > 19 else None


def read_pid(path: Path) -> PidRecord | None:
    try:
        data = json.loads(path.read_text())
        return PidRecord(int(data["pid"]), str(data["start_time"]), list(data.get("command", [])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def alive(record: PidRecord | None) -> bool:
    """True when the recorded process is still the one we started."""
    return record is not None and _proc_start_time(record.pid) == record.start_time


def running_pid(path: Path) -> int | None:
    record = read_pid(path)
    return record.pid if record is not None and alive(record) else None


def spawn(
    command: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> PidRecord:
    """Start ``command`` detached (own session), stdout+stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        shown = " ".join(_abbreviate(arg) for arg in command)
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {shown}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    start_time = None
    for _ in range(50):
        start_time = _proc_start_time(proc.pid)
        if start_time is not None or proc.poll() is not None:
            break
        time.sleep(0.01)
    record = PidRecord(proc.pid, start_time or "", list(command))
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"pid": record.pid, "start_time": record.start_time, "command": record.command})
    )
    tmp.replace(pid_file)
    return record


def _abbreviate(arg: str) -> str:
    """Class paths make unreadable log headers: show how many entries instead."""
    if len(arg) > 200 and os.pathsep in arg:
        return f"<{arg.count(os.pathsep) + 1} class path entries>"
    return arg


def exited(pid_file: Path) -> bool:
    """True when the process in ``pid_file`` has exited (reaping it if it is our child)."""
    record = read_pid(pid_file)
    if record is None:
        return True
    try:
        os.waitpid(record.pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not alive(record)


def stop(pid_file: Path, *, timeout: float = 30.0) -> str:
    """Stop the process recorded in ``pid_file``: SIGTERM, then SIGKILL after ``timeout``."""
    record = read_pid(pid_file)
    if record is None:
        pid_file.unlink(missing_ok=True)
        return "not running"
    if not alive(record):
        pid_file.unlink(missing_ok=True)
        return "not running (stale pid file removed)"
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(record.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not alive(record):
            pid_file.unlink(missing_ok=True)
            return f"stopped (pid {record.pid})"
        time.sleep(0.2)
    os.kill(record.pid, signal.SIGKILL)
    for _ in range(50):
        if not alive(record):
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return f"killed after {timeout:.0f}s (pid {record.pid})"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file (empty when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock (``flock``) so that concurrent ``up``/``down`` calls take turns."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"stack: waiting for another `{what}` on {lock_file.parent} to finish",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
