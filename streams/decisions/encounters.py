"""Encounter alerts: who hears of a patient's hospital encounter, decided without Kafka.

The path of an encounter (see docs/contract.md, "Encounters and alerts"):

1. the ingress turns a facility's ``encounter.notified`` into an :class:`Encounter`
   (no name, phone, birth date, address or facility patient id) and the patient's
   linkage keys (:func:`find_command`), and sends it to the owner of the first key
   on the linkage topic;
2. each key's owner (:func:`decide_linkage`) adds the clinic patients linked to
   its key and passes the encounter to the next key's owner; the last one fans it
   out to each matched patient's owner, or records one ``no-match``;
3. the patient's owner (:func:`patient_alerts`) tells the clinic (the whole event)
   and sends an alert command to each referral the patient has open;
4. the referral's owner (:func:`organization_alert`) tells the organization that
   holds the referral (accepted or in progress) as far as the patient's consent
   allows, or records ``no-consent``.

Links are made by the patient's owner when a clinic's screening or referral
request carries demographics enough for a key (:func:`relink`), and undone when
the patient leaves its table: a clinic hears of the encounters of the patients
the network keeps for it (a referral open, or closed within the retention).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.codes import Category, EncounterAlerts, TaskStatus
from schemas.events import (
    Consent,
    EncounterAlerted,
    EncounterNotified,
    EncounterPatient,
    EncounterRouted,
    Patient,
)
from schemas.events.encounters import RouteOutcome
from schemas.topics import Topics
from streams.decisions.commands import (
    AlertReferral,
    Encounter,
    FindPatients,
    LinkageCommand,
    LinkPatient,
    PatientEncounter,
    UnlinkPatient,
    derived_id,
    network_referral_id,
)
from streams.decisions.linkage import MAX_KEYS, RULES, STRICT_RULES, Rule, linkage_keys
from streams.decisions.outputs import Outgoing

#: Patients one linkage key may name: the same person at a few clinics. More is
#: refused (and counted): nobody can grow a key's row without bound.
PATIENTS_PER_KEY: Final = 16
#: Linkage keys a patient keeps: every key of two sets of demographics (a new phone
#: or address adds keys; the oldest go).
KEYS_PER_PATIENT: Final = 2 * MAX_KEYS
#: Patients one encounter may reach.
MAX_MATCHES: Final = 32
#: Referral statuses in which the organization holding a referral hears of encounters.
ALERTED_STATUSES: Final = frozenset({TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS})


# ------------------------------------------------------------------ the ingress
def patient_keys(
    secret: bytes | None, patient: Patient | EncounterPatient, rules: tuple[Rule, ...] = RULES
) -> list[str]:
    """A clinic's or a facility's patient's linkage keys (none without a secret, or
    when too little is known of the patient to link safely); ``rules``: only those."""
    if secret is None:
        return []
    return list(
        linkage_keys(
            secret=secret,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            postal_code=patient.postal_code,
            phone=patient.phone,
            rules=rules,
        )
    )


def strict_keys(secret: bytes | None, patient: EncounterPatient) -> list[str]:
    """The facility's patient's keys of the strict rules: a patient matched on one of
    them is preferred to one matched only on a fuzzy key (a twin, a sound-alike)."""
    return patient_keys(secret, patient, STRICT_RULES)


def encounter_of(event: EncounterNotified, facility_id: str, received_at: datetime) -> Encounter:
    """What the network keeps of a facility's encounter: no patient data."""
    return Encounter(
        encounter_event_id=event.event_id,
        facility_id=facility_id,
        event=event.event,
        encounter_class=event.encounter_class,
        encounter_at=event.encounter_at,
        reasons=list(event.reasons),
        received_at=received_at,
    )


def find_command(
    encounter: Encounter, keys: Sequence[str], topics: Topics, strict: Sequence[str] = ()
) -> Outgoing:
    """The encounter to the owner of its first linkage key; without keys (too little
    known of the patient to link), its ``no-match`` record at once."""
    if not keys:
        return routed(encounter, "no-match", at=encounter.received_at, topics=topics)
    unique = list(dict.fromkeys(keys))
    find = FindPatients(
        command_id=_find_id(encounter.encounter_event_id, 0),
        keys=unique,
        strict=[k for k in dict.fromkeys(strict) if k in unique],
        encounter=encounter,
    )
    return Outgoing.command(topics.network_linkage, unique[0], find)


def _find_id(encounter_event_id: UUID, index: int) -> str:
    return f"find:{encounter_event_id}:{index}"


