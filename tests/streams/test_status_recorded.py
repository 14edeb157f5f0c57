"""The network confirms each organization's status change it records (issue 18, item 14):
one ``referral.status-recorded`` on the organization's own referrals topic, from the
same decision as the change, naming the organization's event and nothing of the patient."""

from __future__ import annotations

from datetime import timedelta

from schemas.codes import SDOH_CATEGORY_SYSTEM, BusinessStatus, TaskStatus
from schemas.decode import ALLOWED_EVENT_TYPES
from schemas.events import ReferralStatusRecorded
from schemas.events.referrals import Coding
from schemas.topics import TopicKind
from streams.decisions.commands import derived_id
from streams.decisions.referrals import decide
from tests.streams.fixtures import TOPICS, eid
from tests.streams.test_referrals import (
    EN_ORG,
    ES_ORG,
    NET,
    ctx,
    ev,
    opened,
    org_says,
    step,
)

ES_INBOX = TOPICS.org_referrals(ES_ORG)


def _recorded(decision: object) -> list[ReferralStatusRecorded]:
    outputs = getattr(decision, "outputs")  # noqa: B009 - a ReferralDecision
    found = [ev(o) for o in outputs if o.label == "referral.status-recorded"]
    for out in outputs:
        if out.label == "referral.status-recorded":
            assert (out.topic, out.key) == (ES_INBOX, NET)
    return found


def test_an_accepted_status_change_is_confirmed_to_the_organization() -> None:
    decision = decide(opened(), org_says(ES_ORG, "accepted"), ctx(timedelta(hours=1)))
    (recorded,) = _recorded(decision)
    assert recorded.referral_id == NET
    assert (recorded.status, recorded.business_status) == (TaskStatus.ACCEPTED, None)
    assert (recorded.attempt, recorded.service_id) == (1, "svc-es")
    assert recorded.cause_event_id == eid(10)
    assert decision.record is not None
    assert recorded.event_id == derived_id(NET, "recorded", decision.record.step)
    text = recorded.model_dump_json()
    for value in ("Ana", "Colin", "+1", "birth", "10451", "given_name"):
        assert value not in text
    labels = [o.label for o in decision.outputs]
    # after the change it confirms (the clinic's update and the log come first)
    assert labels.index("referral.status-recorded") > labels.index("referral.state-changed")


def test_completion_is_confirmed_with_its_outcome() -> None:
    record = step(
        step(opened(), org_says(ES_ORG, "accepted")), org_says(ES_ORG, "in-progress", event=11)
    )
    done = decide(record, org_says(ES_ORG, "completed", event=12, outcome="enrolled"), ctx())
    (recorded,) = _recorded(done)
    assert (recorded.status, recorded.outcome, recorded.cause_event_id) == (
        TaskStatus.COMPLETED,
        "enrolled",
        eid(12),
    )


def test_a_rejection_is_confirmed_as_rejected_and_the_next_offer_follows() -> None:
    decision = decide(opened(), org_says(ES_ORG, "rejected", reason="no-capacity"), ctx())
    (recorded,) = _recorded(decision)
    assert (recorded.status, recorded.business_status, recorded.reason) == (
        TaskStatus.REJECTED,
        BusinessStatus.RE_ROUTED,
        "no-capacity",
    )
    labels = [(o.label, o.topic) for o in decision.outputs]
    offered = labels.index(("referral.offered", TOPICS.org_referrals(EN_ORG)))
    assert labels.index(("referral.status-recorded", ES_INBOX)) < offered


def test_a_cancellation_after_accepting_is_confirmed_as_the_organizations_cancelled() -> None:
    record = step(opened(), org_says(ES_ORG, "accepted"))
    (recorded,) = _recorded(
        decide(record, org_says(ES_ORG, "cancelled", event=11, reason="x"), ctx())
    )
    assert recorded.status is TaskStatus.CANCELLED


def test_a_refused_change_is_not_confirmed() -> None:
    record = step(opened(), org_says(ES_ORG, "accepted"))
    refused = decide(record, org_says(ES_ORG, "accepted", event=11), ctx())
    assert _recorded(refused) == []
    assert [o.label for o in refused.outputs] == ["deadletter", "message.refused:transition"]
    repeated = decide(record, org_says(ES_ORG, "accepted"), ctx())  # the same event again
    assert repeated.outputs == []


def test_the_organizations_referrals_topic_may_carry_the_confirmation() -> None:
    assert "referral.status-recorded" in ALLOWED_EVENT_TYPES[TopicKind.ORG_REFERRALS]


def test_the_confirmation_carries_the_organizations_codings() -> None:
    said = org_says(ES_ORG, "rejected", reason="no-capacity")
    coding = Coding(system=SDOH_CATEGORY_SYSTEM, code="no-capacity")
    event = said.event.model_copy(update={"reason_coding": coding})
    said = said.model_copy(update={"event": event})
    (recorded,) = _recorded(decide(opened(), said, ctx()))
    assert recorded.reason_coding == coding
    assert recorded.outputs == []
