"""Batch input for ``inferwatch report``: records from a file or from the audit store.

* :func:`open_table` — a CSV or Parquet table read in record batches (:class:`TableFile`),
  never whole: what ``inferwatch report --input`` streams through the detectors;
* :func:`load_input` — CSV or Parquet tables, or JSON lines / a JSON array of inference
  records, audit documents or plain rows, as records in memory;
* :func:`load_audit` — the newest audited rows of a model in a time range, from any
  :class:`~inferwatch.audit.AuditStore`.

Both give :class:`~inferwatch.record.InferenceRecord` s in the order the windows should see
them; :func:`inferwatch.report.run_report` runs the detectors over them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from inferwatch.errors import InferwatchError
from inferwatch.record import InferenceRecord, parse_timestamp, row_id, utcnow
from inferwatch.table import Table, from_rows, n_rows

__all__ = ["Retyped", "TableFile", "load_audit", "load_input", "open_table"]

_TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz", ".txt")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_CHUNK = 1000


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return None


def _doc_record(doc: dict[str, Any], model: str | None) -> InferenceRecord | None:
    """One audit document (one row) as a one-row record; ``None`` if it has no input or output."""
    inp, out = doc.get("input"), doc.get("output")
    if not isinstance(inp, dict) and not isinstance(out, dict):
        return None
    when = _ts(doc.get("timestamp")) or _ts(doc.get("response_timestamp")) or utcnow()
    return InferenceRecord(
        id=str(doc.get("doc_id") or row_id(str(doc.get("record_id")), int(doc.get("row", 0)))),
        model=str(doc.get("model") or model or ""),
        version=doc.get("version"),
        timestamp=when,
        inputs={k: [v] for k, v in inp.items()} if isinstance(inp, dict) and inp else None,
        outputs={k: [v] for k, v in out.items()} if isinstance(out, dict) and out else None,
        truth={k: [v] for k, v in truth.items()} if isinstance(truth := doc.get("truth"), dict) and truth else None,
    )


def _table_records(table: Table, model: str, version: str | None, stem: str,
                   when: datetime) -> Iterator[InferenceRecord]:
    n = n_rows(table)
    for start in range(0, n, _CHUNK):
        chunk = {k: v[start : start + _CHUNK] for k, v in table.items()}
        yield InferenceRecord(id=f"{stem}-{start}", model=model, version=version, timestamp=when, inputs=chunk)


BATCH_ROWS = 262_144
"""Rows per record batch read from a table file (about 100 MB of 50 float64 columns; larger
batches make the per-batch work of the counted window, which grows with the reference, rarer)."""


def _is_parquet(name: str) -> bool:
    return name.endswith((".parquet", ".pq"))


# pandas' default missing-value markers (read_csv's na_values): a CSV cell reads as missing
# here exactly when pandas would read it so
_CSV_NA = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
           "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
_CSV_BLOCK = 1 << 20
"""Bytes per block the CSV reader parses at a time: small blocks gathered into batches (1 MiB
read 1M x 50 in about half the CPU time and an eighth of the memory of 32 MiB blocks, measured)."""
_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", re.S)


class Retyped(InferwatchError):
    """A CSV column held a value of another kind than its first block said (a text cell after
    numbers): the file's types are now known better (:attr:`TableFile.types`); read it again."""


