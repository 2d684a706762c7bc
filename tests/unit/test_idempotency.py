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


# -- the same properties over generated /v1/records deliveries, against the collector's app in process -----------------------------

def _ids(answer) -> list[str | None]:
    """The record id of each event or item, in order (``None`` for a dead-lettered one)."""
    if "results" in answer:
        return [res.get("id") if res.get("status") == "accepted" else None for res in answer["results"]]
    return list(answer["ids"])


def test_generated_deliveries_resent_under_one_key_are_the_same_records(tmp_path):
    """For any accepted delivery: a resend under the same ``Idempotency-Key`` answers the same ids
    and appends nothing; under another key, exactly the records that bring no id of their own
    (those whose id differs between two sends without a key) get other ids; and no derived id
    reaches the log twice."""
    import asyncio
    import itertools
    import logging

    import orjson
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from tests.fuzzing import Harness, records, valid_records

    # /v1/records items (one or a list, with or without ids of their own, some damaged): the
    # route where records may bring no id (CloudEvents always carry one: ``id``/``ce-id``). Most
    # of records()' deliveries are refused whole (it damages on purpose; how many depends on the
    # examples Hypothesis draws, which also mixes in constants of the project modules loaded so
    # far: after the seed sweep's earlier tests, 4 of 100 were accepted for seed 18), so each
    # example also sends a delivery of valid items, one without an id and one with: every example
    # checks the properties on both kinds of record, by construction, not by the draw.
    strategy = st.tuples(records(), valid_records())
    # no time limit on the path (decoding's CPU budget and wall-clock backstop, the append
    # deadline): the answers depend on the deliveries alone, on a machine under any load. The
    # limits have their own tests (test_codecs_clients' budget tests, test_collector_clients'
    # 413, test_backpressure's append deadline).
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "collector.port": 0,
                                               "collector.decode_seconds": float("inf"),
                                               "collector.append_deadline_s": float("inf")})
    logging.getLogger("inferwatch").setLevel(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    h = Harness(cfg)
    counter = itertools.count()
    checked: list[int] = []
    examples: list[int] = []

    def logged() -> list[tuple[str, str]]:
        return [(d["id"], d.get("part") or "") for d in
                (orjson.loads(v) for _, v in h.log.topics.get(cfg.log.records_topic, []))]

    async def post(d, key):
        headers = {**d.headers, **({"Idempotency-Key": key} if key else {})}
        r = await h.client.post(d.path, content=d.body, headers=headers)
        assert r.status_code < 500, (r.status_code, r.text)
        return r.status_code, (r.json() if r.status_code in (202, 207) else None)

    def resends(d, must_accept: bool) -> None:
        n = next(counter)
        status, first = loop.run_until_complete(post(d, f"key-{n}"))
        if must_accept:
            assert status == 202 and None not in _ids(first), (status, first)
        if first is None:
            return  # nothing accepted: nothing to recognise
        before = len(logged())
        again_status, again = loop.run_until_complete(post(d, f"key-{n}"))
        assert again_status == status and _ids(again) == _ids(first)
        assert len(logged()) == before, "a resend under the same key was appended again"
        _, other = loop.run_until_complete(post(d, f"other-{n}"))
        _, plain1 = loop.run_until_complete(post(d, None))
        _, plain2 = loop.run_until_complete(post(d, None))
        a, b, p1, p2 = _ids(first), _ids(other), _ids(plain1), _ids(plain2)
        assert len(a) == len(b) == len(p1) == len(p2)
        owns = set()
        for i in range(len(a)):
            if a[i] is None:
                continue
            own = p1[i] == p2[i]  # an id the event brings is the same without a key
            assert (a[i] == b[i]) == own, (i, a[i], b[i], p1[i], p2[i])
            if not own:
                assert a[i].startswith("h-")
            owns.add(own)
        if must_accept:
            assert owns == {True, False}  # valid_records() has both kinds in every delivery
        checked.append(len(a))

    @settings(max_examples=100, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(pair) -> None:
        anything, valid = pair
        resends(anything, must_accept=False)
        resends(valid, must_accept=True)
        examples.append(1)

    try:
        check()
        # every derived id once on the log: the resends were recognised, not appended (ids the
        # generated items bring may repeat across examples with other content: not checked)
        derived = [e for e in logged() if e[0].startswith("h-")]
        assert derived and len(derived) == len(set(derived))
    finally:
        loop.run_until_complete(h.aclose())
        loop.close()
        logging.getLogger("inferwatch").setLevel(logging.NOTSET)
    # non-vacuity by construction: every example checked a valid delivery (Hypothesis runs
    # max_examples unless it exhausts the strategies, which these cannot)
    assert len(examples) == 100 and len(checked) >= len(examples)
