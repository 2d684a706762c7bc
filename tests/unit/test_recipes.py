"""Recipes of docs/architecture.md done for real: a toy plug-in is added through its registry
alone (one registration, no other edit) and runs through the real path — a protocol through
the ingest path, a detector in the stream's monitor, in ``inferwatch report`` and under the
detector contract. (A toy audit store and a toy way in join the pipeline the same way in
tests/unit/test_plugins.py.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pytest

from inferwatch.codecs import REGISTRY, Decoded, decode
from inferwatch.errors import DecodeError, DetectorError
from inferwatch.ingest import Envelope, to_record
from inferwatch.record import Detection, InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.wiring import DETECTORS, monitor_from
from tests.contracts import check_detector_contract

T0 = datetime(2026, 3, 1, tzinfo=UTC)


# -- a new protocol (codec) ----------------------------------------------------------------------

class PipesCodec:
    """A toy protocol: ``{"pipes": "a=1|b=2"}``, one row per body (values parsed as floats)."""

    name = "pipes"
    aliases: tuple[str, ...] = ()
    expected = {"request": '{"pipes": "k=v|..."}', "response": '{"pipes": "k=v|..."}'}

    def matches(self, obj: Any, part: str) -> bool:
        return isinstance(obj, dict) and isinstance(obj.get("pipes"), str)

    def decode(self, obj: Any, part: str) -> Decoded:
        pairs = [kv.split("=", 1) for kv in obj["pipes"].split("|")]
        if any(len(p) != 2 for p in pairs):
            raise DecodeError("a pipe field is not k=v", protocol=self.name)
        return Decoded(self.name, {k: [float(v)] for k, v in pairs})

    def encode(self, table: dict[str, list[Any]], part: str, **options: Any) -> dict[str, Any]:
        return {"pipes": "|".join(f"{k}={v[0]}" for k, v in table.items())}


@pytest.fixture
def pipes() -> Iterator[None]:
    REGISTRY.register(PipesCodec())
    yield
    REGISTRY.unregister("pipes")


def test_recipe_a_new_protocol_reaches_records_through_the_ingest_path(pipes: None) -> None:
    env = Envelope(source="test", raw=b"", fields={
        "id": "p1", "model": "m", "request": b'{"pipes": "a=1.5|b=2"}', "response": b'{"pipes": "y=1"}'})
    rec = to_record(env)
    assert (rec.protocol, rec.inputs, rec.outputs, rec.part) == ("pipes", {"a": [1.5], "b": [2.0]}, {"y": [1.0]},
                                                                  "both")
    with pytest.raises(DecodeError, match="not k=v"):
        decode(b'{"pipes": "oops"}', part="request")


def test_without_the_registration_the_protocol_is_unknown() -> None:
    with pytest.raises(DecodeError):
        decode(b'{"pipes": "a=1"}', part="request", protocol="pipes")


# -- a new detector --------------------------------------------------------------------------------

class MeanShiftDrift:
    """A toy detector: drift when a feature's window mean is more than ``threshold`` reference
    standard deviations from the reference mean. The window keeps its values per feature, so
    merged windows give exactly the result of one window."""

    kind = "drift"

    def __init__(self, threshold: float = 0.5, features: Sequence[str] | None = None, name: str = "mean_shift"):
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold!r}")
        self.threshold = float(threshold)
        self.features = list(features) if features is not None else None
        self.name = name
        self._ref: dict[str, tuple[float, float]] | None = None
        self._window: dict[str, list[float]] = {}

    def fit(self, reference: Any) -> Self:
        frame = pd.DataFrame(reference)
        cols = self.features or [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        self._ref = {c: (float(frame[c].mean()), float(frame[c].std())) for c in cols}
        return self.reset()

    def update(self, batch: Any, ids: Sequence[str] | None = None) -> Self:
        if self._ref is None:
            raise DetectorError(f"{self.name}: fit a reference first")
        frame = pd.DataFrame(batch)
        for c in self._ref:
            self._window[c] += frame[c].astype(float).tolist()
        return self

    @property
    def window_size(self) -> int:
        return len(next(iter(self._window.values()), []))

    def result(self) -> Detection:
        if self._ref is None:
            raise DetectorError(f"{self.name}: fit a reference first")
        n = self.window_size
        det = Detection(detector=self.name, kind="drift", model="", window_size=n, threshold=self.threshold)
        det.is_drift = False
        if n:
            dist = {c: abs(float(np.mean(self._window[c])) - m) / s for c, (m, s) in self._ref.items()}
            det.feature_distances = dist
            det.feature_drift = {c: d > self.threshold for c, d in dist.items()}
            det.distance = max(dist.values())
            det.is_drift = det.distance > self.threshold
        return det

    def reset(self) -> Self:
        self._window = {c: [] for c in self._ref or {}}
        return self

    def merge(self, other: Self) -> Self:
        if self._ref != other._ref:
            raise DetectorError(f"{self.name}: cannot merge windows tested against different references")
        out = type(self)(self.threshold, self.features, self.name)
        out._ref = self._ref
        out._window = {c: self._window[c] + other._window[c] for c in self._window}
        return out


@pytest.fixture
def mean_shift() -> Iterator[None]:
    DETECTORS.register("mean_shift", MeanShiftDrift)
    yield
    DETECTORS.unregister("mean_shift")


def _reference(tmp_path: Path) -> ReferenceStore:
    rng = np.random.default_rng(0)
    refs = ReferenceStore(tmp_path / "refs")
    refs.register("m", pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)}))
    return refs


def _records(n: int, shift_from: int, rows: int = 10) -> list[InferenceRecord]:
    rng = np.random.default_rng(1)
    return [InferenceRecord(id=f"r{i}", model="m", timestamp=T0 + timedelta(seconds=i),
                            inputs={"a": (rng.normal(size=rows) + (2.0 if i >= shift_from else 0.0)).tolist(),
                                    "b": rng.normal(size=rows).tolist()})
            for i in range(n)]


def test_recipe_a_new_detector_runs_in_the_stream_monitor(mean_shift: None, tmp_path: Path) -> None:
    monitor = monitor_from({"window": {"type": "count", "size": 50},
                            "detectors": [{"type": "mean_shift", "threshold": 1.0}]}, _reference(tmp_path))
    dets = monitor.process(_records(20, shift_from=10))
    assert [(d.detector, d.window_size, d.is_drift) for d in dets] == [
        ("mean_shift", 50, False), ("mean_shift", 50, False), ("mean_shift", 50, True), ("mean_shift", 50, True)]
    assert dets[2].drifted_features == ["a"] and dets[2].model == "m" and dets[2].reference_id
    with pytest.raises(DetectorError, match=r"unknown key\(s\) \['treshold'\]"):
        monitor_from({"detectors": [{"type": "mean_shift", "treshold": 1.0}]}, _reference(tmp_path))


def test_recipe_a_new_detector_runs_in_the_batch_report(mean_shift: None, tmp_path: Path) -> None:
    from inferwatch.report import run_report

    report = run_report(_records(20, shift_from=10), "m", _reference(tmp_path),
                        detectors=[{"type": "mean_shift"}], window=100)
    assert [(d.detector, d.window_size, d.is_drift) for d in report.detections] == [
        ("mean_shift", 100, False), ("mean_shift", 100, True)]


def test_recipe_a_new_detector_passes_the_detector_contract(mean_shift: None) -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    window = pd.DataFrame({"a": rng.normal(1.0, size=160), "b": rng.normal(size=160)})
    other = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    check_detector_contract(DETECTORS.get("mean_shift").load(), {"threshold": 0.5}, ref, window, other)


def test_without_the_registration_the_detector_type_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match=r"detectors\[0\]\.type must be one of"):
        monitor_from({"detectors": [{"type": "mean_shift"}]}, _reference(tmp_path))


# -- the recipes' document -------------------------------------------------------------------------

def test_every_file_the_architecture_document_names_exists() -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b((?:inferwatch|collectors|detectors|sinks|tests)/[\w/]*[\w]+(?:\.py|/))", text))
    assert len(named) > 20
    missing = sorted(n for n in named if not (root / n).exists() and "mystore" not in n and "mysource" not in n
                     and "mytest" not in n and "_myproto" not in n)
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
