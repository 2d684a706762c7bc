"""Run NannyML's DLE on data files and print its estimates as JSON (runs in .venv-nannyml).

    python nannyml_dle.py data.npz chunk_size

``data.npz`` holds ``ref_x`` / ``ana_x`` (rows x features), ``ref_pred``, ``ana_pred``,
``ref_truth`` (and ``ana_truth``). Output: per analysis chunk and metric (mae, rmse), NannyML's
estimate, its sampling error and the realized value.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # NannyML otherwise phones home (segment.io)


def frame(d, part: str) -> pd.DataFrame:
    x = d[f"{part}_x"]
    out = pd.DataFrame({f"x{j}": x[:, j] for j in range(x.shape[1])})
    out["y_pred"] = d[f"{part}_pred"]
    if f"{part}_truth" in d:
        out["y_true"] = d[f"{part}_truth"]
    return out


def main() -> None:
    import nannyml as nml

    d = dict(np.load(sys.argv[1]))
    ref, ana = frame(d, "ref"), frame(d, "ana")
    metrics = ["mae", "rmse"]
    est = nml.DLE(feature_column_names=[c for c in ref.columns if c.startswith("x")], y_pred="y_pred",
                  y_true="y_true", metrics=metrics, chunk_size=int(sys.argv[2]))
    est.fit(ref)
    df = est.estimate(ana).filter(period="analysis").to_df()
    out = []
    for _, row in df.iterrows():
        item = {"start": int(row[("chunk", "start_index")]), "end": int(row[("chunk", "end_index")]) + 1}
        for m in metrics:
            item[m] = {"value": float(row[(m, "value")]), "sampling_error": float(row[(m, "sampling_error")]),
                       "realized": float(row[(m, "realized")])}
        out.append(item)
    print(json.dumps({"chunks": out}))


if __name__ == "__main__":
    main()
