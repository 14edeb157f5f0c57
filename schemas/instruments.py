"""LOINC codes of the three screening instruments refnet scores.

Question codes are LOINC observation codes; answer codes are LOINC answer codes
(``LA...``). Sources: LOINC's answer lists, as docs/contract.md's Scoring section
reads them, and the HL7 Gravity SDOH Clinical Care IG STU 2.3 examples (the PRAPARE answer codes are
the ones of the IG's PRAPARE Questionnaire and QuestionnaireResponse example).

Note that AHC HRSN and PRAPARE share question codes (71802-3 housing, 93030-5
transportation) but not answer lists: an answer code is only meaningful
together with its instrument.

These are the codes only: which answers are positive, how the safety items
score and every other scoring rule live in :mod:`streams.decisions.scoring`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from schemas.codes import Instrument

# ------------------------------------------------------------------ shared answers
YES: Final = "LA33-6"
NO: Final = "LA32-8"
UNSURE: Final = "LA14072-5"
#: PRAPARE's "I choose not to answer this question".
CHOOSE_NOT_TO_ANSWER: Final = "LA30122-8"

# ------------------------------------------------------------------ Hunger Vital Sign
HVS_PANEL: Final = "88121-9"
HVS_WORRIED: Final = "88122-7"  # worried whether food would run out
HVS_RAN_OUT: Final = "88123-5"  # food didn't last, no money to get more
HVS_RISK: Final = "88124-3"  # derived: food insecurity risk

HVS_OFTEN_TRUE: Final = "LA28397-0"
HVS_SOMETIMES_TRUE: Final = "LA6729-3"
HVS_NEVER_TRUE: Final = "LA28398-8"
HVS_DONT_KNOW: Final = "LA15775-2"  # don't know / refused
HVS_AT_RISK: Final = "LA19952-3"
HVS_NO_RISK: Final = "LA19983-8"

HVS_ITEMS: Final = (HVS_WORRIED, HVS_RAN_OUT)
HVS_ITEM_ANSWERS: Final = frozenset(
    {HVS_OFTEN_TRUE, HVS_SOMETIMES_TRUE, HVS_NEVER_TRUE, HVS_DONT_KNOW}
)
HVS_RISK_ANSWERS: Final = frozenset({HVS_AT_RISK, HVS_NO_RISK})

# ------------------------------------------------------------------ AHC HRSN core
AHC_PANEL: Final = "96777-8"

AHC_LIVING_SITUATION: Final = "71802-3"
# Follow LOINC's meaning of each answer: one IG example swaps the labels of the last two.
AHC_STEADY_NOT_WORRIED: Final = "LA31993-1"  # steady place, not worried: negative
AHC_STEADY_WORRIED: Final = "LA31994-9"  # steady place, worried about losing it
AHC_NO_STEADY_PLACE: Final = "LA31995-6"  # no steady place to live
AHC_LIVING_SITUATION_ANSWERS: Final = frozenset(
    {AHC_STEADY_NOT_WORRIED, AHC_STEADY_WORRIED, AHC_NO_STEADY_PLACE}
)

AHC_HOUSING_PROBLEMS: Final = "96778-6"  # multi-select: the question repeats
AHC_PESTS: Final = "LA31996-4"
AHC_MOLD: Final = "LA28580-1"
AHC_LEAD: Final = "LA31997-2"
AHC_INADEQUATE_HEAT: Final = "LA31998-0"
AHC_OVEN_STOVE: Final = "LA31999-8"
AHC_SMOKE_DETECTORS: Final = "LA32000-4"  # smoke detectors missing or not working
AHC_WATER_LEAKS: Final = "LA32001-2"
AHC_HOUSING_NONE: Final = "LA9-3"  # none of the above
AHC_HOUSING_PROBLEM_ANSWERS: Final = (
    AHC_PESTS,
    AHC_MOLD,
    AHC_LEAD,
    AHC_INADEQUATE_HEAT,
    AHC_OVEN_STOVE,
    AHC_SMOKE_DETECTORS,
    AHC_WATER_LEAKS,
)

AHC_FOOD_ITEMS: Final = HVS_ITEMS  # AHC asks the two Hunger Vital Sign items

AHC_TRANSPORTATION: Final = "93030-5"
AHC_TRANSPORTATION_ANSWERS: Final = frozenset({YES, NO})

AHC_UTILITIES: Final = "96779-4"
AHC_UTILITIES_SHUT_OFF: Final = "LA32002-0"  # already shut off
AHC_UTILITIES_ANSWERS: Final = frozenset({YES, NO, AHC_UTILITIES_SHUT_OFF})

AHC_SAFETY_HURT: Final = "95618-5"
AHC_SAFETY_INSULT: Final = "95617-7"
AHC_SAFETY_THREATEN: Final = "95616-9"
AHC_SAFETY_SCREAM: Final = "95615-1"  # scream or curse
AHC_SAFETY_TOTAL: Final = "95614-4"  # total safety score
AHC_SAFETY_ITEMS: Final = (
    AHC_SAFETY_HURT,
    AHC_SAFETY_INSULT,
    AHC_SAFETY_THREATEN,
    AHC_SAFETY_SCREAM,
)
AHC_NEVER: Final = "LA6270-8"
AHC_RARELY: Final = "LA10066-1"
AHC_SOMETIMES: Final = "LA10082-8"
AHC_FAIRLY_OFTEN: Final = "LA16644-9"
AHC_FREQUENTLY: Final = "LA6482-9"

# ------------------------------------------------------------------ PRAPARE
PRAPARE_PANEL: Final = "93025-5"
PRAPARE_GROUPS: Final = frozenset(
    {
        "93043-8",  # personal characteristics
        "93042-0",  # family and home
        "93041-2",  # money and resources
        "93040-4",  # social and emotional health
        "93039-6",  # optional additional questions
    }
)

PRAPARE_HOUSING: Final = "71802-3"
PRAPARE_HAVE_HOUSING: Final = "LA30189-7"
PRAPARE_NO_HOUSING: Final = "LA30190-5"  # staying with others, shelter, street, car...
PRAPARE_HOUSING_ANSWERS: Final = frozenset(
    {PRAPARE_HAVE_HOUSING, PRAPARE_NO_HOUSING, CHOOSE_NOT_TO_ANSWER}
)

PRAPARE_HOUSING_WORRY: Final = "93033-9"  # worried about losing your housing
PRAPARE_YES_NO_ANSWERS: Final = frozenset({YES, NO, CHOOSE_NOT_TO_ANSWER})

PRAPARE_UNABLE_TO_GET: Final = "93031-3"  # multi-select
PRAPARE_FOOD: Final = "LA30125-1"
PRAPARE_CLOTHING: Final = "LA30126-9"
PRAPARE_UTILITIES: Final = "LA30124-4"
PRAPARE_CHILD_CARE: Final = "LA30127-7"
PRAPARE_MEDICINE: Final = "LA30128-5"  # medicine or any health care
PRAPARE_PHONE: Final = "LA30129-3"
PRAPARE_OTHER: Final = "LA46-8"
PRAPARE_UNABLE_TO_GET_ITEMS: Final = (
    PRAPARE_FOOD,
    PRAPARE_CLOTHING,
    PRAPARE_UTILITIES,
    PRAPARE_CHILD_CARE,
    PRAPARE_MEDICINE,
    PRAPARE_PHONE,
    PRAPARE_OTHER,
)

PRAPARE_TRANSPORTATION: Final = "93030-5"  # multi-select in PRAPARE
PRAPARE_TRANSPORT_MEDICAL: Final = "LA30133-5"  # kept me from medical appointments
PRAPARE_TRANSPORT_NON_MEDICAL: Final = "LA30134-3"  # kept me from non-medical needs
PRAPARE_UNABLE_TO_RESPOND: Final = "LA30257-2"  # patient unable to respond

PRAPARE_SOCIAL_CONTACT: Final = "93029-7"
PRAPARE_LESS_THAN_WEEKLY: Final = "LA27722-0"
PRAPARE_SOCIAL_CONTACT_ANSWERS: Final = frozenset(
    {
        PRAPARE_LESS_THAN_WEEKLY,
        "LA30130-1",  # 1 or 2 times a week
        "LA30131-9",  # 3 to 5 times a week
        "LA30132-7",  # 5 or more times a week
        CHOOSE_NOT_TO_ANSWER,
    }
)

PRAPARE_STRESS: Final = "93038-8"
PRAPARE_STRESS_NOT_AT_ALL: Final = "LA6568-5"
PRAPARE_STRESS_A_LITTLE: Final = "LA13863-8"
PRAPARE_STRESS_SOMEWHAT: Final = "LA13909-9"
PRAPARE_STRESS_QUITE_A_BIT: Final = "LA13902-4"
PRAPARE_STRESS_VERY_MUCH: Final = "LA13914-9"
PRAPARE_STRESS_ANSWERS: Final = frozenset(
    {
        PRAPARE_STRESS_NOT_AT_ALL,
        PRAPARE_STRESS_A_LITTLE,
        PRAPARE_STRESS_SOMEWHAT,
        PRAPARE_STRESS_QUITE_A_BIT,
        PRAPARE_STRESS_VERY_MUCH,
        CHOOSE_NOT_TO_ANSWER,
    }
)

PRAPARE_INCARCERATION: Final = "93028-9"  # >2 nights in jail etc. in the past year
PRAPARE_REFUGEE: Final = "93027-1"
PRAPARE_FEEL_SAFE: Final = "93026-3"  # physically and emotionally safe where you live
PRAPARE_AFRAID_OF_PARTNER: Final = "76501-6"
PRAPARE_SAFETY_ANSWERS: Final = frozenset({YES, NO, UNSURE, CHOOSE_NOT_TO_ANSWER})

#: Items PRAPARE asks that refnet reads but does not score (demographics, assets).
PRAPARE_UNSCORED: Final = frozenset(
    {
        "56051-6",  # Hispanic or Latino
        "32624-9",  # race
        "93035-4",  # seasonal or migrant farm work
        "93034-7",  # discharged from the armed forces
        "54899-0",  # preferred language
        "63512-8",  # people living at this address
        "56799-0",  # address
        "82589-3",  # highest level of education
        "67875-5",  # employment status
        "76437-3",  # primary insurance
        "63586-2",  # family income last year
        PRAPARE_REFUGEE,
    }
)

# ------------------------------------------------------------------ catalog
PANELS: Final[Mapping[Instrument, str]] = {
    Instrument.HUNGER_VITAL_SIGN: HVS_PANEL,
    Instrument.AHC_HRSN: AHC_PANEL,
    Instrument.PRAPARE: PRAPARE_PANEL,
}
INSTRUMENT_BY_PANEL: Final[Mapping[str, Instrument]] = {
    panel: instrument for instrument, panel in PANELS.items()
}

#: Every question code an instrument may carry (panel and group codes included).
QUESTIONS: Final[Mapping[Instrument, frozenset[str]]] = {
    Instrument.HUNGER_VITAL_SIGN: frozenset({HVS_PANEL, *HVS_ITEMS, HVS_RISK}),
    Instrument.AHC_HRSN: frozenset(
        {
            AHC_PANEL,
            AHC_LIVING_SITUATION,
            AHC_HOUSING_PROBLEMS,
            *AHC_FOOD_ITEMS,
            HVS_RISK,
            AHC_TRANSPORTATION,
            AHC_UTILITIES,
            *AHC_SAFETY_ITEMS,
            AHC_SAFETY_TOTAL,
        }
    ),
    Instrument.PRAPARE: frozenset(
        {
            PRAPARE_PANEL,
            *PRAPARE_GROUPS,
            PRAPARE_HOUSING,
            PRAPARE_HOUSING_WORRY,
            PRAPARE_UNABLE_TO_GET,
            PRAPARE_TRANSPORTATION,
            PRAPARE_SOCIAL_CONTACT,
            PRAPARE_STRESS,
            PRAPARE_INCARCERATION,
            PRAPARE_FEEL_SAFE,
            PRAPARE_AFRAID_OF_PARTNER,
            *PRAPARE_UNSCORED,
        }
    ),
}

#: Questions whose answer is a set: the question repeats, once per selected answer.
MULTI_SELECT: Final[Mapping[Instrument, frozenset[str]]] = {
    Instrument.HUNGER_VITAL_SIGN: frozenset(),
    Instrument.AHC_HRSN: frozenset({AHC_HOUSING_PROBLEMS}),
    Instrument.PRAPARE: frozenset(
        {PRAPARE_UNABLE_TO_GET, PRAPARE_TRANSPORTATION, "32624-9"}  # 32624-9: race
    ),
}

#: Questionnaire canonicals known to carry each instrument (Gravity IG examples).
QUESTIONNAIRE_CANONICALS: Final[Mapping[str, Instrument]] = {
    "http://hl7.org/fhir/us/sdoh-clinicalcare/Questionnaire/SDOHCC-QuestionnaireHungerVitalSign": (
        Instrument.HUNGER_VITAL_SIGN
    ),
    "http://hl7.org/fhir/us/sdoh-clinicalcare/Questionnaire/SDOHCC-QuestionnairePRAPARE": (
        Instrument.PRAPARE
    ),
}

__all__ = [
    "AHC_FAIRLY_OFTEN",
    "AHC_FOOD_ITEMS",
    "AHC_FREQUENTLY",
    "AHC_HOUSING_NONE",
    "AHC_HOUSING_PROBLEMS",
    "AHC_HOUSING_PROBLEM_ANSWERS",
    "AHC_INADEQUATE_HEAT",
    "AHC_LEAD",
    "AHC_LIVING_SITUATION",
    "AHC_LIVING_SITUATION_ANSWERS",
    "AHC_MOLD",
    "AHC_NEVER",
    "AHC_NO_STEADY_PLACE",
    "AHC_OVEN_STOVE",
    "AHC_PANEL",
    "AHC_PESTS",
    "AHC_RARELY",
    "AHC_SAFETY_HURT",
    "AHC_SAFETY_INSULT",
    "AHC_SAFETY_ITEMS",
    "AHC_SAFETY_SCREAM",
    "AHC_SAFETY_THREATEN",
    "AHC_SAFETY_TOTAL",
    "AHC_SMOKE_DETECTORS",
    "AHC_SOMETIMES",
    "AHC_STEADY_NOT_WORRIED",
    "AHC_STEADY_WORRIED",
    "AHC_TRANSPORTATION",
    "AHC_TRANSPORTATION_ANSWERS",
    "AHC_UTILITIES",
    "AHC_UTILITIES_ANSWERS",
    "AHC_UTILITIES_SHUT_OFF",
    "AHC_WATER_LEAKS",
    "CHOOSE_NOT_TO_ANSWER",
    "HVS_AT_RISK",
    "HVS_DONT_KNOW",
    "HVS_ITEMS",
    "HVS_ITEM_ANSWERS",
    "HVS_NEVER_TRUE",
    "HVS_NO_RISK",
    "HVS_OFTEN_TRUE",
    "HVS_PANEL",
    "HVS_RAN_OUT",
    "HVS_RISK",
    "HVS_RISK_ANSWERS",
    "HVS_SOMETIMES_TRUE",
    "HVS_WORRIED",
    "INSTRUMENT_BY_PANEL",
    "MULTI_SELECT",
    "NO",
    "PANELS",
    "PRAPARE_AFRAID_OF_PARTNER",
    "PRAPARE_CHILD_CARE",
    "PRAPARE_CLOTHING",
    "PRAPARE_FEEL_SAFE",
    "PRAPARE_FOOD",
    "PRAPARE_GROUPS",
    "PRAPARE_HAVE_HOUSING",
    "PRAPARE_HOUSING",
    "PRAPARE_HOUSING_ANSWERS",
    "PRAPARE_HOUSING_WORRY",
    "PRAPARE_INCARCERATION",
    "PRAPARE_LESS_THAN_WEEKLY",
    "PRAPARE_MEDICINE",
    "PRAPARE_NO_HOUSING",
    "PRAPARE_OTHER",
    "PRAPARE_PANEL",
    "PRAPARE_PHONE",
    "PRAPARE_REFUGEE",
    "PRAPARE_SAFETY_ANSWERS",
    "PRAPARE_SOCIAL_CONTACT",
    "PRAPARE_SOCIAL_CONTACT_ANSWERS",
    "PRAPARE_STRESS",
    "PRAPARE_STRESS_ANSWERS",
    "PRAPARE_STRESS_A_LITTLE",
    "PRAPARE_STRESS_NOT_AT_ALL",
    "PRAPARE_STRESS_QUITE_A_BIT",
    "PRAPARE_STRESS_SOMEWHAT",
    "PRAPARE_STRESS_VERY_MUCH",
    "PRAPARE_TRANSPORTATION",
    "PRAPARE_TRANSPORT_MEDICAL",
    "PRAPARE_TRANSPORT_NON_MEDICAL",
    "PRAPARE_UNABLE_TO_GET",
    "PRAPARE_UNABLE_TO_GET_ITEMS",
    "PRAPARE_UNABLE_TO_RESPOND",
    "PRAPARE_UNSCORED",
    "PRAPARE_UTILITIES",
    "PRAPARE_YES_NO_ANSWERS",
    "QUESTIONNAIRE_CANONICALS",
    "QUESTIONS",
    "UNSURE",
    "YES",
]
