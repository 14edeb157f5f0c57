"""An organization's Task shows the network's truth (issue 18, item 14), without a broker:
its view applies the network's confirmations and refusals of its updates, the Task
renders them, and a move the lifecycle forbids is refused before anything is published."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.tasks import REFUSED_PREFIX, org_task, status_change_from
from connectors.gateway.routers.tasks import _check_move, _network_answer
from connectors.gateway.tokens import PartyRef
from connectors.gateway.views import PartyView
from connectors.kafka.auth import PLAINTEXT
from schemas.events import (
    DeadLetterSource,
    MessageRefused,
    OfferState,
    ReferralOffered,
    ReferralStatusChanged,
    ReferralStatusRecorded,
    ReferralWithdrawn,
    Refusal,
    to_bytes,
)
from schemas.topics import Topics

T = Topics(prefix="sdoh")
ORG = "bronx-pantry"
RID = "mott-haven:ref-1"


def _view() -> PartyView:
    return PartyView(PartyRef("org", ORG), T, "127.0.0.1:9", PLAINTEXT)


def _offer(attempt: int = 1) -> ReferralOffered:
    return ReferralOffered.new(
        referral_id=RID,
        service_id="svc-1",
        category="food-insecurity",
        respond_by="2030-01-01T00:00:00Z",
        attempt=attempt,
        patient={"given_name": "Colin", "phone": "+17185550100", "postal_code": "10451"},
    )


def _recorded(status: str, cause: uuid.UUID, **fields: Any) -> ReferralStatusRecorded:
    return ReferralStatusRecorded.new(
        referral_id=RID,
        status=status,
        attempt=1,
        service_id="svc-1",
        cause_event_id=cause,
        **fields,
    )


def _refused(refused_id: uuid.UUID, rule: str = "no one may move it") -> MessageRefused:
    return MessageRefused.new(
        source=DeadLetterSource(topic=T.org_updates(ORG), partition=0, offset=7, key=RID),
        refused_event_id=refused_id,
        refused_event_type="referral.status-changed",
        referral_id=RID,
        error=Refusal(kind="transition", rule=rule),
        referral_state=OfferState(offer="withdrawn", attempt=1),
    )


def _task(view: PartyView) -> dict[str, Any]:
    return org_task(view.records[RID], ORG)[0]


async def test_the_task_shows_the_status_the_network_recorded_not_requested() -> None:
    view = _view()
    await view._apply(to_bytes(_offer()))
    assert _task(view)["status"] == "requested"
    # the organization answered through its own Kafka client: the gateway never saw it
    await view._apply(to_bytes(_recorded("accepted", uuid.uuid4())))
    assert _task(view)["status"] == "accepted"
    done = _recorded("completed", uuid.uuid4(), outcome="enrolled")
    await view._apply(to_bytes(done))
    task = _task(view)
    assert task["status"] == "completed"
    assert json.dumps(task["output"]).count("enrolled") == 1
    assert task["lastModified"] == done.occurred_at.isoformat()


async def test_a_refusal_shows_as_a_note_by_the_network_and_the_status_stays() -> None:
    view = _view()
    await view._apply(to_bytes(_offer()))
    await view._apply(to_bytes(_recorded("accepted", uuid.uuid4())))
    refused_id = uuid.uuid4()
    await view._apply(to_bytes(_refused(refused_id, "the offer was withdrawn")))
    task = _task(view)
    assert task["status"] == "accepted"
    (note,) = task["note"]
    assert note["authorReference"] == {"reference": "Organization/refnet"}
    assert note["text"].startswith(REFUSED_PREFIX) and "the offer was withdrawn" in note["text"]
    assert "transition" in note["text"] and "its offer: withdrawn" in note["text"]
    # a later confirmation replaces the refusal
    await view._apply(to_bytes(_recorded("in-progress", uuid.uuid4())))
    assert "note" not in _task(view) and _task(view)["status"] == "in-progress"
    # the network's note is not sent back as the organization's own note
    back = status_change_from({**task, "status": "in-progress"}, RID, _offer())
    assert back.note is None


async def test_a_withdrawal_still_reads_cancelled_and_a_new_offer_starts_afresh() -> None:
    view = _view()
    await view._apply(to_bytes(_offer()))
    await view._apply(to_bytes(_recorded("accepted", uuid.uuid4())))
    await view._apply(to_bytes(ReferralWithdrawn.new(referral_id=RID, reason="expired")))
    assert _task(view)["status"] == "cancelled"
    await view._apply(to_bytes(_offer(attempt=3)))
    assert _task(view)["status"] == "requested"


async def test_answers_for_unknown_referrals_or_other_ids_change_nothing() -> None:
    view = _view()
    await view._apply(to_bytes(_recorded("accepted", uuid.uuid4())))
    await view._apply(to_bytes(_refused(uuid.uuid4())))
    assert view.records == {}


def _change(status: str, **fields: Any) -> ReferralStatusChanged:
    return ReferralStatusChanged.new(referral_id=RID, status=status, **fields)


@pytest.mark.parametrize(
    ("current", "status", "fields", "http"),
    [
        ("requested", "completed", {"outcome": "enrolled"}, 409),
        ("requested", "in-progress", {}, 409),
        ("accepted", "accepted", {}, 409),
        ("in-progress", "rejected", {"reason": "no-capacity"}, 409),
        ("accepted", "completed", {}, 422),
    ],
)
def test_a_move_the_lifecycle_forbids_is_refused_naming_the_rule(
    current: str, status: str, fields: dict[str, str], http: int
) -> None:
    with pytest.raises(GatewayInputError) as refused:
        _check_move(current, _change(status, **fields))
    assert refused.value.status == http
    assert refused.value.code == "business-rule"
    assert "network would refuse" in str(refused.value)


@pytest.mark.parametrize(
    ("current", "status"),
    [("requested", "accepted"), ("accepted", "in-progress"), ("on-hold", "in-progress")],
)
def test_a_move_the_lifecycle_allows_passes(current: str, status: str) -> None:
    _check_move(current, _change(status))


async def test_the_update_waits_for_the_networks_answer_to_its_own_event() -> None:
    view = _view()
    await view._apply(to_bytes(_offer()))
    mine, other = uuid.uuid4(), uuid.uuid4()

    async def network_answers() -> None:
        await asyncio.sleep(0.05)
        await view._apply(to_bytes(_recorded("accepted", other)))  # not its answer
        async with view.changed:
            view.changed.notify_all()
        await asyncio.sleep(0.05)
        await view._apply(to_bytes(_recorded("accepted", mine)))
        async with view.changed:
            view.changed.notify_all()

    answering = asyncio.create_task(network_answers())
    answer = await _network_answer(view, RID, str(mine), 5.0)
    await answering
    assert answer is not None and answer["recorded"]["cause_event_id"] == str(mine)
    assert await _network_answer(view, RID, str(uuid.uuid4()), 0.1) is None

    refused_id = uuid.uuid4()
    await view._apply(to_bytes(_refused(refused_id)))
    answer = await _network_answer(view, RID, str(refused_id), 0.1)
    assert answer is not None and answer["refused"]["event_id"] == str(refused_id)
