"""The parties ``refnet demo`` plays: clinics that screen, organizations that answer.

Pure parts, tested without a broker: :class:`DemoConfig` (``deploy/data/demo.toml``),
:class:`Clinics` (screenings with a realistic mix of instruments, needs and
consent), :class:`Organizations` (what each organization does with an offer,
and when) and :class:`Tally` (the summary, from the network's event log).
The asyncio shell that moves their messages is :mod:`deploy.demo`.

Randomness is seeded: the screenings follow from ``--seed``, and an
organization's decision about an offer follows from the seed, the referral and
the attempt, so a run decides the same way whatever order messages arrive in.
"""

from __future__ import annotations

import random
import statistics
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from schemas import instruments as loinc
from schemas.codes import Category, Instrument, OrgStatus, TaskStatus
from schemas.events import (
    ConsentUpdated,
    ReferralOffered,
    ReferralStateChanged,
    ReferralStatusChanged,
    ScreeningSubmitted,
    ServiceCapacityChanged,
    ServiceUpserted,
)

#: One answer as a screening carries it.
AnswerDict = dict[str, str]

DATA: Final = Path(__file__).resolve().parent / "data"
DEMO_CONFIG: Final = DATA / "demo.toml"
SAMPLE_REGION: Final = DATA / "dallas" / "directory.json"

GIVEN_NAMES: Final = (
    "Ana", "Luis", "Maria", "James", "Keisha", "Tran", "Linh", "Abebe", "Selam", "Jose",
    "Grace", "Marcus", "Rosa", "Daniel", "Hanh", "Tigist", "Carmen", "Andre", "Lupe", "Noah",
)  # fmt: skip


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ClinicConfig:
    id: str
    name: str
    postal_codes: tuple[str, ...]
    languages: Mapping[str, float]


@dataclass(frozen=True)
class DemoConfig:
    """``demo.toml``: instruments, prevalence, consent, clinics and organizations' habits."""

    instruments: Mapping[Instrument, float]
    prevalence: Mapping[Instrument, Mapping[Category, float]]
    consent: Mapping[str, float]
    ages: Mapping[str, float]
    clinics: tuple[ClinicConfig, ...]
    organizations: Mapping[str, Any]
    silent_by_name: Mapping[str, float]
    not_eligible_by_category: Mapping[Category, float]
    outcome_hours: Mapping[str, tuple[float, float]]

    @classmethod
    def load(cls, path: Path = DEMO_CONFIG) -> DemoConfig:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        orgs = dict(doc["organizations"])
        silent_by_name = orgs.pop("silent_by_name", {})
        strict = orgs.pop("not_eligible_by_category", {})
        return cls(
            instruments={Instrument(k): float(v) for k, v in doc["instruments"].items()},
            prevalence={
                Instrument(k): {Category(c): float(p) for c, p in v.items()}
                for k, v in doc["prevalence"].items()
            },
            consent={k: float(v) for k, v in doc["consent"].items()},
            ages={k: float(v) for k, v in doc["ages"].items()},
            clinics=tuple(
                ClinicConfig(c["id"], c["name"], tuple(c["postal_codes"]), dict(c["languages"]))
                for c in doc["clinics"]
            ),
            organizations=orgs,
            silent_by_name={str(k): float(v) for k, v in silent_by_name.items()},
            not_eligible_by_category={Category(k): float(v) for k, v in strict.items()},
            outcome_hours={k: (float(v[0]), float(v[1])) for k, v in doc["outcome_hours"].items()},
        )


def _pick(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


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

    def next(self, now: datetime) -> Screening:
        rng, config = self.rng, self.config
        self.count += 1
        clinic = config.clinics[rng.randrange(len(config.clinics))]
        instrument: Instrument = _pick(rng, config.instruments)
        needs = {c for c, p in config.prevalence[instrument].items() if rng.random() < p}
        if Category.HOMELESSNESS in needs and instrument is Instrument.AHC_HRSN:
            needs.discard(Category.HOUSING_INSTABILITY)  # one answer to the living-situation item
        patient_id = f"pt-{self.token}-{self.count:05d}"
        patient = {
            "id": patient_id,
            "given_name": rng.choice(GIVEN_NAMES),
            "phone": f"+1214555{rng.randrange(100, 200):04d}",  # 555-01xx: reserved for fiction
            "preferred_language": _pick(rng, clinic.languages),
            "postal_code": rng.choice(clinic.postal_codes),
            "birth_date": self._birth_date(rng).isoformat(),
        }
        kind = _pick(rng, {k: v for k, v in config.consent.items() if k != "narrowed_later"})
        categories: list[Category] | None = None
        if kind == "narrowed" and len(needs) > 1:  # consents to all of them but one
            categories = sorted(rng.sample(sorted(needs), k=len(needs) - 1))
        consent = {"granted": kind != "declined", "categories": categories, "expires_at": None}
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
                consent={"granted": True, "categories": keep, "expires_at": None},
            )
        return Screening(clinic.id, event, frozenset(needs), later)

    def _birth_date(self, rng: random.Random) -> date:
        group = _pick(rng, self.config.ages)
        low, high = {"child": (2, 17), "adult": (18, 59), "older": (60, 88)}[group]
        years = rng.randint(low, high)
        return self.today - timedelta(days=365 * years + rng.randint(30, 330))


