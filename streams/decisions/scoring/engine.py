"""Scoring one screening: read its answers, run its instrument's rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from schemas.codes import Instrument
from streams.decisions.scoring import ahc, hvs, prapare
from streams.decisions.scoring.results import (
    AnswerInput,
    ProblemKind,
    ScoringProblem,
    ScoringResult,
)
from streams.decisions.scoring.rules import Rule
from streams.decisions.scoring.sheet import Sheet, quote

#: Each instrument's rules, in the order their needs are listed.
RULES: Final[Mapping[Instrument, tuple[Rule, ...]]] = {
    Instrument.HUNGER_VITAL_SIGN: hvs.RULES,
    Instrument.AHC_HRSN: ahc.RULES,
    Instrument.PRAPARE: prapare.RULES,
}


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
                    f"unknown instrument {quote(instrument)}; nothing scored",
                ),
            )
        )
    sheet = Sheet(chosen)
    if isinstance(answers, str | bytes | Mapping) or not isinstance(answers, Iterable):
        sheet.problem(ProblemKind.INVALID_VALUE, "", "answers must be a list of answers")
    else:
        sheet.read(answers)
    for rule in RULES[chosen]:
        rule(sheet)
    return sheet.result()


def score_hunger_vital_sign(answers: Sequence[AnswerInput]) -> ScoringResult:
    return score(Instrument.HUNGER_VITAL_SIGN, answers)


def score_ahc_hrsn(answers: Sequence[AnswerInput]) -> ScoringResult:
    return score(Instrument.AHC_HRSN, answers)


def score_prapare(answers: Sequence[AnswerInput]) -> ScoringResult:
    return score(Instrument.PRAPARE, answers)


__all__ = ["RULES", "score", "score_ahc_hrsn", "score_hunger_vital_sign", "score_prapare"]
