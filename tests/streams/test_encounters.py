"""Encounter alerts decided without a broker: the linkage owner's chain, the patient
owner's alerts and links, the referral owner's consent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from schemas.codes import EncounterClass, EncounterEvent
from schemas.events import EncounterAlerted, EncounterReason, EncounterRouted, from_bytes
from streams.decisions import patients
from streams.decisions.commands import (
    LINKAGE_COMMAND,
    PATIENT_COMMAND,
    REFERRAL_COMMAND,
    AlertReferral,
    Encounter,
    FindPatients,
    LinkPatient,
    PatientEncounter,
    SubmissionReceived,
    UnlinkPatient,
    network_referral_id,
)
from streams.decisions.encounters import (
    KEYS_PER_PATIENT,
    MAX_MATCHES,
    PATIENTS_PER_KEY,
    LinkageRecord,
    decide_linkage,
    find_command,
    relink,
)
from streams.decisions.linkage import MAX_KEYS
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals import decide
from tests.streams.fixtures import (
    CLINIC,
    FOOD_ONLY,
    NO_NEED,
    PATIENT_ID,
    T0,
    TOPICS,
    consent,
    eid,
    screening,
    source,
)
from tests.streams.test_referrals import ES_ORG, NET, ctx, open_command, opened, org_says, step

PATIENT = f"{CLINIC}:{PATIENT_ID}"
HOSPITAL = "lincoln-hospital"
ASTHMA = EncounterReason(system="http://hl7.org/fhir/sid/icd-10-cm", code="J45.901")


def encounter(n: int = 500) -> Encounter:
    return Encounter(
        encounter_event_id=eid(n),
        facility_id=HOSPITAL,
        event=EncounterEvent.ED_VISIT,
        encounter_class=EncounterClass.EMERGENCY,
        encounter_at=T0 - timedelta(hours=3),
        reasons=[ASTHMA],
        received_at=T0,
    )


def routed(out: Outgoing) -> EncounterRouted:
    event = from_bytes(out.value)
    assert isinstance(event, EncounterRouted)
    return event


def alerted(out: Outgoing) -> EncounterAlerted:
    event = from_bytes(out.value)
    assert isinstance(event, EncounterAlerted)
    return event


def find(keys: list[str], index: int = 0, matched: list[str] | None = None) -> FindPatients:
    return FindPatients(
        command_id=f"find:{eid(500)}:{index}",
        keys=keys,
        index=index,
        matched=matched or [],
        encounter=encounter(),
    )


# ------------------------------------------------------------------ the ingress's command
def test_an_encounter_goes_to_its_first_keys_owner_and_one_without_keys_is_no_match() -> None:
    out = find_command(encounter(), ["k1", "k2", "k1"], TOPICS)
    assert (out.topic, out.key, out.label) == (TOPICS.network_linkage, "k1", "command.find")
    command = LINKAGE_COMMAND.validate_json(out.value)
    assert isinstance(command, FindPatients)
    assert (command.keys, command.index, command.matched) == (["k1", "k2"], 0, [])

    nobody = find_command(encounter(), [], TOPICS)
    assert nobody.topic == TOPICS.referral_events
    assert nobody.label == "encounter.routed:no-match:none"
    assert routed(nobody).outcome == "no-match"


# ------------------------------------------------------------------ the linkage owner
def test_links_are_a_bounded_set_and_the_last_unlink_removes_the_row() -> None:
    first = decide_linkage(
        None, LinkPatient(command_id="l1", patient="a:1"), key="k", topics=TOPICS
    )
    assert first.record == LinkageRecord(patients=["a:1"])
    again = decide_linkage(
        first.record, LinkPatient(command_id="l2", patient="a:1"), key="k", topics=TOPICS
    )
    assert again.record is None and not again.refused

    full = LinkageRecord(patients=[f"c:{n}" for n in range(PATIENTS_PER_KEY)])
    over = decide_linkage(full, LinkPatient(command_id="l3", patient="c:x"), key="k", topics=TOPICS)
    assert over.refused and over.record is None

    gone = decide_linkage(
        first.record, UnlinkPatient(command_id="u1", patient="a:1"), key="k", topics=TOPICS
    )
    assert gone.delete
    unknown = decide_linkage(
        None, UnlinkPatient(command_id="u2", patient="a:1"), key="k", topics=TOPICS
    )
    assert unknown.record is None and not unknown.delete


def test_an_encounter_visits_each_key_and_the_last_owner_fans_out_to_every_match() -> None:
    first = decide_linkage(
        LinkageRecord(patients=["a:1"]), find(["k1", "k2"]), key="k1", topics=TOPICS
    )
    assert first.record is None  # an encounter changes no row
    [onward] = first.outputs
    assert (onward.topic, onward.key) == (TOPICS.network_linkage, "k2")
    command = LINKAGE_COMMAND.validate_json(onward.value)
    assert isinstance(command, FindPatients)
    assert (command.index, command.matched) == (1, ["a:1"])
    assert command.command_id == f"find:{eid(500)}:1"

    last = decide_linkage(LinkageRecord(patients=["a:1", "b:2"]), command, key="k2", topics=TOPICS)
    assert [(o.topic, o.key) for o in last.outputs] == [
        (TOPICS.network_patients, "a:1"),
        (TOPICS.network_patients, "b:2"),
    ]
    fanned = PATIENT_COMMAND.validate_json(last.outputs[0].value)
    assert isinstance(fanned, PatientEncounter)
    assert fanned.command_id == f"encounter:{eid(500)}"
    assert fanned.encounter == encounter()


def test_an_encounter_no_key_names_is_recorded_once_as_no_match() -> None:
    decision = decide_linkage(None, find(["k1"]), key="k1", topics=TOPICS)
    [out] = decision.outputs
    record = routed(out)
    assert (record.outcome, record.recipient_kind, record.facility_id) == (
        "no-match",
        None,
        HOSPITAL,
    )
    assert out.key == str(eid(500))


def test_an_encounter_reaches_at_most_max_matches_patients() -> None:
    crowded = LinkageRecord(patients=[f"c:{n}" for n in range(PATIENTS_PER_KEY)])
    matched = [f"m:{n}" for n in range(MAX_MATCHES - 1)]
    decision = decide_linkage(crowded, find(["k"], matched=matched), key="k", topics=TOPICS)
    assert len(decision.outputs) == MAX_MATCHES


# ------------------------------------------------------------------ links from the patient owner
def test_patients_found_on_a_strict_key_are_told_and_a_sound_alike_twin_is_not() -> None:
    # the encounter's strict key "exact" names the patient; its fuzzy key "sounds"
    # also names her twin, whose given name sounds alike
    command = FindPatients(
        command_id=f"find:{eid(500)}:0",
        keys=["exact", "sounds"],
        strict=["exact"],
        encounter=encounter(),
    )
    first = decide_linkage(LinkageRecord(patients=["c:ana"]), command, key="exact", topics=TOPICS)
    onward = LINKAGE_COMMAND.validate_json(first.outputs[0].value)
    assert isinstance(onward, FindPatients)
    assert (onward.matched, onward.matched_strict) == (["c:ana"], ["c:ana"])
    last = decide_linkage(
        LinkageRecord(patients=["c:ana", "c:anna"]), onward, key="sounds", topics=TOPICS
    )
    assert [o.key for o in last.outputs] == ["c:ana"]

    # found on fuzzy keys only (a typo in the name): every patient found hears of it
    fuzzy = command.model_copy(update={"strict": []})
    first = decide_linkage(LinkageRecord(patients=["c:ana"]), fuzzy, key="exact", topics=TOPICS)
    onward = LINKAGE_COMMAND.validate_json(first.outputs[0].value)
    assert isinstance(onward, FindPatients)
    last = decide_linkage(LinkageRecord(patients=["c:anna"]), onward, key="sounds", topics=TOPICS)
    assert [o.key for o in last.outputs] == ["c:ana", "c:anna"]


def test_a_patient_keeps_every_key_of_two_sets_of_demographics() -> None:
    assert KEYS_PER_PATIENT >= 2 * MAX_KEYS


def test_relink_links_new_keys_keeps_a_bounded_list_and_unlinks_when_the_patient_leaves() -> None:
    keys, outputs = relink("a:1", [], ["k1", "k2", "k1"], leaving=False, cause="e1", topics=TOPICS)
    assert keys == ["k1", "k2"]
    assert [(o.key, o.label) for o in outputs] == [("k1", "command.link"), ("k2", "command.link")]

    same, none = relink("a:1", keys, ["k2"], leaving=False, cause="e2", topics=TOPICS)
    assert (same, none) == (keys, [])

    many = [f"k{n}" for n in range(KEYS_PER_PATIENT)]
    kept, changes = relink("a:1", many, ["new"], leaving=False, cause="e3", topics=TOPICS)
    assert kept == [*many[1:], "new"]
    assert [(o.key, o.label) for o in changes] == [
        ("k0", "command.unlink"),
        ("new", "command.link"),
    ]

    left, unlinks = relink("a:1", keys, ["k3"], leaving=True, cause="e4", topics=TOPICS)
    assert left == []
    assert [(o.key, o.label) for o in unlinks] == [
        ("k1", "command.unlink"),
        ("k2", "command.unlink"),
    ]
    command = LINKAGE_COMMAND.validate_json(unlinks[0].value)
    assert isinstance(command, UnlinkPatient) and command.patient == "a:1"


def submitted(event: Any, keys: list[str]) -> SubmissionReceived:
    return SubmissionReceived(
        command_id=str(event.event_id),
        clinic_id=CLINIC,
        source=source(TOPICS.clinic_submissions(CLINIC), PATIENT_ID),
        event=event,
        received_at=T0,
        linkage_keys=keys,
    )


def test_a_screening_that_opens_a_referral_links_its_patients_keys() -> None:
    decision = patients.decide(
        None, submitted(screening(answers=FOOD_ONLY), ["k1", "k2"]), topics=TOPICS
    )
    assert decision.record is not None and decision.record.linkage_keys == ["k1", "k2"]
    links = [o for o in decision.outputs if o.label == "command.link"]
    assert [(o.topic, o.key) for o in links] == [
        (TOPICS.network_linkage, "k1"),
        (TOPICS.network_linkage, "k2"),
    ]
    assert LINKAGE_COMMAND.validate_json(links[0].value) == LinkPatient(
        command_id=f"link:{PATIENT}:{eid(1)}", patient=PATIENT
    )


def test_a_patient_the_network_does_not_keep_links_nothing() -> None:
    decision = patients.decide(None, submitted(screening(answers=NO_NEED), ["k1"]), topics=TOPICS)
    assert decision.delete
    assert [o for o in decision.outputs if o.topic == TOPICS.network_linkage] == []


# ------------------------------------------------------------------ the patient owner's alerts
def followed() -> patients.PatientRecord:
    decision = patients.decide(None, submitted(screening(answers=FOOD_ONLY), ["k1"]), topics=TOPICS)
    assert decision.record is not None
    return decision.record


def patient_encounter() -> PatientEncounter:
    return PatientEncounter(command_id=f"encounter:{eid(500)}", encounter=encounter())


def test_the_clinic_hears_the_whole_encounter_and_each_open_referral_is_sent_an_alert() -> None:
    record = followed()
    now = T0 + timedelta(seconds=1)
    decision = patients.decide(record, patient_encounter(), topics=TOPICS, key=PATIENT, now=now)
    clinic_alert, clinic_record, to_referral = decision.outputs
    assert (clinic_alert.topic, clinic_alert.key) == (TOPICS.clinic_updates(CLINIC), PATIENT_ID)
    alert = alerted(clinic_alert)
    assert (alert.patient_id, alert.facility_id, alert.referral_id) == (PATIENT_ID, HOSPITAL, None)
    assert alert.encounter_at == encounter().encounter_at
    assert alert.encounter_on == encounter().encounter_at.date()
    assert alert.reasons == [ASTHMA]
    assert alert.occurred_at == now
    assert routed(clinic_record).outcome == "alerted"
    assert clinic_record.label == "encounter.routed:alerted:clinic"
    network_id = network_referral_id(CLINIC, "scr-1.food-insecurity")
    assert (to_referral.topic, to_referral.key) == (TOPICS.network_referrals, network_id)
    command = REFERRAL_COMMAND.validate_json(to_referral.value)
    assert isinstance(command, AlertReferral) and command.referral_id == network_id

    # the same encounter again: nothing more
    assert decision.record is not None
    again = patients.decide(
        decision.record, patient_encounter(), topics=TOPICS, key=PATIENT, now=now
    )
    assert again.outputs == [] and again.record is None


def test_an_encounter_for_a_patient_that_left_the_table_is_no_match() -> None:
    decision = patients.decide(None, patient_encounter(), topics=TOPICS, key=PATIENT, now=T0)
    [out] = decision.outputs
    assert routed(out).outcome == "no-match"
    assert decision.delete


# ------------------------------------------------------------------ the referral owner
def accepted(**consent_fields: Any) -> Any:
    record = opened(ctx()) if not consent_fields else _opened_with(consent_fields)
    return step(record, org_says(ES_ORG, "accepted"))


def _opened_with(consent_fields: dict[str, Any]) -> Any:
    decision = decide(
        None, open_command(consent={**consent(), **consent_fields}), ctx(), partition=3
    )
    assert decision.record is not None
    return decision.record


def alert_command() -> AlertReferral:
    return AlertReferral(
        command_id=f"encounter:{eid(500)}:{NET}", referral_id=NET, encounter=encounter()
    )


def test_an_organization_without_consent_for_alerts_hears_nothing_and_it_is_recorded() -> None:
    decision = decide(accepted(), alert_command(), ctx(timedelta(minutes=5)))
    [out] = decision.outputs
    record = routed(out)
    assert (record.outcome, record.recipient_kind, record.recipient_id, record.referral_id) == (
        "no-consent",
        "organization",
        ES_ORG,
        NET,
    )
    assert decision.record is not None
    assert decision.record.alerts == [alert_command().command_id]


def test_encounter_consent_tells_the_kind_and_day_only_and_with_reason_adds_the_codes() -> None:
    decision = decide(accepted(encounter_alerts="encounter"), alert_command(), ctx())
    to_org, record = decision.outputs
    assert (to_org.topic, to_org.key) == (TOPICS.org_referrals(ES_ORG), NET)
    alert = alerted(to_org)
    assert (alert.referral_id, alert.patient_id, alert.facility_id, alert.encounter_at) == (
        NET,
        None,
        None,
        None,
    )
    assert alert.reasons == []
    assert alert.encounter_on == encounter().encounter_at.date()
    assert routed(record).outcome == "alerted"
    assert record.label == "encounter.routed:alerted:organization"

    with_reason = decide(accepted(encounter_alerts="with-reason"), alert_command(), ctx())
    assert alerted(with_reason.outputs[0]).reasons == [ASTHMA]


def test_an_alert_is_applied_once_and_changes_nothing_else_of_the_referral() -> None:
    before = accepted(encounter_alerts="encounter")
    first = decide(before, alert_command(), ctx())
    assert first.record is not None
    assert first.record.model_dump(exclude={"alerts"}) == before.model_dump(exclude={"alerts"})
    again = decide(first.record, alert_command(), ctx())
    assert again.outputs == [] and again.record is None


def test_consent_that_no_longer_covers_the_category_keeps_the_alert_back() -> None:
    expired = accepted(encounter_alerts="with-reason", expires_at=(T0 + timedelta(hours=1)))
    decision = decide(expired, alert_command(), ctx(timedelta(hours=2)))
    assert [routed(o).outcome for o in decision.outputs] == ["no-consent"]


@pytest.mark.parametrize("held", [False, True])
def test_a_referral_nobody_works_on_hears_nothing(held: bool) -> None:
    offered = opened(ctx())  # offered, not yet accepted
    record = offered if held else step(offered, org_says(ES_ORG, "rejected", reason="no-capacity"))
    decision = decide(record, alert_command(), ctx())
    assert decision.outputs == [] and decision.record is None
    assert decide(None, alert_command(), ctx()).outputs == []  # a referral gone


def test_a_patients_many_encounters_never_push_a_partys_command_ids_out() -> None:
    record = accepted(encounter_alerts="encounter")
    seen = list(record.seen)
    for n in range(40):
        command = AlertReferral(
            command_id=f"encounter:{eid(600 + n)}:{NET}",
            referral_id=NET,
            encounter=encounter(600 + n),
        )
        decision = decide(record, command, ctx())
        assert decision.record is not None
        record = decision.record
    assert record.seen == seen
    assert len(record.alerts) == 32 and record.alerts[-1] == f"encounter:{eid(639)}:{NET}"


def test_a_clinicians_referral_links_its_patient_too() -> None:
    from tests.streams.fixtures import requested

    decision = patients.decide(None, submitted(requested(), ["k9"]), topics=TOPICS)
    assert [(o.key, o.label) for o in decision.outputs if o.topic == TOPICS.network_linkage] == [
        ("k9", "command.link")
    ]
