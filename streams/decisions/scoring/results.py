"""What scoring reads and returns: answers in, needs and problems out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeAlias

from schemas.codes import Category

AnswerValue: TypeAlias = str | int | float


class AnswerLike(Protocol):
    """One answer of a screening (the event model's ``Answer`` fits)."""

    @property
    def question(self) -> str: ...

    @property
    def answer(self) -> AnswerValue: ...


AnswerPair: TypeAlias = tuple[str, AnswerValue]
AnswerInput: TypeAlias = AnswerLike | AnswerPair | Mapping[str, object]


class ProblemKind(StrEnum):
    MISSING = "missing"
    CONTRADICTORY = "contradictory"
    UNKNOWN_ANSWER = "unknown-answer"
    UNKNOWN_QUESTION = "unknown-question"
    INVALID_VALUE = "invalid-value"


@dataclass(frozen=True, slots=True)
class Need:
    """A positive screen for one category, with the rule and answers behind it."""

    category: Category
    rule: str
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScoringProblem:
    """Something in the answers the scorer could not use as given."""

    kind: ProblemKind
    question: str
    detail: str


@dataclass(frozen=True, slots=True)
class ScoringResult:
    needs: tuple[Need, ...] = ()
    problems: tuple[ScoringProblem, ...] = ()

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(need.category for need in self.needs)

    def need(self, category: Category) -> Need | None:
        return next((n for n in self.needs if n.category is category), None)

    def problems_of(self, kind: ProblemKind) -> tuple[ScoringProblem, ...]:
        return tuple(p for p in self.problems if p.kind is kind)


__all__ = [
    "AnswerInput",
    "AnswerLike",
    "AnswerPair",
    "AnswerValue",
    "Need",
    "ProblemKind",
    "ScoringProblem",
    "ScoringResult",
]
