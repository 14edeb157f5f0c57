"""A screening's answers grouped by question, read once, with typed access for the rules.

Anything unusable becomes a :class:`ScoringProblem`; problem details never echo
free text (it may identify the patient): only code-like values are quoted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from schemas import instruments as loinc
from schemas.codes import Category, Instrument
from streams.decisions.scoring.results import (
    AnswerValue,
    Need,
    ProblemKind,
    ScoringProblem,
    ScoringResult,
)

_CODE_LIKE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,23}$")
_ABSENT: Final = object()


def quote(value: object) -> str:
    """A value fit for a problem detail: codes and numbers verbatim, never free text."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return repr(value) if math.isfinite(value) else "a non-finite number"
    if isinstance(value, str):
        return repr(value) if _CODE_LIKE.fullmatch(value) else f"free text ({len(value)} chars)"
    return f"a {type(value).__name__}"


def _fields(entry: object) -> tuple[object, object]:
    if isinstance(entry, tuple | list) and len(entry) == 2:
        return entry[0], entry[1]
    if isinstance(entry, Mapping):
        return entry.get("question", _ABSENT), entry.get("answer", _ABSENT)
    return getattr(entry, "question", _ABSENT), getattr(entry, "answer", _ABSENT)


@dataclass
class Sheet:
    """Answers grouped by question, in order, with the problems found so far."""

    instrument: Instrument
    answers: dict[str, list[AnswerValue]] = field(default_factory=dict)
    problems: list[ScoringProblem] = field(default_factory=list)
    needs: dict[Category, tuple[str, list[str]]] = field(default_factory=dict)

    def problem(self, kind: ProblemKind, question: str, detail: str) -> None:
        # A question that is not code-like may be free text: never repeat it.
        shown = question if _CODE_LIKE.fullmatch(question) else ""
        self.problems.append(ScoringProblem(kind, shown, detail))

    def read(self, entries: Iterable[object]) -> None:
        for index, entry in enumerate(entries):
            question, value = _fields(entry)
            if not isinstance(question, str) or not question.strip():
                self.problem(
                    ProblemKind.INVALID_VALUE,
                    "",
                    f"answer #{index}: question must be a LOINC code, got {quote(question)}",
                )
                continue
            question = question.strip()
            answer = self._value(question, value)
            if answer is None:
                continue
            values = self.answers.setdefault(question, [])
            if answer not in values:
                values.append(answer)
        known = loinc.QUESTIONS[self.instrument]
        for question in self.answers:
            if question not in known:
                self.problem(
                    ProblemKind.UNKNOWN_QUESTION,
                    question,
                    f"{self.instrument.value} does not ask {quote(question)}; ignored",
                )

    def _value(self, question: str, value: object) -> AnswerValue | None:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        what = "no answer" if value is _ABSENT else quote(value)
        self.problem(
            ProblemKind.INVALID_VALUE,
            question,
            f"an answer must be a code or a number, got {what}",
        )
        return None

    # ------------------------------------------------------------ typed access

    def coded(
        self, question: str, allowed: Collection[str], *, required: bool = True
    ) -> str | None:
        """The one answer code of a single-answer question, or None."""
        codes = self._codes(question, allowed, required=required)
        if codes is None or not codes:
            return None
        if len(codes) > 1:
            self.problem(
                ProblemKind.CONTRADICTORY,
                question,
                f"answered {len(codes)} different ways ({', '.join(codes)}); not used",
            )
            return None
        return codes[0]

    def selected(
        self, question: str, allowed: Collection[str], *, required: bool = True
    ) -> list[str] | None:
        """The answer codes of a multi-select question (None when unanswered)."""
        return self._codes(question, allowed, required=required)

    def _codes(
        self, question: str, allowed: Collection[str], *, required: bool
    ) -> list[str] | None:
        values = self.answers.get(question)
        if values is None:
            if required:
                self.problem(ProblemKind.MISSING, question, "not answered")
            return None
        codes: list[str] = []
        for value in values:
            if not isinstance(value, str):
                self.problem(
                    ProblemKind.INVALID_VALUE,
                    question,
                    f"expected an answer code, got the number {quote(value)}",
                )
            elif value not in allowed:
                self.problem(
                    ProblemKind.UNKNOWN_ANSWER,
                    question,
                    f"{quote(value)} is not an answer to this question",
                )
            else:
                codes.append(value)
        return codes

    def number(
        self,
        question: str,
        low: int,
        high: int,
        *,
        codes: Mapping[str, int] | None = None,
        required: bool = True,
    ) -> int | None:
        """An integer answer in ``low..high``, given as a number or as a scored code."""
        values = self.answers.get(question)
        if values is None:
            if required:
                self.problem(ProblemKind.MISSING, question, "not answered")
            return None
        scores: list[int] = []
        for value in values:
            found = self._score(question, value, low, high, codes or {})
            if found is not None and found not in scores:
                scores.append(found)
        if len(scores) > 1:
            self.problem(
                ProblemKind.CONTRADICTORY,
                question,
                f"answered {len(scores)} different ways; not used",
            )
            return None
        return scores[0] if scores else None

    def _score(
        self, question: str, value: AnswerValue, low: int, high: int, codes: Mapping[str, int]
    ) -> int | None:
        if isinstance(value, str):
            if value in codes:
                return codes[value]
            kind = ProblemKind.UNKNOWN_ANSWER if codes else ProblemKind.INVALID_VALUE
            self.problem(kind, question, f"{quote(value)} is not a score for this question")
            return None
        if low <= value <= high and (isinstance(value, int) or value.is_integer()):
            return int(value)
        self.problem(
            ProblemKind.INVALID_VALUE,
            question,
            f"{quote(value)} is not a whole number from {low} to {high}",
        )
        return None

    # ------------------------------------------------------------ needs

    def add(self, category: Category, rule: str, evidence: Iterable[str]) -> None:
        if category in self.needs:
            self.needs[category][1].extend(e for e in evidence if e not in self.needs[category][1])
        else:
            self.needs[category] = (rule, list(evidence))

    def result(self) -> ScoringResult:
        return ScoringResult(
            needs=tuple(
                Need(category, rule, tuple(evidence))
                for category, (rule, evidence) in self.needs.items()
            ),
            problems=tuple(self.problems),
        )


def cite(question: str, answer: AnswerValue) -> str:
    return f"{question}={answer}"


__all__ = ["Sheet", "cite", "quote"]
