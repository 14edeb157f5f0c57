"""Scoring a screening: LOINC answers in, social needs (Gravity categories) out.

Pure functions, no I/O. :func:`score` never raises: anything it cannot use
becomes a :class:`ScoringProblem` next to the needs it could derive, so that a
bad answer never stops the stream and the clinic learns what was wrong.

Answers are ``(question, answer)`` pairs as in CONTRACT.md: LOINC question and
answer codes, a multi-select item repeats its question, a numeric answer may be
a number. Accepted shapes: any object with ``question`` and ``answer``
attributes (the event model's ``Answer``), a ``(question, answer)`` tuple, or a
mapping with those two keys.

Rules (DOMAIN.md is the authority; rule ids are stable and travel with the need)
--------------------------------------------------------------------------------
Hunger Vital Sign (88121-9)
    ``hvs.either-item``: food-insecurity when 88122-7 or 88123-5 is Often true
    or Sometimes true. Both answered otherwise (Never true, don't know/refused)
    is negative. ``hvs.derived-at-risk``: when the items do not decide (missing,
    unusable), the derived item 88124-3 At risk decides; when the items decide
    and 88124-3 disagrees, the items win and a ``contradictory`` problem is
    reported.

AHC HRSN core (96777-8)
    * ``ahc.living-situation.worried``: 71802-3 LA31994-9 -> housing-instability;
      ``ahc.living-situation.no-steady-place``: LA31995-6 -> homelessness;
      LA31993-1 is negative. (The answers' meaning, not one IG example's labels.)
    * ``ahc.housing-problems.any``: 96778-6 (multi-select) any of pests, mold,
      lead, inadequate heat, oven/stove, smoke detectors, water leaks ->
      inadequate-housing. LA9-3 None alone is negative. None *together with* a
      problem is ``contradictory``; the need is still derived from the problems
      (a checked problem is a more specific statement than "none").
    * ``ahc.food.either-item``: the Hunger Vital Sign rule on 88122-7/88123-5.
    * ``ahc.transportation.yes``: 93030-5 LA33-6 -> transportation-insecurity.
    * ``ahc.utilities.yes-or-shut-off``: 96779-4 LA33-6 or LA32002-0 ->
      utility-insecurity.
    * Safety -> intimate-partner-violence. Items 95618-5, 95617-7, 95616-9,
      95615-1 score Never 1 .. Frequently 5; an item may also be given as the
      number 1..5. ``ahc.safety.sum>=11``: all four items answered and their sum
      is 11 or more. Decisions for the incomplete and inconsistent cases:

      - all four items and the total 95614-4 present but different: the items
        win (the total is only their sum), ``contradictory`` on 95614-4;
      - items incomplete, total present and consistent with the answered items:
        ``ahc.safety.total>=11`` decides (no ``missing`` problems: the total
        stands in for the items);
      - items incomplete, no usable total: ``missing`` for each absent item, and
        the need is derived only when it is certain whatever the absent items
        would be (answered sum + 1 per absent item >= 11, still rule
        ``ahc.safety.sum>=11``), else no need;
      - total out of 4..20 is ``invalid-value``; a total impossible given the
        answered items is ``contradictory`` and ignored.

PRAPARE (93025-5): refnet's rule (PRAPARE publishes none)
    * ``prapare.housing.no-housing``: 71802-3 LA30190-5 "I do not have housing"
      -> homelessness.
    * ``prapare.housing.worried``: 93033-9 LA33-6 Yes -> housing-instability
      (both housing needs may be derived: someone staying with others may also
      fear losing that place).
    * 93031-3 "unable to get when really needed" (multi-select):
      ``prapare.unable-to-get.food`` LA30125-1 -> food-insecurity;
      ``prapare.unable-to-get.utilities`` LA30124-4 -> utility-insecurity;
      ``prapare.unable-to-get.material`` clothing LA30126-9, child care
      LA30127-7, phone LA30129-3 or other LA46-8 -> material-hardship;
      ``prapare.unable-to-get.health-care`` medicine or any health care
      LA30128-5 -> medical-cost-burden. "I choose not to answer" together with
      items is ``contradictory``; the items still count.
    * ``prapare.transportation.yes``: 93030-5 (multi-select) LA30133-5 (medical)
      or LA30134-3 (non-medical), or a plain LA33-6 Yes ->
      transportation-insecurity; No together with a yes is ``contradictory``,
      the yes counts.
    * ``prapare.social-contact.less-than-weekly``: 93029-7 LA27722-0 ->
      social-connection.
    * ``prapare.stress.quite-a-bit-or-more``: 93038-8 LA13902-4 Quite a bit or
      LA13914-9 Very much -> stress ("Somewhat" is negative).
    * ``prapare.safety.not-safe``: 93026-3 LA32-8 No (does not feel safe where
      they live) -> intimate-partner-violence; ``prapare.safety.afraid-of-partner``:
      76501-6 LA33-6 Yes -> intimate-partner-violence.
    * ``prapare.incarceration.yes``: 93028-9 LA33-6 Yes -> incarceration-status.
    * Demographic and asset items (race, language, income, education,
      employment, insurance, ...) are known but not scored. The optional items
      (93026-3, 76501-6, 93028-9, 93027-1) are never reported ``missing``.

Everywhere
    * One :class:`Need` per category: ``rule`` is the first rule that fired,
      ``evidence`` every ``question=answer`` that supports the category.
    * Declined answers (don't know/refused, I choose not to answer, unsure,
      unable to respond) are answers: negative, not ``missing``.
    * A single-answer question answered twice with different values is
      ``contradictory`` and is not used (the network does not guess which one
      the patient meant; the clinic sees the problem). The same value repeated
      is harmless.
    * Unknown answer codes (``unknown-answer``), wrong types, blanks,
      out-of-range numbers (``invalid-value``) make the item unusable; an
      unusable item is not reported ``missing`` a second time.
    * Questions the instrument does not ask are ``unknown-question`` and ignored.
    * Problem details never echo free text (it may identify the patient): only
      code-like values are quoted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Final, Protocol, TypeAlias

from schemas import instruments as loinc
from schemas.codes import Category, Instrument

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


# --------------------------------------------------------------------- reading answers

_CODE_LIKE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,23}$")
_ABSENT: Final = object()


def _quote(value: object) -> str:
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
class _Sheet:
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
                    f"answer #{index}: question must be a LOINC code, got {_quote(question)}",
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
                    f"{self.instrument.value} does not ask {_quote(question)}; ignored",
                )

    def _value(self, question: str, value: object) -> AnswerValue | None:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        what = "no answer" if value is _ABSENT else _quote(value)
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
                    f"expected an answer code, got the number {_quote(value)}",
                )
            elif value not in allowed:
                self.problem(
                    ProblemKind.UNKNOWN_ANSWER,
                    question,
                    f"{_quote(value)} is not an answer to this question",
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
            self.problem(kind, question, f"{_quote(value)} is not a score for this question")
            return None
        if low <= value <= high and (isinstance(value, int) or value.is_integer()):
            return int(value)
        self.problem(
            ProblemKind.INVALID_VALUE,
            question,
            f"{_quote(value)} is not a whole number from {low} to {high}",
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


def _ev(question: str, answer: AnswerValue) -> str:
    return f"{question}={answer}"


# --------------------------------------------------------------------- rules

_Rule: TypeAlias = Callable[[_Sheet], None]
#: answer code -> (category, rule id) it makes positive
_Positives: TypeAlias = Mapping[str, tuple[Category, str]]


@dataclass(frozen=True, slots=True)
class _Single:
    """A single-answer item: a positive answer adds its need."""

    question: str
    answers: Collection[str]
    positive: _Positives
    required: bool = True

    def __call__(self, sheet: _Sheet) -> None:
        answer = sheet.coded(self.question, self.answers, required=self.required)
        if answer is not None and answer in self.positive:
            sheet.add(*self.positive[answer], [_ev(self.question, answer)])


@dataclass(frozen=True, slots=True)
class _Multi:
    """A multi-select item: each positive answer adds its need; a negative answer
    (none / no / declined) next to a positive one is contradictory, positives count."""

    question: str
    positive: _Positives
    negative: Collection[str]

    def __call__(self, sheet: _Sheet) -> None:
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
            sheet.add(*self.positive[code], [_ev(self.question, code)])


def _each(answers: Iterable[str], category: Category, rule: str) -> _Positives:
    return dict.fromkeys(answers, (category, rule))


def _food(rule_prefix: str, sheet: _Sheet) -> None:
    """The Hunger Vital Sign either-item rule (HVS itself and AHC's food domain)."""
    derived = sheet.coded(loinc.HVS_RISK, loinc.HVS_RISK_ANSWERS, required=False)
    items = [
        (question, sheet.coded(question, loinc.HVS_ITEM_ANSWERS, required=derived is None))
        for question in loinc.HVS_ITEMS
    ]
    positive = [_ev(q, a) for q, a in items if a in loinc.HVS_POSITIVE_ANSWERS]
    decided: bool | None
    if positive:
        decided = True
    elif all(a is not None for _, a in items):
        decided = False
    else:
        decided = None
    if decided is not None and derived is not None and (derived == loinc.HVS_AT_RISK) != decided:
        sheet.problem(
            ProblemKind.CONTRADICTORY,
            loinc.HVS_RISK,
            f"derived risk {derived} disagrees with the two items; the items decide",
        )
    if decided:
        sheet.add(Category.FOOD_INSECURITY, f"{rule_prefix}.either-item", positive)
    elif decided is None and derived == loinc.HVS_AT_RISK:
        sheet.add(
            Category.FOOD_INSECURITY,
            f"{rule_prefix}.derived-at-risk",
            [_ev(loinc.HVS_RISK, derived)],
        )


def _ahc_safety(sheet: _Sheet) -> None:
    items = loinc.AHC_SAFETY_ITEMS
    low, high = loinc.AHC_SAFETY_ITEM_MIN, loinc.AHC_SAFETY_ITEM_MAX
    threshold = loinc.AHC_SAFETY_THRESHOLD
    total = sheet.number(
        loinc.AHC_SAFETY_TOTAL, len(items) * low, len(items) * high, required=False
    )
    scores: dict[str, int] = {}
    for question in items:
        found = sheet.number(question, low, high, codes=loinc.AHC_SAFETY_SCORES, required=False)
        if found is not None:
            scores[question] = found
    evidence = [
        _ev(question, value)
        for question, found in scores.items()
        for value in sheet.answers[question]
        if loinc.AHC_SAFETY_SCORES.get(str(value), value) == found
    ]
    answered = sum(scores.values())
    absent = [question for question in items if question not in scores]
    if total is not None and not absent and total != answered:
        sheet.problem(
            ProblemKind.CONTRADICTORY,
            loinc.AHC_SAFETY_TOTAL,
            f"total {total} but the four items sum to {answered}; the items decide",
        )
    elif total is not None and absent:
        if answered + len(absent) * low <= total <= answered + len(absent) * high:
            # The total stands in for the incomplete items.
            if total >= threshold:
                sheet.add(
                    Category.INTIMATE_PARTNER_VIOLENCE,
                    "ahc.safety.total>=11",
                    [*evidence, _ev(loinc.AHC_SAFETY_TOTAL, total)],
                )
            return
        sheet.problem(
            ProblemKind.CONTRADICTORY,
            loinc.AHC_SAFETY_TOTAL,
            f"total {total} is impossible with the answered items; ignored",
        )
    for question in absent:
        if question not in sheet.answers:  # an unusable answer was reported already
            sheet.problem(ProblemKind.MISSING, question, "not answered")
    # Positive only when certain: every absent item counted at its lowest score.
    if answered + len(absent) * low >= threshold:
        sheet.add(
            Category.INTIMATE_PARTNER_VIOLENCE,
            "ahc.safety.sum>=11",
            [*evidence, f"sum={answered}"],
        )


_HOUSING_PROBLEMS: Final = _each(
    loinc.AHC_HOUSING_PROBLEM_ANSWERS, Category.INADEQUATE_HOUSING, "ahc.housing-problems.any"
)
_MATERIAL: Final = (Category.MATERIAL_HARDSHIP, "prapare.unable-to-get.material")
_DECLINE: Final = loinc.CHOOSE_NOT_TO_ANSWER
_IPV: Final = Category.INTIMATE_PARTNER_VIOLENCE

#: Each instrument's rules, in the order their needs are listed.
_RULES: Final[Mapping[Instrument, tuple[_Rule, ...]]] = {
    Instrument.HUNGER_VITAL_SIGN: (partial(_food, "hvs"),),
    Instrument.AHC_HRSN: (
        _Single(
            loinc.AHC_LIVING_SITUATION,
            loinc.AHC_LIVING_SITUATION_ANSWERS,
            {
                loinc.AHC_STEADY_WORRIED: (
                    Category.HOUSING_INSTABILITY,
                    "ahc.living-situation.worried",
                ),
                loinc.AHC_NO_STEADY_PLACE: (
                    Category.HOMELESSNESS,
                    "ahc.living-situation.no-steady-place",
                ),
            },
        ),
        _Multi(loinc.AHC_HOUSING_PROBLEMS, _HOUSING_PROBLEMS, {loinc.AHC_HOUSING_NONE}),
        partial(_food, "ahc.food"),
        _Single(
            loinc.AHC_TRANSPORTATION,
            loinc.AHC_TRANSPORTATION_ANSWERS,
            _each([loinc.YES], Category.TRANSPORTATION_INSECURITY, "ahc.transportation.yes"),
        ),
        _Single(
            loinc.AHC_UTILITIES,
            loinc.AHC_UTILITIES_ANSWERS,
            _each(
                [loinc.YES, loinc.AHC_UTILITIES_SHUT_OFF],
                Category.UTILITY_INSECURITY,
                "ahc.utilities.yes-or-shut-off",
            ),
        ),
        _ahc_safety,
    ),
    Instrument.PRAPARE: (
        _Single(
            loinc.PRAPARE_HOUSING,
            loinc.PRAPARE_HOUSING_ANSWERS,
            _each([loinc.PRAPARE_NO_HOUSING], Category.HOMELESSNESS, "prapare.housing.no-housing"),
        ),
        _Single(
            loinc.PRAPARE_HOUSING_WORRY,
            loinc.PRAPARE_YES_NO_ANSWERS,
            _each([loinc.YES], Category.HOUSING_INSTABILITY, "prapare.housing.worried"),
        ),
        _Multi(
            loinc.PRAPARE_UNABLE_TO_GET,
            {
                loinc.PRAPARE_FOOD: (Category.FOOD_INSECURITY, "prapare.unable-to-get.food"),
                loinc.PRAPARE_UTILITIES: (
                    Category.UTILITY_INSECURITY,
                    "prapare.unable-to-get.utilities",
                ),
                loinc.PRAPARE_CLOTHING: _MATERIAL,
                loinc.PRAPARE_CHILD_CARE: _MATERIAL,
                loinc.PRAPARE_PHONE: _MATERIAL,
                loinc.PRAPARE_OTHER: _MATERIAL,
                loinc.PRAPARE_MEDICINE: (
                    Category.MEDICAL_COST_BURDEN,
                    "prapare.unable-to-get.health-care",
                ),
            },
            {_DECLINE},
        ),
        _Multi(
            loinc.PRAPARE_TRANSPORTATION,
            _each(
                sorted(loinc.PRAPARE_TRANSPORT_YES),
                Category.TRANSPORTATION_INSECURITY,
                "prapare.transportation.yes",
            ),
            {loinc.NO, loinc.PRAPARE_UNABLE_TO_RESPOND, _DECLINE},
        ),
        _Single(
            loinc.PRAPARE_SOCIAL_CONTACT,
            loinc.PRAPARE_SOCIAL_CONTACT_ANSWERS,
            _each(
                [loinc.PRAPARE_LESS_THAN_WEEKLY],
                Category.SOCIAL_CONNECTION,
                "prapare.social-contact.less-than-weekly",
            ),
        ),
        _Single(
            loinc.PRAPARE_STRESS,
            loinc.PRAPARE_STRESS_ANSWERS,
            _each(
                [loinc.PRAPARE_STRESS_QUITE_A_BIT, loinc.PRAPARE_STRESS_VERY_MUCH],
                Category.STRESS,
                "prapare.stress.quite-a-bit-or-more",
            ),
        ),
        # The optional additional questions: never reported missing.
        _Single(
            loinc.PRAPARE_FEEL_SAFE,
            loinc.PRAPARE_SAFETY_ANSWERS,
            _each([loinc.NO], _IPV, "prapare.safety.not-safe"),
            required=False,
        ),
        _Single(
            loinc.PRAPARE_AFRAID_OF_PARTNER,
            loinc.PRAPARE_SAFETY_ANSWERS,
            _each([loinc.YES], _IPV, "prapare.safety.afraid-of-partner"),
            required=False,
        ),
        _Single(
            loinc.PRAPARE_INCARCERATION,
            loinc.PRAPARE_YES_NO_ANSWERS,
            _each([loinc.YES], Category.INCARCERATION_STATUS, "prapare.incarceration.yes"),
            required=False,
        ),
    ),
}


# --------------------------------------------------------------------- public API


def score(instrument: Instrument | str, answers: Sequence[AnswerInput]) -> ScoringResult:
    """Derive the needs of one screening. Never raises.

    Args:
        instrument: the instrument (or its wire value, e.g. ``"ahc-hrsn"``).
        answers: the screening's answers (see the module docstring for shapes).

    Returns:
        The needs found, one per category, and every problem met on the way.
    """
    try:
        chosen = Instrument(instrument)
    except ValueError:
        return ScoringResult(
            problems=(
                ScoringProblem(
                    ProblemKind.INVALID_VALUE,
                    "",
                    f"unknown instrument {_quote(instrument)}; nothing scored",
                ),
            )
        )
    sheet = _Sheet(chosen)
    if isinstance(answers, str | bytes | Mapping) or not isinstance(answers, Iterable):
        sheet.problem(ProblemKind.INVALID_VALUE, "", "answers must be a list of answers")
    else:
        sheet.read(answers)
    for rule in _RULES[chosen]:
        rule(sheet)
    return sheet.result()


def score_hunger_vital_sign(answers: Sequence[AnswerInput]) -> ScoringResult:
    return score(Instrument.HUNGER_VITAL_SIGN, answers)


def score_ahc_hrsn(answers: Sequence[AnswerInput]) -> ScoringResult:
    return score(Instrument.AHC_HRSN, answers)


def score_prapare(answers: Sequence[AnswerInput]) -> ScoringResult:
    return score(Instrument.PRAPARE, answers)


__all__ = [
    "AnswerInput",
    "AnswerLike",
    "AnswerPair",
    "AnswerValue",
    "Need",
    "ProblemKind",
    "ScoringProblem",
    "ScoringResult",
    "score",
    "score_ahc_hrsn",
    "score_hunger_vital_sign",
    "score_prapare",
]
