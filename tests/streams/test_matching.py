"""Ranking services for a referral: every hard limit, every ordering rule, and properties."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codes import Category, ServiceStatus
from schemas.events import Capacity, Location, Patient, ServiceUpserted
from streams.decisions.geo import centroid, haversine_km, normalize_postal_code
from streams.decisions.matching import (
    DEFAULT_RESPONSE_SLA,
    Candidate,
    Coverage,
    MatchRequest,
    OrgRecord,
    Rejection,
    age_on,
    explain_rejections,
    rank,
    respond_by,
)

FOOD = Category.FOOD_INSECURITY
HOUSING = Category.HOUSING_INSTABILITY
BRONX_10451 = Location(lat=40.8222, lon=-73.9217)  # the 10451 centroid
LOS_ANGELES_90012 = Location(lat=34.0614, lon=-118.2385)


def service(
    service_id: str = "svc-pantry",
    *,
    org_id: str = "bronx-pantry",
    status: ServiceStatus = ServiceStatus.ACTIVE,
    categories: tuple[Category, ...] = (FOOD,),
    postal_codes: tuple[str, ...] = ("10451",),
    location: Location | None = None,
    radius_km: float | None = None,
    languages: tuple[str, ...] = ("en",),
    min_age: int | None = None,
    max_age: int | None = None,
    available: int | None = None,
    response_sla: timedelta | None = None,
) -> ServiceUpserted:
    return ServiceUpserted.new(
        service_id=service_id,
        org_id=org_id,
        name=f"Service {service_id}",
        status=status,
        categories=list(categories),
        postal_codes=list(postal_codes),
        location=location,
        radius_km=radius_km,
        languages=list(languages),
        min_age=min_age,
        max_age=max_age,
        capacity=None if available is None else Capacity(available=available, unit="households"),
        response_sla=response_sla,
    )


def need(
    postal_code: str | None = "10451",
    *,
    category: Category = FOOD,
    language: str | None = "en",
    age: int | None = 40,
    requested: str | None = None,
) -> MatchRequest:
    return MatchRequest(
        category=category,
        postal_code=postal_code,
        preferred_language=language,
        age=age,
        requested_service_id=requested,
    )


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.service_id for c in candidates]


# ------------------------------------------------------------------ hard limits


def test_an_active_service_meeting_every_limit_is_offered() -> None:
    (candidate,) = rank([service()], need())
    assert candidate.service_id == "svc-pantry"
    assert candidate.coverage is Coverage.POSTAL_CODE


@pytest.mark.parametrize(
    "status", [ServiceStatus.INACTIVE, ServiceStatus.DEFUNCT, ServiceStatus.TEMPORARILY_CLOSED]
)
def test_a_service_that_is_not_active_is_never_offered(status: ServiceStatus) -> None:
    svc = service(status=status)
    assert rank([svc], need()) == []
    assert explain_rejections([svc], need()) == {"svc-pantry": (Rejection.INACTIVE,)}


def test_a_service_not_covering_the_category_is_never_offered() -> None:
    svc = service(categories=(HOUSING,))
    assert rank([svc], need(category=FOOD)) == []
    assert explain_rejections([svc], need()) == {"svc-pantry": (Rejection.CATEGORY_NOT_COVERED,)}
    assert ids(rank([svc], need(category=HOUSING))) == ["svc-pantry"]


def test_a_service_listing_the_patients_postal_code_serves_them() -> None:
    svc = service(postal_codes=("10451", "10452"))
    assert ids(rank([svc], need("10452"))) == ["svc-pantry"]
    assert rank([svc], need("10456")) == []


def test_a_zip_plus_four_compares_as_its_zip_on_both_sides() -> None:
    assert ids(rank([service(postal_codes=("10451-0001",))], need("10451-2345"))) == ["svc-pantry"]


def test_a_service_whose_radius_reaches_the_patients_centroid_serves_them() -> None:
    svc = service(postal_codes=(), location=BRONX_10451, radius_km=2)  # 10456 is ~1.4 km away
    (candidate,) = rank([svc], need("10456"))
    assert candidate.coverage is Coverage.RADIUS
    assert candidate.distance_km is not None and 1 < candidate.distance_km < 2


def test_a_service_whose_radius_falls_short_of_the_patients_centroid_does_not_serve() -> None:
    svc = service(postal_codes=(), location=BRONX_10451, radius_km=2)  # 10027 is ~3 km away
    assert rank([svc], need("10027")) == []
    assert rank([svc], need("90012")) == []
    assert explain_rejections([svc], need("10027")) == {
        "svc-pantry": (Rejection.OUTSIDE_SERVICE_AREA,)
    }


def test_the_radius_is_inclusive_at_its_edge() -> None:
    here, there = centroid("10451"), centroid("10027")
    assert here is not None and there is not None
    edge = haversine_km(there, here)
    svc = service(postal_codes=(), location=BRONX_10451, radius_km=edge)
    assert ids(rank([svc], need("10027"))) == ["svc-pantry"]


def test_a_far_away_service_does_not_serve_the_bronx() -> None:
    svc = service(postal_codes=("90012",), location=LOS_ANGELES_90012, radius_km=50)
    assert rank([svc], need("10451")) == []
    assert ids(rank([svc], need("90012"))) == ["svc-pantry"]


def test_an_unknown_postal_code_is_served_only_by_a_service_listing_it() -> None:
    by_radius = service("svc-radius", postal_codes=(), location=BRONX_10451, radius_km=10_000)
    by_list = service("svc-listed", postal_codes=("00000",))
    assert ids(rank([by_radius, by_list], need("00000"))) == ["svc-listed"]


def test_a_patient_without_a_postal_code_is_served_by_no_service() -> None:
    svc = service(postal_codes=("10451",), location=BRONX_10451, radius_km=10_000)
    assert rank([svc], need(None)) == []
    assert rank([svc], need("  ")) == []


def test_a_service_with_no_area_serves_no_one() -> None:
    assert rank([service(postal_codes=())], need()) == []
    assert rank([service(postal_codes=(), location=BRONX_10451)], need()) == []


@pytest.mark.parametrize(
    ("age", "min_age", "max_age", "admitted"),
    [
        (17, 18, None, False),
        (18, 18, None, True),
        (65, None, 65, True),
        (66, None, 65, False),
        (0, 0, 0, True),
        (40, 18, 64, True),
        (64, 18, 64, True),
        (65, 18, 64, False),
    ],
)
def test_age_bounds_are_inclusive(
    age: int, min_age: int | None, max_age: int | None, admitted: bool
) -> None:
    svc = service(min_age=min_age, max_age=max_age)
    assert bool(rank([svc], need(age=age))) is admitted


def test_an_unknown_age_passes_only_services_without_age_bounds() -> None:
    services = [
        service("svc-any"),
        service("svc-adults", min_age=18),
        service("svc-seniors", max_age=120, min_age=60),
        service("svc-children", max_age=17),
    ]
    assert ids(rank(services, need(age=None))) == ["svc-any"]
    rejections = explain_rejections(services, need(age=None))
    assert set(rejections) == {"svc-adults", "svc-seniors", "svc-children"}
    assert all(r == (Rejection.AGE_NOT_ADMITTED,) for r in rejections.values())


def test_a_service_with_no_capacity_left_is_not_offered_now() -> None:
    svc = service(available=0)
    assert rank([svc], need()) == []
    assert explain_rejections([svc], need()) == {"svc-pantry": (Rejection.NO_CAPACITY,)}


def test_a_service_with_unknown_capacity_is_treated_as_available() -> None:
    (candidate,) = rank([service(available=None)], need())
    assert candidate.available is None


def test_a_service_already_offered_this_referral_is_not_offered_again() -> None:
    services = [service("svc-a"), service("svc-b")]
    assert ids(rank(services, need(), excluded={"svc-a"})) == ["svc-b"]
    assert explain_rejections(services, need(), excluded=["svc-a"]) == {
        "svc-a": (Rejection.ALREADY_OFFERED,)
    }


def test_explain_rejections_lists_every_limit_a_service_fails() -> None:
    svc = service(
        status=ServiceStatus.INACTIVE,
        categories=(HOUSING,),
        postal_codes=(),
        min_age=70,
        available=0,
    )
    assert explain_rejections([svc], need(age=40), excluded={"svc-pantry"}) == {
        "svc-pantry": (
            Rejection.INACTIVE,
            Rejection.CATEGORY_NOT_COVERED,
            Rejection.OUTSIDE_SERVICE_AREA,
            Rejection.AGE_NOT_ADMITTED,
            Rejection.NO_CAPACITY,
            Rejection.ALREADY_OFFERED,
        )
    }


def test_services_sharing_an_id_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct service_id"):
        rank([service("svc-a"), service("svc-a")], need())


# ------------------------------------------------------------------ ordering


def test_a_spanish_speaker_goes_to_the_spanish_speaking_pantry_first() -> None:
    english_only = service("svc-big-english", languages=("en",), available=500)
    spanish = service("svc-small-spanish", languages=("en", "es"), available=2)
    ranked = rank([english_only, spanish], need(language="es"))
    assert ids(ranked) == ["svc-small-spanish", "svc-big-english"]
    assert ranked[0].language_match and not ranked[1].language_match


@pytest.mark.parametrize(
    ("patient", "listed"), [("es-MX", "es"), ("es", "es-MX"), ("ES", "es-419"), ("es-us", "ES-US")]
)
def test_languages_match_by_primary_subtag_whatever_the_case(patient: str, listed: str) -> None:
    other = service("svc-a", languages=("en",), available=50)
    speaking = service("svc-b", languages=(listed,), available=1)
    assert ids(rank([other, speaking], need(language=patient))) == ["svc-b", "svc-a"]


def test_without_a_preferred_language_no_service_is_preferred_for_language() -> None:
    english = service("svc-a", languages=("en",), available=1)
    spanish = service("svc-b", languages=("es",), available=9)
    assert ids(rank([english, spanish], need(language=None))) == ["svc-b", "svc-a"]


def test_language_outranks_the_on_time_record() -> None:
    prompt_english = service("svc-a", org_id="prompt-org", languages=("en",))
    slow_spanish = service("svc-b", org_id="slow-org", languages=("es",))
    stats = {"prompt-org": OrgRecord(answered_in_time=50), "slow-org": OrgRecord(timed_out=50)}
    assert ids(rank([prompt_english, slow_spanish], need(language="es"), org_stats=stats)) == [
        "svc-b",
        "svc-a",
    ]


def test_organizations_answering_in_time_come_first_and_new_ones_are_neutral() -> None:
    services = [
        service("svc-slow", org_id="slow-org", available=100),
        service("svc-new", org_id="new-org", available=50),
        service("svc-prompt", org_id="prompt-org", available=1),
    ]
    stats = {
        "slow-org": OrgRecord(answered_in_time=1, timed_out=9),
        "prompt-org": OrgRecord(answered_in_time=9, timed_out=1),
    }
    ranked = rank(services, need(), org_stats=stats)
    assert ids(ranked) == ["svc-prompt", "svc-new", "svc-slow"]
    assert [float(c.on_time_score) for c in ranked] == pytest.approx([10 / 12, 1 / 2, 2 / 12])


def test_a_new_organization_ties_with_one_as_often_late_as_on_time() -> None:
    assert OrgRecord().on_time_score == OrgRecord(answered_in_time=3, timed_out=3).on_time_score
    services = [
        service("svc-b", org_id="new-org", available=5),
        service("svc-a", org_id="mixed-org", available=5),
    ]
    stats = {"mixed-org": OrgRecord(answered_in_time=3, timed_out=3)}
    # tied on record and capacity: the id decides
    assert ids(rank(services, need(), org_stats=stats)) == ["svc-a", "svc-b"]


def test_more_remaining_capacity_comes_first_and_unknown_capacity_last() -> None:
    services = [
        service("svc-unknown", available=None),
        service("svc-five", available=5),
        service("svc-twenty", available=20),
        service("svc-one", available=1),
    ]
    assert ids(rank(services, need())) == ["svc-twenty", "svc-five", "svc-one", "svc-unknown"]


def test_ties_share_the_load_by_preferring_the_least_offered_service() -> None:
    services = [service("svc-a", available=5), service("svc-b", available=5), service("svc-c")]
    load = {"svc-a": 3, "svc-b": 1, "svc-c": 0}
    assert ids(rank(services, need(), load=load)) == ["svc-b", "svc-a", "svc-c"]
    assert ids(rank(services, need(), load={"svc-b": 4})) == ["svc-a", "svc-b", "svc-c"]


def test_load_only_breaks_ties_it_never_outranks_capacity() -> None:
    services = [service("svc-a", available=6), service("svc-b", available=5)]
    assert ids(rank(services, need(), load={"svc-a": 100})) == ["svc-a", "svc-b"]


def test_fully_tied_services_are_ordered_by_service_id() -> None:
    services = [service("svc-c"), service("svc-a"), service("svc-b")]
    assert ids(rank(services, need())) == ["svc-a", "svc-b", "svc-c"]


def test_the_requested_service_comes_first_when_it_passes_the_limits() -> None:
    best = service("svc-best", languages=("es",), available=100)
    requested = service("svc-asked", languages=("en",), available=1)
    ranked = rank([best, requested], need(language="es", requested="svc-asked"))
    assert ids(ranked) == ["svc-asked", "svc-best"]
    assert ranked[0].requested


@pytest.mark.parametrize(
    ("requested", "excluded"),
    [
        (service("svc-asked", status=ServiceStatus.INACTIVE), ()),
        (service("svc-asked", postal_codes=("90012",)), ()),
        (service("svc-asked", available=0), ()),
        (service("svc-asked"), ("svc-asked",)),
    ],
    ids=["inactive", "outside-area", "no-capacity", "already-offered"],
)
def test_the_requested_service_is_ignored_when_it_fails_a_limit(
    requested: ServiceUpserted, excluded: tuple[str, ...]
) -> None:
    others = [service("svc-b", available=1), service("svc-a", available=9)]
    ranked = rank([requested, *others], need(requested="svc-asked"), excluded=excluded)
    assert ids(ranked) == ["svc-a", "svc-b"]


def test_a_candidate_explains_its_rank_as_json() -> None:
    svc = service(postal_codes=(), location=BRONX_10451, radius_km=5, languages=("es",))
    (candidate,) = rank([svc], need("10456", language="es"), load={"svc-pantry": 2})
    explained = json.loads(json.dumps(candidate.explain()))
    assert explained == {
        "service_id": "svc-pantry",
        "org_id": "bronx-pantry",
        "requested": False,
        "language_match": True,
        "on_time_score": 0.5,
        "available": None,
        "load": 2,
        "coverage": "radius",
        "distance_km": pytest.approx(1.44, abs=0.01),
    }


# ------------------------------------------------------------------ respond_by, ages


def test_respond_by_uses_the_services_own_response_sla() -> None:
    offered = datetime(2026, 11, 24, 9, 15, tzinfo=timezone(timedelta(hours=-5)))
    svc = service(response_sla=timedelta(hours=48))
    assert respond_by(offered, svc) == offered + timedelta(hours=48)


def test_respond_by_falls_back_to_the_default_sla() -> None:
    offered = datetime(2026, 11, 24, 14, 15, tzinfo=UTC)
    assert timedelta(hours=24) == DEFAULT_RESPONSE_SLA
    assert respond_by(offered, service()) == offered + timedelta(hours=24)
    assert respond_by(offered, service(), timedelta(hours=72)) == offered + timedelta(hours=72)


def test_respond_by_refuses_a_naive_offer_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        respond_by(datetime(2026, 11, 24, 9, 15), service())


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1984, 3, 2), date(2026, 3, 1), 41),
        (date(1984, 3, 2), date(2026, 3, 2), 42),
        (date(2000, 2, 29), date(2025, 2, 28), 24),
        (date(2000, 2, 29), date(2025, 3, 1), 25),
        (date(2000, 2, 29), date(2028, 2, 29), 28),
        (date(2026, 11, 24), date(2026, 11, 24), 0),
    ],
)
def test_age_on_counts_whole_years(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_age_on_is_unknown_without_a_birth_date_or_with_one_in_the_future() -> None:
    assert age_on(None, date(2026, 1, 1)) is None
    assert age_on(date(2030, 1, 1), date(2026, 1, 1)) is None


def test_age_on_a_datetime_counts_by_its_local_date() -> None:
    # 23:30 on 1 March in New York is already 2 March in UTC
    evening = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert age_on(date(1984, 3, 2), evening) == 41


def test_a_match_request_for_a_patient_carries_their_area_language_and_age() -> None:
    patient = Patient(
        id="pt-8c21",
        given_name="Ana",
        preferred_language="es",
        postal_code="10451",
        birth_date=date(1984, 3, 2),
    )
    request = MatchRequest.for_patient(
        patient, FOOD, on=date(2026, 11, 24), requested_service_id="svc-pantry"
    )
    assert request == MatchRequest(FOOD, "10451", "es", 42, "svc-pantry")


# ------------------------------------------------------------------ properties

POSTAL_CODES = ["10451", "10452", "10456", "10027", "90012"]
# weighted towards the Bronx so that most drawn services serve most drawn patients
AREAS = [
    ("10451", "10452", "10456"),
    ("10451", "10452", "10456", "10027"),
    ("10451",),
    ("10027",),
    ("90012",),
    (),
]
LOCATIONS = [None, BRONX_10451, BRONX_10451, LOS_ANGELES_90012]
LANGUAGES = ["en", "es", "es-MX", "zh"]
ORGS = ["org-a", "org-b"]


@st.composite
def services_strategy(draw: st.DrawFn) -> list[ServiceUpserted]:
    count = draw(st.integers(min_value=1, max_value=10))
    result = []
    for i in range(count):
        low = draw(st.sampled_from([None, None, None, 0, 18, 60]))
        high = draw(st.sampled_from([None, None, None, 17, 64, 120]))
        if low is not None and high is not None and low > high:
            low, high = high, low
        result.append(
            service(
                f"svc-{i}",
                org_id=draw(st.sampled_from(ORGS)),
                status=draw(st.sampled_from([ServiceStatus.ACTIVE] * 5 + list(ServiceStatus))),
                categories=draw(st.sampled_from([(FOOD,), (FOOD,), (FOOD, HOUSING), (HOUSING,)])),
                postal_codes=draw(st.sampled_from(AREAS)),
                location=draw(st.sampled_from(LOCATIONS)),
                radius_km=draw(st.sampled_from([None, 1.0, 2.0, 5.0, 50.0])),
                languages=tuple(draw(st.sets(st.sampled_from(LANGUAGES), max_size=2))),
                min_age=low,
                max_age=high,
                available=draw(st.sampled_from([None, None, 0, 5, 20])),
            )
        )
    return result


requests_strategy = st.builds(
    MatchRequest,
    category=st.sampled_from([FOOD, FOOD, FOOD, HOUSING]),
    postal_code=st.sampled_from([*POSTAL_CODES, "10451", "10451", "10456", "00000", None]),
    preferred_language=st.sampled_from([None, "en", "es", "ES-us", "zh-Hant"]),
    age=st.sampled_from([None, 10, 17, 18, 40, 40, 40, 64, 65, 80]),
    requested_service_id=st.sampled_from([None, "svc-0", "svc-3", "svc-9"]),
)
ID_POOL = st.sampled_from([f"svc-{i}" for i in range(10)])


def violates_a_hard_limit(svc: ServiceUpserted, request: MatchRequest, excluded: set[str]) -> bool:
    """An independent, deliberately plain restatement of the contract's limits."""
    if svc.status is not ServiceStatus.ACTIVE or request.category not in svc.categories:
        return True
    if svc.service_id in excluded:
        return True
    if svc.capacity is not None and svc.capacity.available == 0:
        return True
    if request.age is None:
        if svc.min_age is not None or svc.max_age is not None:
            return True
    elif not ((svc.min_age or 0) <= request.age <= (svc.max_age or 10**6)):
        return True
    if request.postal_code is None:
        return True
    listed = normalize_postal_code(request.postal_code) in svc.postal_codes
    point = centroid(request.postal_code)
    near = (
        point is not None
        and svc.location is not None
        and svc.radius_km is not None
        and haversine_km(point, (svc.location.lat, svc.location.lon)) <= svc.radius_km
    )
    return not (listed or near)


