"""Scoring a screening: LOINC answers in, social needs (Gravity categories) out.

Pure functions, no I/O. :func:`score` never raises: anything it cannot use
becomes a :class:`ScoringProblem` next to the needs it could derive, so that a
bad answer never stops the stream and the clinic learns what was wrong.

Answers are ``(question, answer)`` pairs as in docs/contract.md: LOINC question and
answer codes, a multi-select item repeats its question, a numeric answer may be
a number. Accepted shapes: any object with ``question`` and ``answer``
attributes (the event model's ``Answer``), a ``(question, answer)`` tuple, or a
mapping with those two keys.

Rules: docs/contract.md (Scoring) lists them; rule ids are stable and travel with the
need. Each instrument's rules, and the decisions taken for incomplete or
inconsistent answers, are in its module: :mod:`.hvs` (Hunger Vital Sign),
:mod:`.ahc` (AHC HRSN core), :mod:`.prapare` (PRAPARE). The answers are read
by :mod:`.sheet`; :mod:`.rules` holds the shapes most rules share;
:mod:`.engine` runs an instrument's rules.

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

from streams.decisions.scoring.engine import (
    score,
    score_ahc_hrsn,
    score_hunger_vital_sign,
    score_prapare,
)
from streams.decisions.scoring.results import (
    AnswerInput,
    AnswerLike,
    AnswerPair,
    AnswerValue,
    Need,
    ProblemKind,
    ScoringProblem,
    ScoringResult,
)

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
