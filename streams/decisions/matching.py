"""Ranking services for a referral: the network's matching rules, as a pure function.

docs/contract.md ("Semantics the network promises") fixes the rules; this module is
their single implementation. :func:`rank` takes the directory (or the part of
it the caller has), what the referral needs, and what the network knows about
past offers, and returns the services to offer, best first. The referral agent
offers the first candidate; on a timeout or a rejection it adds that service to
``excluded`` and ranks again, so a service is offered a given referral at most
once and a changed directory (capacity, new services) is always taken into
account. An empty result means ``failed`` / ``unmatched``;
:func:`explain_rejections` says why each service was left out.

Hard limits (a service failing any one is never offered):

1. ``status`` is ``active``.
2. ``categories`` contains the referral's category.
3. It serves the patient's postal code: the code is in ``postal_codes``
   (ZIP+4 compares as its ZIP), or the code's centroid lies within
   ``radius_km`` of ``location`` (inclusive). A service with neither a listed
   code nor a location and radius serves nobody. A patient postal code that has
   no known centroid can only match a listed code.
4. It admits the patient's age: ``min_age <= age <= max_age``, both bounds
   inclusive, a missing bound meaning no limit. **An unknown age passes only
   services with no age bounds**: offering an age-restricted service to someone
   whose age we do not know invites a ``not-eligible`` rejection, one of the
   top causes of failed loops, and costs the patient a full response window.
5. It has capacity left: ``capacity`` absent means unknown and passes;
   ``available <= 0`` means not now.
6. It is not in ``excluded`` (already offered this referral).

Order among the services that pass, each rule deciding only among services
tied on all the rules before it:

0. The service the clinician asked for (``requested_service_id``) comes first,
   when it passes the hard limits; otherwise the request is ignored.
1. Services speaking the patient's preferred language come first. Languages
   compare by primary subtag, case-insensitively: ``es`` matches ``es-MX`` and
   ``ES_us``. Without a preferred language no service is preferred.
2. Better record of answering in time first: the organization's smoothed
   on-time rate ``(answered_in_time + 1) / (answered_in_time + timed_out + 2)``
   (Laplace's rule of succession), compared exactly. An organization with no
   record scores 1/2, as does one with as many timeouts as answers in time.
3. More remaining capacity first (``capacity.available``, compared across
   services whatever their unit). **Unknown capacity comes after every known
   capacity**: a published count is evidence of room, an unknown one may be
   full, and the ranking rewards organizations that publish capacity. Services
   with unknown capacity tie with one another.
4. Ties share the load: fewer recent offers (``load[service_id]``, 0 when
   absent) first.
5. Finally ``service_id`` in ascending order, so the result does not depend on
   the order of the input.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from schemas.codes import Category, ServiceStatus
from schemas.events import Patient, ServiceUpserted
from streams.decisions.geo import LatLon, centroid, haversine_km, normalize_postal_code

#: Default time an organization has to accept or reject an offer: a service
#: level of "within 1 business day". The directory carries no business calendar
#: (opening days, holidays, time zones), so the network counts it as 24
#: wall-clock hours. An offer made on a Friday afternoon therefore times out on
#: Saturday: settings may raise the default (``REFNET_DEFAULT_RESPONSE_SLA``, e.g.
#: to 72 hours, the "re-route after 2 to 3 business days" level), and a
#: service's own ``response_sla`` always wins.
DEFAULT_RESPONSE_SLA: Final = timedelta(hours=24)


class Rejection(StrEnum):
    """Why a service cannot take a referral (one code per hard limit)."""

    INACTIVE = "inactive"
    CATEGORY_NOT_COVERED = "category-not-covered"
    OUTSIDE_SERVICE_AREA = "outside-service-area"
    AGE_NOT_ADMITTED = "age-not-admitted"
    NO_CAPACITY = "no-capacity"
    ALREADY_OFFERED = "already-offered"


class Coverage(StrEnum):
    """How a service covers the patient's postal code."""

    POSTAL_CODE = "postal-code"
    RADIUS = "radius"


@dataclass(frozen=True, slots=True)
class MatchRequest:
    """What a referral needs from a service.

    Attributes:
        category: the need.
        postal_code: the patient's postal code; ``None`` (unknown) is served
            by no service, so the referral ends unmatched.
        preferred_language: BCP 47 tag (``"es"``, ``"es-MX"``) or ``None``.
        age: whole years on the referral date (see :func:`age_on`); ``None``
            when unknown.
        requested_service_id: the service a clinician asked for, if any.
    """

    category: Category
    postal_code: str | None
    preferred_language: str | None = None
    age: int | None = None
    requested_service_id: str | None = None

    @classmethod
    def for_patient(
        cls,
        patient: Patient,
        category: Category,
        *,
        on: date,
        requested_service_id: str | None = None,
    ) -> MatchRequest:
        """The request for ``patient``'s ``category`` need, aged on the referral date ``on``."""
        return cls(
            category=category,
            postal_code=patient.postal_code,
            preferred_language=patient.preferred_language,
            age=age_on(patient.birth_date, on),
            requested_service_id=requested_service_id,
        )


