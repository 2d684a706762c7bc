"""Evidently 0.7's DataDriftPreset on a current and a reference file (run by bench_report_scale.py
with the interpreter of ``make evidently-venv``; it imports nothing of inferwatch).

    .venv-evidently/bin/python bench/evidently_drift.py CURRENT REFERENCE OUT.html

Prints one JSON line: the drifted columns and Evidently's drift score per column.
"""

from __future__ import annotations

import json
import sys

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset


def _read(path: str) -> pd.DataFrame:
    return pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)


def main() -> None:
    current, reference, out = sys.argv[1:4]
    cur, ref = _read(current), _read(reference)
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    snapshot.save_html(out)
    drifted, scores = [], {}
    for m in snapshot.dict().get("metrics", []):
        cfg, value = m.get("config") or {}, m.get("value")
        if str(cfg.get("type", "")).endswith(":ValueDrift") and isinstance(value, (int, float)):
            col = str(cfg["column"])
            scores[col] = float(value)
            threshold = cfg.get("threshold")
            method = str(cfg.get("method", ""))
            if threshold is not None and ((value < threshold) if "p_value" in method else (value >= threshold)):
                drifted.append(col)
    methods = sorted({str((m.get("config") or {}).get("method")) for m in snapshot.dict().get("metrics", [])
                      if str((m.get("config") or {}).get("type", "")).endswith(":ValueDrift")})
    print(json.dumps({"drifted": sorted(drifted), "methods": methods, "scores": scores}))


if __name__ == "__main__":
    main()
