"""The clinics ``refnet demo`` plays: screenings with a realistic mix of instruments,
needs and consent, seeded by ``--seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from deploy.demo.config import DemoConfig, pick
from schemas import instruments as loinc
from schemas.codes import Category, Instrument
from schemas.events import (
    ConsentUpdated,
    ScreeningSubmitted,
)

#: One answer as a screening carries it.
AnswerDict = dict[str, str]

GIVEN_NAMES: Final = (
    "Ana", "Luis", "Maria", "James", "Keisha", "Tran", "Linh", "Abebe", "Selam", "Jose",
    "Grace", "Marcus", "Rosa", "Daniel", "Hanh", "Tigist", "Carmen", "Andre", "Lupe", "Noah",
)  # fmt: skip
FAMILY_NAMES: Final = (
    "Garcia", "Hernandez", "Martinez", "Lopez", "Johnson", "Williams", "Nguyen", "Tran",
    "Smith", "Brown", "Jackson", "Davis", "Rodriguez", "Gonzalez", "Tesfaye", "Bekele",
    "Washington", "Robinson", "Perez", "Ramirez", "Le", "Pham", "Thomas", "Harris",
)  # fmt: skip
#: Share of patients with a compound family name (García-López).
COMPOUND_FAMILY: Final = 0.1
#: What those who consent let organizations hear of hospital encounters, when
#: ``demo.toml`` does not say (illustrative).
ENCOUNTER_ALERTS: Final = {"encounter": 0.8, "none": 0.2}


# ---------------------------------------------------------------- clinics
def answers_for(
    instrument: Instrument, needs: set[Category], rng: random.Random
) -> list[AnswerDict]:
    """LOINC answers that the instrument's scoring turns into exactly ``needs``."""
    if instrument is Instrument.HUNGER_VITAL_SIGN:
        return _food(Category.FOOD_INSECURITY in needs, rng)
    if instrument is Instrument.AHC_HRSN:
        return _ahc(needs, rng)
    return _prapare(needs, rng)


def _food(positive: bool, rng: random.Random) -> list[AnswerDict]:
    worried = rng.choice([loinc.HVS_OFTEN_TRUE, loinc.HVS_SOMETIMES_TRUE])
    if not positive:
        worried = loinc.HVS_NEVER_TRUE
    return [
        {"question": loinc.HVS_WORRIED, "answer": worried},
        {"question": loinc.HVS_RAN_OUT, "answer": loinc.HVS_NEVER_TRUE},
    ]


def _ahc(needs: set[Category], rng: random.Random) -> list[AnswerDict]:
    living = loinc.AHC_STEADY_NOT_WORRIED
    if Category.HOMELESSNESS in needs:
        living = loinc.AHC_NO_STEADY_PLACE
    elif Category.HOUSING_INSTABILITY in needs:
        living = loinc.AHC_STEADY_WORRIED
    answers = [{"question": loinc.AHC_LIVING_SITUATION, "answer": living}]
    if Category.INADEQUATE_HOUSING in needs:
        problems = rng.sample(loinc.AHC_HOUSING_PROBLEM_ANSWERS, k=rng.randint(1, 2))
    else:
        problems = [loinc.AHC_HOUSING_NONE]
    answers += [{"question": loinc.AHC_HOUSING_PROBLEMS, "answer": p} for p in problems]
    answers += _food(Category.FOOD_INSECURITY in needs, rng)
    transport = Category.TRANSPORTATION_INSECURITY in needs
    answers.append(
        {"question": loinc.AHC_TRANSPORTATION, "answer": loinc.YES if transport else loinc.NO}
    )
    utilities = rng.choice([loinc.YES, loinc.AHC_UTILITIES_SHUT_OFF])
    if Category.UTILITY_INSECURITY not in needs:
        utilities = loinc.NO
    answers.append({"question": loinc.AHC_UTILITIES, "answer": utilities})
    safety = loinc.AHC_SOMETIMES if Category.INTIMATE_PARTNER_VIOLENCE in needs else loinc.AHC_NEVER
    answers += [{"question": q, "answer": safety} for q in loinc.AHC_SAFETY_ITEMS]
    return answers


