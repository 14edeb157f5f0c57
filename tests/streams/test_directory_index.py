"""The directory index narrows ranking without changing its result."""

from __future__ import annotations

import random
from typing import Any

import pytest

from schemas.codes import Category
from schemas.events import ServiceUpserted
from streams.decisions.directory_index import MAX_CELLS, DirectoryIndex
from streams.decisions.matching import MatchRequest, rank
from streams.runtime.view import NetworkState
from tests.streams.fixtures import T0, eid

#: Real ZIP codes of the Bronx, Manhattan, Dallas and Anchorage (centroids known).
ZIPS = ["10451", "10452", "10453", "10454", "10027", "10001", "75201", "75215", "99501"]
CATEGORIES = [Category.FOOD_INSECURITY, Category.HOUSING_INSTABILITY, Category.UTILITY_INSECURITY]
CENTERS = [(40.82, -73.92), (40.75, -73.99), (32.78, -96.80), (61.21, -149.89)]


def service(n: int, rng: random.Random) -> ServiceUpserted:
    fields: dict[str, Any] = {
        "event_id": eid(10_000 + n),
        "occurred_at": T0,
        "service_id": f"svc-{n:05d}",
        "org_id": f"org-{n % 7}",
        "name": f"Service {n}",
        "status": rng.choice(["active", "active", "active", "inactive"]),
        "categories": rng.sample([c.value for c in CATEGORIES], rng.randint(1, 2)),
        "postal_codes": rng.sample(ZIPS, rng.randint(0, 3)),
        "languages": rng.sample(["en", "es", "zh"], rng.randint(0, 2)),
        "capacity": rng.choice([None, {"available": rng.randint(0, 9)}]),
    }
    if rng.random() < 0.5:
        lat, lon = rng.choice(CENTERS)
        fields["location"] = {
            "lat": lat + rng.uniform(-0.3, 0.3),
            "lon": lon + rng.uniform(-0.3, 0.3),
        }
        fields["radius_km"] = rng.choice([1.0, 5.0, 25.0, 80.0, 20_000.0])
    return ServiceUpserted.model_validate(fields)


@pytest.mark.parametrize("seed", range(6))
def test_ranking_over_the_index_equals_ranking_over_the_whole_directory(seed: int) -> None:
    rng = random.Random(seed)
    state = NetworkState()
    for n in range(300):
        state.upsert(service(n, rng))
    for _ in range(60):
        request = MatchRequest(
            category=rng.choice(CATEGORIES),
            postal_code=rng.choice([*ZIPS, "10451-1234", "00000", None]),
            preferred_language=rng.choice([None, "es", "en"]),
            requested_service_id=rng.choice([None, f"svc-{rng.randrange(300):05d}"]),
        )
        whole = [c.service_id for c in rank(state.directory(), request)]
        narrowed = [c.service_id for c in rank(state.candidates(request), request)]
        assert narrowed == whole


def test_the_index_looks_at_few_services_in_a_large_directory() -> None:
    rng = random.Random(7)
    services = [service(n, rng) for n in range(10_000)]
    index = DirectoryIndex(services)
    found = index.candidates(Category.FOOD_INSECURITY, "75201")
    assert 0 < len(found) < len(services) / 2


def test_a_radius_covering_a_continent_is_kept_in_the_wide_list() -> None:
    wide = ServiceUpserted.model_validate(
        {
            "event_id": eid(1),
            "occurred_at": T0,
            "service_id": "svc-hotline",
            "org_id": "org-x",
            "name": "Hotline",
            "status": "active",
            "categories": ["food-insecurity"],
            "location": {"lat": 40.0, "lon": -100.0},
            "radius_km": 3000.0,
        }
    )
    index = DirectoryIndex([wide])
    assert index.candidates(Category.FOOD_INSECURITY, "10451") == ["svc-hotline"]
    assert index.candidates(Category.HOUSING_INSTABILITY, "10451") == []
    assert MAX_CELLS > 0


def test_a_reservation_does_not_rebuild_the_index() -> None:
    rng = random.Random(3)
    state = NetworkState()
    for n in range(50):
        state.upsert(service(n, rng))
    request = MatchRequest(category=CATEGORIES[0], postal_code="10451")
    state.candidates(request)
    built = state._index
    state.reserve("r-1", 1, "svc-00001", T0)
    state.candidates(request)
    assert state._index is built
    state.remove("svc-00001")
    state.candidates(request)
    assert state._index is not built