@dataclass(frozen=True, slots=True)
class OrgRecord:
    """How an organization has answered offers: in time, or by letting them time out."""

    answered_in_time: int = 0
    timed_out: int = 0

    @property
    def on_time_score(self) -> Fraction:
        """Smoothed on-time rate; exactly 1/2 for an organization with no record."""
        answered = max(self.answered_in_time, 0)
        total = answered + max(self.timed_out, 0)
        return Fraction(answered + 1, total + 2)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A service that passes every hard limit, with the parts of its rank.

    The parts are kept for explainability: :meth:`explain` gives them as a
    plain dict for logs. None of them identifies the patient (``distance_km``
    is measured from the postal-code centroid, never from an address).
    """

    service: ServiceUpserted
    requested: bool
    language_match: bool
    on_time_score: Fraction
    available: int | None
    load: int
    coverage: Coverage
    distance_km: float | None = None

    @property
    def service_id(self) -> str:
        return self.service.service_id

    @property
    def org_id(self) -> str:
        return self.service.org_id

    def sort_key(self, score_place: int | None = None) -> tuple[Any, ...]:
        """The key :func:`rank` sorts by, ascending (best first). ``score_place`` is
        the on-time score's place among those compared (0 for the best), standing
        in for the score itself."""
        known = self.available is not None
        return (
            not self.requested,
            not self.language_match,
            -self.on_time_score if score_place is None else score_place,
            not known,
            -(self.available or 0),
            self.load,
            self.service_id,
        )

    def explain(self) -> dict[str, object]:
        """The rank's parts as a JSON-friendly dict (for logs and audit)."""
        return {
            "service_id": self.service_id,
            "org_id": self.org_id,
            "requested": self.requested,
            "language_match": self.language_match,
            "on_time_score": round(float(self.on_time_score), 4),
            "available": self.available,
            "load": self.load,
            "coverage": self.coverage.value,
            "distance_km": None if self.distance_km is None else round(self.distance_km, 2),
        }


_EMPTY_STATS: Final[Mapping[str, OrgRecord]] = MappingProxyType({})
_EMPTY_LOAD: Final[Mapping[str, int]] = MappingProxyType({})


# ---------------------------------------------------------------- helpers


def age_on(birth_date: date | None, day: date) -> int | None:
    """Age in whole years on ``day``; ``None`` when unknown.

    ``day`` is the referral date; a ``datetime`` counts by its own local date
    (pass the event's ``occurred_at`` with its offset). Someone born on 29
    February turns a year older on 1 March in common years. A birth date after
    ``day`` is bad data and gives ``None`` (unknown age) rather than an error,
    so that it narrows the match instead of stopping the referral.
    """
    if birth_date is None:
        return None
    if isinstance(day, datetime):
        day = day.date()
    if isinstance(birth_date, datetime):
        birth_date = birth_date.date()
    if birth_date > day:
        return None
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


@lru_cache(maxsize=4096)
def primary_language(tag: str) -> str:
    """Primary language subtag of a BCP 47 tag, lower-cased (``"es-MX"`` -> ``"es"``)."""
    return tag.strip().replace("_", "-").split("-", 1)[0].casefold()


def speaks(service: ServiceUpserted, language: str | None) -> bool:
    """Whether the service lists the language (by primary subtag)."""
    if not language:
        return False
    wanted = primary_language(language)
    return bool(wanted) and any(primary_language(lang) == wanted for lang in service.languages)


def respond_by(
    offered_at: datetime,
    service: ServiceUpserted,
    default_sla: timedelta = DEFAULT_RESPONSE_SLA,
) -> datetime:
    """When an offer made at ``offered_at`` times out.

    ``offered_at + service.response_sla``, or ``default_sla`` when the service
    declares none (or a non-positive one, which would withdraw the offer the
    moment it is made). ``offered_at`` must be timezone-aware.
    """
    if offered_at.tzinfo is None or offered_at.utcoffset() is None:
        raise ValueError(f"offered_at must be timezone-aware, got {offered_at!r}")
    sla = service.response_sla
    if sla is None or sla <= timedelta(0):
        sla = default_sla
    return offered_at + sla


# ---------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class _Patient:
    """What the limits need from a request, computed once per ranking."""

    request: MatchRequest
    postal_code: str | None
    point: LatLon | None

    @classmethod
    def of(cls, request: MatchRequest) -> _Patient:
        code = request.postal_code
        if code is None or not code.strip():
            return cls(request, None, None)
        return cls(request, normalize_postal_code(code), centroid(code))