@dataclass
class TableFile:
    """A CSV or Parquet file read in record batches: :meth:`batches` for the window pass,
    :meth:`read_columns` (or ``table[name]``) for a few columns alone (the report's plots).

    Parquet is read with ``pyarrow.parquet.ParquetFile`` row group by row group (``rows``
    comes from its metadata). CSV is streamed by pyarrow's multithreaded reader
    (``pyarrow.csv.open_csv``), block by block: bounded memory, text columns as dictionaries
    (pandas categoricals, counted by their codes), pandas' missing-value markers. A column's
    type is the one pandas' ``read_csv`` gives the whole file: numbers only when every cell
    is a number (or missing), else text. The reader infers it from the first block; when a
    later block disagrees (``1.5`` after integers, ``abc`` after numbers, a value after an
    empty first block), :meth:`batches` raises :class:`Retyped` after recording the wider
    type in :attr:`types`, and the caller reads the file again from the start, so every
    batch it sees has one type per column (``rows`` is known after the first full pass).
    """

    path: Path
    columns: list[str]
    rows: int | None
    when: datetime
    """The file's modification time: the time of its rows."""
    types: dict[str, Any] = field(default_factory=dict)
    """CSV: column -> the pyarrow type to read it as, learned from the file (see above)."""

    @property
    def parquet(self) -> bool:
        return _is_parquet(self.path.name.lower())

    def _error(self, exc: Exception) -> InferwatchError:
        return InferwatchError(f"cannot read {str(self.path)!r} as a {self.path.suffix.lstrip('.')} table: {exc}")

    def batches(self, batch_rows: int | None = None) -> Iterator[Any]:
        """The rows as pandas DataFrames of at most ``batch_rows`` (default :data:`BATCH_ROWS`) rows, in file order."""
        batch_rows = batch_rows or BATCH_ROWS
        try:
            if self.parquet:
                import pyarrow.parquet as pq

                # row group by row group, without pre-buffering: iter_batches over a whole
                # file read ahead across row groups and held ~2.5x the memory (measured)
                with pq.ParquetFile(self.path, read_dictionary=self._strings(), pre_buffer=False,
                                    buffer_size=1 << 20) as pf:
                    for i in range(pf.metadata.num_row_groups):
                        if pf.metadata.row_group(i).num_rows <= batch_rows:
                            parts: Any = [pf.read_row_group(i)]
                        else:
                            parts = pf.iter_batches(batch_size=batch_rows, row_groups=[i])
                        for part in parts:
                            frame = part.to_pandas()
                            del part
                            frame.columns = [str(c) for c in frame.columns]
                            yield frame
            else:
                n = 0
                for frame in self._csv_frames(None, batch_rows):
                    n += len(frame)
                    yield frame
                self.rows = n
        except InferwatchError:
            raise
        except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
            raise self._error(exc) from exc

    # -- CSV ---------------------------------------------------------------------------------
    def _csv_reader(self, include: list[str] | None) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        while True:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK, column_names=self.columns, skip_rows=1),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),  # quoted line breaks (no cost measured)
                convert_options=pacsv.ConvertOptions(
                    column_types=self.types, include_columns=include, null_values=_CSV_NA,
                    strings_can_be_null=True, true_values=["True", "TRUE", "true"],
                    false_values=["False", "FALSE", "false"]))
            # what the first block said, made explicit: numbers, booleans and missing stay what
            # they are until a later block disagrees; dates and times stay text (as pandas
            # reads them without parse_dates); text becomes dictionaries
            wider = {f.name: pa.dictionary(pa.int32(), pa.string()) for f in reader.schema
                     if f.name not in self.types and not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                                                          or pa.types.is_boolean(f.type) or pa.types.is_null(f.type))}
            if not wider:
                return reader
            reader.close()
            self.types.update(wider)

    def _retype(self, exc: Exception) -> bool:
        """Record the wider type a conversion error asks for; False when it is not one."""
        import pyarrow as pa

        found = _CONVERSION.search(str(exc))
        if found is None or int(found.group(1)) >= len(self.columns):
            return False
        name, was, value = self.columns[int(found.group(1))], found.group(2), found.group(3)
        try:
            number = float(value)
        except ValueError:
            number = None
        if was == "null" and number is not None and number.is_integer() and "." not in value and "e" not in value.lower():
            self.types[name] = pa.int64()
        elif was in ("null", "int64") and number is not None:
            self.types[name] = pa.float64()
        else:
            self.types[name] = pa.dictionary(pa.int32(), pa.string())
        return True

    def _csv_frames(self, include: list[str] | None, batch_rows: int) -> Iterator[Any]:
        """The CSV's rows as DataFrames of ``batch_rows`` rows (the last one fewer)."""
        import pyarrow as pa

        reader = self._csv_reader(include)
        pending: list[Any] = []  # parsed record batches not yet given out
        held = 0
        try:
            while True:
                try:
                    rb = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    if self._retype(exc):
                        raise Retyped(f"{str(self.path)!r}: {exc}; read again as "
                                      f"{', '.join(f'{k}: {v}' for k, v in self.types.items())}") from exc
                    raise
                pending.append(rb)
                held += rb.num_rows
                if held >= batch_rows:
                    table = pa.Table.from_batches(pending)
                    pending = []
                    while table.num_rows >= batch_rows:
                        yield self._frame(table.slice(0, batch_rows))
                        table = table.slice(batch_rows)
                    pending, held = table.to_batches(), table.num_rows
            if held:
                yield self._frame(pa.Table.from_batches(pending))
        finally:
            reader.close()

    @staticmethod
    def _frame(table: Any) -> Any:
        frame = table.to_pandas()
        frame.columns = [str(c) for c in frame.columns]
        return frame

    # -- columns -----------------------------------------------------------------------------
    def _strings(self) -> list[str]:
        """Parquet string columns: read as dictionaries (pandas categoricals), so a batch's
        categories are counted by their codes and no Python string is made per cell."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with pq.ParquetFile(self.path) as pf:
            return [f.name for f in pf.schema_arrow
                    if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]

    def read_columns(self, names: list[str]) -> Mapping[str, Any]:
        """The columns ``names`` as pandas Series (string columns as categoricals): from CSV
        read in one pass over the file for all of them; from Parquet, whose columns are
        stored apart, each read alone when it is asked for (one column in memory at a time)."""
        import pandas as pd

        names = list(dict.fromkeys(names))
        if self.parquet:
            return _ParquetColumns(self, names)
        try:
            while True:
                try:
                    frames = list(self._csv_frames(names, BATCH_ROWS))
                    break
                except Retyped:
                    continue  # the types are known better now: again from the start
            if not frames:
                return {n: pd.Series([], dtype=object, name=n) for n in names}
            return {n: _concat([f[n] for f in frames]).rename(n) for n in names}
        except InferwatchError:
            raise
        except Exception as exc:  # as in batches()
            raise self._error(exc) from exc

    def column(self, name: str) -> Any:
        """One column, read alone, as a pandas Series (string columns as categoricals)."""
        if not self.parquet:
            return self.read_columns([name])[name]
        try:
            import pyarrow.parquet as pq

            return pq.read_table(self.path, columns=[name], read_dictionary=[n for n in self._strings() if n == name]
                                 ).column(0).to_pandas().rename(name)
        except Exception as exc:  # as in batches()
            raise self._error(exc) from exc

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> Any:
        return self.column(name)


class _ParquetColumns(Mapping[str, Any]):
    """Columns of a Parquet file, each read when it is looked up (not kept)."""

    def __init__(self, table: TableFile, names: list[str]) -> None:
        self._table, self._names = table, names

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        return self._table.column(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _concat(parts: list[Any]) -> Any:
    """Series of several batches as one (categoricals with their categories united)."""
    import pandas as pd
    from pandas.api.types import union_categoricals

    if len(parts) > 1 and all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
        return pd.Series(union_categoricals(parts))
    return pd.concat(parts, ignore_index=True)


def _csv_names(path: Path) -> list[str]:
    """The header of a CSV file, repeated names made unique as pandas does (``a``, ``a.1``)."""
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
                            parse_options=pacsv.ParseOptions(newlines_in_values=True))
    try:
        raw = [str(n) for n in reader.schema.names]
    finally:
        reader.close()
    seen: dict[str, int] = {}
    out = []
    for n in raw:
        name = n
        while name in seen:
            seen[n] += 1
            name = f"{n}.{seen[n]}"
        seen.setdefault(name, 0)
        out.append(name)
    return out


def open_table(path: str | Path) -> TableFile | None:
    """The CSV or Parquet file at ``path`` as a :class:`TableFile` (its columns and, for
    Parquet, its row count read from the header); ``None`` for other kinds of file."""
    p = Path(path)
    name = p.name.lower()
    if not name.endswith(_TABLE_SUFFIXES):
        return None
    when = datetime.fromtimestamp(p.stat().st_mtime, UTC)
    try:
        if _is_parquet(name):
            import pyarrow.parquet as pq

            with pq.ParquetFile(p) as pf:
                index = {str(c) for c in (pf.schema_arrow.pandas_metadata or {}).get("index_columns", [])
                         if isinstance(c, str)}  # a pandas index stored as a column is not a feature
                names = [str(c) for c in pf.schema_arrow.names if str(c) not in index]
                return TableFile(p, names, pf.metadata.num_rows, when)
        cols = _csv_names(p)
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise InferwatchError(f"cannot read {str(p)!r} as a {p.suffix.lstrip('.')} table: {exc}") from exc
    return TableFile(p, cols, None, when)


def load_input(path: str | Path, model: str | None = None,
               version: str | None = None) -> tuple[str, list[InferenceRecord], dict[str, Any]]:
    """Read ``--input``: (model, records in file order, a description of the source).

    * CSV or Parquet: a table whose columns are the model's inputs (``model`` defaults to the
      file name without suffix);
    * JSON lines (or one JSON array): inference records as on the log (``model``, ``inputs``,
      ``outputs``...), audit documents (``input``/``output``, what ``inferwatch search
      --format json`` prints), or plain row objects (inputs).

    With several models in the file, ``model`` must say which one.
    """
    p = Path(path)
    name = p.name.lower()
    stem = p.name.split(".")[0] or "batch"
    when = datetime.fromtimestamp(p.stat().st_mtime, UTC)
    if name.endswith(_TABLE_SUFFIXES):
        import pandas as pd

        try:
            frame = pd.read_parquet(p) if name.endswith((".parquet", ".pq")) else pd.read_csv(p)
        except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
            raise InferwatchError(f"cannot read {str(p)!r} as a {p.suffix.lstrip('.')} table: {exc}") from exc
        frame.columns = [str(c) for c in frame.columns]
        # missing cells of a text column are None, not nan: a list of text with float nan holes
        # becomes text ("nan", a category) where the detectors make it an array
        table = {c: (frame[c].astype(object).where(frame[c].notna(), None) if frame[c].dtype == object
                     else frame[c]).tolist() for c in frame.columns}
        model = model or stem
        rows_records = list(_table_records(table, model, version, stem, when))
        return model, rows_records, {"input": str(p), "format": "table"}
    if not name.endswith(_JSON_SUFFIXES):
        raise InferwatchError(f"--input {str(p)!r}: expected .csv, .parquet, .json or .jsonl "
                              "(records, audit documents or rows)")
    text = p.read_bytes()
    try:
        stripped = text.lstrip()
        if stripped.startswith(b"["):
            items = orjson.loads(stripped)
        else:
            items = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise InferwatchError(f"--input {str(p)!r} is not JSON lines or a JSON array: {exc}") from exc
    records: list[InferenceRecord] = []
    plain: list[dict[str, Any]] = []
    kinds: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InferwatchError(f"--input {str(p)!r}: item {i + 1} is {type(item).__name__}, not an object")
        if "inputs" in item or "outputs" in item:
            try:
                rec = InferenceRecord.from_dict({"id": f"{stem}-{i}", "model": model or stem, **item})
            except (TypeError, ValueError) as exc:
                raise InferwatchError(f"--input {str(p)!r}: item {i + 1} is not an inference record: {exc}") from exc
            records.append(rec)
            kinds.add("records")
        elif "input" in item or "output" in item or "doc_id" in item:
            doc = _doc_record(item, model or stem)
            if doc is not None:
                records.append(doc)
            kinds.add("audit documents")
        else:
            plain.append(item)
            kinds.add("rows")
    if plain:
        records.extend(_table_records(from_rows(plain), model or stem, version, stem, when))
    if len(kinds) > 1:
        raise InferwatchError(f"--input {str(p)!r} mixes {' and '.join(sorted(kinds))}; use one kind per file")
    models = sorted({r.model for r in records})
    if model is None:
        if len(models) > 1:
            raise InferwatchError(f"--input {str(p)!r} holds several models ({', '.join(models)}); "
                                  "choose one with --model")
        model = models[0] if models else stem
    if "audit documents" in kinds:
        records.sort(key=lambda r: r.timestamp)
    return model, records, {"input": str(p), "format": next(iter(kinds), "empty")}


def load_audit(store: Any, model: str, *, version: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 100_000) -> tuple[list[InferenceRecord], dict[str, Any]]:
    """The newest ``limit`` audited rows of ``model`` in the time range, oldest first."""
    from inferwatch.audit import SearchQuery

    q = SearchQuery(kind="records", model=model, version=version, since=since, until=until, limit=limit)
    docs = store.search(q)
    total = store.count(q) if len(docs) >= limit else len(docs)
    docs.sort(key=lambda d: (str(d.get("timestamp") or d.get("response_timestamp") or ""),
                             str(d.get("record_id", "")), int(d.get("row", 0) or 0)))
    records = [r for r in (_doc_record(d, model) for d in docs) if r is not None]
    source = {"audit": type(store).__name__, "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None, "documents": len(docs)}
    if total > len(docs):
        source["truncated_from"] = total
    return records, source


