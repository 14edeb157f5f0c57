"""Hunger Vital Sign (88121-9), and the food rule AHC HRSN shares with it.

``hvs.either-item``: food-insecurity when 88122-7 or 88123-5 is Often true
or Sometimes true. Both answered otherwise (Never true, don't know/refused)
is negative. ``hvs.derived-at-risk``: when the items do not decide (missing,
unusable), the derived item 88124-3 At risk decides; when the items decide
and 88124-3 disagrees, the items win and a ``contradictory`` problem is
reported.
"""

from __future__ import annotations

from functools import partial
from typing import Final

from schemas import instruments as loinc
from schemas.codes import Category
from streams.decisions.scoring.results import ProblemKind
from streams.decisions.scoring.rules import Rule
from streams.decisions.scoring.sheet import Sheet, cite

#: Item answers that make the item positive: Often true, Sometimes true.
POSITIVE_ANSWERS: Final = frozenset({loinc.HVS_OFTEN_TRUE, loinc.HVS_SOMETIMES_TRUE})


def food(rule_prefix: str, sheet: Sheet) -> None:
    """The Hunger Vital Sign either-item rule (HVS itself and AHC's food domain)."""
    derived = sheet.coded(loinc.HVS_RISK, loinc.HVS_RISK_ANSWERS, required=False)
    items = [
        (question, sheet.coded(question, loinc.HVS_ITEM_ANSWERS, required=derived is None))
        for question in loinc.HVS_ITEMS
    ]
    positive = [cite(q, a) for q, a in items if a in POSITIVE_ANSWERS]
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
            [cite(loinc.HVS_RISK, derived)],
        )


RULES: Final[tuple[Rule, ...]] = (partial(food, "hvs"),)

__all__ = ["POSITIVE_ANSWERS", "RULES", "food"]