@settings(max_examples=150, deadline=None)
@given(
    services=services_strategy(),
    request=requests_strategy,
    excluded=st.sets(ID_POOL, max_size=3),
    stats=st.dictionaries(
        st.sampled_from(ORGS),
        st.builds(OrgRecord, st.integers(0, 5), st.integers(0, 5)),
        max_size=3,
    ),
    load=st.dictionaries(ID_POOL, st.integers(0, 3), max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_ranking_never_offers_a_service_violating_a_limit_and_ignores_input_order(
    services: list[ServiceUpserted],
    request: MatchRequest,
    excluded: set[str],
    stats: dict[str, OrgRecord],
    load: dict[str, int],
    seed: int,
) -> None:
    ranked = rank(services, request, excluded=excluded, org_stats=stats, load=load)
    offered = set(ids(ranked))

    # every limit holds, and every service is either offered or explained
    for svc in services:
        assert (svc.service_id in offered) is not violates_a_hard_limit(svc, request, excluded)
    rejected = explain_rejections(services, request, excluded=excluded)
    assert offered.isdisjoint(rejected)
    assert offered | set(rejected) == {s.service_id for s in services}

    # the order is the documented key, the requested service first when present
    keys = [c.sort_key() for c in ranked]
    assert keys == sorted(keys)
    if request.requested_service_id in offered:
        assert ranked[0].service_id == request.requested_service_id

    # the same services in another order rank the same
    shuffled = list(services)
    random.Random(seed).shuffle(shuffled)
    again = rank(shuffled, request, excluded=excluded, org_stats=stats, load=load)
    assert [c.explain() for c in again] == [c.explain() for c in ranked]
