"""The shapes most rules share: a single-answer item and a multi-select item."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from schemas.codes import Category
from streams.decisions.scoring.results import ProblemKind
from streams.decisions.scoring.sheet import Sheet, cite

Rule: TypeAlias = Callable[[Sheet], None]
#: answer code -> (category, rule id) it makes positive
Positives: TypeAlias = Mapping[str, tuple[Category, str]]


@dataclass(frozen=True, slots=True)
class Single:
    """A single-answer item: a positive answer adds its need."""

    question: str
    answers: Collection[str]
    positive: Positives
    required: bool = True

    def __call__(self, sheet: Sheet) -> None:
        answer = sheet.coded(self.question, self.answers, required=self.required)
        if answer is not None and answer in self.positive:
            sheet.add(*self.positive[answer], [cite(self.question, answer)])


@dataclass(frozen=True, slots=True)
class Multi:
    """A multi-select item: each positive answer adds its need; a negative answer
    (none / no / declined) next to a positive one is contradictory, positives count."""

    question: str
    positive: Positives
    negative: Collection[str]

    def __call__(self, sheet: Sheet) -> None:
        codes = sheet.selected(self.question, {*self.positive, *self.negative})
        hits = [code for code in codes or () if code in self.positive]
        if hits and any(code in self.negative for code in codes or ()):
            sheet.problem(
                ProblemKind.CONTRADICTORY,
                self.question,
                "a 'none'/'no'/declined answer together with selected answers; "
                "the selected answers count",
            )
        for code in hits:
            sheet.add(*self.positive[code], [cite(self.question, code)])


def each(answers: Iterable[str], category: Category, rule: str) -> Positives:
    return dict.fromkeys(answers, (category, rule))


__all__ = ["Multi", "Positives", "Rule", "Single", "each"]
