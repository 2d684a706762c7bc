"""Run NannyML's CBPE on data files and print its estimates as JSON (runs in .venv-nannyml).

    python nannyml_cbpe.py data.npz chunk_size

``data.npz`` holds ``ref_scores`` / ``ana_scores`` (rows x classes), ``ref_pred``, ``ana_pred``,
``ref_truth`` (and optionally ``ana_truth``). Output: one object per analysis chunk with, per
metric, NannyML's estimate, its sampling error and (when labels are given) the realized value.
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
    scores = d[f"{part}_scores"]
    k = scores.shape[1]
    out = pd.DataFrame({"y_pred": d[f"{part}_pred"]})
    if k == 2:
        out["p1"] = scores[:, 1]
    else:
        for j in range(k):
            out[f"p{j}"] = scores[:, j]
    if f"{part}_truth" in d:
        out["y_true"] = d[f"{part}_truth"]
    return out


def main() -> None:
    import nannyml as nml

    d = dict(np.load(sys.argv[1]))
    chunk = int(sys.argv[2])
    ref, ana = frame(d, "ref"), frame(d, "ana")
    k = d["ref_scores"].shape[1]
    metrics = ["accuracy", "f1", "precision", "recall", "roc_auc"]
    est = nml.CBPE(
        y_pred_proba="p1" if k == 2 else {j: f"p{j}" for j in range(k)},
        y_pred="y_pred", y_true="y_true", metrics=metrics, chunk_size=chunk,
        problem_type="classification_binary" if k == 2 else "classification_multiclass",
    )
    est.fit(ref)
    df = est.estimate(ana).filter(period="analysis").to_df()
    out = []
    for _, row in df.iterrows():
        item = {"start": int(row[("chunk", "start_index")]), "end": int(row[("chunk", "end_index")]) + 1}
        for m in metrics:
            item[m] = {"value": float(row[(m, "value")]), "sampling_error": float(row[(m, "sampling_error")]),
                       "realized": float(row[(m, "realized")])}
        out.append(item)
    print(json.dumps({"chunks": out, "needs_calibration": bool(getattr(est, "needs_calibration", False))}))


if __name__ == "__main__":
    main()
