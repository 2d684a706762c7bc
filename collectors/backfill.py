"""Backfill: recorded exchanges from files, through the same ingest path as live traffic.

``inferwatch backfill FILE...`` (alias ``inferwatch replay``) reads JSON Lines (``.jsonl``,
``.ndjson``, ``.json`` holding a list), CSV and Parquet, each optionally gzipped (``.gz``). Every row
is one exchange:

* a JSON object with record fields, as ``POST /v1/records`` takes them: ``model``, ``id``,
  ``timestamp``, ``version``, ``latency_ms``, ``request``/``response`` payloads in any supported
  protocol (objects, or JSON text), or ``inputs``/``outputs`` tables, ``meta``...;
* a CSV or Parquet row: the columns named like record fields are those fields (``request`` and
  ``response`` cells hold JSON text), every other column is a feature of ``inputs``, or of
  ``outputs`` when listed in ``output_columns``.

``model`` may come from the command line for rows without one. Rows are replayed at full speed,
or at the recorded pace (the gaps between consecutive ``timestamp`` s, divided by ``speed``).

Idempotent: a row without an ``id`` gets one derived from its position and content
(``bf-<sha1>``), so replaying the same file again writes the same records, which the audit store
and the detectors count once. A row that cannot be decoded is a dead letter with its reason.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from inferwatch.errors import DecodeError
from inferwatch.ingest import Envelope, Ingestor
from inferwatch.record import RECORD_FIELDS, DeadLetter, parse_timestamp

__all__ = ["Backfill", "BackfillResult", "Pacer", "read_rows", "row_envelope"]

SOURCE = "backfill"
_JSON_CELLS = ("request", "response", "inputs", "outputs", "truth", "meta")


def _open(path: Path) -> io.BufferedIOBase:
    raw = path.open("rb")
    if path.suffix.lower() == ".gz":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw  # type: ignore[return-value]


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, kind in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv"),
                      (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(ext):
            return kind
    raise ValueError(f"{path}: unknown file type (expected .jsonl, .ndjson, .json, .csv or .parquet, optionally .gz)")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict)):  # numpy scalars from Parquet
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, row) of one file; a JSON line that does not parse is yielded as bytes."""
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with _open(path) as f:
            data = f.read()
        pf = pq.ParquetFile(io.BytesIO(data))
        n = 0
        for batch in pf.iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                n += 1
                yield n, {k: _clean(v) for k, v in row.items()}
        return
    with _open(path) as f:
        if kind == "json":
            data = orjson.loads(f.read())
            for i, row in enumerate(data if isinstance(data, list) else [data], 1):
                yield i, row
        elif kind == "jsonl":
            for i, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield i, orjson.loads(line)
                    except orjson.JSONDecodeError:
                        yield i, bytes(line)
        else:
            text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")  # type: ignore[type-var]
            for i, row in enumerate(csv.DictReader(text), 1):
                yield i, dict(row)