def _prapare(needs: set[Category], rng: random.Random) -> list[AnswerDict]:
    def yes_no(question: str, category: Category) -> AnswerDict:
        return {"question": question, "answer": loinc.YES if category in needs else loinc.NO}

    housing = (
        loinc.PRAPARE_NO_HOUSING if Category.HOMELESSNESS in needs else loinc.PRAPARE_HAVE_HOUSING
    )
    answers = [
        {"question": loinc.PRAPARE_HOUSING, "answer": housing},
        yes_no(loinc.PRAPARE_HOUSING_WORRY, Category.HOUSING_INSTABILITY),
    ]
    unable = {
        Category.FOOD_INSECURITY: loinc.PRAPARE_FOOD,
        Category.UTILITY_INSECURITY: loinc.PRAPARE_UTILITIES,
        Category.MATERIAL_HARDSHIP: rng.choice([loinc.PRAPARE_CLOTHING, loinc.PRAPARE_PHONE]),
        Category.MEDICAL_COST_BURDEN: loinc.PRAPARE_MEDICINE,
    }
    answers += [
        {"question": loinc.PRAPARE_UNABLE_TO_GET, "answer": code}
        for category, code in unable.items()
        if category in needs
    ]
    transport = (
        rng.choice([loinc.PRAPARE_TRANSPORT_MEDICAL, loinc.PRAPARE_TRANSPORT_NON_MEDICAL])
        if Category.TRANSPORTATION_INSECURITY in needs
        else loinc.NO
    )
    answers.append({"question": loinc.PRAPARE_TRANSPORTATION, "answer": transport})
    contact = "LA30131-9"  # 3 to 5 times a week
    if Category.SOCIAL_CONNECTION in needs:
        contact = loinc.PRAPARE_LESS_THAN_WEEKLY
    answers.append({"question": loinc.PRAPARE_SOCIAL_CONTACT, "answer": contact})
    stress = loinc.PRAPARE_STRESS_A_LITTLE
    if Category.STRESS in needs:
        stress = rng.choice([loinc.PRAPARE_STRESS_QUITE_A_BIT, loinc.PRAPARE_STRESS_VERY_MUCH])
    answers.append({"question": loinc.PRAPARE_STRESS, "answer": stress})
    safe = loinc.NO if Category.INTIMATE_PARTNER_VIOLENCE in needs else loinc.YES
    answers.append({"question": loinc.PRAPARE_FEEL_SAFE, "answer": safe})
    answers.append(yes_no(loinc.PRAPARE_INCARCERATION, Category.INCARCERATION_STATUS))
    return answers


@dataclass(frozen=True)
class Screening:
    clinic_id: str
    event: ScreeningSubmitted
    needs: frozenset[Category]
    #: a later consent.updated that narrows the consent (sent by the demo after a while)
    narrowed_later: ConsentUpdated | None = None


class Clinics:
    """Screenings as the demo's clinics submit them, one after another (seeded)."""

    def __init__(self, config: DemoConfig, seed: int, *, token: str, today: date) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.token = token
        self.today = today
        self.count = 0
        # family names and encounter-alert consent: a stream of their own, so that
        # the screenings and what organizations do stay as the seed made them before
        self.extra = random.Random(f"{seed}:patients")

    def next(self, now: datetime) -> Screening:
        rng, config = self.rng, self.config
        self.count += 1
        clinic = config.clinics[rng.randrange(len(config.clinics))]
        instrument: Instrument = pick(rng, config.instruments)
        needs = {c for c, p in config.prevalence[instrument].items() if rng.random() < p}
        if Category.HOMELESSNESS in needs and instrument is Instrument.AHC_HRSN:
            needs.discard(Category.HOUSING_INSTABILITY)  # one answer to the living-situation item
        patient_id = f"pt-{self.token}-{self.count:05d}"
        patient = {
            "id": patient_id,
            "given_name": rng.choice(GIVEN_NAMES),
            "family_name": self._family_name(),
            "phone": f"+1214555{rng.randrange(100, 200):04d}",  # 555-01xx: reserved for fiction
            "preferred_language": pick(rng, clinic.languages),
            "postal_code": rng.choice(clinic.postal_codes),
            "birth_date": self._birth_date(rng).isoformat(),
        }
        kind = pick(rng, {k: v for k, v in config.consent.items() if k != "narrowed_later"})
        categories: list[Category] | None = None
        if kind == "narrowed" and len(needs) > 1:  # consents to all of them but one
            categories = sorted(rng.sample(sorted(needs), k=len(needs) - 1))
        alerts = "none"
        if kind != "declined":
            alerts = pick(self.extra, config.encounter_alerts or ENCOUNTER_ALERTS)
        consent = {
            "granted": kind != "declined",
            "categories": categories,
            "expires_at": None,
            "encounter_alerts": alerts,
        }
        event = ScreeningSubmitted.new(
            occurred_at=now,
            screening_id=f"scr-{self.token}-{self.count:05d}",
            patient=patient,
            consent=consent,
            instrument=instrument,
            answers=answers_for(instrument, needs, rng),
        )
        later = None
        if (
            kind == "all"
            and len(needs) > 1
            and rng.random() < config.consent.get("narrowed_later", 0)
        ):
            keep = sorted(rng.sample(sorted(needs), k=len(needs) - 1))
            later = ConsentUpdated.new(
                patient_id=patient_id,
                consent={
                    "granted": True,
                    "categories": keep,
                    "expires_at": None,
                    "encounter_alerts": alerts,
                },
            )
        return Screening(clinic.id, event, frozenset(needs), later)

    def _family_name(self) -> str:
        family = self.extra.choice(FAMILY_NAMES)
        if self.extra.random() < COMPOUND_FAMILY:
            family = f"{family}-{self.extra.choice(FAMILY_NAMES)}"
        return family

    def _birth_date(self, rng: random.Random) -> date:
        group = pick(rng, self.config.ages)
        low, high = {"child": (2, 17), "adult": (18, 59), "older": (60, 88)}[group]
        years = rng.randint(low, high)
        return self.today - timedelta(days=365 * years + rng.randint(30, 330))
