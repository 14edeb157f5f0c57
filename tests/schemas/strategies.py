"""Hypothesis strategies for every event of the wire contract."""

from __future__ import annotations

import base64
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from schemas.codes import (
    ICD10CM_SYSTEM,
    SNOMED_SYSTEM,
    BusinessStatus,
    Category,
    DeadLetterKind,
    EncounterAlerts,
    EncounterClass,
    EncounterEvent,
    Instrument,
    OrgStatus,
    Party,
    Priority,
    ServiceStatus,
    TaskStatus,
)
from schemas.events import (
    EVENT_TYPES,
    MAX_RESPONSE_SLA,
    STATUSES_NEEDING_REASON,
    Answer,
    Capacity,
    Consent,
    ConsentUpdated,
    DeadLetter,
    DeadLetterError,
    DeadLetterSource,
    EncounterAlerted,
    EncounterNotified,
    EncounterPatient,
    EncounterReason,
    EncounterRouted,
    Event,
    Location,
    MessageRefused,
    Need,
    OfferedPatient,
    OfferState,
    Patient,
    ProblemFound,
    ReferralCancelled,
    ReferralOffered,
    ReferralRequested,
    ReferralStateChanged,
    ReferralStatusChanged,
    ReferralStatusRecorded,
    ReferralUpdated,
    ReferralWithdrawn,
    Refusal,
    ScoringProblem,
    ScreeningAnswered,
    ScreeningReferral,
    ScreeningScored,
    ScreeningSubmitted,
    ServiceCapacityChanged,
    ServiceUpserted,
)
from schemas.topics import TopicKind, Topics

#: Modest example counts: the machine is shared.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: The C0 control characters and DEL that text on the wire may not hold.
CONTROL_CHARACTERS = "".join(chr(c) for c in [*range(0x20), 0x7F] if chr(c) not in "\t\n\r")
#: Any character text on the wire may hold (tab, line feed, carriage return included).
text_characters = st.characters(codec="utf-8", exclude_characters=CONTROL_CHARACTERS)

ids = st.text(string.ascii_letters + string.digits + "-_.:/", min_size=1, max_size=40)
party_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{1,30}", fullmatch=True)
names = st.text(text_characters, min_size=1, max_size=60)
texts = st.text(text_characters, max_size=120)
reasons = st.sampled_from(["no-capacity", "not-eligible", "timeout", "other"]) | st.text(
    text_characters, min_size=1, max_size=80
)
phones = st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True)
languages = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", fullmatch=True)
postal_codes = st.from_regex(r"[0-9]{5}|[A-Z][0-9][A-Z] [0-9][A-Z][0-9]", fullmatch=True)
loinc_codes = st.from_regex(r"(LA)?[0-9]{1,6}-[0-9]", fullmatch=True)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)

#: Offsets in whole minutes, as RFC 3339 can write them.
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: UTC if minutes == 0 else timezone(timedelta(minutes=minutes))
)
#: Mostly recent times, and now and then any the wire accepts (1900 to 8999 in UTC;
#: a day of margin for the offset).
timestamps = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
) | st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(8999, 12, 30), timezones=offsets
)
durations = st.timedeltas(min_value=timedelta(microseconds=1), max_value=MAX_RESPONSE_SLA)


T = TypeVar("T")


def optional(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


patients = st.builds(
    Patient,
    id=ids,
    given_name=names,
    family_name=optional(names),
    phone=optional(phones),
    preferred_language=optional(languages),
    postal_code=optional(postal_codes),
    birth_date=optional(st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 1, 1))),
)
consents = st.builds(
    Consent,
    granted=st.booleans(),
    categories=optional(st.lists(st.sampled_from(Category), max_size=4)),
    expires_at=optional(timestamps),
    encounter_alerts=st.sampled_from(EncounterAlerts),
)
answers = st.builds(
    Answer,
    question=loinc_codes,
    answer=loinc_codes | st.integers() | finite_floats | st.text(text_characters, max_size=30),
)
offered_patients = st.builds(
    OfferedPatient,
    given_name=names,
    phone=optional(phones),
    preferred_language=optional(languages),
    postal_code=optional(postal_codes),
)
locations = st.builds(
    Location,
    lat=st.floats(min_value=-90, max_value=90),
    lon=st.floats(min_value=-180, max_value=180),
)
capacities = st.builds(
    Capacity,
    available=st.integers(min_value=0, max_value=10_000),
    unit=optional(st.sampled_from(["households per week", "beds", "rides per day"])),
    maximum=optional(st.integers(min_value=0, max_value=10_000)),
)

