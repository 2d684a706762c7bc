"""Exactly once through client retries for records without an id of their own (issue 11): an
``Idempotency-Key`` header, or ``collector.id_from_content``, gives a resent request the same
record ids, so the resend is recognised (by the collector, the detectors and the audit store);
without either, each attempt is a new record (the documented limit). Over real HTTP, with the
records read back from the log."""

from __future__ import annotations

import httpx
import pytest

from inferwatch.config import load_config
from inferwatch.errors import ConfigError
from inferwatch.pipeline import Pipeline
from inferwatch.record import InferenceRecord
from inferwatch.sqlite_log import SQLiteLog

ITEMS = [{"model": "m", "inputs": {"x": [1.0, 2.0]}}, {"model": "m", "inputs": {"x": [1.0, 2.0]}},
         {"model": "m", "inputs": {"x": [3.0]}}]


def _collector(tmp_path, name, **overrides):
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path / name), "collector.port": 0, **overrides})
    p = Pipeline(cfg, ["collector"])
    p.start()
    return cfg, p


def _logged(cfg) -> list[InferenceRecord]:
    lg = SQLiteLog(cfg.log_path)
    c = lg.consumer(cfg.log.records_topic, "reader")
    out = [InferenceRecord.from_json(e.value) for e in c.poll(10_000)]
    c.close()
    lg.close()
    return out


def _post(pipe, body, headers=None) -> httpx.Response:
    r = httpx.post(f"http://127.0.0.1:{pipe.bound_port}/v1/records", json=body, headers=headers or {}, timeout=10)
    assert r.status_code == 202, r.text
    return r


def test_idempotency_key_makes_a_resend_the_same_records(tmp_path):
    cfg, pipe = _collector(tmp_path, "a")
    try:
        first = _post(pipe, ITEMS, {"Idempotency-Key": "k-1"}).json()["ids"]
        again = _post(pipe, ITEMS, {"Idempotency-Key": "k-1"}).json()["ids"]  # a client's retry
        other = _post(pipe, ITEMS, {"Idempotency-Key": "k-2"}).json()["ids"]  # another request
        plain1 = _post(pipe, ITEMS).json()["ids"]
        plain2 = _post(pipe, ITEMS).json()["ids"]  # no key: a retry is a new record (the documented limit)
    finally:
        pipe.stop()
    assert first == again
    assert len(set(first)) == 3  # two equal items of one request stay two records
    assert not set(first) & set(other)
    assert not set(plain1) & set(plain2)
    logged = [r.id for r in _logged(cfg)]
    assert sorted(logged) == sorted(first + other + plain1 + plain2)  # the retry was not appended again


def test_a_changed_body_under_the_same_key_is_another_record(tmp_path):
    _, pipe = _collector(tmp_path, "b")
    try:
        a = _post(pipe, ITEMS[:1], {"Idempotency-Key": "k"}).json()["ids"]
        b = _post(pipe, [{"model": "m", "inputs": {"x": [9.0, 2.0]}}], {"Idempotency-Key": "k"}).json()["ids"]
    finally:
        pipe.stop()
    assert a != b


def test_ids_from_content_survive_a_collector_restart_and_depend_on_the_key(tmp_path):
    over = {"collector.id_from_content": True, "collector.id_key": "s3cret"}
    _, pipe = _collector(tmp_path, "c", **over)
    try:
        before = _post(pipe, ITEMS).json()["ids"]
    finally:
        pipe.stop()
    cfg2, pipe = _collector(tmp_path, "c", **over)  # the same data dir: a restart
    try:
        after = _post(pipe, ITEMS).json()["ids"]
    finally:
        pipe.stop()
    assert before == after and len(set(before)) == 3
    # the new process does not remember the first attempt, so the log holds both copies: with
    # the same ids, which the detectors' horizon and the audit store's document ids count once
    assert sorted(r.id for r in _logged(cfg2)) == sorted(before + after)
    _, pipe = _collector(tmp_path, "d", **{**over, "collector.id_key": "another"})
    try:
        keyed = _post(pipe, ITEMS).json()["ids"]
    finally:
        pipe.stop()
    assert not set(keyed) & set(before)
    assert all("1.0" not in i and "x" not in i.removeprefix("h-") for i in before)


def test_ids_from_content_need_a_key():
    with pytest.raises(ConfigError, match="id_key"):
        load_config(None, env={}, overrides={"collector.id_from_content": True})
