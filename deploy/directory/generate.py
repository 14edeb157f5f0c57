"""``refnet directory generate``: a region's worth of Open Referral (HSDS 3.1) organizations.

For trying the importer and the network at a region's scale: ``count``
organizations with one service each, in the sample region's postal codes
(``deploy/data/dallas/directory.json``; each service serves its own and one or
two neighbouring ones, at that code's centroid), with Open Eligibility terms
the bundled mapping knows, in the sample's mix of needs. The same seed gives
the same file. Every name and address is made up.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any, Final

SAMPLE_REGION: Final = Path(__file__).resolve().parents[1] / "data" / "dallas" / "directory.json"

#: (Open Eligibility term, what the service is called, weight): food and housing lead, as
#: in 211 directories.
KINDS: Final = (
    ("Food Pantry", "Food Pantry", 22),
    ("Meals", "Community Kitchen", 8),
    ("Temporary Shelter", "Night Shelter", 8),
    ("Help Pay for Housing", "Rent Relief", 10),
    ("Help Find Housing", "Housing Navigation", 6),
    ("Help Pay for Utilities", "Utility Bill Help", 10),
    ("Transportation for Healthcare", "Rides to Care", 8),
    ("Bus Passes", "Transit Passes", 4),
    ("Maintenance & Repairs", "Home Repair", 5),
    ("Safe Housing", "Family Violence Shelter", 3),
    ("Clothing", "Clothing Closet", 4),
    ("Help Pay for Healthcare", "Medical Bill Help", 4),
    ("Help Find Work", "Job Center", 4),
    ("Counseling", "Counseling Center", 4),
)
NEIGHBORHOODS: Final = (
    "Oak Cliff", "Pleasant Grove", "South Dallas", "Fair Park", "Deep Ellum", "Vickery Meadow",
    "Lake Highlands", "Bachman Lake", "West Dallas", "Cedar Crest", "Red Bird", "Kessler",
    "Lakewood", "Uptown", "Casa View", "Highland Hills", "Skyline", "Love Field", "Mockingbird",
    "Trinity Groves", "Wynnewood", "Kiest Park", "Buckner Terrace", "Urbandale",
)  # fmt: skip
ORG_WORDS: Final = (
    "Neighbors", "Community Partners", "Mutual Aid", "Family Services", "Outreach",
    "Alliance", "Helping Hands", "Resource Center", "Coalition", "Ministries",
)  # fmt: skip
LANGUAGES: Final = (("en", "English"), ("es", "Spanish"), ("vi", "Vietnamese"), ("am", "Amharic"))
SLAS: Final = ("PT4H", "PT8H", "PT24H", "PT48H")


@cache
def sample_postal_codes(path: Path = SAMPLE_REGION) -> tuple[str, ...]:
    """The five-digit postal codes the sample region names (areas and addresses)."""
    return tuple(sorted(set(re.findall(r"\b\d{5}\b", path.read_text()))))


def _centroid(code: str) -> tuple[float, float] | None:
    import zipcodes

    found: list[dict[str, str]] = zipcodes.matching(code)  # type: ignore[no-untyped-call]
    return (float(found[0]["lat"]), float(found[0]["long"])) if found else None


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` HSDS 3.1 organizations, each with one service."""
    if count < 1:
        raise ValueError("at least one organization")
    rng = random.Random(seed)  # noqa: S311 (made-up data, reproducible by seed)
    codes = sample_postal_codes()
    weights = [w for _, _, w in KINDS]
    return [_organization(rng, index, codes, weights) for index in range(count)]


def _organization(
    rng: random.Random, index: int, codes: tuple[str, ...], weights: list[int]
) -> dict[str, Any]:
    term, kind, _ = rng.choices(KINDS, weights=weights)[0]
    place = rng.choice(NEIGHBORHOODS)
    name = f"{place} {rng.choice(ORG_WORDS)} {index + 1}"
    served = sorted(rng.sample(codes, rng.randint(2, 3)))
    home = served[0]
    spot = _centroid(home) or (32.7767, -96.797)
    spoken = [LANGUAGES[0], *rng.sample(LANGUAGES[1:], rng.randint(0, 2))]
    service = {
        "id": _id(rng),
        "name": f"{place} {kind}",
        "description": f"{kind} for residents of {place} and nearby ZIP codes.",
        "status": "active",
        "minimum_age": None,
        "maximum_age": None,
        "languages": [{"id": _id(rng), "name": n, "code": c} for c, n in spoken],
        "service_areas": [
            {
                "id": _id(rng),
                "name": f"{place}: ZIP codes {', '.join(served)}",
                "description": None,
                "extent": None,
                "extent_type": None,
            }
        ],
        "service_at_locations": [_location(rng, place, home, spot)],
        "capacities": [],
        "attributes": [
            _attribute(rng, None, term, "Open Eligibility", None),
            _attribute(rng, "refnet:response_sla", "Response SLA", "refnet", rng.choice(SLAS)),
        ],
    }
    return {
        "id": _id(rng),
        "name": name,
        "description": f"{kind} in {place} (generated).",
        "email": None,
        "website": None,
        "organization_identifiers": [],
        "services": [service],
    }


def _location(
    rng: random.Random, place: str, code: str, spot: tuple[float, float]
) -> dict[str, Any]:
    return {
        "id": _id(rng),
        "location": {
            "id": _id(rng),
            "location_type": "physical",
            "name": f"{place} Center",
            "latitude": round(spot[0], 4),
            "longitude": round(spot[1], 4),
            "languages": [],
            "addresses": [
                {
                    "id": _id(rng),
                    "address_1": f"{rng.randint(100, 9999)} Main St",
                    "city": "Dallas",
                    "state_province": "TX",
                    "postal_code": code,
                    "country": "US",
                    "address_type": "physical",
                }
            ],
        },
    }


def _attribute(
    rng: random.Random, code: str | None, name: str, taxonomy: str, value: str | None
) -> dict[str, Any]:
    return {
        "id": _id(rng),
        "link_type": "service",
        "link_entity": "service",
        "value": value,
        "taxonomy_term": {"id": _id(rng), "code": code, "name": name, "taxonomy": taxonomy},
    }


def write(path: Path, count: int, seed: int) -> int:
    """Write ``count`` generated organizations to ``path`` (JSON); return the byte count."""
    text = json.dumps(generate(count, seed), indent=1)
    path.write_text(text + "\n", encoding="utf-8")
    return len(text) + 1


__all__ = ["generate", "sample_postal_codes", "write"]