_common = {"event_id": st.uuids(), "occurred_at": timestamps}

screening_submitted = st.builds(
    ScreeningSubmitted,
    **_common,
    screening_id=ids,
    patient=patients,
    consent=consents,
    instrument=st.sampled_from(Instrument),
    answers=st.lists(answers, max_size=8),
)
referral_requested = st.builds(
    ReferralRequested,
    **_common,
    referral_id=ids,
    patient=patients,
    consent=consents,
    category=st.sampled_from(Category),
    service_id=optional(ids),
    priority=st.sampled_from(Priority),
    note=optional(texts),
)
referral_cancelled = st.builds(
    ReferralCancelled, **_common, referral_id=ids, reason=optional(reasons)
)
consent_updated = st.builds(ConsentUpdated, **_common, patient_id=ids, consent=consents)
referral_offered = st.builds(
    ReferralOffered,
    **_common,
    referral_id=ids,
    service_id=ids,
    category=st.sampled_from(Category),
    priority=st.sampled_from(Priority),
    respond_by=timestamps,
    patient=offered_patients,
    note=optional(texts),
)
referral_withdrawn = st.builds(ReferralWithdrawn, **_common, referral_id=ids, reason=reasons)


@st.composite
def referral_status_changed(draw: st.DrawFn) -> ReferralStatusChanged:
    status = draw(st.sampled_from(OrgStatus))
    needs_reason = status in STATUSES_NEEDING_REASON
    return ReferralStatusChanged(
        event_id=draw(st.uuids()),
        occurred_at=draw(timestamps),
        referral_id=draw(ids),
        status=status,
        reason=draw(reasons if needs_reason else optional(reasons)),
        outcome=draw(optional(reasons)),
        note=draw(optional(texts)),
    )


service_capacity_changed = st.builds(
    ServiceCapacityChanged,
    **_common,
    service_id=ids,
    available=st.integers(min_value=0, max_value=10_000),
)
referral_updated = st.builds(
    ReferralUpdated,
    **_common,
    referral_id=ids,
    patient_id=ids,
    category=st.sampled_from(Category),
    screening_id=optional(ids),
    status=st.sampled_from(TaskStatus),
    business_status=optional(st.sampled_from(BusinessStatus)),
    org_id=optional(party_ids),
    service_id=optional(ids),
    reason=optional(reasons),
    outcome=optional(reasons),
    attempt=st.integers(min_value=0, max_value=20),
)


@st.composite
def service_upserted(draw: st.DrawFn) -> ServiceUpserted:
    min_age = draw(optional(st.integers(min_value=0, max_value=60)))
    max_age = draw(optional(st.integers(min_value=min_age or 0, max_value=120)))
    return ServiceUpserted(
        event_id=draw(st.uuids()),
        occurred_at=draw(timestamps),
        service_id=draw(ids),
        org_id=draw(party_ids),
        name=draw(names),
        status=draw(st.sampled_from(ServiceStatus)),
        categories=draw(st.lists(st.sampled_from(Category), min_size=1, max_size=4)),
        postal_codes=draw(st.lists(postal_codes, max_size=5)),
        location=draw(optional(locations)),
        radius_km=draw(optional(st.floats(min_value=0, max_value=500))),
        languages=draw(st.lists(languages, max_size=4)),
        min_age=min_age,
        max_age=max_age,
        capacity=draw(optional(capacities)),
        response_sla=draw(optional(durations)),
    )


screening_scored = st.builds(
    ScreeningScored,
    **_common,
    screening_id=ids,
    patient_id=ids,
    clinic_id=party_ids,
    instrument=st.sampled_from(Instrument),
    answers=st.lists(answers, max_size=6),
    needs=st.lists(
        st.builds(Need, category=st.sampled_from(Category), rule=loinc_codes), max_size=4
    ),
    problems=st.lists(
        st.builds(
            ScoringProblem,
            kind=st.sampled_from(["missing-answer", "contradictory-answers", "unknown-answer"]),
            question=optional(loinc_codes),
            detail=optional(texts),
        ),
        max_size=3,
    ),
    consented_categories=st.lists(st.sampled_from(Category), max_size=4),
)
referral_state_changed = st.builds(
    ReferralStateChanged,
    **_common,
    referral_id=ids,
    patient_id=ids,
    clinic_id=party_ids,
    category=st.sampled_from(Category),
    screening_id=optional(ids),
    from_status=optional(st.sampled_from(TaskStatus)),
    to_status=st.sampled_from(TaskStatus),
    business_status=optional(st.sampled_from(BusinessStatus)),
    org_id=optional(party_ids),
    service_id=optional(ids),
    reason=optional(reasons),
    outcome=optional(reasons),
    attempt=st.integers(min_value=0, max_value=20),
    actor=st.sampled_from(Party),
    cause_event_id=optional(st.uuids()),
)
dead_letters = st.builds(
    DeadLetter,
    **_common,
    source=st.builds(
        DeadLetterSource,
        topic=st.sampled_from(["sdoh.org.bronx-pantry.updates.v1", "sdoh.directory.v1"]),
        partition=st.integers(min_value=0, max_value=63),
        offset=st.integers(min_value=0, max_value=2**62),
        key=optional(st.text(max_size=40)),
    ),
    error=st.builds(
        DeadLetterError,
        kind=st.sampled_from(DeadLetterKind),
        message=st.text(text_characters, max_size=200),
    ),
    payload_base64=st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    payload_bytes=optional(st.integers(min_value=0, max_value=2**31)),
    payload_sha256=optional(st.binary(min_size=32, max_size=32).map(bytes.hex)),
)

