"""Scoring rules of docs/contract.md, one behaviour per test, plus the never-raises property."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import instruments as loinc
from schemas.codes import Category, Instrument
from streams.decisions.scoring import (
    AnswerInput,
    Need,
    ProblemKind,
    ScoringProblem,
    ScoringResult,
    score,
    score_ahc_hrsn,
    score_hunger_vital_sign,
    score_prapare,
)
from streams.decisions.scoring.ahc import SAFETY_SCORES
from streams.decisions.scoring.prapare import TRANSPORT_YES

Pair = tuple[str, str | int | float]

NEVER, RARELY, SOMETIMES, FAIRLY_OFTEN, FREQUENTLY = (
    loinc.AHC_NEVER,
    loinc.AHC_RARELY,
    loinc.AHC_SOMETIMES,
    loinc.AHC_FAIRLY_OFTEN,
    loinc.AHC_FREQUENTLY,
)
SAFETY = loinc.AHC_SAFETY_ITEMS

#: An AHC HRSN screening with every domain answered and negative.
AHC_NEGATIVE: list[Pair] = [
    (loinc.AHC_LIVING_SITUATION, loinc.AHC_STEADY_NOT_WORRIED),
    (loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_HOUSING_NONE),
    (loinc.HVS_WORRIED, loinc.HVS_NEVER_TRUE),
    (loinc.HVS_RAN_OUT, loinc.HVS_NEVER_TRUE),
    (loinc.AHC_TRANSPORTATION, loinc.NO),
    (loinc.AHC_UTILITIES, loinc.NO),
    *((question, NEVER) for question in SAFETY),
]

#: A PRAPARE screening with every scored item answered and negative.
PRAPARE_NEGATIVE: list[Pair] = [
    (loinc.PRAPARE_HOUSING, loinc.PRAPARE_HAVE_HOUSING),
    (loinc.PRAPARE_HOUSING_WORRY, loinc.NO),
    (loinc.PRAPARE_UNABLE_TO_GET, loinc.CHOOSE_NOT_TO_ANSWER),
    (loinc.PRAPARE_TRANSPORTATION, loinc.NO),
    (loinc.PRAPARE_SOCIAL_CONTACT, "LA30132-7"),
    (loinc.PRAPARE_STRESS, loinc.PRAPARE_STRESS_A_LITTLE),
    (loinc.PRAPARE_INCARCERATION, loinc.NO),
    (loinc.PRAPARE_FEEL_SAFE, loinc.YES),
    (loinc.PRAPARE_AFRAID_OF_PARTNER, loinc.NO),
]


def replaced(base: Sequence[Pair], *answers: Pair, drop: Sequence[str] = ()) -> list[Pair]:
    """``base`` with every question in ``answers`` or ``drop`` removed, then ``answers``."""
    gone = {question for question, _ in answers} | set(drop)
    return [pair for pair in base if pair[0] not in gone] + list(answers)


def ahc(*answers: Pair, drop: Sequence[str] = ()) -> ScoringResult:
    return score_ahc_hrsn(replaced(AHC_NEGATIVE, *answers, drop=drop))


def prapare(*answers: Pair, drop: Sequence[str] = ()) -> ScoringResult:
    return score_prapare(replaced(PRAPARE_NEGATIVE, *answers, drop=drop))


def safety(*values: str | int | float) -> list[Pair]:
    return list(zip(SAFETY, values, strict=False))


def kinds(result: ScoringResult) -> list[tuple[ProblemKind, str]]:
    return [(p.kind, p.question) for p in result.problems]


# ======================================================================== baselines


def test_fully_negative_ahc_screening_has_no_needs_and_no_problems() -> None:
    assert score_ahc_hrsn(AHC_NEGATIVE) == ScoringResult()


def test_fully_negative_prapare_screening_has_no_needs_and_no_problems() -> None:
    assert score_prapare(PRAPARE_NEGATIVE) == ScoringResult()


# ======================================================================== Hunger Vital Sign


@pytest.mark.parametrize("item", loinc.HVS_ITEMS)
@pytest.mark.parametrize("positive", [loinc.HVS_OFTEN_TRUE, loinc.HVS_SOMETIMES_TRUE])
def test_hvs_either_item_alone_often_or_sometimes_true_is_food_insecurity(
    item: str, positive: str
) -> None:
    other = next(q for q in loinc.HVS_ITEMS if q != item)
    result = score_hunger_vital_sign([(item, positive), (other, loinc.HVS_NEVER_TRUE)])
    assert result.needs == (
        Need(Category.FOOD_INSECURITY, "hvs.either-item", (f"{item}={positive}",)),
    )
    assert result.problems == ()


def test_hvs_both_items_never_true_is_negative() -> None:
    result = score_hunger_vital_sign(
        [(loinc.HVS_WORRIED, loinc.HVS_NEVER_TRUE), (loinc.HVS_RAN_OUT, loinc.HVS_NEVER_TRUE)]
    )
    assert result == ScoringResult()


def test_hvs_dont_know_on_both_items_is_negative_and_not_missing() -> None:
    result = score_hunger_vital_sign(
        [(loinc.HVS_WORRIED, loinc.HVS_DONT_KNOW), (loinc.HVS_RAN_OUT, loinc.HVS_DONT_KNOW)]
    )
    assert result == ScoringResult()


def test_hvs_dont_know_on_one_item_and_sometimes_true_on_the_other_is_positive() -> None:
    result = score_hunger_vital_sign(
        [(loinc.HVS_WORRIED, loinc.HVS_DONT_KNOW), (loinc.HVS_RAN_OUT, loinc.HVS_SOMETIMES_TRUE)]
    )
    assert result.categories == (Category.FOOD_INSECURITY,)


def test_hvs_both_items_positive_gives_one_need_with_both_answers_as_evidence() -> None:
    result = score_hunger_vital_sign(
        [(loinc.HVS_WORRIED, loinc.HVS_OFTEN_TRUE), (loinc.HVS_RAN_OUT, loinc.HVS_SOMETIMES_TRUE)]
    )
    (need,) = result.needs
    assert need.evidence == ("88122-7=LA28397-0", "88123-5=LA6729-3")


def test_hvs_one_item_never_and_the_other_missing_reports_missing_and_no_need() -> None:
    result = score_hunger_vital_sign([(loinc.HVS_WORRIED, loinc.HVS_NEVER_TRUE)])
    assert result.needs == ()
    assert kinds(result) == [(ProblemKind.MISSING, loinc.HVS_RAN_OUT)]


def test_hvs_one_item_positive_is_enough_even_when_the_other_is_missing() -> None:
    result = score_hunger_vital_sign([(loinc.HVS_RAN_OUT, loinc.HVS_OFTEN_TRUE)])
    assert result.categories == (Category.FOOD_INSECURITY,)
    assert kinds(result) == [(ProblemKind.MISSING, loinc.HVS_WORRIED)]


def test_hvs_empty_screening_reports_both_items_missing() -> None:
    result = score_hunger_vital_sign([])
    assert result.needs == ()
    assert kinds(result) == [
        (ProblemKind.MISSING, loinc.HVS_WORRIED),
        (ProblemKind.MISSING, loinc.HVS_RAN_OUT),
    ]


def test_hvs_derived_at_risk_decides_when_the_items_are_absent() -> None:
    result = score_hunger_vital_sign([(loinc.HVS_RISK, loinc.HVS_AT_RISK)])
    assert result.needs == (
        Need(Category.FOOD_INSECURITY, "hvs.derived-at-risk", ("88124-3=LA19952-3",)),
    )
    assert result.problems == ()


def test_hvs_derived_no_risk_alone_is_negative() -> None:
    assert score_hunger_vital_sign([(loinc.HVS_RISK, loinc.HVS_NO_RISK)]) == ScoringResult()


def test_hvs_derived_item_disagreeing_with_the_items_is_contradictory_and_the_items_win() -> None:
    result = score_hunger_vital_sign(
        [
            (loinc.HVS_WORRIED, loinc.HVS_NEVER_TRUE),
            (loinc.HVS_RAN_OUT, loinc.HVS_NEVER_TRUE),
            (loinc.HVS_RISK, loinc.HVS_AT_RISK),
        ]
    )
    assert result.needs == ()
    assert kinds(result) == [(ProblemKind.CONTRADICTORY, loinc.HVS_RISK)]


# ======================================================================== AHC: housing


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (loinc.AHC_STEADY_NOT_WORRIED, None),
        (loinc.AHC_STEADY_WORRIED, (Category.HOUSING_INSTABILITY, "ahc.living-situation.worried")),
        (
            loinc.AHC_NO_STEADY_PLACE,
            (Category.HOMELESSNESS, "ahc.living-situation.no-steady-place"),
        ),
    ],
)
def test_ahc_living_situation_follows_the_meaning_of_each_answer(
    answer: str, expected: tuple[Category, str] | None
) -> None:
    result = ahc((loinc.AHC_LIVING_SITUATION, answer))
    assert result.problems == ()
    if expected is None:
        assert result.needs == ()
    else:
        assert result.needs == (Need(*expected, (f"71802-3={answer}",)),)


@pytest.mark.parametrize("problem", loinc.AHC_HOUSING_PROBLEM_ANSWERS)
def test_ahc_any_single_housing_problem_is_inadequate_housing(problem: str) -> None:
    result = ahc((loinc.AHC_HOUSING_PROBLEMS, problem))
    assert result.needs == (
        Need(Category.INADEQUATE_HOUSING, "ahc.housing-problems.any", (f"96778-6={problem}",)),
    )
    assert result.problems == ()


def test_ahc_several_housing_problems_give_one_need_listing_every_problem() -> None:
    result = ahc(
        (loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_PESTS),
        (loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_MOLD),
        (loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_WATER_LEAKS),
    )
    (need,) = result.needs
    assert need.category is Category.INADEQUATE_HOUSING
    assert need.evidence == ("96778-6=LA31996-4", "96778-6=LA28580-1", "96778-6=LA32001-2")
    assert result.problems == ()


def test_ahc_housing_problems_none_is_negative() -> None:
    result = ahc((loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_HOUSING_NONE))
    assert result == ScoringResult()


def test_ahc_none_together_with_a_housing_problem_is_contradictory_but_still_positive() -> None:
    result = ahc(
        (loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_HOUSING_NONE),
        (loinc.AHC_HOUSING_PROBLEMS, loinc.AHC_LEAD),
    )
    assert result.categories == (Category.INADEQUATE_HOUSING,)
    assert kinds(result) == [(ProblemKind.CONTRADICTORY, loinc.AHC_HOUSING_PROBLEMS)]


# ================================================================ AHC: food, transport, utilities


def test_ahc_food_uses_the_hunger_vital_sign_either_item_rule() -> None:
    result = ahc((loinc.HVS_RAN_OUT, loinc.HVS_SOMETIMES_TRUE))
    assert result.needs == (
        Need(Category.FOOD_INSECURITY, "ahc.food.either-item", ("88123-5=LA6729-3",)),
    )


@pytest.mark.parametrize(("answer", "positive"), [(loinc.YES, True), (loinc.NO, False)])
def test_ahc_transportation_yes_is_transportation_insecurity(answer: str, positive: bool) -> None:
    result = ahc((loinc.AHC_TRANSPORTATION, answer))
    assert result.categories == ((Category.TRANSPORTATION_INSECURITY,) if positive else ())
    assert result.problems == ()


@pytest.mark.parametrize(
    ("answer", "positive"),
    [(loinc.YES, True), (loinc.AHC_UTILITIES_SHUT_OFF, True), (loinc.NO, False)],
)
def test_ahc_utilities_threatened_or_already_shut_off_is_utility_insecurity(
    answer: str, positive: bool
) -> None:
    result = ahc((loinc.AHC_UTILITIES, answer))
    expected = (
        (
            Need(
                Category.UTILITY_INSECURITY, "ahc.utilities.yes-or-shut-off", (f"96779-4={answer}",)
            ),
        )
        if positive
        else ()
    )
    assert result.needs == expected
    assert result.problems == ()


# ======================================================================== AHC: safety


def test_ahc_safety_sum_of_10_is_negative() -> None:
    result = ahc(*safety(FREQUENTLY, SOMETIMES, NEVER, NEVER))  # 5 + 3 + 1 + 1
    assert result == ScoringResult()


def test_ahc_safety_sum_of_11_is_intimate_partner_violence() -> None:
    result = ahc(*safety(FREQUENTLY, SOMETIMES, RARELY, NEVER))  # 5 + 3 + 2 + 1
    assert result.needs == (
        Need(
            Category.INTIMATE_PARTNER_VIOLENCE,
            "ahc.safety.sum>=11",
            (
                "95618-5=LA6482-9",
                "95617-7=LA10082-8",
                "95616-9=LA10066-1",
                "95615-1=LA6270-8",
                "sum=11",
            ),
        ),
    )
    assert result.problems == ()


@pytest.mark.parametrize(
    ("values", "positive"),
    [
        ((5, 3, 1, 1), False),
        ((5, 3, 2, 1), True),
        ((FREQUENTLY, 3, RARELY, 1), True),
        ((4.0, 4.0, 2.0, 1.0), True),
        ((FAIRLY_OFTEN, 4, 1, NEVER), False),
    ],
)
def test_ahc_safety_items_may_be_numbers_or_codes_with_the_same_meaning(
    values: tuple[str | int | float, ...], positive: bool
) -> None:
    result = ahc(*safety(*values))
    assert result.categories == ((Category.INTIMATE_PARTNER_VIOLENCE,) if positive else ())
    assert result.problems == ()


@pytest.mark.parametrize("bad", [0, 6, -1, 2.5, float("inf"), 10**30])
def test_ahc_safety_number_out_of_range_is_invalid_value_not_an_exception(
    bad: int | float,
) -> None:
    result = ahc(*safety(bad, FREQUENTLY, FREQUENTLY, FREQUENTLY))
    assert (ProblemKind.INVALID_VALUE, SAFETY[0]) in kinds(result)
    # 5 + 5 + 5 with the fourth at least 1 is certain: still positive.
    assert result.categories == (Category.INTIMATE_PARTNER_VIOLENCE,)


def test_ahc_safety_unknown_code_is_unknown_answer() -> None:
    result = ahc(*safety("LA9999-9", NEVER, NEVER, NEVER))
    assert kinds(result) == [(ProblemKind.UNKNOWN_ANSWER, SAFETY[0])]
    assert result.needs == ()


def test_ahc_missing_safety_items_without_total_are_missing_and_give_no_need() -> None:
    result = ahc(*safety(SOMETIMES, SOMETIMES), drop=SAFETY[2:])
    assert result.needs == ()
    assert kinds(result) == [
        (ProblemKind.MISSING, SAFETY[2]),
        (ProblemKind.MISSING, SAFETY[3]),
    ]


def test_ahc_incomplete_safety_items_already_reaching_11_are_positive_and_report_missing() -> None:
    result = ahc(*safety(FREQUENTLY, FREQUENTLY, FREQUENTLY), drop=SAFETY[3:])
    assert result.categories == (Category.INTIMATE_PARTNER_VIOLENCE,)
    assert result.needs[0].rule == "ahc.safety.sum>=11"
    assert kinds(result) == [(ProblemKind.MISSING, SAFETY[3])]


@pytest.mark.parametrize(("total", "positive"), [(10, False), (11, True), (14, True)])
def test_ahc_safety_total_decides_when_items_are_incomplete(total: int, positive: bool) -> None:
    result = ahc(*safety(SOMETIMES), (loinc.AHC_SAFETY_TOTAL, total), drop=SAFETY[1:])
    assert result.problems == ()
    if positive:
        (need,) = result.needs
        assert need.rule == "ahc.safety.total>=11"
        assert need.evidence == ("95618-5=LA10082-8", f"95614-4={total}")
    else:
        assert result.needs == ()


def test_ahc_safety_total_alone_stands_in_for_all_items() -> None:
    result = ahc((loinc.AHC_SAFETY_TOTAL, 12), drop=SAFETY)
    assert result.categories == (Category.INTIMATE_PARTNER_VIOLENCE,)
    assert result.problems == ()


def test_ahc_safety_total_disagreeing_with_complete_items_is_contradictory_items_win() -> None:
    negative = ahc(*safety(5, 3, 1, 1), (loinc.AHC_SAFETY_TOTAL, 12))
    assert negative.needs == ()
    assert kinds(negative) == [(ProblemKind.CONTRADICTORY, loinc.AHC_SAFETY_TOTAL)]
    positive = ahc(*safety(5, 3, 2, 1), (loinc.AHC_SAFETY_TOTAL, 10))
    assert positive.categories == (Category.INTIMATE_PARTNER_VIOLENCE,)
    assert kinds(positive) == [(ProblemKind.CONTRADICTORY, loinc.AHC_SAFETY_TOTAL)]


def test_ahc_safety_total_agreeing_with_complete_items_is_no_problem() -> None:
    result = ahc(*safety(5, 3, 2, 1), (loinc.AHC_SAFETY_TOTAL, 11))
    assert result.needs[0].rule == "ahc.safety.sum>=11"
    assert result.problems == ()


def test_ahc_safety_total_impossible_with_answered_items_is_ignored_as_contradictory() -> None:
    # Three items at 1 and one absent: the total can only be 4..8.
    result = ahc(*safety(1, 1, 1), (loinc.AHC_SAFETY_TOTAL, 15), drop=SAFETY[3:])
    assert result.needs == ()
    assert kinds(result) == [
        (ProblemKind.CONTRADICTORY, loinc.AHC_SAFETY_TOTAL),
        (ProblemKind.MISSING, SAFETY[3]),
    ]


@pytest.mark.parametrize("total", [3, 21, "LA6482-9", 11.5])
def test_ahc_safety_total_outside_4_to_20_is_invalid_value(total: str | int | float) -> None:
    result = ahc((loinc.AHC_SAFETY_TOTAL, total))
    assert kinds(result) == [(ProblemKind.INVALID_VALUE, loinc.AHC_SAFETY_TOTAL)]
    assert result.needs == ()


# ================================================================ AHC: missing and contradictory


def test_ahc_empty_screening_reports_every_item_missing_without_raising() -> None:
    result = score_ahc_hrsn([])
    assert result.needs == ()
    assert {q for kind, q in kinds(result) if kind is ProblemKind.MISSING} == {
        loinc.AHC_LIVING_SITUATION,
        loinc.AHC_HOUSING_PROBLEMS,
        *loinc.HVS_ITEMS,
        loinc.AHC_TRANSPORTATION,
        loinc.AHC_UTILITIES,
        *SAFETY,
    }
    assert all(p.kind is ProblemKind.MISSING for p in result.problems)


def test_single_answer_question_answered_twice_differently_is_contradictory_and_unused() -> None:
    result = ahc((loinc.AHC_TRANSPORTATION, loinc.YES), (loinc.AHC_TRANSPORTATION, loinc.NO))
    assert result.needs == ()
    assert kinds(result) == [(ProblemKind.CONTRADICTORY, loinc.AHC_TRANSPORTATION)]


def test_living_situation_answered_two_ways_gives_no_housing_need() -> None:
    result = ahc(
        (loinc.AHC_LIVING_SITUATION, loinc.AHC_STEADY_WORRIED),
        (loinc.AHC_LIVING_SITUATION, loinc.AHC_NO_STEADY_PLACE),
    )
    assert result.needs == ()
    assert kinds(result) == [(ProblemKind.CONTRADICTORY, loinc.AHC_LIVING_SITUATION)]


def test_safety_item_answered_two_different_scores_is_contradictory() -> None:
    result = ahc((SAFETY[0], FREQUENTLY), (SAFETY[0], 1))
    assert (ProblemKind.CONTRADICTORY, SAFETY[0]) in kinds(result)


def test_the_same_answer_repeated_is_not_a_problem() -> None:
    result = ahc((loinc.AHC_TRANSPORTATION, loinc.YES), (loinc.AHC_TRANSPORTATION, loinc.YES))
    assert result.categories == (Category.TRANSPORTATION_INSECURITY,)
    assert result.problems == ()


def test_a_code_and_its_number_for_a_safety_item_agree() -> None:
    result = ahc((SAFETY[0], FREQUENTLY), (SAFETY[0], 5))
    assert result.problems == ()


def test_unknown_answer_code_is_reported_and_the_item_is_not_also_missing() -> None:
    result = ahc((loinc.AHC_UTILITIES, "LA00000-0"))
    assert kinds(result) == [(ProblemKind.UNKNOWN_ANSWER, loinc.AHC_UTILITIES)]


def test_number_for_a_coded_question_is_invalid_value() -> None:
    result = ahc((loinc.AHC_TRANSPORTATION, 1))
    assert kinds(result) == [(ProblemKind.INVALID_VALUE, loinc.AHC_TRANSPORTATION)]


def test_question_the_instrument_does_not_ask_is_unknown_question_and_ignored() -> None:
    result = ahc(("12345-6", loinc.YES))
    assert result.needs == ()
    assert kinds(result) == [(ProblemKind.UNKNOWN_QUESTION, "12345-6")]


@pytest.mark.parametrize("bad", [None, True, "", "   ", [1], {"a": 1}, float("nan")])
def test_wrong_typed_or_blank_answer_is_invalid_value(bad: object) -> None:
    result = score_ahc_hrsn([*AHC_NEGATIVE, (loinc.AHC_UTILITIES, bad)])  # type: ignore[list-item]
    assert (ProblemKind.INVALID_VALUE, loinc.AHC_UTILITIES) in kinds(result)
    assert result.needs == ()


@pytest.mark.parametrize("bad", [None, 7, "", ("a",), object()])
def test_entry_without_a_usable_question_is_invalid_value(bad: object) -> None:
    result = score_ahc_hrsn([*AHC_NEGATIVE, bad])  # type: ignore[list-item]
    assert kinds(result) == [(ProblemKind.INVALID_VALUE, "")]


def test_problem_details_never_echo_free_text() -> None:
    secret = "Ana Lopez lives at 12 Grand Concourse"
    result = ahc((loinc.AHC_UTILITIES, secret), (secret, loinc.YES))
    assert result.problems
    assert len(result.problems) == 2
    for problem in result.problems:
        assert "Ana" not in problem.detail
        assert "Ana" not in problem.question


# ======================================================================== input shapes


@dataclass(frozen=True)
class FrozenAnswer:
    question: str
    answer: str | int | float


def test_objects_tuples_and_mappings_score_the_same() -> None:
    pairs = replaced(AHC_NEGATIVE, (loinc.AHC_UTILITIES, loinc.YES))
    as_objects: list[AnswerInput] = [FrozenAnswer(q, a) for q, a in pairs]
    as_mappings: list[AnswerInput] = [{"question": q, "answer": a} for q, a in pairs]
    expected = score_ahc_hrsn(pairs)
    assert expected.categories == (Category.UTILITY_INSECURITY,)
    assert score_ahc_hrsn(as_objects) == expected
    assert score_ahc_hrsn(as_mappings) == expected


def test_instrument_may_be_given_by_its_wire_value() -> None:
    assert score("ahc-hrsn", AHC_NEGATIVE) == score(Instrument.AHC_HRSN, AHC_NEGATIVE)


def test_unknown_instrument_is_a_problem_not_an_exception() -> None:
    result = score("phq-9", AHC_NEGATIVE)
    assert result.needs == ()
    assert kinds(result) == [(ProblemKind.INVALID_VALUE, "")]


def test_answers_that_are_not_a_list_are_a_problem_not_an_exception() -> None:
    result = score(Instrument.HUNGER_VITAL_SIGN, "88122-7")  # type: ignore[arg-type]
    assert (ProblemKind.INVALID_VALUE, "") in kinds(result)


# ======================================================================== PRAPARE


@pytest.mark.parametrize(
    ("answers", "category", "rule"),
    [
        (
            [(loinc.PRAPARE_HOUSING, loinc.PRAPARE_NO_HOUSING)],
            Category.HOMELESSNESS,
            "prapare.housing.no-housing",
        ),
        (
            [(loinc.PRAPARE_HOUSING_WORRY, loinc.YES)],
            Category.HOUSING_INSTABILITY,
            "prapare.housing.worried",
        ),
        (
            [(loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_FOOD)],
            Category.FOOD_INSECURITY,
            "prapare.unable-to-get.food",
        ),
        (
            [(loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_UTILITIES)],
            Category.UTILITY_INSECURITY,
            "prapare.unable-to-get.utilities",
        ),
        *(
            (
                [(loinc.PRAPARE_UNABLE_TO_GET, code)],
                Category.MATERIAL_HARDSHIP,
                "prapare.unable-to-get.material",
            )
            for code in (
                loinc.PRAPARE_CLOTHING,
                loinc.PRAPARE_CHILD_CARE,
                loinc.PRAPARE_PHONE,
                loinc.PRAPARE_OTHER,
            )
        ),
        (
            [(loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_MEDICINE)],
            Category.MEDICAL_COST_BURDEN,
            "prapare.unable-to-get.health-care",
        ),
        *(
            (
                [(loinc.PRAPARE_TRANSPORTATION, code)],
                Category.TRANSPORTATION_INSECURITY,
                "prapare.transportation.yes",
            )
            for code in (
                loinc.PRAPARE_TRANSPORT_MEDICAL,
                loinc.PRAPARE_TRANSPORT_NON_MEDICAL,
                loinc.YES,
            )
        ),
        (
            [(loinc.PRAPARE_SOCIAL_CONTACT, loinc.PRAPARE_LESS_THAN_WEEKLY)],
            Category.SOCIAL_CONNECTION,
            "prapare.social-contact.less-than-weekly",
        ),
        *(
            (
                [(loinc.PRAPARE_STRESS, code)],
                Category.STRESS,
                "prapare.stress.quite-a-bit-or-more",
            )
            for code in (loinc.PRAPARE_STRESS_QUITE_A_BIT, loinc.PRAPARE_STRESS_VERY_MUCH)
        ),
        (
            [(loinc.PRAPARE_FEEL_SAFE, loinc.NO)],
            Category.INTIMATE_PARTNER_VIOLENCE,
            "prapare.safety.not-safe",
        ),
        (
            [(loinc.PRAPARE_AFRAID_OF_PARTNER, loinc.YES)],
            Category.INTIMATE_PARTNER_VIOLENCE,
            "prapare.safety.afraid-of-partner",
        ),
        (
            [(loinc.PRAPARE_INCARCERATION, loinc.YES)],
            Category.INCARCERATION_STATUS,
            "prapare.incarceration.yes",
        ),
    ],
)
def test_prapare_rule_derives_its_need(answers: list[Pair], category: Category, rule: str) -> None:
    result = prapare(*answers)
    assert result.needs == (Need(category, rule, tuple(f"{q}={a}" for q, a in answers)),)
    assert result.problems == ()


@pytest.mark.parametrize(
    "answer",
    [
        (loinc.PRAPARE_HOUSING, loinc.CHOOSE_NOT_TO_ANSWER),
        (loinc.PRAPARE_HOUSING_WORRY, loinc.CHOOSE_NOT_TO_ANSWER),
        (loinc.PRAPARE_STRESS, loinc.PRAPARE_STRESS_SOMEWHAT),
        (loinc.PRAPARE_STRESS, loinc.PRAPARE_STRESS_NOT_AT_ALL),
        (loinc.PRAPARE_SOCIAL_CONTACT, "LA30130-1"),
        (loinc.PRAPARE_SOCIAL_CONTACT, "LA30131-9"),
        (loinc.PRAPARE_FEEL_SAFE, loinc.UNSURE),
        (loinc.PRAPARE_AFRAID_OF_PARTNER, loinc.UNSURE),
        (loinc.PRAPARE_TRANSPORTATION, loinc.PRAPARE_UNABLE_TO_RESPOND),
    ],
)
def test_prapare_negative_and_declined_answers_give_no_need_and_no_problem(
    answer: Pair,
) -> None:
    assert prapare(answer) == ScoringResult()


def test_prapare_unable_to_get_several_items_gives_each_category_once() -> None:
    result = prapare(
        (loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_FOOD),
        (loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_CLOTHING),
        (loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_PHONE),
        (loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_MEDICINE),
    )
    assert result.categories == (
        Category.FOOD_INSECURITY,
        Category.MATERIAL_HARDSHIP,
        Category.MEDICAL_COST_BURDEN,
    )
    assert result.need(Category.MATERIAL_HARDSHIP) == Need(
        Category.MATERIAL_HARDSHIP,
        "prapare.unable-to-get.material",
        ("93031-3=LA30126-9", "93031-3=LA30129-3"),
    )


def test_prapare_declining_and_selecting_items_is_contradictory_but_items_count() -> None:
    result = prapare(
        (loinc.PRAPARE_UNABLE_TO_GET, loinc.CHOOSE_NOT_TO_ANSWER),
        (loinc.PRAPARE_UNABLE_TO_GET, loinc.PRAPARE_FOOD),
    )
    assert result.categories == (Category.FOOD_INSECURITY,)
    assert kinds(result) == [(ProblemKind.CONTRADICTORY, loinc.PRAPARE_UNABLE_TO_GET)]


def test_prapare_transport_no_together_with_yes_is_contradictory_but_yes_counts() -> None:
    result = prapare(
        (loinc.PRAPARE_TRANSPORTATION, loinc.NO),
        (loinc.PRAPARE_TRANSPORTATION, loinc.PRAPARE_TRANSPORT_MEDICAL),
    )
    assert result.categories == (Category.TRANSPORTATION_INSECURITY,)
    assert kinds(result) == [(ProblemKind.CONTRADICTORY, loinc.PRAPARE_TRANSPORTATION)]


def test_prapare_both_safety_items_positive_give_one_need_with_both_answers() -> None:
    result = prapare(
        (loinc.PRAPARE_FEEL_SAFE, loinc.NO), (loinc.PRAPARE_AFRAID_OF_PARTNER, loinc.YES)
    )
    assert result.needs == (
        Need(
            Category.INTIMATE_PARTNER_VIOLENCE,
            "prapare.safety.not-safe",
            ("93026-3=LA32-8", "76501-6=LA33-6"),
        ),
    )


def test_prapare_no_housing_and_worried_gives_both_housing_needs() -> None:
    result = prapare(
        (loinc.PRAPARE_HOUSING, loinc.PRAPARE_NO_HOUSING), (loinc.PRAPARE_HOUSING_WORRY, loinc.YES)
    )
    assert result.categories == (Category.HOMELESSNESS, Category.HOUSING_INSTABILITY)


def test_prapare_optional_items_are_never_missing_but_core_items_are() -> None:
    result = score_prapare([])
    missing = {q for kind, q in kinds(result) if kind is ProblemKind.MISSING}
    assert missing == {
        loinc.PRAPARE_HOUSING,
        loinc.PRAPARE_HOUSING_WORRY,
        loinc.PRAPARE_UNABLE_TO_GET,
        loinc.PRAPARE_TRANSPORTATION,
        loinc.PRAPARE_SOCIAL_CONTACT,
        loinc.PRAPARE_STRESS,
    }


def test_prapare_unscored_items_with_numbers_or_text_raise_no_problem() -> None:
    result = prapare(
        ("63586-2", 25000), ("63512-8", 6), ("56799-0", "Broadway"), ("32624-9", "LA4457-3")
    )
    assert result == ScoringResult()


def test_prapare_answer_codes_of_ahc_are_unknown_answers_in_prapare() -> None:
    result = prapare((loinc.PRAPARE_HOUSING, loinc.AHC_NO_STEADY_PLACE))
    assert kinds(result) == [(ProblemKind.UNKNOWN_ANSWER, loinc.PRAPARE_HOUSING)]


# ======================================================================== never raises

_QUESTIONS = [*sorted(set().union(*loinc.QUESTIONS.values())), "", " ", "x", "99999-9"]
_CODES = sorted(
    {
        *loinc.HVS_ITEM_ANSWERS,
        *loinc.HVS_RISK_ANSWERS,
        *loinc.AHC_LIVING_SITUATION_ANSWERS,
        *loinc.AHC_HOUSING_PROBLEM_ANSWERS,
        loinc.AHC_HOUSING_NONE,
        *loinc.AHC_UTILITIES_ANSWERS,
        *SAFETY_SCORES,
        *loinc.PRAPARE_HOUSING_ANSWERS,
        *loinc.PRAPARE_UNABLE_TO_GET_ITEMS,
        *TRANSPORT_YES,
        *loinc.PRAPARE_STRESS_ANSWERS,
        *loinc.PRAPARE_SOCIAL_CONTACT_ANSWERS,
        *loinc.PRAPARE_SAFETY_ANSWERS,
    }
)
_values = st.one_of(
    st.sampled_from(_CODES),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
_questions = st.one_of(st.sampled_from(_QUESTIONS), st.text(max_size=8), st.integers(), st.none())
_entries = st.one_of(
    st.tuples(_questions, _values),
    st.fixed_dictionaries({"question": _questions, "answer": _values}),
    st.builds(FrozenAnswer, _questions, _values),
    st.none(),
    st.integers(),
    st.text(max_size=4),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instrument=st.one_of(st.sampled_from(list(Instrument)), st.text(max_size=10), st.none()),
    entries=st.lists(_entries, max_size=25),
)
def test_arbitrary_answer_lists_never_raise(instrument: object, entries: list[object]) -> None:
    result = score(instrument, entries)  # type: ignore[arg-type]
    assert isinstance(result, ScoringResult)
    assert all(isinstance(n, Need) and isinstance(n.category, Category) for n in result.needs)
    assert all(isinstance(p, ScoringProblem) for p in result.problems)
    assert len({n.category for n in result.needs}) == len(result.needs)
    assert score(instrument, entries) == result  # type: ignore[arg-type]  # deterministic


@settings(max_examples=150, deadline=None)
@given(
    instrument=st.sampled_from(list(Instrument)),
    pairs=st.lists(
        st.tuples(st.sampled_from(_QUESTIONS[:-4]), st.sampled_from(_CODES)), max_size=30
    ),
)
def test_well_formed_codes_only_produce_needs_backed_by_evidence(
    instrument: Instrument, pairs: list[Pair]
) -> None:
    result = score(instrument, pairs)
    given_answers = {f"{q}={a}" for q, a in pairs}
    for need in result.needs:
        assert need.rule
        assert any(e in given_answers for e in need.evidence)