# ---------------------------------------------------------------- organizations
@dataclass
class Action:
    """Something an organization does ``after`` seconds (real time) from now."""

    after: float
    topic_org: str
    key: str
    event: ReferralStatusChanged | ServiceCapacityChanged


@dataclass
class _Service:
    event: ServiceUpserted
    real: int | None
    taken: int = 0
    reported: int | None = None


class Organizations:
    """Every organization of the region: how it answers offers and reports capacity."""

    def __init__(
        self,
        services: Sequence[ServiceUpserted],
        org_names: Mapping[str, str],
        config: DemoConfig,
        *,
        seed: int,
        speed: float,
    ) -> None:
        self.config = config
        self.seed = seed
        self.speed = speed
        habits = config.organizations
        self.silent_by_org = {
            org_id: config.silent_by_name.get(name, float(habits["silent"]))
            for org_id, name in org_names.items()
        }
        rng = random.Random(f"{seed}:capacity")
        low, high = habits["real_capacity"]
        self.services: dict[str, _Service] = {}
        for service in services:
            advertised = service.capacity.available if service.capacity else None
            real = (
                None if advertised is None else max(1, round(advertised * rng.uniform(low, high)))
            )
            self.services[service.service_id] = _Service(service, real)
        #: referral -> service it holds a place in
        self.holding: dict[str, str] = {}

    def on_offer(self, org_id: str, offer: ReferralOffered) -> list[Action]:
        """What the organization does with an offer: nothing, reject, or accept then finish."""
        habits = self.config.organizations
        rng = random.Random(f"{self.seed}:{offer.referral_id}:{offer.service_id}")
        if rng.random() < self.silent_by_org.get(org_id, float(habits["silent"])):
            return []  # the offer times out at respond_by
        window = max(0.0, (offer.respond_by - offer.occurred_at).total_seconds())
        low, high = habits["answer_within"]
        delay = window * rng.uniform(low, high)
        service = self.services.get(offer.service_id)
        rid = offer.referral_id
        strict = self.config.not_eligible_by_category.get(offer.category)
        if rng.random() < (strict if strict is not None else float(habits["not_eligible"])):
            return [self._status(delay, org_id, rid, OrgStatus.REJECTED, reason="not-eligible")]
        if service is not None and service.real is not None and service.taken >= service.real:
            actions = [self._status(delay, org_id, rid, OrgStatus.REJECTED, reason="no-capacity")]
            if service.reported != 0:
                service.reported = 0
                actions.append(self._capacity(delay, org_id, offer.service_id, 0))
            return actions
        if service is not None:
            service.taken += 1
        self.holding[rid] = offer.service_id
        actions = [self._status(delay, org_id, rid, OrgStatus.ACCEPTED)]
        category = offer.category.value
        hours = self.config.outcome_hours.get(category) or self.config.outcome_hours["default"]
        done = delay + rng.uniform(*hours) * 3600 / self.speed
        if hours[0] >= 24:
            actions.append(
                self._status(delay + (done - delay) * 0.25, org_id, rid, OrgStatus.IN_PROGRESS)
            )
        roll = rng.random()
        if roll < float(habits["completed"]):
            actions.append(
                self._status(done, org_id, rid, OrgStatus.COMPLETED, outcome="service-provided")
            )
        elif roll < float(habits["completed"]) + float(habits["could_not_contact"]):
            actions.append(
                self._status(done, org_id, rid, OrgStatus.FAILED, reason="could-not-contact")
            )
        else:
            actions.append(
                self._status(done, org_id, rid, OrgStatus.FAILED, reason="client-declined")
            )
        return actions

    def release(self, referral_id: str) -> None:
        """The referral ended (outcome sent, or withdrawn): its place is free again."""
        service_id = self.holding.pop(referral_id, None)
        if service_id is not None and service_id in self.services:
            self.services[service_id].taken = max(0, self.services[service_id].taken - 1)

    def capacity_reports(self) -> list[Action]:
        """The periodic reports: each service whose free places changed since the last one."""
        actions = []
        for service_id, service in self.services.items():
            if service.real is None:
                continue
            free = max(0, service.real - service.taken)
            if free != service.reported:
                service.reported = free
                actions.append(self._capacity(0.0, service.event.org_id, service_id, free))
        return actions

    def _status(
        self,
        after: float,
        org_id: str,
        referral_id: str,
        status: OrgStatus,
        *,
        reason: str | None = None,
        outcome: str | None = None,
    ) -> Action:
        event = ReferralStatusChanged.new(
            referral_id=referral_id, status=status, reason=reason, outcome=outcome
        )
        return Action(after, org_id, referral_id, event)

    def _capacity(self, after: float, org_id: str, service_id: str, available: int) -> Action:
        event = ServiceCapacityChanged.new(service_id=service_id, available=available)
        return Action(after, org_id, service_id, event)