message_refused = st.builds(
    MessageRefused,
    **_common,
    source=st.builds(
        DeadLetterSource,
        topic=st.sampled_from(["sdoh.org.bronx-pantry.updates.v1"]),
        partition=st.integers(min_value=0, max_value=63),
        offset=st.integers(min_value=0, max_value=2**62),
        key=optional(st.text(max_size=40)),
    ),
    refused_event_id=optional(st.uuids()),
    refused_event_type=optional(st.sampled_from(sorted(EVENT_TYPES))),
    screening_id=optional(ids),
    referral_id=optional(ids),
    error=st.builds(
        Refusal,
        kind=st.sampled_from(DeadLetterKind),
        rule=st.text(text_characters, max_size=200),
    ),
    referral_state=optional(
        st.builds(
            OfferState,
            offer=st.sampled_from(["withdrawn", "closed", "not-offered"]),
            attempt=optional(st.integers(min_value=1, max_value=20)),
            withdrawn_event_id=optional(st.uuids()),
            status=optional(st.sampled_from(TaskStatus)),
            at=optional(timestamps),
        )
    ),
)
screening_answered = st.builds(
    ScreeningAnswered,
    **_common,
    screening_id=ids,
    patient_id=ids,
    instrument=st.sampled_from(Instrument),
    cause_event_id=st.uuids(),
    needs=st.lists(
        st.builds(Need, category=st.sampled_from(Category), rule=loinc_codes), max_size=4
    ),
    referrals=st.lists(
        st.builds(
            ScreeningReferral,
            referral_id=ids,
            category=st.sampled_from(Category),
            outcome=st.sampled_from(["opened", "consent-required", "duplicate", "already-opened"]),
        ),
        max_size=4,
    ),
    problems=st.lists(
        st.builds(
            ProblemFound, kind=st.sampled_from(["unknown-answer"]), question=optional(loinc_codes)
        ),
        max_size=3,
    ),
)

referral_status_recorded = st.builds(
    ReferralStatusRecorded,
    **_common,
    referral_id=ids,
    status=st.sampled_from(TaskStatus),
    business_status=optional(st.sampled_from(BusinessStatus)),
    reason=optional(st.sampled_from(["no-capacity", "other"])),
    outcome=optional(st.sampled_from(["enrolled"])),
    attempt=optional(st.integers(min_value=1, max_value=20)),
    service_id=optional(ids),
    cause_event_id=st.uuids(),
)

encounter_reasons = st.builds(
    EncounterReason,
    system=st.sampled_from([ICD10CM_SYSTEM, SNOMED_SYSTEM]),
    code=st.from_regex(r"[A-Z0-9][A-Z0-9.]{1,7}", fullmatch=True),
)
encounter_notified = st.builds(
    EncounterNotified,
    **_common,
    encounter_id=ids,
    patient=st.builds(
        EncounterPatient,
        id=ids,
        given_name=names,
        family_name=names,
        birth_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 1, 1)),
        postal_code=optional(postal_codes),
        phone=optional(phones),
    ),
    event=st.sampled_from(EncounterEvent),
    encounter_class=st.sampled_from(EncounterClass),
    encounter_at=timestamps,
    reasons=st.lists(encounter_reasons, max_size=3),
)
encounter_alerted = st.builds(
    EncounterAlerted,
    **_common,
    patient_id=optional(ids),
    referral_id=optional(ids),
    facility_id=optional(party_ids),
    event=st.sampled_from(EncounterEvent),
    encounter_class=st.sampled_from(EncounterClass),
    encounter_on=st.dates(min_value=date(1900, 1, 2), max_value=date(8999, 1, 1)),
    encounter_at=optional(timestamps),
    reasons=st.lists(encounter_reasons, max_size=3),
    encounter_event_id=st.uuids(),
)
encounter_routed = st.builds(
    EncounterRouted,
    **_common,
    encounter_event_id=st.uuids(),
    facility_id=party_ids,
    event=st.sampled_from(EncounterEvent),
    encounter_class=st.sampled_from(EncounterClass),
    encounter_at=timestamps,
    outcome=st.sampled_from(["alerted", "no-match", "no-consent"]),
    recipient_kind=optional(st.sampled_from(["clinic", "organization"])),
    recipient_id=optional(party_ids),
    referral_id=optional(ids),
)

