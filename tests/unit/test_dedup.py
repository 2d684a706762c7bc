"""SeenKeys: each key counted once within the horizon, the same decisions across a restart."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch.dedup import SeenKeys
from inferwatch.record import InferenceRecord

events = st.lists(st.tuples(st.sampled_from([f"k{i}" for i in range(40)]), st.floats(0, 5)), max_size=300)


def reference(evts: list[tuple[str, float]], max_keys: int, max_age: float) -> list[bool]:
    """A plain list model of the horizon: accepted (key, time) pairs, oldest first."""
    kept: list[tuple[str, float]] = []
    newest = float("-inf")
    out = []
    clock = 0.0
    for key, dt in evts:
        clock += dt
        newest = max(newest, clock)
        kept = [(k, t) for k, t in kept if t >= newest - max_age]
        if any(k == key for k, _ in kept):
            out.append(False)
            continue
        out.append(True)
        kept.append((key, clock))
        kept = kept[-max_keys:]
    return out


@settings(max_examples=300, deadline=None)
@given(events, st.integers(1, 50), st.floats(0.5, 200))
def test_matches_a_reference_model(evts: list[tuple[str, float]], max_keys: int, max_age: float) -> None:
    seen = SeenKeys(max_keys=max_keys, max_age_s=max_age)
    clock, got = 0.0, []
    for key, dt in evts:
        clock += dt
        got.append(seen.first(key, now=clock))
    assert got == reference(evts, max_keys, max_age)
    assert seen.duplicates == got.count(False)


@settings(max_examples=200, deadline=None)
@given(events, st.integers(0, 300), st.integers(1, 50))
def test_a_restart_from_a_snapshot_decides_as_if_nothing_happened(evts: list[tuple[str, float]], cut: int,
                                                                  max_keys: int) -> None:
    straight, restarted = SeenKeys(max_keys, 60.0), SeenKeys(max_keys, 60.0)
    clock, a, b = 0.0, [], []
    for i, (key, dt) in enumerate(evts):
        clock += dt
        if i == cut:
            fresh = SeenKeys(max_keys, 60.0)
            fresh.restore(restarted.snapshot())
            restarted = fresh
        a.append(straight.first(key, now=clock))
        b.append(restarted.first(key, now=clock))
    assert a == b


def test_within_a_large_horizon_each_distinct_key_counts_once() -> None:
    seen = SeenKeys()
    keys = [f"r{i % 700}" for i in range(2000)]
    assert sum(seen.first(k, now=0.0) for k in keys) == 700


def test_record_identity_separates_halves_models_versions_and_labels() -> None:
    base = InferenceRecord(id="x", model="m", version="1", part="request")
    others = [InferenceRecord(id="x", model="m", version="1", part="response"),
              InferenceRecord(id="x", model="n", version="1", part="request"),
              InferenceRecord(id="x", model="m", version="2", part="request"),
              InferenceRecord(id="y", model="m", version="1", part="request")]
    assert len({base.identity(), *(r.identity() for r in others)}) == 5
    assert base.identity() == InferenceRecord.from_json(base.to_json()).identity()
    label = InferenceRecord(id="x", model="m", part="feedback", truth={"y": [1]})
    assert label.identity() != InferenceRecord(id="x", model="m", part="feedback", truth={"y": [0]}).identity()
    # the digest of the key text the horizon kept before identities: old checkpoints stay valid
    seen = SeenKeys()
    seen.add("m\x001\x00x\x00request", now=0.0)
    assert not seen.first(base.identity(), now=0.0)