# ------------------------------------------------------------------ the linkage owner
class LinkageRecord(BaseModel):
    """A linkage key's row: the clinic patients (``clinic_id:patient_id``) it names."""

    model_config = ConfigDict(extra="ignore")

    patients: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class LinkageDecision:
    """``record`` None: nothing to write; ``delete``: the row leaves the table;
    ``refused``: a link over :data:`PATIENTS_PER_KEY` was not made."""

    record: LinkageRecord | None
    outputs: list[Outgoing] = field(default_factory=list)
    delete: bool = False
    refused: bool = False


def decide_linkage(
    record: LinkageRecord | None, command: LinkageCommand, *, key: str, topics: Topics
) -> LinkageDecision:
    """Apply one command to linkage key ``key``'s row.

    Links and unlinks are idempotent as they are (a set); an encounter changes no
    row, and what it sends derives from the command and the row, with ids from the
    encounter's event id, so the patients' owners recognise a repeat.
    """
    if isinstance(command, LinkPatient):
        current = record or LinkageRecord()
        if command.patient in current.patients:
            return LinkageDecision(None)
        if len(current.patients) >= PATIENTS_PER_KEY:
            return LinkageDecision(None, refused=True)
        return LinkageDecision(LinkageRecord(patients=[*current.patients, command.patient]))
    if isinstance(command, UnlinkPatient):
        if record is None or command.patient not in record.patients:
            return LinkageDecision(None)
        kept = [p for p in record.patients if p != command.patient]
        return LinkageDecision(LinkageRecord(patients=kept), delete=not kept)
    return LinkageDecision(None, _find(record, command, key, topics))


def _find(
    record: LinkageRecord | None, command: FindPatients, key: str, topics: Topics
) -> list[Outgoing]:
    matched, matched_strict = list(command.matched), list(command.matched_strict)
    if record is not None and key in command.keys:
        matched = list(dict.fromkeys([*matched, *record.patients]))[:MAX_MATCHES]
        if key in command.strict:
            found = [*matched_strict, *record.patients]
            matched_strict = list(dict.fromkeys(found))[:MAX_MATCHES]
    encounter = command.encounter
    following = command.index + 1
    if following < len(command.keys):
        onward = FindPatients(
            command_id=_find_id(encounter.encounter_event_id, following),
            keys=command.keys,
            strict=command.strict,
            index=following,
            matched=matched,
            matched_strict=matched_strict,
            encounter=encounter,
        )
        return [Outgoing.command(topics.network_linkage, command.keys[following], onward)]
    if not matched:
        return [routed(encounter, "no-match", at=encounter.received_at, topics=topics)]
    # patients found on a strict key, when there are any: a twin or a sound-alike
    # found only on a fuzzy key is not told of another person's encounter
    if matched_strict:
        matched = matched_strict
    return [
        Outgoing.command(
            topics.network_patients,
            patient,
            PatientEncounter(
                command_id=f"encounter:{encounter.encounter_event_id}", encounter=encounter
            ),
        )
        for patient in matched
    ]


# ------------------------------------------------------------------ the patient owner
def relink(
    patient: str,
    linked: Sequence[str],
    offered: Sequence[str],
    *,
    leaving: bool,
    cause: str,
    topics: Topics,
) -> tuple[list[str], list[Outgoing]]:
    """The patient's keys after a submission offered ``offered`` (``linked``: the keys
    recorded so far), and the link and unlink commands that make the linkage table
    agree (their ids name ``cause``, the command that made them). A patient
    ``leaving`` its table unlinks every key it had."""
    if leaving:
        return [], [_unlink(patient, k, cause, topics) for k in linked]
    added = [k for k in dict.fromkeys(offered) if k not in linked]
    keys = [*linked, *added]
    dropped = keys[: max(0, len(keys) - KEYS_PER_PATIENT)]
    kept = keys[len(dropped) :]
    outputs = [_unlink(patient, k, cause, topics) for k in dropped]
    link = LinkPatient(command_id=f"link:{patient}:{cause}", patient=patient)
    outputs += [Outgoing.command(topics.network_linkage, k, link) for k in added if k in kept]
    return kept, outputs


def _unlink(patient: str, key: str, cause: str, topics: Topics) -> Outgoing:
    unlink = UnlinkPatient(command_id=f"unlink:{patient}:{cause}", patient=patient)
    return Outgoing.command(topics.network_linkage, key, unlink)