def _number(value: Any) -> Any:
    """CSV cells are text: numbers become numbers, empty cells missing values."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def row_envelope(row: Any, line: int, *, model: str | None = None, protocol: str | None = None,
                 output_columns: Sequence[str] = (), tabular: bool = False) -> Envelope:
    """The envelope of one row; raises :class:`DecodeError` for a row that is no record."""
    if isinstance(row, bytes):
        raise DecodeError(f"line {line} is not JSON", protocol="backfill")
    if not isinstance(row, dict):
        raise DecodeError(f"row {line} is not an object", protocol="backfill")
    fields: dict[str, Any] = {}
    inputs: dict[str, list[Any]] = {}
    outputs: dict[str, list[Any]] = {}
    for key, value in row.items():
        value = _clean(value)
        if key in RECORD_FIELDS and key not in ("request_encoding", "response_encoding"):
            if tabular and key in _JSON_CELLS and isinstance(value, str) and value.strip()[:1] in ("{", "["):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    pass  # kept as text; decoding reports it
            if value is not None and value != "":
                fields[key] = value
        elif tabular:
            (outputs if key in output_columns else inputs)[key] = [_number(value)]
    if tabular:
        if inputs and "inputs" not in fields and "request" not in fields:
            fields["inputs"] = inputs
        if outputs and "outputs" not in fields and "response" not in fields:
            fields["outputs"] = outputs
    if "latency_ms" in fields:
        fields["latency_ms"] = float(fields["latency_ms"])
    if not fields.get("model") and not _payload_model(fields):
        fields["model"] = model  # the command line's model is for rows that name none and "protocol" not in fields:
        fields["protocol"] = protocol
    if not fields.get("model") and not _payload_model(fields):
        raise DecodeError(f"row {line} has no model (give --model)", protocol="backfill")
    if not fields.get("id"):
        digest = hashlib.sha1(str(line).encode() + b"\0" + orjson.dumps(row, option=orjson.OPT_SORT_KEYS,
                                                                        default=str)).hexdigest()
        fields["id"] = f"bf-{digest[:24]}"
    fields["id"] = str(fields["id"])
    raw = orjson.dumps(row, default=str)
    return Envelope(source=SOURCE, raw=raw, fields=fields)


def _payload_model(fields: dict[str, Any]) -> str | None:
    """The model a payload names itself (OIP ``model_name``, OpenAI ``model``)."""
    for key in ("request", "response"):
        body = fields.get(key)
        if isinstance(body, str) and body.strip()[:1] == "{":
            try:
                body = orjson.loads(body)
            except orjson.JSONDecodeError:
                continue
        if isinstance(body, dict):
            for name in ("model_name", "model"):
                if isinstance(body.get(name), str) and body[name]:
                    return str(body[name])
    return None


class Pacer:
    """Waits so consecutive records keep their recorded gaps (divided by ``speed``); ``speed=0``
    (or records without timestamps) means full speed. ``sleep`` and ``clock`` are injectable."""

    def __init__(self, speed: float = 0.0, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.sleep = sleep
        self.clock = clock
        self._first: tuple[datetime, float] | None = None

    def wait(self, timestamp: Any) -> None:
        if self.speed <= 0 or timestamp is None:
            return
        try:
            ts = parse_timestamp(timestamp)
        except ValueError:
            return
        now = self.clock()
        if self._first is None:
            self._first = (ts, now)
            return
        due = self._first[1] + (ts - self._first[0]).total_seconds() / self.speed
        if due > now:
            self.sleep(due - now)


@dataclass
class BackfillResult:
    rows: int = 0
    records: int = 0
    dead_letters: int = 0
    files: list[str] = field(default_factory=list)


class Backfill:
    """Replays files into the ingest path in batches (durable on return of each batch)."""

    def __init__(self, ingestor: Ingestor, *, model: str | None = None, protocol: str | None = None,
                 output_columns: Sequence[str] = (), speed: float = 0.0, batch: int = 500,
                 pacer: Pacer | None = None) -> None:
        self.ingestor = ingestor
        self.model = model
        self.protocol = protocol
        self.output_columns = tuple(output_columns)
        self.batch = batch
        self.pacer = pacer or Pacer(speed)

    def run(self, paths: Iterable[Path], progress: Callable[[int], None] | None = None) -> BackfillResult:
        result = BackfillResult()
        loop = asyncio.new_event_loop()
        try:
            for path in paths:
                result.files.append(str(path))
                tabular = _kind(path) in ("csv", "parquet")
                envs: list[Envelope] = []
                letters: list[DeadLetter] = []
                for line, row in read_rows(path):
                    result.rows += 1
                    try:
                        env = row_envelope(row, line, model=self.model, protocol=self.protocol,
                                           output_columns=self.output_columns, tabular=tabular)
                    except DecodeError as exc:
                        raw = row if isinstance(row, bytes) else orjson.dumps(row, default=str)
                        letters.append(DeadLetter(raw=raw, source=SOURCE, reason=f"{path.name}: {exc}",
                                                  meta={"file": str(path), "line": str(line)}))
                    else:
                        if self.pacer.speed > 0 and envs:  # keep the pace: send what is due first
                            self._flush(loop, envs, letters, result, progress)
                            envs, letters = [], []
                        self.pacer.wait(env.fields.get("timestamp"))
                        envs.append(env)
                    if len(envs) + len(letters) >= self.batch:
                        self._flush(loop, envs, letters, result, progress)
                        envs, letters = [], []
                self._flush(loop, envs, letters, result, progress)
        finally:
            loop.close()
        return result

    def _flush(self, loop: asyncio.AbstractEventLoop, envs: list[Envelope], letters: list[DeadLetter],
               result: BackfillResult, progress: Callable[[int], None] | None) -> None:
        if not envs and not letters:
            return
        records, dead = loop.run_until_complete(self.ingestor.ingest(envs, letters))
        result.records += len(records)
        result.dead_letters += len(dead)
        if progress is not None:
            progress(len(envs) + len(letters))
