"""The path of one record id, traced: from the HTTP handler to the Elasticsearch bulk body.

docs/architecture.md ("The path of a record id") writes the path down module by module; this
test runs it and checks it. A CloudEvent (Seldon's ``Ce-Requestid``) is posted to the collector's
ASGI app, appended to a SQLite log, read by the audit worker and written by the Elasticsearch
store to a client that keeps the ``_bulk`` bodies it is given. ``sys.setprofile`` (every thread)
sees each call into a module of the project (``inferwatch/``, ``collectors/``, ``sinks/``,
``detectors/``) and each return from one.

* **The id is in a function's hands** when its arguments hold it: the id's text (or a text built
  from it, such as the row id ``<id>-0``), or an envelope, record, document, action, chunk or
  any container holding one. Serialized bytes do not count: the log and the HTTP body carry the
  id opaquely, as the network does.
* **A hop** is a call from a module of the project into another one with the id in its hands.
  The modules the id touches are the callees of hops, and the module of the handler.
* **A -> B -> A** is a module called, with the id, while a call of that module is still open
  further down the same thread's stack behind another module: a call back into a module the id
  came through.

The checks: at most five modules, no A -> B -> A, the id in the bulk body, and the modules the
documentation lists are exactly the traced ones. The tracer itself is shown to see a planted
call-back and a sixth module (so the assertions can fail).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import pytest

from inferwatch.config import ElasticsearchConfig, load_config
from inferwatch.ingest import Ingestor
from inferwatch.metrics import Metrics
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.workers import AuditWorker

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("inferwatch", "collectors", "sinks", "detectors")
RECORD_ID = "req-7f3a9c"


def module_of(filename: str, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> str | None:
    """``inferwatch/ingest.py`` for a file of the project, else ``None``."""
    try:
        rel = Path(filename).resolve().relative_to(root)
    except ValueError:
        return None
    return rel.as_posix() if rel.parts and rel.parts[0] in packages else None


def holds(value: Any, needle: str, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Whether ``value`` holds the id: its text, or anything holding the text (not bytes)."""
    if isinstance(value, str):
        return needle in value
    if isinstance(value, (bytes, bytearray, memoryview, int, float, bool, type(None))) or depth > 6:
        return False
    seen = set() if seen is None else seen
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, dict):
        return any(holds(k, needle, depth + 1, seen) or holds(v, needle, depth + 1, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds(v, needle, depth + 1, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds(getattr(value, f.name, None), needle, depth + 1, seen) for f in dataclasses.fields(value))
    return False


class PathTracer:
    """Records the hops of the id (see the module docstring) in every thread while active."""

    def __init__(self, needle: str, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> None:
        self.needle = needle
        self.root, self.packages = root, packages
        self.modules: list[str] = []  # in the order first touched
        self.backs: list[tuple[str, ...]] = []  # stacks that re-entered a module: A -> B -> A
        self._stacks: dict[int, list[tuple[FrameType, str]]] = {}
        self._lock = threading.Lock()

    def touch(self, module: str) -> None:
        with self._lock:
            if module not in self.modules:
                self.modules.append(module)

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "return"):
            return
        module = module_of(frame.f_code.co_filename, self.root, self.packages)
        if module is None:
            return
        stack = self._stacks.setdefault(threading.get_ident(), [])
        if event == "return":
            if stack and stack[-1][0] is frame:
                stack.pop()
            return
        code = frame.f_code
        args = [frame.f_locals.get(n) for n in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]]
        if any(holds(a, self.needle) for a in args):
            caller = stack[-1][1] if stack else None
            if caller is None:
                self.touch(module)  # where the id enters the project
            elif caller != module:  # a hop
                self.touch(caller)
                self.touch(module)
                below = [m for _, m in stack]
                collapsed = [m for i, m in enumerate(below) if i == 0 or below[i - 1] != m]
                if module in collapsed:
                    self.backs.append((*collapsed[collapsed.index(module):], module))
        stack.append((frame, module))

    @contextmanager
    def active(self) -> Iterator[PathTracer]:
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)
        try:
            yield self
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]


