"""The patient owner: scores screenings and opens at most one referral per need.

State per patient (key ``clinic_id:patient_id``): which categories have an open
referral, and which referrals belong to the patient. Pure: ``decide`` returns
the new state and the messages to send; the Faust agent only applies them.

What a clinic sees, per derived or requested need:

* consent covers it and no referral is open for that category: a referral opens
  (``requested`` / ``offered``, or ``failed`` / ``unmatched``);
* consent does not cover it: one ``referral.updated`` with status ``failed``,
  business_status ``consent-required``, reason ``consent-not-granted``; nothing
  reaches any organization;
* a referral for that category is already open: one ``referral.updated`` for the
  new referral id with status ``cancelled``, business_status ``duplicate``,
  reason ``duplicate-open-referral`` and ``duplicate_of`` naming the open
  referral; nothing else happens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from schemas.codes import (
    BusinessStatus,
    Category,
    DeadLetterKind,
    Instrument,
    Party,
    ReasonCode,
    TaskStatus,
)
from schemas.events import (
    Answer,
    ConsentUpdated,
    Need,
    ProblemFound,
    ReferralCancelled,
    ReferralRequested,
    ScoringProblem,
    ScreeningAnswered,
    ScreeningReferral,
    ScreeningScored,
    ScreeningSubmitted,
    to_bytes,
)
from schemas.instruments import PRAPARE_UNSCORED, QUESTIONS
from schemas.topics import Topics
from streams.decisions.commands import (
    CancelReferral,
    ForgetReferral,
    OpenReferral,
    PatientCommand,
    PatientEncounter,
    Placement,
    ReferralClosed,
    ReferralRequest,
    SubmissionReceived,
    UpdateConsent,
    derived_id,
    fit_id,
    network_referral_id,
    placed_referral_id,
)
from streams.decisions.encounters import patient_alerts, relink
from streams.decisions.outputs import Outgoing, refused
from streams.decisions.patient_record import REFERRALS_LIMIT, SEEN_LIMIT, PatientRecord
from streams.decisions.scoring import score
from streams.decisions.updates import StateChange, report


@dataclass(frozen=True)
class PatientDecision:
    """``record`` None: nothing to write; ``delete``: the record leaves the table."""

    record: PatientRecord | None
    outputs: list[Outgoing]
    delete: bool = False


def network_time(command: SubmissionReceived) -> datetime:
    """When the network took the clinic's submission: what the network says of it is
    dated so (the clinic's own ``occurred_at`` only where no receipt time was kept)."""
    return command.received_at or command.event.occurred_at


def screening_referral_id(screening_id: str, category: Category) -> str:
    """The id of the referral a screening opens for one need (stable on replay)."""
    return fit_id(f"{screening_id}.{category.value}")


def decide(
    record: PatientRecord | None,
    command: PatientCommand,
    *,
    topics: Topics,
    key: str | None = None,
    now: datetime | None = None,
    placement: Placement | None = None,
) -> PatientDecision:
    """Apply one command to patient ``key``'s record (``clinic_id:patient_id``; a
    submission's own when None). ``now`` dates encounter alerts (the network's clock).
    ``placement``: the record's partition; a screening's referrals get network ids
    in it (:func:`streams.decisions.commands.placed_referral_id`)."""
    known = record is not None
    record = record.model_copy(deep=True) if record is not None else PatientRecord()
    if command.command_id in record.seen:
        return PatientDecision(None, [])
    outputs: list[Outgoing] = []
    if isinstance(command, PatientEncounter):
        if key is None or now is None:
            raise ValueError("an encounter needs the patient's key and the network's time")
        referrals = record.open.values()
        outputs = patient_alerts(
            key,
            referrals,
            command,
            known=known,
            now=now,
            topics=topics,
            network_ids=record.network_ids,
        )
        if not known:
            return PatientDecision(None, outputs, delete=True)
    elif isinstance(command, ReferralClosed):
        if record.open.get(command.category) == command.referral_id:
            del record.open[command.category]
    elif isinstance(command, ForgetReferral):
        if command.referral_id not in record.open.values():
            record.forget(command.referral_id)
    else:
        event = command.event
        if isinstance(event, ScreeningSubmitted):
            outputs = _screening(record, command, event, topics, placement)
        elif isinstance(event, ReferralRequested):
            outputs = _requested(record, command, event, topics)
        elif isinstance(event, ConsentUpdated):
            outputs = _consent(record, command, event, topics)
        else:
            outputs = _cancelled(record, command, event, topics)
    record.remember(command.command_id)
    # A patient with nothing open and no referral to remember leaves the table
    # (a tombstone on the changelog): state grows with open work, not history.
    # Its linkage keys go with it (an unlink to each); a submission adds its keys.
    patient = key or _submitter(command)
    if patient is not None:
        offered = command.linkage_keys if isinstance(command, SubmissionReceived) else []
        record.linkage_keys, linked = relink(
            patient,
            record.linkage_keys,
            offered,
            leaving=record.empty,
            cause=command.command_id,
            topics=topics,
        )
        outputs += linked
    return PatientDecision(record, outputs, delete=record.empty)


def _submitter(command: PatientCommand) -> str | None:
    """``clinic_id:patient_id`` of a screening's or a referral request's patient."""
    if isinstance(command, SubmissionReceived) and isinstance(
        command.event, ScreeningSubmitted | ReferralRequested
    ):
        return f"{command.clinic_id}:{command.event.patient.id}"
    return None


def _screening(
    record: PatientRecord,
    command: SubmissionReceived,
    event: ScreeningSubmitted,
    topics: Topics,
    placement: Placement | None = None,
) -> list[Outgoing]:
    result = score(event.instrument, event.answers)
    # Consent is judged when the network discloses, at its receipt of the screening;
    # the scored screening keeps the clinic's date of it (a clinical fact: quality
    # measures count their windows from it).
    at = network_time(command)
    covered = [n.category for n in result.needs if event.consent.covers(n.category, at)]
    scored = ScreeningScored(
        event_id=derived_id(event.event_id, "scored"),
        occurred_at=event.occurred_at,
        screening_id=event.screening_id,
        patient_id=event.patient.id,
        clinic_id=command.clinic_id,
        instrument=event.instrument,
        answers=scored_answers(event.instrument, event.answers),
        needs=[Need(category=n.category, rule=n.rule) for n in result.needs],
        problems=[
            ScoringProblem(kind=p.kind.value, question=_code(p.question), detail=p.detail[:500])
            for p in result.problems
        ],
        consented_categories=covered,
    )
    outputs = [Outgoing.event(topics.screenings, event.patient.id, scored)]
    referrals: list[ScreeningReferral] = []
    for need in result.needs:
        referral_id = screening_referral_id(event.screening_id, need.category)
        if referral_id in record.referrals:
            # The screening was submitted again (new event id): its referral for this
            # need exists already, open or closed. Opening it again would report it to
            # the clinic as a duplicate of itself, or mark the category open for a
            # referral the referral owner ignores (it exists) and never closes again.
            referrals.append(_referral(referral_id, need.category, "already-opened"))
            continue
        request = _request(
            command, event, referral_id, need.category, screening_id=event.screening_id
        )
        covered_now = request.consent.covers(need.category, at)
        outputs += _open(record, command, request, topics, placement)
        outcome = _outcome(record, request) if covered_now else "consent-required"
        referrals.append(_referral(referral_id, need.category, outcome))
    answered = ScreeningAnswered(
        event_id=derived_id(event.event_id, "answered"),
        occurred_at=at,
        screening_id=event.screening_id,
        patient_id=event.patient.id,
        instrument=event.instrument,
        cause_event_id=event.event_id,
        needs=scored.needs,
        referrals=referrals,
        problems=[ProblemFound(kind=p.kind, question=p.question) for p in scored.problems],
    )
    outputs.append(
        Outgoing.event(topics.clinic_updates(command.clinic_id), event.screening_id, answered)
    )
    return outputs


def _referral(referral_id: str, category: Category, outcome: str) -> ScreeningReferral:
    return ScreeningReferral.model_validate(
        {"referral_id": referral_id, "category": category, "outcome": outcome}
    )


def _outcome(record: PatientRecord, request: ReferralRequest) -> str:
    """What :func:`_open` did with a screening's referral its consent covers."""
    if record.open.get(request.category) == request.clinic_referral_id:
        return "opened"
    return "duplicate"


def scored_answers(instrument: Instrument, answers: Sequence[Answer]) -> list[Answer]:
    """The answers ``screening.scored`` may carry: coded answers to scored questions.

    Enough to score the screening again, nothing more: no free text, no
    address, income, insurance or other demographic items (PRAPARE asks them,
    refnet does not score them), no numbers but the scored ones (AHC's
    safety items).
    """
    scored = QUESTIONS[instrument] - PRAPARE_UNSCORED
    kept = []
    for a in answers:
        if a.question not in scored:
            continue
        value = a.answer
        coded = isinstance(value, str) and _LOINC_ANSWER.fullmatch(value) is not None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if coded or number:
            kept.append(Answer(question=a.question, answer=value))
    return kept


_LOINC_ANSWER = re.compile(r"LA[0-9]{1,8}-[0-9]")


def _consent(
    record: PatientRecord, command: SubmissionReceived, event: ConsentUpdated, topics: Topics
) -> list[Outgoing]:
    """Hand the new consent to every referral the patient has open at this clinic."""
    return [
        _to_referral(
            UpdateConsent,
            "consent:{event}:{referral}",
            command,
            record.network_id(command.clinic_id, referral_id),
            topics,
            consent=event.consent,
            at=network_time(command),
        )
        for referral_id in record.open.values()
    ]


def _requested(
    record: PatientRecord, command: SubmissionReceived, event: ReferralRequested, topics: Topics
) -> list[Outgoing]:
    if event.referral_id in record.referrals:
        return _dead_letter(
            command,
            DeadLetterKind.VALIDATION,
            "referral_id was already used for this patient",
            topics,
        )
    request = _request(
        command,
        event,
        event.referral_id,
        event.category,
        requested_service_id=event.service_id,
        priority=event.priority,
        note=event.note,
        codes=event.codes,
    )
    return _open(record, command, request, topics)


def _cancelled(
    record: PatientRecord, command: SubmissionReceived, event: ReferralCancelled, topics: Topics
) -> list[Outgoing]:
    if event.referral_id not in record.referrals:
        return _dead_letter(
            command,
            DeadLetterKind.UNKNOWN_REFERRAL,
            "no referral with this id belongs to this patient and clinic",
            topics,
        )
    cancel = _to_referral(
        CancelReferral,
        "cancel:{event}",
        command,
        record.network_id(command.clinic_id, event.referral_id),
        topics,
        reason=event.reason,
        source=command.source,
    )
    return [cancel]


def _to_referral(
    make: type[UpdateConsent | CancelReferral],
    command_id: str,
    command: SubmissionReceived,
    network_id: str,
    topics: Topics,
    **fields: Any,
) -> Outgoing:
    """A command about the referral ``network_id`` to the referral's owner.

    ``command_id`` is a format string of ``{event}`` (the clinic's event id) and
    ``{referral}`` (the network's referral id).
    """
    event_id = command.event.event_id
    sent = make(
        command_id=command_id.format(event=event_id, referral=network_id),
        referral_id=network_id,
        clinic_id=command.clinic_id,
        cause_event_id=event_id,
        **fields,
    )
    return Outgoing.command(topics.network_referrals, network_id, sent)


def _request(
    command: SubmissionReceived,
    event: ScreeningSubmitted | ReferralRequested,
    referral_id: str,
    category: Category,
    **details: Any,
) -> ReferralRequest:
    """The referral ``event`` asks for, as the clinic's ``referral_id``."""
    return ReferralRequest(
        referral_id=network_referral_id(command.clinic_id, referral_id),
        clinic_referral_id=referral_id,
        clinic_id=command.clinic_id,
        patient=event.patient,
        consent=event.consent,
        category=category,
        **details,
    )


#: How a referral the clinic alone hears of ends: consent does not cover its category.
_NOT_CONSENTED: Final = (
    TaskStatus.FAILED,
    BusinessStatus.CONSENT_REQUIRED,
    ReasonCode.CONSENT_NOT_GRANTED,
)
#: ...or the patient has a referral open in its category.
_DUPLICATE: Final = (
    TaskStatus.CANCELLED,
    BusinessStatus.DUPLICATE,
    ReasonCode.DUPLICATE_OPEN_REFERRAL,
)


def _open(
    record: PatientRecord,
    command: SubmissionReceived,
    request: ReferralRequest,
    topics: Topics,
    placement: Placement | None = None,
) -> list[Outgoing]:
    """Open ``request``'s referral; with a ``placement`` (a screening's referral), under
    a network id in the patient's partition."""
    at = network_time(command)
    if not request.consent.covers(request.category, at):
        return _clinic_only(command, request, _NOT_CONSENTED, None, topics)
    existing = record.open.get(request.category)
    if existing is not None:
        return _clinic_only(command, request, _DUPLICATE, existing, topics)
    clinic_referral_id = request.clinic_referral_id
    record.open[request.category] = clinic_referral_id
    record.referrals[clinic_referral_id] = request.category
    placed = placed_referral_id(command.clinic_id, clinic_referral_id, placement)
    if placed != request.referral_id:
        record.network_ids[clinic_referral_id] = placed
        request = request.model_copy(update={"referral_id": placed})
    open_command = OpenReferral(
        command_id=f"open:{request.referral_id}",
        **request.request_fields(),
        cause_event_id=command.event.event_id,
        requested_at=at,
    )
    return [Outgoing.command(topics.network_referrals, request.referral_id, open_command)]


def _clinic_only(
    command: SubmissionReceived,
    request: ReferralRequest,
    ending: tuple[TaskStatus, BusinessStatus, ReasonCode],
    duplicate_of: str | None,
    topics: Topics,
) -> list[Outgoing]:
    """A referral that never leaves the network: the clinic alone hears of it."""
    status, business, reason = ending
    network_id = request.referral_id
    reported = StateChange(
        request=request,
        ids=(
            derived_id(network_id, command.command_id, "updated"),
            derived_id(network_id, command.command_id, "state"),
        ),
        at=network_time(command),
        reported_at=command.event.occurred_at if command.received_at else None,
        actor=Party.NETWORK,
        from_status=TaskStatus.DRAFT,
        status=status,
        business=business,
        reason=reason.value,
        cause=command.event.event_id,
        duplicate_of=duplicate_of,
    )
    return report(reported, topics)


def _dead_letter(
    command: SubmissionReceived, kind: DeadLetterKind, message: str, topics: Topics
) -> list[Outgoing]:
    """The dead letter of a clinic's submission, and its answer to the clinic."""
    event = command.event
    return refused(
        topics,
        kind,
        message,
        command.source,
        to_bytes(event),
        occurred_at=network_time(command),
    )


def _code(question: str | None) -> str | None:
    if not question:
        return None
    cleaned = "".join(ch for ch in question if ch.isalnum() or ch in "._:/-")[:64]
    return cleaned if cleaned and cleaned[0].isalnum() else None


__all__: Sequence[str] = [
    "REFERRALS_LIMIT",
    "SEEN_LIMIT",
    "PatientDecision",
    "PatientRecord",
    "decide",
    "screening_referral_id",
]