def _coverage(service: ServiceUpserted, patient: _Patient) -> tuple[Coverage, float | None] | None:
    distance: float | None = None
    if service.location is not None and patient.point is not None:
        distance = haversine_km(patient.point, (service.location.lat, service.location.lon))
    if patient.postal_code is not None and any(
        normalize_postal_code(code) == patient.postal_code for code in service.postal_codes
    ):
        return Coverage.POSTAL_CODE, distance
    if distance is not None and service.radius_km is not None and distance <= service.radius_km:
        return Coverage.RADIUS, distance
    return None


def _admits_age(service: ServiceUpserted, age: int | None) -> bool:
    if age is None:
        return service.min_age is None and service.max_age is None
    if service.min_age is not None and age < service.min_age:
        return False
    return service.max_age is None or age <= service.max_age


def _available(service: ServiceUpserted) -> int | None:
    return None if service.capacity is None else service.capacity.available


def _check(
    service: ServiceUpserted, patient: _Patient, excluded: Collection[str]
) -> tuple[list[Rejection], tuple[Coverage, float | None] | None]:
    request = patient.request
    reasons: list[Rejection] = []
    if service.status != ServiceStatus.ACTIVE:
        reasons.append(Rejection.INACTIVE)
    if request.category not in service.categories:
        reasons.append(Rejection.CATEGORY_NOT_COVERED)
    coverage = _coverage(service, patient)
    if coverage is None:
        reasons.append(Rejection.OUTSIDE_SERVICE_AREA)
    if not _admits_age(service, request.age):
        reasons.append(Rejection.AGE_NOT_ADMITTED)
    available = _available(service)
    if available is not None and available <= 0:
        reasons.append(Rejection.NO_CAPACITY)
    if service.service_id in excluded:
        reasons.append(Rejection.ALREADY_OFFERED)
    return reasons, coverage


def _unique(services: Iterable[ServiceUpserted]) -> list[ServiceUpserted]:
    listed = list(services)
    ids = [s.service_id for s in listed]
    if len(set(ids)) != len(ids):
        # The directory table is keyed by service_id; two versions of one
        # service would make the result depend on which one came first.
        raise ValueError("services must have distinct service_id values")
    return listed


# ---------------------------------------------------------------- ranking


def rank(
    services: Iterable[ServiceUpserted],
    need: MatchRequest,
    *,
    excluded: Collection[str] = (),
    org_stats: Mapping[str, OrgRecord] = _EMPTY_STATS,
    load: Mapping[str, int] = _EMPTY_LOAD,
) -> list[Candidate]:
    """The services that may be offered this referral, best first.

    See the module docstring for the hard limits and the order. The result
    depends only on the set of services, not on their order.

    Args:
        services: the directory, distinct ``service_id`` values.
        need: what the referral needs.
        excluded: service ids already offered this referral.
        org_stats: answer record per ``org_id``; absent means no record.
        load: offers made recently per ``service_id``; absent means 0.

    Raises:
        ValueError: two services share a ``service_id``.
    """
    patient = _Patient.of(need)
    candidates: list[Candidate] = []
    #: each organization's score, computed once per call (Fractions are slow)
    scores: dict[str, Fraction] = {}
    for service in _unique(services):
        reasons, coverage = _check(service, patient, excluded)
        if reasons or coverage is None:
            continue
        score = scores.get(service.org_id)
        if score is None:
            record = org_stats.get(service.org_id)
            score = scores[service.org_id] = (record or OrgRecord()).on_time_score
        candidates.append(
            Candidate(
                service=service,
                requested=service.service_id == need.requested_service_id,
                language_match=speaks(service, need.preferred_language),
                on_time_score=score,
                available=_available(service),
                load=max(load.get(service.service_id, 0), 0),
                coverage=coverage[0],
                distance_km=coverage[1],
            )
        )
    # The scores' order, as integers: the sort compares those, not Fractions,
    # with the same result (equal scores get equal places).
    order = {score: n for n, score in enumerate(sorted(set(scores.values()), reverse=True))}
    place = {org_id: order[score] for org_id, score in scores.items()}
    candidates.sort(key=lambda c: c.sort_key(place[c.service.org_id]))
    return candidates


def explain_rejections(
    services: Iterable[ServiceUpserted],
    need: MatchRequest,
    *,
    excluded: Collection[str] = (),
) -> dict[str, tuple[Rejection, ...]]:
    """Every hard limit each service fails, by ``service_id``; passing services are left out.

    For logs and for the reason attached to an ``unmatched`` outcome.
    """
    patient = _Patient.of(need)
    failed: dict[str, tuple[Rejection, ...]] = {}
    for service in services:
        reasons, _ = _check(service, patient, excluded)
        if reasons:
            failed[service.service_id] = tuple(reasons)
    return failed


__all__ = [
    "DEFAULT_RESPONSE_SLA",
    "Candidate",
    "Coverage",
    "MatchRequest",
    "OrgRecord",
    "Rejection",
    "age_on",
    "explain_rejections",
    "primary_language",
    "rank",
    "respond_by",
    "speaks",
]
