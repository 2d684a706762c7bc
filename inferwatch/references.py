"""Versioned reference data sets, stored as Parquet plus a JSON metadata file.

Layout under ``root``::

    <root>/<ref_id>.parquet
    <root>/<ref_id>.json      {"id", "model", "version", "source", "created_at", "columns", "rows"}

References are immutable: registering again makes a new id. :meth:`ReferenceStore.latest`
picks the newest reference of a model (and version, falling back to the model's
version-less reference). Writes are atomic (temporary file, then rename).

>>> import tempfile, pandas as pd
>>> store = ReferenceStore(tempfile.mkdtemp())
>>> info = store.register("iris", pd.DataFrame({"x": [1.0, 2.0, 3.0]}), version="v1")
>>> store.latest("iris", "v1") == info, info.rows, info.columns
(True, 3, ['x'])
>>> store.load(info.id)["x"].tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

import builtins
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from inferwatch.errors import DetectorError
from inferwatch.record import new_id, utcnow

__all__ = ["ReferenceInfo", "ReferenceStore"]

_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ReferenceInfo:
    """Metadata of one registered reference."""

    id: str
    model: str
    version: str | None
    source: str | None
    created_at: str
    columns: list[str]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    if suffix == ".gz" and path.name.lower().endswith(".csv.gz"):
        return pd.read_csv(path)
    raise DetectorError(f"reference file {str(path)!r}: expected .csv or .parquet")


class ReferenceStore:
    """Reference data sets for the detectors; see the module docstring."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, pd.DataFrame] = {}

    def register(
        self,
        model: str,
        data: pd.DataFrame | Mapping[str, Sequence[Any]] | str | os.PathLike[str],
        *,
        version: str | None = None,
        source: str | None = None,
    ) -> ReferenceInfo:
        """Store a DataFrame, a Table or a CSV/Parquet file as a new reference of ``model``."""
        if not model:
            raise DetectorError("reference needs a model name")
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.exists():
                raise DetectorError(f"reference file {str(path)!r} does not exist")
            frame = _read(path)
            source = source or str(path)
        elif isinstance(data, pd.DataFrame):
            frame = data.copy()
        elif isinstance(data, Mapping):
            frame = pd.DataFrame({str(k): list(v) for k, v in data.items()})
        else:
            raise DetectorError(f"reference data must be a DataFrame, a Table or a file path, got {type(data).__name__}")
        if frame.empty:
            raise DetectorError(f"reference for {model!r} has no rows")
        frame.columns = [str(c) for c in frame.columns]
        frame = frame.reset_index(drop=True)
        ref_id = new_id()
        info = ReferenceInfo(
            id=ref_id,
            model=model,
            version=version,
            source=source,
            created_at=utcnow().isoformat(),
            columns=list(frame.columns),
            rows=len(frame),
        )
        tmp = self.root / f".{ref_id}.parquet.tmp"
        try:
            frame.to_parquet(tmp, index=False)
        except (ValueError, TypeError, ImportError) as exc:
            tmp.unlink(missing_ok=True)
            raise DetectorError(f"reference for {model!r} cannot be stored as Parquet: {exc}") from exc
        os.replace(tmp, self.root / f"{ref_id}.parquet")
        meta_tmp = self.root / f".{ref_id}.json.tmp"
        meta_tmp.write_text(json.dumps(info.to_dict(), indent=1))
        os.replace(meta_tmp, self.root / f"{ref_id}.json")
        return info

    def get(self, ref_id: str) -> ReferenceInfo:
        """Metadata of one reference (``DetectorError`` if unknown)."""
        if not _ID.match(ref_id):
            raise DetectorError(f"bad reference id {ref_id!r}")
        path = self.root / f"{ref_id}.json"
        if not path.exists():
            raise DetectorError(f"no reference {ref_id!r} in {str(self.root)!r}")
        d = json.loads(path.read_text())
        return ReferenceInfo(**d)

    def load(self, ref_id: str) -> pd.DataFrame:
        """The reference data (cached; references never change)."""
        if ref_id not in self._cache:
            self.get(ref_id)
            self._cache[ref_id] = pd.read_parquet(self.root / f"{ref_id}.parquet")
        return self._cache[ref_id]

    def list(self, model: str | None = None) -> builtins.list[ReferenceInfo]:
        """All references (of ``model`` if given), oldest first."""
        out = []
        for path in self.root.glob("*.json"):
            if path.name.startswith("."):
                continue
            info = ReferenceInfo(**json.loads(path.read_text()))
            if model is None or info.model == model:
                out.append(info)
        return sorted(out, key=lambda i: (i.created_at, i.id))

    def models(self) -> builtins.list[str]:
        return sorted({i.model for i in self.list()})

    def latest(self, model: str, version: str | None = None) -> ReferenceInfo | None:
        """Newest reference of ``model`` for ``version``, else the model's version-less one."""
        refs = self.list(model)
        exact = [i for i in refs if i.version == version]
        if exact:
            return exact[-1]
        generic = [i for i in refs if i.version is None]
        return generic[-1] if generic else None
