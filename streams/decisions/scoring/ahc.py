"""AHC HRSN core (96777-8): living situation, housing problems, food,
transportation, utilities and safety.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from schemas import instruments as loinc
from schemas.codes import Category
from streams.decisions.scoring.hvs import food
from streams.decisions.scoring.results import ProblemKind
from streams.decisions.scoring.rules import Multi, Rule, Single, each
from streams.decisions.scoring.sheet import Sheet, cite

#: Safety frequency answer -> score. A numeric answer 1..5 means the same score.
SAFETY_SCORES: Final[Mapping[str, int]] = {
    loinc.AHC_NEVER: 1,
    loinc.AHC_RARELY: 2,
    loinc.AHC_SOMETIMES: 3,
    loinc.AHC_FAIRLY_OFTEN: 4,
    loinc.AHC_FREQUENTLY: 5,
}
SAFETY_ITEM_MIN: Final = 1
SAFETY_ITEM_MAX: Final = 5
#: Positive (intimate-partner-violence) when the four items sum to this or more.
SAFETY_THRESHOLD: Final = 11


def safety(sheet: Sheet) -> None:
    items = loinc.AHC_SAFETY_ITEMS
    low, high = SAFETY_ITEM_MIN, SAFETY_ITEM_MAX
    threshold = SAFETY_THRESHOLD
    total = sheet.number(
        loinc.AHC_SAFETY_TOTAL, len(items) * low, len(items) * high, required=False
    )
    scores: dict[str, int] = {}
    for question in items:
        found = sheet.number(question, low, high, codes=SAFETY_SCORES, required=False)
        if found is not None:
            scores[question] = found
    evidence = [
        cite(question, value)
        for question, found in scores.items()
        for value in sheet.answers[question]
        if SAFETY_SCORES.get(str(value), value) == found
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
                    [*evidence, cite(loinc.AHC_SAFETY_TOTAL, total)],
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


_HOUSING_PROBLEMS: Final = each(
    loinc.AHC_HOUSING_PROBLEM_ANSWERS, Category.INADEQUATE_HOUSING, "ahc.housing-problems.any"
)

RULES: Final[tuple[Rule, ...]] = (
    Single(
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
    Multi(loinc.AHC_HOUSING_PROBLEMS, _HOUSING_PROBLEMS, {loinc.AHC_HOUSING_NONE}),
    partial(food, "ahc.food"),
    Single(
        loinc.AHC_TRANSPORTATION,
        loinc.AHC_TRANSPORTATION_ANSWERS,
        each([loinc.YES], Category.TRANSPORTATION_INSECURITY, "ahc.transportation.yes"),
    ),
    Single(
        loinc.AHC_UTILITIES,
        loinc.AHC_UTILITIES_ANSWERS,
        each(
            [loinc.YES, loinc.AHC_UTILITIES_SHUT_OFF],
            Category.UTILITY_INSECURITY,
            "ahc.utilities.yes-or-shut-off",
        ),
    ),
    safety,
)

__all__ = [
    "RULES",
    "SAFETY_ITEM_MAX",
    "SAFETY_ITEM_MIN",
    "SAFETY_SCORES",
    "SAFETY_THRESHOLD",
    "safety",
]
