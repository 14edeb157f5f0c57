"""Codings travel with a referral (issue 18, item 17): the clinic's requested service
codes reach the organization's offer and every clinic update; an organization's
status reason coding and coded outputs reach the clinic as sent."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.codes import RESULTING_ACTIVITY, SDOH_CATEGORY_SYSTEM, SNOMED_SYSTEM
from schemas.events import (
    ReferralOffered,
    ReferralStatusChanged,
    ReferralUpdated,
    from_bytes,
    to_bytes,
)
from schemas.events.referrals import MAX_CODES, MAX_OUTPUTS, Coding, ReferralRequested, TaskOutput
from streams.decisions.commands import OrganizationStatus
from streams.decisions.patients import decide as decide_patient
from streams.decisions.referrals import ReferralRecord, decide
from tests.streams.fixtures import TOPICS, eid, requested, source
from tests.streams.test_patients import opened as open_of
from tests.streams.test_patients import submit
from tests.streams.test_referrals import ES_ORG, NET, ctx, open_command

FOOD_PANTRY = {"system": SNOMED_SYSTEM, "code": "467771000124109"}
NO_CAPACITY = {"system": SDOH_CATEGORY_SYSTEM, "code": "no-capacity"}
RESULTING = {"system": SDOH_CATEGORY_SYSTEM, "code": RESULTING_ACTIVITY}


def org_event(value: str, *, event: int = 10, **fields: Any) -> OrganizationStatus:
    changed = ReferralStatusChanged.model_validate(
        {"event_id": eid(event), "occurred_at": ctx().now, "referral_id": NET, "status": value}
        | fields
    )
    return OrganizationStatus(
        command_id=str(changed.event_id),
        org_id=ES_ORG,
        event=changed,
        source=source(TOPICS.org_updates(ES_ORG), NET, offset=event),
        raw_base64=base64.b64encode(to_bytes(changed)).decode("ascii"),
    )


def of_type(outputs: list[Any], kind: type) -> list[Any]:
    events = (from_bytes(o.value) for o in outputs if not o.label.startswith("command."))
    return [e for e in events if isinstance(e, kind)]


def test_a_requested_referrals_codes_reach_the_open_command() -> None:
    event = requested().model_copy(update={"codes": [Coding.model_validate(FOOD_PANTRY)]})
    decision = decide_patient(None, submit(event), topics=TOPICS)
    assert open_of(decision.outputs[0]).codes == [Coding.model_validate(FOOD_PANTRY)]


def test_the_offer_and_every_clinic_update_carry_the_requested_codes() -> None:
    first = decide(None, open_command(codes=[FOOD_PANTRY]), ctx(), partition=3)
    (offered,) = of_type(first.outputs, ReferralOffered)
    (update,) = of_type(first.outputs, ReferralUpdated)
    assert offered.codes == update.codes == [Coding.model_validate(FOOD_PANTRY)]
    assert first.record is not None
    accepted = decide(first.record, org_event("accepted"), ctx())
    (update,) = of_type(accepted.outputs, ReferralUpdated)
    assert update.codes == [Coding.model_validate(FOOD_PANTRY)]


def test_an_organizations_reason_coding_reaches_the_clinic_and_the_record() -> None:
    first = decide(None, open_command(), ctx(), partition=3)
    assert first.record is not None
    rejected = decide(
        first.record, org_event("rejected", reason="no-capacity", reason_coding=NO_CAPACITY), ctx()
    )
    (update, *_) = of_type(rejected.outputs, ReferralUpdated)
    assert (update.reason, update.reason_coding) == ("no-capacity", Coding(**NO_CAPACITY))
    assert rejected.record is not None
    assert rejected.record.reason_coding == Coding(**NO_CAPACITY)
    # The next change (the re-route's new offer) is the network's: no org coding on it.
    assert [u.reason_coding for u in of_type(rejected.outputs, ReferralUpdated)][1:] == [None]


def test_a_completed_tasks_coded_outputs_reach_the_clinic() -> None:
    first = decide(None, open_command(codes=[FOOD_PANTRY]), ctx(), partition=3)
    assert first.record is not None
    accepted = decide(first.record, org_event("accepted"), ctx())
    assert accepted.record is not None
    output = {"type": RESULTING, "value": FOOD_PANTRY}
    completed = org_event("completed", event=11, outcome="467771000124109", outputs=[output])
    done = decide(accepted.record, completed, ctx())
    (update,) = of_type(done.outputs, ReferralUpdated)
    assert update.outputs == [TaskOutput.model_validate(output)]
    assert update.codes == [Coding.model_validate(FOOD_PANTRY)]
    assert done.record is not None and done.record.outputs == update.outputs


def test_a_record_stored_before_codings_still_reads() -> None:
    first = decide(None, open_command(), ctx(), partition=3)
    assert first.record is not None
    stored = first.record.model_dump(mode="json")
    for name in ("codes", "reason_coding", "outputs"):
        stored.pop(name)
    old = ReferralRecord.model_validate(stored)
    assert (old.codes, old.reason_coding, old.outputs) == ([], None, [])


@pytest.mark.parametrize(
    "coding",
    [
        {"system": "http://example.org/local", "code": "x"},
        {"system": SNOMED_SYSTEM, "code": "has a space"},
        {"system": SNOMED_SYSTEM, "code": "9" * 65},
        {"system": SNOMED_SYSTEM},
    ],
)
def test_a_coding_outside_the_allow_list_or_the_bounds_is_refused(coding: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Coding.model_validate(coding)


def test_codes_and_outputs_are_bounded() -> None:
    base = requested().model_dump(mode="json")
    with pytest.raises(ValidationError):
        ReferralRequested.model_validate(base | {"codes": [FOOD_PANTRY] * (MAX_CODES + 1)})
    output = {"type": RESULTING, "value": FOOD_PANTRY}
    with pytest.raises(ValidationError):
        org_event("completed", outcome="x", outputs=[output] * (MAX_OUTPUTS + 1))


def test_a_display_on_the_wire_is_dropped_never_carried() -> None:
    coding = Coding.model_validate(FOOD_PANTRY | {"display": "Ana Perez, 12 Main St"})
    assert "display" not in coding.model_dump()


def test_the_record_keeps_the_codings_of_the_organizations_latest_change() -> None:
    first = decide(None, open_command(), ctx(), partition=3)
    assert first.record is not None
    held = decide(
        first.record, org_event("accepted", reason="no-capacity", reason_coding=NO_CAPACITY), ctx()
    )
    assert held.record is not None and held.record.reason_coding == Coding(**NO_CAPACITY)
    working = decide(held.record, org_event("in-progress", event=11), ctx())
    assert working.record is not None and working.record.reason_coding is None
