"""Postal-code geography for matching: normalized codes, centroids, distances.

Centroids come from the ``zipcodes`` package (US ZIP codes, offline data
bundled with the package). Its first lookup loads the data set (about a fifth
of a second); later lookups take well under a millisecond and are cached here
besides, so that ranking a referral against a large directory stays cheap.

Nothing here raises on bad input: a code that is not a US ZIP code, or one the
data set does not know, has no centroid (``None``) and matching then relies on
the service's listed postal codes alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Final

import zipcodes

#: Mean Earth radius (IUGG), in kilometres.
EARTH_RADIUS_KM: Final = 6371.0088

# ASCII digits only: ``str.isdigit`` accepts other scripts' digits, and the Rust
# core of ``zipcodes`` panics (a BaseException, not a ValueError) on full-width
# digits (U+FF10 to U+FF19). Nothing reaches the package unless it matches this.
_ZIP_RE: Final = re.compile(r"([0-9]{5})(?:[- ]?[0-9]{4})?", re.ASCII)

LatLon = tuple[float, float]

# ``zipcodes`` has no type hints; this is the part of its API used here.
_zip_matching: Final[Callable[[str], list[Mapping[str, object]]]] = zipcodes.matching


@lru_cache(maxsize=1 << 16)
def normalize_postal_code(code: str) -> str:
    """Return the comparable form of a postal code.

    A US ZIP or ZIP+4 code (``"10451"``, ``"10451-1234"``, ``"10451 1234"``,
    ``"104511234"``, surrounding blanks allowed) becomes its five-digit ZIP. Anything else is
    returned stripped and upper-cased, so that two spellings of one foreign
    code still compare equal.
    """
    stripped = code.strip()
    match = _ZIP_RE.fullmatch(stripped)
    if match is not None:
        return match.group(1)
    return stripped.upper()


def centroid(postal_code: str) -> LatLon | None:
    """Return the (latitude, longitude) centroid of a US postal code, or ``None``.

    ``None`` means unknown: not a US ZIP code, not in the data set, or a record
    without usable coordinates. Never raises.
    """
    match = _ZIP_RE.fullmatch(postal_code.strip())
    if match is None:
        return None
    return _zip_centroid(match.group(1))


@lru_cache(maxsize=1 << 16)
def _zip_centroid(zip5: str) -> LatLon | None:
    # The cache key is always a five-digit string, so the cache is bounded by
    # the 100 000 possible keys whatever callers send.
    try:
        records = _zip_matching(zip5)
    except (ValueError, TypeError):  # the package's own input validation
        return None
    for record in records:
        lat, lon = _coordinate(record.get("lat")), _coordinate(record.get("long"))
        if lat is not None and lon is not None and _valid_coordinates(lat, lon):
            return (lat, lon)
    return None


def _coordinate(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return float(value)
    except ValueError:  # "", "n/a"
        return None


def _valid_coordinates(lat: float, lon: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def haversine_km(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in kilometres between two (lat, lon) points in degrees."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    # min() guards against h drifting a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_km(postal_code: str, point: LatLon) -> float | None:
    """Distance from a postal code's centroid to ``point``; ``None`` when the code is unknown."""
    here = centroid(postal_code)
    if here is None:
        return None
    return haversine_km(here, point)


def warm() -> None:
    """Load the ``zipcodes`` data set now rather than on the first referral."""
    _zip_centroid("10001")


__all__ = [
    "EARTH_RADIUS_KM",
    "LatLon",
    "centroid",
    "distance_km",
    "haversine_km",
    "normalize_postal_code",
    "warm",
]
