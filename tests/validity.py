"""The validity suite's data and runner, shared by tests/unit/test_validity.py (small, in
``make test``) and bench/validity.py (larger, prints the figures).

Null windows: every window is a fresh random split of one table into a reference and a
window (disjoint rows drawn without replacement). The rows of a table are exchangeable
under such a split, so no drift exists and each window's decision is an independent
Bernoulli trial given the table: the share of windows that fire is binomial, and a valid
test at level ``alpha`` fires in at most ``alpha`` of them.

Tables: real ones shipped inside scikit-learn (offline) — ``load_digits`` (8 x 8 pixel
intensities 0-16: integers, many ties, constant columns), ``load_diabetes(scaled=False)``
(age in years, sex 1/2, values with one or two decimals), ``load_iris`` (one decimal,
heavy ties), ``load_wine``, ``load_breast_cancer`` (mostly continuous) — and a synthetic
generator of discrete columns (Poisson and binomial counts, few-level integer codes,
binary flags, zero-inflated counts, a constant column) mixed with continuous ones.

Power: windows drawn from a shifted synthetic population (counts, category mix and flag
rates moved a little) against a reference of the unshifted one, compared window by window
with KS-asymptotic (scipy's ``ks_2samp(method='asymp')`` per feature, same correction).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import binom, ks_2samp

from detectors import AndersonDrift, ChiSquareDrift, CVMDrift, FETDrift, KSDrift, TabularDrift
from detectors.common.corrections import correct

__all__ = [
    "CORRECTIONS",
    "DETECTORS",
    "distance_null_rates",
    "distance_power",
    "Outcome",
    "ks_asymptotic",
    "null_rates",
    "power",
    "real_table",
    "synthetic",
    "upper_bound",
]

CORRECTIONS = ("bonferroni", "fdr", "none")


def upper_bound(n: int, alpha: float, level: float) -> float:
    """Share of ``n`` windows: the ``level`` upper quantile of Binomial(n, alpha) / n."""
    return float(binom.ppf(level, n, alpha)) / n


# -- tables ------------------------------------------------------------------------------------


@functools.cache
def real_table(name: str) -> pd.DataFrame:
    from sklearn import datasets

    if name == "digits":
        d = datasets.load_digits()
        return pd.DataFrame(d.data, columns=[f"px{i}" for i in range(d.data.shape[1])])
    if name == "diabetes":
        return datasets.load_diabetes(as_frame=True, scaled=False).data
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
    return loader[name](as_frame=True).data


def synthetic(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """Discrete columns mixed with continuous ones; ``shift`` moves every column a little
    (``shift=1``: Poisson mean 2 -> 2.3, code mix tilted, flag rate 10% -> 14%, ...)."""
    codes_p = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    tilt = codes_p * np.exp(shift * 0.35 * np.arange(5) / 4)
    zero = 0.4 - 0.07 * shift
    return pd.DataFrame({
        "poisson": rng.poisson(2.0 + 0.3 * shift, n).astype(float),
        "binomial": rng.binomial(10, 0.3 + 0.03 * shift, n).astype(float),
        "codes": rng.choice(5, n, p=tilt / tilt.sum()).astype(float),
        "flag": (rng.random(n) < 0.10 + 0.04 * shift).astype(float),
        "zero_inflated": np.where(rng.random(n) < zero, 0, rng.poisson(3.0, n)).astype(float),
        "constant": np.full(n, 7.0),
        "rounded": np.round(rng.normal(0.15 * shift, 1.0, n), 1),
        "normal": rng.normal(0.15 * shift, 1.0, n),
    })


def _discrete(table: pd.DataFrame, most: int = 10) -> list[str]:
    return [c for c in table.columns if table[c].nunique() <= most]


def _binary(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if set(table[c].unique()) == {0.0, 1.0}]


# -- detectors ---------------------------------------------------------------------------------

DETECTORS: dict[str, Callable[[pd.DataFrame], object | None]] = {
    "ks": lambda t: KSDrift(),
    "cvm": lambda t: CVMDrift(),
    "anderson": lambda t: AndersonDrift(),
    "tabular": lambda t: TabularDrift(),
    "chi2": lambda t: ChiSquareDrift(features=_discrete(t)) if _discrete(t) else None,
    "fet": lambda t: FETDrift(features=_binary(t)) if _binary(t) else None,
}
"""Detector factories per table (``None``: the table has no column this test applies to)."""


def ks_asymptotic(ref: pd.DataFrame, win: pd.DataFrame) -> dict[str, float]:
    """The baseline: scipy's asymptotic KS p-value per feature (what KSDrift gave before)."""
    return {c: float(ks_2samp(ref[c].to_numpy(), win[c].to_numpy(), method="asymp").pvalue) for c in ref.columns}