#: event_type -> strategy of that event.
EVENT_STRATEGIES: dict[str, st.SearchStrategy[Event]] = {
    "screening.submitted": screening_submitted,
    "referral.requested": referral_requested,
    "referral.cancelled": referral_cancelled,
    "consent.updated": consent_updated,
    "referral.offered": referral_offered,
    "referral.withdrawn": referral_withdrawn,
    "referral.status-changed": referral_status_changed(),
    "service.capacity-changed": service_capacity_changed,
    "referral.updated": referral_updated,
    "service.upserted": service_upserted(),
    "screening.scored": screening_scored,
    "referral.state-changed": referral_state_changed,
    "deadletter": dead_letters,
    "message.refused": message_refused,
    "screening.answered": screening_answered,
    "encounter.notified": encounter_notified,
    "encounter.alerted": encounter_alerted,
    "encounter.routed": encounter_routed,
    "referral.status-recorded": referral_status_recorded,
}
assert set(EVENT_STRATEGIES) == set(EVENT_TYPES)

any_event = st.one_of(*EVENT_STRATEGIES.values())

#: The kind of topic each event type travels on.
HOME_KIND: dict[str, TopicKind] = {
    "screening.submitted": TopicKind.CLINIC_SUBMISSIONS,
    "referral.requested": TopicKind.CLINIC_SUBMISSIONS,
    "referral.cancelled": TopicKind.CLINIC_SUBMISSIONS,
    "consent.updated": TopicKind.CLINIC_SUBMISSIONS,
    "referral.updated": TopicKind.CLINIC_UPDATES,
    "referral.offered": TopicKind.ORG_REFERRALS,
    "referral.withdrawn": TopicKind.ORG_REFERRALS,
    "referral.status-changed": TopicKind.ORG_UPDATES,
    "service.capacity-changed": TopicKind.ORG_UPDATES,
    "service.upserted": TopicKind.DIRECTORY,
    "screening.scored": TopicKind.SCREENINGS,
    "referral.state-changed": TopicKind.REFERRAL_EVENTS,
    "deadletter": TopicKind.DEADLETTER,
    "message.refused": TopicKind.ORG_REFERRALS,
    "screening.answered": TopicKind.CLINIC_UPDATES,
    "encounter.notified": TopicKind.FACILITY_SUBMISSIONS,
    "encounter.alerted": TopicKind.CLINIC_UPDATES,
    "encounter.routed": TopicKind.REFERRAL_EVENTS,
    "referral.status-recorded": TopicKind.ORG_REFERRALS,
}


def topic_of(kind: TopicKind, topics: Topics, party_id: str = "bronx-health") -> str:
    """A topic of ``kind``; per-party kinds speak for ``party_id``."""
    match kind:
        case TopicKind.CLINIC_SUBMISSIONS:
            return topics.clinic_submissions(party_id)
        case TopicKind.CLINIC_UPDATES:
            return topics.clinic_updates(party_id)
        case TopicKind.ORG_REFERRALS:
            return topics.org_referrals(party_id)
        case TopicKind.ORG_UPDATES:
            return topics.org_updates(party_id)
        case TopicKind.FACILITY_SUBMISSIONS:
            return topics.facility_submissions(party_id)
        case TopicKind.FACILITY_UPDATES:
            return topics.facility_updates(party_id)
        case TopicKind.DIRECTORY:
            return topics.directory
        case TopicKind.SCREENINGS:
            return topics.screenings
        case TopicKind.REFERRAL_EVENTS:
            return topics.referral_events
        case TopicKind.DEADLETTER:
            return topics.deadletter
        case _:
            raise ValueError(f"{kind} is not a topic of the wire contract")


#: The kinds of topic of the wire contract (TopicKind also lists internal ones).
CONTRACT_KINDS: list[TopicKind] = sorted(set(HOME_KIND.values()))
