"""The core keeps its promises under races (issue 22), without a broker: capacity
reservations end with their offer, an answer is bound to the offer it answers, the
network's clock dates the network's events, and a patient's memory cannot pin a
category open."""

from __future__ import annotations

import json
from datetime import timedelta

from schemas.events import (
    ReferralStateChanged,
    from_bytes,
)
from streams.decisions.commands import (
    OfferTimeout,
)
from streams.decisions.network_state import NetworkState
from streams.decisions.referrals import Context, ReferralDecision, decide
from tests.streams.fixtures import (
    OTHER_CLINIC,
    T0,
    TOPICS,
    service,
)
from tests.streams.test_referrals import cancel, open_command, org_says


def ctx(state: NetworkState, offset: timedelta = timedelta(0)) -> Context:
    return Context(
        topics=TOPICS,
        now=T0 + offset,
        directory=state,
        org_stats=state.org_stats(),
        load=state.load(),
    )


def logged(state: NetworkState, decision: ReferralDecision) -> ReferralDecision:
    """What every worker's view learns from the event log of ``decision``."""
    for out in decision.outputs:
        if out.label == "referral.state-changed":
            event = from_bytes(out.value)
            assert isinstance(event, ReferralStateChanged)
            state.record(event)
    return decision


def one_place() -> NetworkState:
    state = NetworkState()
    state.upsert(service("svc-one", "org-one", available=1, languages=("es",)))
    return state


def offered_to(decision: ReferralDecision) -> str | None:
    return next(
        (from_bytes(o.value).service_id for o in decision.outputs if o.label == "referral.offered"),
        None,
    )


def available(state: NetworkState) -> int | None:
    [svc] = state.directory()
    return svc.capacity.available if svc.capacity else None


# ---------------------------------------------------------------- 1: reservations
def test_a_cancelled_offer_releases_its_place_for_another_clinic() -> None:
    state = one_place()
    first = logged(state, decide(None, open_command(), ctx(state), partition=0))
    assert offered_to(first) == "svc-one" and available(state) == 0
    assert first.record is not None
    logged(state, decide(first.record, cancel(), ctx(state, timedelta(minutes=1))))
    assert available(state) == 1
    second = open_command("ref-9", clinic_id=OTHER_CLINIC)
    decision = logged(state, decide(None, second, ctx(state, timedelta(minutes=2)), partition=0))
    assert offered_to(decision) == "svc-one"


def test_a_rejected_or_timed_out_offer_releases_its_place_an_accepted_one_keeps_it() -> None:
    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None and available(state) == 0
    rejected = logged(
        state, decide(record, org_says("org-one", "rejected", reason="not-eligible"), ctx(state))
    )
    assert available(state) == 1
    assert rejected.record is not None and rejected.record.status == "failed"

    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None
    late = ctx(state, timedelta(days=2))
    timeout = OfferTimeout(command_id="t", referral_id=record.referral_id, attempt=1)
    logged(state, decide(record, timeout, late))
    assert available(state) == 1

    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None
    accepted = logged(state, decide(record, org_says("org-one", "accepted"), ctx(state)))
    assert available(state) == 0  # the organization works on it: the place stays taken
    assert accepted.record is not None
    done = org_says("org-one", "completed", event=11, outcome="enrolled")
    logged(state, decide(accepted.record, done, ctx(state)))
    assert available(state) == 1


def test_releases_survive_a_snapshot_of_the_view() -> None:
    from streams.runtime.view_snapshot import Document

    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None and available(state) == 0
    raw = json.dumps(state.record_snapshot(100), default=lambda t: t.isoformat())
    document = Document.model_validate_json(raw)
    restored = one_place()
    restored.restore(document)
    assert available(restored) == 0
    logged(restored, decide(record, cancel(), ctx(restored, timedelta(minutes=1))))
    assert available(restored) == 1