# -- runs --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Null-window results of one detector on one table: per correction, windows fired."""

    detector: str
    table: str
    windows: int = 0
    fired: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CORRECTIONS, 0))
    feature_tests: int = 0
    feature_fired: int = 0  # per-feature p < alpha (the level of correction "none" per feature)
    methods: dict[str, int] = field(default_factory=dict)

    def rate(self, correction: str) -> float:
        return self.fired[correction] / max(self.windows, 1)


def splits(table: pd.DataFrame, n_ref: int, m: int, n_windows: int, seed: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    for _ in range(n_windows):
        idx = rng.permutation(len(table))
        yield table.iloc[idx[:n_ref]].reset_index(drop=True), table.iloc[idx[n_ref : n_ref + m]].reset_index(drop=True)


def null_rates(
    name: str, table: pd.DataFrame, detectors: list[str], n_ref: int, m: int, n_windows: int, alpha: float = 0.05,
    seed: int = 0,
) -> list[Outcome]:
    """Fire counts per detector and correction over ``n_windows`` null splits of ``table``."""
    outs = {d: Outcome(d, name) for d in detectors}
    makers = {d: DETECTORS[d] for d in detectors}
    for ref, win in splits(table, n_ref, m, n_windows, seed):
        for d, make in makers.items():
            det = make(table)
            if det is None:
                continue
            r = det.fit(ref).update(win).result()  # type: ignore[attr-defined]
            o = outs[d]
            o.windows += 1
            p = np.array(list(r.feature_p_values.values()), dtype=float)
            for corr in CORRECTIONS:
                o.fired[corr] += bool(correct(p, alpha, corr).is_drift)
            o.feature_tests += int((~np.isnan(p)).sum())
            o.feature_fired += int((p < alpha).sum())
            for meth in (r.extra.get("methods") or {}).values():
                o.methods[meth] = o.methods.get(meth, 0) + 1
    return [o for o in outs.values() if o.windows]


RULE_OF_THUMB = {"psi": 0.2, "js": 0.1, "hellinger": 0.1, "wasserstein": 0.1}
"""The distance detectors' fixed thresholds (their defaults before they were calibrated)."""


def _distance_makers() -> dict[str, type]:
    from detectors import HellingerDrift, JSDrift, PSIDrift, WassersteinDrift

    return {"psi": PSIDrift, "js": JSDrift, "hellinger": HellingerDrift, "wasserstein": WassersteinDrift}


def distance_null_rates(
    table: pd.DataFrame, n_ref: int, m: int, n_windows: int, seed: int = 0, alpha: float = 0.05,
    draws: int | None = None,
) -> dict[str, tuple[float, float]]:
    """Per distance detector, the share of null windows firing (calibrated default test at
    ``alpha``, rule-of-thumb threshold)."""
    makers = _distance_makers()
    fired = {k: [0, 0] for k in makers}
    for ref, win in splits(table, n_ref, m, n_windows, seed):
        for name, cls in makers.items():
            fired[name][0] += bool(cls(p_val=alpha, draws=draws).fit(ref).update(win).result().is_drift)
            fired[name][1] += bool(cls(threshold=RULE_OF_THUMB[name]).fit(ref).update(win).result().is_drift)
    return {k: (v[0] / n_windows, v[1] / n_windows) for k, v in fired.items()}


def distance_power(n_ref: int, m: int, n_windows: int, shift: float = 1.0, seed: int = 0, alpha: float = 0.05,
                   draws: int | None = None) -> dict[str, float]:
    """Per distance detector (default test), the share of windows firing when the synthetic
    table's ``normal`` column is shifted by ``shift`` sds in the window (fresh reference each)."""
    rng = np.random.default_rng(seed)
    makers = _distance_makers()
    fired = dict.fromkeys(makers, 0)
    for _ in range(n_windows):
        ref = synthetic(rng, n_ref)
        win = synthetic(rng, m)
        win["normal"] += shift
        for name, cls in makers.items():
            fired[name] += bool(cls(p_val=alpha, draws=draws).fit(ref).update(win).result().is_drift)
    return {k: v / n_windows for k, v in fired.items()}


def power(
    detectors: list[str], n_ref: int, m: int, n_windows: int, shift: float, alpha: float = 0.05,
    correction: str = "bonferroni", seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per detector (and ``"ks-asymptotic"``): which of ``n_windows`` shifted windows fired."""
    rng = np.random.default_rng(seed)
    fired: dict[str, list[bool]] = {d: [] for d in [*detectors, "ks-asymptotic"]}
    for _ in range(n_windows):
        ref = synthetic(rng, n_ref)
        win = synthetic(rng, m, shift=shift)
        for d in detectors:
            det = DETECTORS[d](ref)
            if det is None:
                continue
            r = det.fit(ref).update(win).result()  # type: ignore[attr-defined]
            p = np.array(list(r.feature_p_values.values()), dtype=float)
            fired[d].append(bool(correct(p, alpha, correction).is_drift))
        base = ks_asymptotic(ref, win)
        fired["ks-asymptotic"].append(bool(correct(list(base.values()), alpha, correction).is_drift))
    return {d: np.array(v) for d, v in fired.items() if v}