class KeepingBulk:
    """An Elasticsearch client that keeps the ``_bulk`` bodies and answers "all written"."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def bulk(self, operations: bytes, **_: Any) -> dict[str, Any]:
        self.bodies.append(bytes(operations))
        return {"errors": False}

    class indices:  # the client's namespace: no label is waiting for these rows
        @staticmethod
        def exists(index: str) -> bool:
            return False

    def close(self) -> None:
        pass


def run_one_record(tmp_path: Path, tracer: PathTracer, route: str = "cloudevents", inline: bool = True) -> list[bytes]:
    """Post one record (a binary-mode CloudEvent, or a ``/v1/records`` item), let the audit worker
    write it; the bulk bodies sent. ``inline=False`` reads and decodes the body on the decode
    threads (as a body over ``collector.inline_decode_bytes`` is)."""
    from collectors.http import create_app
    from sinks.elasticsearch import ElasticsearchAuditStore

    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path),
                                               "collector.inline_decode_bytes": 65_536 if inline else 0})
    lg = SQLiteLog(tmp_path / "log.db")
    ingestor = Ingestor(lg, cfg, Metrics())
    app = create_app(ingestor)
    client = KeepingBulk()
    store = ElasticsearchAuditStore(ElasticsearchConfig(), client=client, setup=False)
    worker = AuditWorker(cfg, lg, store, Metrics())
    headers = {"ce-type": "io.seldon.serving.inference.request", "ce-id": "event-1", "ce-source": "seldon",
               "ce-specversion": "1.0", "ce-requestid": tracer.needle, "ce-modelid": "iris",
               "content-type": "application/json"}
    body = b'{"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}}'
    path = "/"
    if route == "records":
        path, headers = "/v1/records", {"content-type": "application/json"}
        body = orjson.dumps({"id": f"{tracer.needle}/iris", "model": "iris", "request": orjson.loads(body)})
    answer: dict[str, Any] = {}

    async def post() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
                 + [(b"content-length", str(len(body)).encode())], "client": ("t", 1), "server": ("t", 80)}
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]

        await app(scope, receive, send)

    try:
        with tracer.active():
            asyncio.run(post())
            for _ in range(20):
                worker.step()
                if client.bodies and not worker.writing:
                    break
            worker.close()
    finally:
        ingestor.close()
        lg.close()
    assert answer.get("status") == 202, answer
    return client.bodies


#: the modules docs/architecture.md names in "The path of a record id", in order
def documented_path() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The path of a record id", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\. `([a-z_/]+\.py)`", section, flags=re.MULTILINE)


@pytest.mark.parametrize("route, inline", [("cloudevents", True), ("cloudevents", False), ("records", True),
                                           ("records", False)])
def test_a_record_id_touches_at_most_five_modules_one_way(tmp_path: Path, route: str, inline: bool) -> None:
    tracer = PathTracer(RECORD_ID)
    bodies = run_one_record(tmp_path, tracer, route, inline)
    assert any(f'"_id":"{RECORD_ID}/iris-0"'.encode() in b for b in bodies), bodies  # it did arrive
    assert tracer.backs == [], f"calls back into a module the id came through: {tracer.backs}"
    assert len(tracer.modules) <= 5, tracer.modules
    assert tracer.modules[0] == "collectors/http.py" and "sinks/elasticsearch.py" in tracer.modules
    assert sorted(documented_path()) == sorted(tracer.modules)


# -- the tracer sees what it is meant to see ------------------------------------------------
def test_the_tracer_sees_a_call_back_and_every_module(tmp_path: Path) -> None:
    import importlib.util

    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "a.py").write_text(
        "def start(ids, b, c):\n    return b.forward(list(ids), c, back)\n\n"
        "def back(ids):\n    return [i + '-0' for i in ids]\n")
    (folder / "b.py").write_text("def forward(ids, c, back):\n    return c.end(back(ids))\n")
    (folder / "c.py").write_text("def end(ids):\n    return len(ids)\n\ndef other(n):\n    return n\n")
    mods = {}
    for name in ("a", "b", "c"):
        spec = importlib.util.spec_from_file_location(f"_planted_{name}", folder / f"{name}.py")
        assert spec is not None and spec.loader is not None
        mods[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mods[name])
    tracer = PathTracer(RECORD_ID, root=tmp_path, packages=("planted",))
    with tracer.active():
        mods["a"].start([RECORD_ID], mods["b"], mods["c"])  # a -> b -> a (back) -> ... -> c
    assert tracer.modules == ["planted/a.py", "planted/b.py", "planted/c.py"]
    assert tracer.backs == [("planted/a.py", "planted/b.py", "planted/a.py")]
    quiet = PathTracer(RECORD_ID, root=tmp_path, packages=("planted",))
    with quiet.active():
        mods["c"].end([7])  # without the id: no module touched
    assert quiet.modules == [] and quiet.backs == []


def test_holds_looks_into_records_and_containers_not_bytes() -> None:
    from inferwatch.record import InferenceRecord

    rec = InferenceRecord(id=RECORD_ID, model="m", inputs={"x": [1]})
    assert holds([{"k": (rec,)}], RECORD_ID) and holds(f"{RECORD_ID}-3", RECORD_ID)
    assert not holds(rec.to_json(), RECORD_ID) and not holds({"x": [1, 2.0, None]}, RECORD_ID)