# ---------------------------------------------------------------- summary
SUMMARY_KEYS: Final = (
    "screenings",
    "needs",
    "offers",
    "accepted",
    "rejected",
    "timeouts",
    "completed",
    "unmatched",
    "loop_closure_rate",
    "median_time_to_accept_s",
)


@dataclass
class Tally:
    """What the network did, counted from its event log (``referral.state-changed``)."""

    screenings: int = 0
    scored: int = 0
    needs: int = 0
    offers: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    unmatched: Counter[str] = field(default_factory=Counter)
    consent_required: int = 0
    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    offered_referrals: set[str] = field(default_factory=set)
    closed_loops: set[str] = field(default_factory=set)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    accept_seconds: list[float] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)

    def scored_screening(self, needs: int) -> None:
        self.scored += 1
        self.needs += needs

    def state_changed(self, event: ReferralStateChanged, *, org_names: Mapping[str, str]) -> None:
        rid = event.referral_id
        category = event.category.value
        counts = self.by_category.setdefault(category, Counter())
        self.first_seen.setdefault(rid, event.occurred_at)
        business = event.business_status.value if event.business_status else None
        org = org_names.get(event.org_id or "", event.org_id or "")
        line: str | None = None
        if event.reason == "timeout":
            self.timeouts += 1
            counts["timeouts"] += 1
            line = f"{category}: {org} did not answer in time; re-routed"
        elif event.to_status is TaskStatus.REQUESTED and business == "offered":
            self.offers += 1
            counts["offered"] += 1
            self.offered_referrals.add(rid)
            line = f"{category}: offered to {org} (attempt {event.attempt})"
        elif event.to_status is TaskStatus.ACCEPTED:
            self.accepted += 1
            counts["accepted"] += 1
            start = self.first_seen.get(rid, event.occurred_at)
            self.accept_seconds.append(max(0.0, (event.occurred_at - start).total_seconds()))
            line = f"{category}: {org} accepted"
        elif event.to_status is TaskStatus.REJECTED:
            self.rejected[event.reason or "other"] += 1
            counts["rejected"] += 1
            line = f"{category}: {org} rejected ({event.reason})"
        elif event.to_status is TaskStatus.COMPLETED:
            self.completed += 1
            counts["completed"] += 1
            self.closed_loops.add(rid)
            line = f"{category}: {org} completed"
        elif event.to_status is TaskStatus.FAILED:
            if business == "unmatched":
                self.unmatched[category] += 1
                counts["unmatched"] += 1
                line = f"{category}: no service left ({event.reason})"
            elif business == "consent-required":
                self.consent_required += 1
                line = f"{category}: consent does not cover it ({event.reason})"
            else:
                self.failed[event.reason or "other"] += 1
                if event.actor.value == "organization":
                    self.closed_loops.add(rid)
                line = f"{category}: {org} failed ({event.reason})"
        if line is not None:
            self.recent.append(line)
            del self.recent[:-8]

    def summary(self) -> dict[str, Any]:
        """The summary the issue names (``--json`` prints exactly this object)."""
        rate = (
            len(self.closed_loops & self.offered_referrals) / len(self.offered_referrals)
            if self.offered_referrals
            else 0.0
        )
        median = statistics.median(self.accept_seconds) if self.accept_seconds else None
        return {
            "screenings": self.screenings,
            "needs": self.needs,
            "offers": self.offers,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "timeouts": self.timeouts,
            "completed": self.completed,
            "unmatched": dict(sorted(self.unmatched.items())),
            "loop_closure_rate": round(rate, 3),
            "median_time_to_accept_s": round(median, 3) if median is not None else None,
        }


__all__ = [
    "DEMO_CONFIG",
    "SAMPLE_REGION",
    "SUMMARY_KEYS",
    "Action",
    "ClinicConfig",
    "Clinics",
    "DemoConfig",
    "Organizations",
    "Screening",
    "Tally",
    "answers_for",
]
