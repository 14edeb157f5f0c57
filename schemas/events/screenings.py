"""Screenings: what a clinic submits and what the network derives from it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from schemas.codes import Category, Instrument
from schemas.events.base import Event, WireModel
from schemas.events.fields import (
    MAX_ANSWERS,
    MAX_CATEGORIES,
    MAX_NEEDS,
    MAX_PROBLEMS,
    NULL_IS_EMPTY,
    AnswerValue,
    Code,
    Id,
    Note,
    PartyId,
    Reason,
    no_control_characters,
)
from schemas.events.patient import Consent, Patient


class Answer(WireModel):
    """One answer to one screening item; a multi-select item repeats its question."""

    question: Code = Field(description="LOINC question code, e.g. 88122-7")
    answer: AnswerValue = Field(description="LOINC answer code, free text, or a number")

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_text_has_no_control_characters(cls, value: object) -> object:
        return no_control_characters(value)


class Need(WireModel):
    """A need derived from a screening, and the rule that derived it."""

    category: Category
    rule: Reason = Field(description="identifier of the scoring rule that fired")


class ScoringProblem(WireModel):
    """Something wrong with a screening's answers (missing, contradictory, unknown)."""

    kind: Code
    question: Code | None = None
    detail: Note | None = None


class ScreeningSubmitted(Event):
    """A clinic submits a screening (clinic submissions topic, key patient id)."""

    event_type: Literal["screening.submitted"] = "screening.submitted"
    screening_id: Id
    patient: Patient
    consent: Consent
    instrument: Instrument
    answers: Annotated[list[Answer], Field(max_length=MAX_ANSWERS)]


class ScreeningScored(Event):
    """A normalized screening with its derived needs, for analytics.

    Carries ``patient_id`` only: no name, phone or birth date.
    """

    event_type: Literal["screening.scored"] = "screening.scored"
    screening_id: Id
    patient_id: Id
    clinic_id: PartyId
    instrument: Instrument
    answers: Annotated[list[Answer], Field(max_length=MAX_ANSWERS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )
    needs: Annotated[list[Need], Field(max_length=MAX_NEEDS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )
    problems: Annotated[list[ScoringProblem], Field(max_length=MAX_PROBLEMS), NULL_IS_EMPTY] = (
        Field(default_factory=list)
    )
    consented_categories: Annotated[
        list[Category], Field(max_length=MAX_CATEGORIES), NULL_IS_EMPTY
    ] = Field(
        default_factory=list,
        description="derived needs whose category the consent covered when scored",
    )


__all__ = ["Answer", "Need", "ScoringProblem", "ScreeningScored", "ScreeningSubmitted"]
