"""A party's view keeps the hospital alerts its inbox topic carries, and only valid ones."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from connectors.gateway.tokens import PartyRef
from connectors.gateway.views import SKIPPED, PartyView
from connectors.kafka.auth import PLAINTEXT
from schemas.events import EncounterAlerted, to_bytes
from schemas.topics import Topics

T = Topics(prefix="sdoh")


def _view(kind: str, party_id: str) -> PartyView:
    return PartyView(PartyRef(kind, party_id), T, "127.0.0.1:9", PLAINTEXT)  # type: ignore[arg-type]


def _alert(**fields: object) -> EncounterAlerted:
    return EncounterAlerted.new(
        event="admit",
        encounter_class="IMP",
        encounter_on="2026-12-05",
        encounter_event_id=uuid.uuid4(),
        **fields,
    )


@pytest.mark.parametrize(("kind", "fields"), [("org", {"referral_id": "ref-1"}), ("clinic", {})])
async def test_a_valid_alert_is_kept_by_event_id(kind: str, fields: dict[str, str]) -> None:
    view = _view(kind, "party-1")
    alert = _alert(**fields)
    await view._apply(to_bytes(alert))
    assert list(view.alerts) == [str(alert.event_id)]
    assert view.alerts[str(alert.event_id)]["event"] == "admit"
    assert view.records == {}


async def test_an_invalid_alert_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    view = _view("org", "party-1")
    broken = _alert(referral_id="ref-1").model_dump(mode="json")
    del broken["encounter_on"]
    before = SKIPPED.labels("org")._value.get()
    with caplog.at_level(logging.WARNING, logger="refnet.gateway.views"):
        await view._apply(json.dumps(broken).encode())
    assert view.alerts == {}
    assert "skipped a message" in caplog.text
    assert SKIPPED.labels("org")._value.get() == before + 1


async def test_a_facility_view_reads_its_updates_and_publishes_to_its_submissions() -> None:
    view = _view("facility", "st-agnes")
    assert view.inbox == T.facility_updates("st-agnes")
    assert view.outbox == T.facility_submissions("st-agnes")
    await view._apply(to_bytes(_alert(referral_id="ref-1")))
    assert view.alerts == {}
