"""Snapshots of the view's record, without a broker: encoding, checks, and that a view
restored from a snapshot and fed what followed knows what a view fed everything knows."""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decisions.network_state import NetworkState
from streams.runtime import view_snapshot
from streams.runtime.view_snapshot import (
    Document,
    Manifest,
    Rejected,
    decode,
    encode,
    manifest_bytes,
)
from tests.streams.fixtures import T0, capacity, service
from tests.streams.test_view import changed

SERVICES = [("svc-a", "org-a"), ("svc-b", "org-b"), ("svc-c", "org-a")]


def directory_state() -> NetworkState:
    """Directory and capacity as a starting worker has them before the event log."""
    state = NetworkState()
    for sid, org in SERVICES:
        state.upsert(service(sid, org, available=5, at=T0 - timedelta(days=2)))
    state.report_capacity(capacity("svc-b", 3, at=T0 - timedelta(days=1)))
    return state


# An operation on the view: ("log", event) from the event log, or ("own", ...) an
# offer the referral owner reserved before the log brought it back.
def _op(kind: str, n: int, svc: int, attempt: int, minutes: int) -> tuple[str, Any]:
    sid, org = SERVICES[svc]
    at = T0 + timedelta(minutes=minutes - 60 * 24 * 3)  # some before the figures in force
    if kind == "own":
        return ("own", (f"ref-{n}", attempt, sid, at))
    fields: dict[str, Any] = {
        "offer": {"to_status": "requested", "actor": "network", "business_status": "offered"},
        "answer": {"to_status": "accepted", "actor": "organization"},
        "timeout": {"to_status": "requested", "actor": "network", "reason": "timeout"},
    }[kind]
    event = changed(org_id=org, service_id=sid, n=n, **fields)
    return ("log", event.model_copy(update={"attempt": attempt, "occurred_at": at}))


ops = st.lists(
    st.builds(
        _op,
        st.sampled_from(["offer", "answer", "timeout", "own"]),
        st.integers(0, 8),
        st.integers(0, 2),
        st.integers(1, 2),
        st.integers(0, 60 * 24 * 6),
    ),
    max_size=40,
)


def play(state: NetworkState, steps: list[tuple[str, Any]]) -> None:
    for kind, step in steps:
        if kind == "own":
            state.reserve(*step)
        else:
            state.record(step)


def record_of(state: NetworkState) -> dict[str, Any]:
    return {
        "on_time": dict(state.on_time),
        "timed_out": dict(state.timed_out),
        "offers": dict(state.offers),
        "reserved": {k: v for k, v in state.reserved.items() if v},
        "org_stats": dict(state.org_stats()),
        "capacity": {s.service_id: s.capacity for s in state.directory()},
    }


def through_the_wire(state: NetworkState) -> Document:
    parts, sha256, size = encode(state.record_snapshot(view_snapshot.RECENT_OFFERS))
    return decode(_manifest(parts, sha256, size), parts)


@settings(max_examples=300, deadline=None)
@given(before=ops, after=ops)
def test_a_snapshot_then_what_followed_gives_the_record_of_everything(
    before: list[tuple[str, Any]], after: list[tuple[str, Any]]
) -> None:
    whole = directory_state()
    play(whole, before + after)

    first = directory_state()
    play(first, before)
    restored = directory_state()
    restored.restore(through_the_wire(first))
    play(restored, after)

    assert record_of(restored) == record_of(whole)


def test_a_figure_newer_than_the_snapshot_counts_anew() -> None:
    first = directory_state()
    first.reserve("ref-1", 1, "svc-b", T0)
    first.reserve("ref-2", 1, "svc-b", T0)
    document = through_the_wire(first)
    assert document.reserved["svc-b"][0] == 2

    same = directory_state()
    same.restore(document)
    assert same.reserved["svc-b"] == 2
    newer = directory_state()
    newer.report_capacity(capacity("svc-b", 4, event=21, at=T0 + timedelta(hours=1)))
    newer.restore(document)
    assert newer.reserved.get("svc-b", 0) == 0
    assert {s.service_id: s.capacity.available for s in newer.directory() if s.capacity}[
        "svc-b"
    ] == 4


def test_only_the_newest_offers_are_kept_for_de_duplication() -> None:
    state = directory_state()
    for n in range(30):
        state.reserve(f"ref-{n}", 1, "svc-a", T0)
    document = state.record_snapshot(recent=10)
    assert document["counted"] == [(f"ref-{n}", 1) for n in range(20, 30)]


# ---------------------------------------------------------------- what is refused
def _manifest(parts: list[bytes], sha256: str, size: int) -> Manifest:
    return Manifest.model_validate_json(
        manifest_bytes(
            event_log="t.referrals.events.v1",
            partitions=1,
            positions={0: 1},
            offsets=list(range(len(parts))),
            parts=parts,
            sha256=sha256,
            document_bytes=size,
        )
    )


def test_parts_that_do_not_match_the_checksum_are_refused() -> None:
    parts, sha256, size = encode(directory_state().record_snapshot(10))
    with pytest.raises(Rejected) as caught:
        decode(_manifest(parts, sha256, size), [parts[0][:-1] + b"\x00"])
    assert caught.value.reason == "checksum"


def test_a_document_that_inflates_past_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(view_snapshot, "MAX_DOCUMENT_BYTES", 1000)
    data = zlib.compress(b" " * 100_000)
    import hashlib

    manifest = _manifest([data], hashlib.sha256(data).hexdigest(), 0)
    with pytest.raises(Rejected) as caught:
        decode(manifest, [data])
    assert caught.value.reason == "format"
    assert "inflates" in caught.value.detail


@pytest.mark.parametrize(
    "raw",
    [b"not zlib", zlib.compress(b"[1, 2]"), zlib.compress(b'{"on_time": {"a": "many"}}')],
)
def test_a_document_that_is_not_a_view_record_is_refused(raw: bytes) -> None:
    import hashlib

    manifest = _manifest([raw], hashlib.sha256(raw).hexdigest(), len(raw))
    with pytest.raises(Rejected) as caught:
        decode(manifest, [raw])
    assert caught.value.reason == "format"


def test_a_large_record_is_split_into_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view_snapshot, "PART_BYTES", 64)
    state = directory_state()
    for n in range(200):
        state.reserve(f"ref-{n:04d}", 1, "svc-a", T0)
    parts, sha256, size = encode(state.record_snapshot(1000))
    assert len(parts) > 3
    assert all(len(p) <= 64 for p in parts)
    restored = directory_state()
    restored.restore(decode(_manifest(parts, sha256, size), parts))
    assert restored.reserved["svc-a"] == 200