def patient_alerts(
    patient: str,
    open_referrals: Iterable[str],
    command: PatientEncounter,
    *,
    known: bool,
    now: datetime,
    topics: Topics,
    network_ids: Mapping[str, str] | None = None,
) -> list[Outgoing]:
    """What an encounter that matched ``patient`` (``clinic_id:patient_id``) sends:
    the clinic's alert and its record, and an alert command to each of the patient's
    open referrals (``open_referrals``: the clinic's referral ids; ``network_ids``:
    the network's id of those whose id is not the plain one). A patient the
    network no longer keeps (``known`` false) is a ``no-match``."""
    encounter = command.encounter
    if not known:
        return [routed(encounter, "no-match", at=now, topics=topics)]
    clinic_id, _, patient_id = patient.partition(":")
    alert = EncounterAlerted(
        event_id=derived_id(encounter.encounter_event_id, "alerted", patient),
        occurred_at=now,
        patient_id=patient_id,
        facility_id=encounter.facility_id,
        event=encounter.event,
        encounter_class=encounter.encounter_class,
        encounter_on=encounter.encounter_at.date(),
        encounter_at=encounter.encounter_at,
        reasons=encounter.reasons,
        encounter_event_id=encounter.encounter_event_id,
    )
    outputs = [
        Outgoing.event(topics.clinic_updates(clinic_id), patient_id, alert),
        routed(encounter, "alerted", at=now, topics=topics, kind="clinic", recipient=clinic_id),
    ]
    for referral_id in open_referrals:
        placed = (network_ids or {}).get(referral_id)
        network_id = placed or network_referral_id(clinic_id, referral_id)
        alert_command = AlertReferral(
            command_id=f"encounter:{encounter.encounter_event_id}:{network_id}",
            referral_id=network_id,
            encounter=encounter,
        )
        outputs.append(Outgoing.command(topics.network_referrals, network_id, alert_command))
    return outputs


# ------------------------------------------------------------------ the referral owner
def organization_alert(
    *,
    referral_id: str,
    org_id: str | None,
    status: TaskStatus,
    category: Category,
    consent: Consent,
    command: AlertReferral,
    now: datetime,
    topics: Topics,
) -> list[Outgoing] | None:
    """What the organization holding a referral hears of an encounter, and the record
    of it; None when no organization works on the referral (nothing to tell).

    The patient's consent decides, at the network's time: ``none`` (or a consent
    that no longer covers the referral's category) keeps the organization from
    hearing anything (``no-consent``); ``encounter`` tells it the kind of encounter
    and its day; ``with-reason`` adds the reason codes. Never the patient, the
    facility or the encounter's time of day.
    """
    if org_id is None or status not in ALERTED_STATUSES:
        return None
    encounter = command.encounter
    level = consent.alerts_organization(category, now)
    if level is EncounterAlerts.NONE:
        return [
            routed(
                encounter,
                "no-consent",
                at=now,
                topics=topics,
                kind="organization",
                recipient=org_id,
                referral_id=referral_id,
            )
        ]
    alert = EncounterAlerted(
        event_id=derived_id(encounter.encounter_event_id, "alerted", referral_id),
        occurred_at=now,
        referral_id=referral_id,
        event=encounter.event,
        encounter_class=encounter.encounter_class,
        encounter_on=encounter.encounter_at.date(),
        reasons=encounter.reasons if level is EncounterAlerts.WITH_REASON else [],
        encounter_event_id=encounter.encounter_event_id,
    )
    return [
        Outgoing.event(topics.org_referrals(org_id), referral_id, alert),
        routed(
            encounter,
            "alerted",
            at=now,
            topics=topics,
            kind="organization",
            recipient=org_id,
            referral_id=referral_id,
        ),
    ]


# ------------------------------------------------------------------ the record
def routed(
    encounter: Encounter,
    outcome: RouteOutcome,
    *,
    at: datetime,
    topics: Topics,
    kind: str | None = None,
    recipient: str | None = None,
    referral_id: str | None = None,
) -> Outgoing:
    """The event log's ``encounter.routed`` (no patient data), keyed by the encounter's
    event id; its label (``encounter.routed:{outcome}:{kind}``) counts it in the metrics."""
    event = EncounterRouted.model_validate(
        {
            "event_id": derived_id(
                encounter.encounter_event_id, "routed", outcome, recipient, referral_id
            ),
            "occurred_at": at,
            "encounter_event_id": encounter.encounter_event_id,
            "facility_id": encounter.facility_id,
            "event": encounter.event,
            "encounter_class": encounter.encounter_class,
            "encounter_at": encounter.encounter_at,
            "outcome": outcome,
            "recipient_kind": kind,
            "recipient_id": recipient,
            "referral_id": referral_id,
        }
    )
    out = Outgoing.event(topics.referral_events, str(encounter.encounter_event_id), event)
    return Outgoing(out.topic, out.key, out.value, f"{out.label}:{outcome}:{kind or 'none'}")


__all__ = [
    "ALERTED_STATUSES",
    "KEYS_PER_PATIENT",
    "MAX_MATCHES",
    "PATIENTS_PER_KEY",
    "LinkageDecision",
    "LinkageRecord",
    "decide_linkage",
    "encounter_of",
    "find_command",
    "organization_alert",
    "patient_alerts",
    "patient_keys",
    "relink",
    "routed",
]
