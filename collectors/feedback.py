"""Ground truth coming in: feedback items into feedback envelopes (labels by request id and row).

Three shapes are read, alone or in a JSON array (a batch):

* plain: ``{"id": "<request id>", "row"?: 2, "truth": <label>, "model"?: "m"}`` — ``truth`` a
  label for ``row`` (default 0), or a list of labels for rows 0..n-1; items of one request
  may come separately, in any order;
* KServe / Open Inference Protocol style: ``{"id", "model_name"?, "outputs": [{"name", "shape",
  "datatype", "data"}]}`` — the labels as a response-shaped tensor, one per row;
* Seldon Core feedback: ``{"request"?, "response"?, "truth", "reward"?}`` (the body of
  ``/api/v1.0/feedback``), with the request id in ``id`` or the response's ``meta.puid``.

Each request's labels become one :class:`~inferwatch.ingest.Envelope` with ``part="feedback"``:
the record's ``truth`` table holds the labels at their rows and ``None`` where a row has no
label in this delivery (no label, not a label ``None``). The model comes from the item
(``model``/``model_name``) or the route's ``?model=``; an item without id, model or truth is
refused with its reason.

>>> envs, bad = feedback_envelopes([{"id": "a", "row": 1, "truth": 0}, {"id": "a", "row": 0, "truth": 1},
...                                 {"id": "b", "truth": [1, 0]}, {"truth": 1}], model="churn")
>>> [(e.fields["id"], e.fields["truth"]) for e in envs], [dl.reason for dl in bad]
([('a', {'truth': [1, 0]}), ('b', {'truth': [1, 0]})], ["item 3: feedback: no 'id' (the request id)"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from inferwatch.codecs import decode
from inferwatch.errors import DecodeError
from inferwatch.ingest import Envelope
from inferwatch.record import DeadLetter

__all__ = ["MAX_ROW", "feedback_envelopes"]

MAX_ROW = 100_000
"""Highest row index a plain feedback item may name (a request's batch size)."""

_SOURCE = "feedback"


def _labels(item: dict[str, Any]) -> tuple[dict[int, Any], str | None]:
    """Row -> label of one item, and the model the item names."""
    model = item.get("model") or item.get("model_name")
    if "outputs" in item and "truth" not in item:  # OIP-shaped
        table = decode(item, part="response", protocol="oip-v2").table
        if not table:
            raise DecodeError("the feedback's outputs hold no tensor", protocol=_SOURCE)
        col = next(iter(table.values()))
        return dict(enumerate(col)), model
    if {"request", "response", "reward"} & item.keys() and isinstance(item.get("truth"), dict):  # Seldon
        table = decode(item["truth"], part="response").table
        col = next(iter(table.values()), [])
        return dict(enumerate(col)), model
    if "truth" not in item:
        raise DecodeError("no 'truth' (the label, or a list of labels for rows 0..n-1)", protocol=_SOURCE)
    truth = item["truth"]
    row = item.get("row")
    if row is not None:
        if not isinstance(row, int) or isinstance(row, bool) or not 0 <= row <= MAX_ROW:
            raise DecodeError(f"'row' must be an integer in 0..{MAX_ROW}, got {row!r}", protocol=_SOURCE)
        if isinstance(truth, list | dict):
            raise DecodeError("with 'row', 'truth' is one label", protocol=_SOURCE)
        return {row: truth}, model
    if isinstance(truth, list):
        if len(truth) > MAX_ROW + 1:
            raise DecodeError(f"more than {MAX_ROW + 1} labels in one item", protocol=_SOURCE)
        return dict(enumerate(truth)), model
    if isinstance(truth, dict):
        raise DecodeError("'truth' must be a label or a list of labels", protocol=_SOURCE)
    return {0: truth}, model


def _request_id(item: dict[str, Any]) -> str | None:
    rid = item.get("id")
    if rid is None and isinstance(item.get("response"), dict):  # Seldon: the prediction's puid
        meta = item["response"].get("meta")
        rid = meta.get("puid") if isinstance(meta, dict) else None
    return None if rid is None or rid == "" else str(rid)


def feedback_envelopes(items: Sequence[Any], *, model: str | None = None,
                       source: str = _SOURCE) -> tuple[list[Envelope], list[DeadLetter]]:
    """Envelopes (one per model and request id, labels merged) and dead letters for the refused items."""
    merged: dict[tuple[str, str], dict[int, Any]] = {}
    raws: dict[tuple[str, str], list[Any]] = {}
    bad: list[DeadLetter] = []
    for n, item in enumerate(items):
        raw = orjson.dumps(item)
        try:
            if not isinstance(item, dict):
                raise DecodeError("a feedback item must be a JSON object", protocol=_SOURCE)
            rid = _request_id(item)
            if rid is None:
                raise DecodeError("no 'id' (the request id)", protocol=_SOURCE)
            labels, named = _labels(item)
            which = named or model
            if not which:
                raise DecodeError("no model: give 'model' in the item or ?model= on the route", protocol=_SOURCE)
        except DecodeError as exc:
            bad.append(DeadLetter(raw=raw, source=source, reason=f"item {n}: {exc}"))
            continue
        key = (str(which), rid)
        merged.setdefault(key, {}).update(labels)
        raws.setdefault(key, []).append(item)
    envs = []
    for (which, rid), labels in merged.items():
        column = [labels.get(i) for i in range(max(labels) + 1)] if labels else []
        envs.append(Envelope(source=source, raw=orjson.dumps(raws[(which, rid)]),
                             fields={"id": rid, "model": which, "part": "feedback", "truth": {"truth": column}}))
    return envs, bad
