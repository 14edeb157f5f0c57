"""Where a service serves, and in which languages: HSDS areas, locations, languages.

Postal codes come from the service areas: US ZIP codes named in an area's
``name`` or in a ``text`` extent (only codes the ``zipcodes`` data knows, so
"10000 meals" names none), or the STANDARD ZIP codes whose centroid lies inside
a ``geojson`` extent's (Multi)Polygon. When the areas give none, the postal
codes of the service's locations (physical addresses first) are used, with the
first located one's coordinates and a radius. Languages become ISO 639-1 codes
where one exists, since matching compares primary subtags (``spa`` must become
``es``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Final

import zipcodes

from connectors.openreferral.model import Area, Place, Problem, Service
from schemas.events import LANGUAGE_PATTERN, MAX_LANGUAGES, MAX_POSTAL_CODES
from streams.decisions.geo import centroid, normalize_postal_code

_LANGUAGE_RE: Final = re.compile(LANGUAGE_PATTERN)
_ZIP_IN_TEXT: Final = re.compile(r"(?<![0-9])([0-9]{5})(?:-[0-9]{4})?(?![0-9])", re.ASCII)
_POSTAL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,15}")

#: ISO 639-2/3 codes and English or native names -> ISO 639-1, for the languages
#: directories commonly list; matching compares primary subtags, so "spa" must
#: become "es". A code not here is kept as it is.
LANGUAGES: Final[dict[str, str]] = {
    **dict.fromkeys(["eng", "english"], "en"),
    **dict.fromkeys(["spa", "spanish", "español", "espanol", "castilian"], "es"),
    **dict.fromkeys(["vie", "vietnamese", "tiếng việt", "tieng viet"], "vi"),
    **dict.fromkeys(["zho", "chi", "chinese", "mandarin", "中文"], "zh"),
    **dict.fromkeys(["ara", "arabic", "العربية"], "ar"),
    **dict.fromkeys(["amh", "amharic", "አማርኛ"], "am"),
    **dict.fromkeys(["fra", "fre", "french", "français", "francais"], "fr"),
    **dict.fromkeys(["kor", "korean", "한국어"], "ko"),
    **dict.fromkeys(["tgl", "tagalog", "filipino", "fil"], "tl"),
    **dict.fromkeys(["rus", "russian", "русский"], "ru"),
    **dict.fromkeys(["por", "portuguese", "português", "portugues"], "pt"),
    **dict.fromkeys(["deu", "ger", "german", "deutsch"], "de"),
    **dict.fromkeys(["hin", "hindi"], "hi"),
    **dict.fromkeys(["urd", "urdu"], "ur"),
    **dict.fromkeys(["pol", "polish", "polski"], "pl"),
    **dict.fromkeys(["slk", "slo", "slovak"], "sk"),
    **dict.fromkeys(["hat", "haitian creole", "haitian", "kreyòl"], "ht"),
    **dict.fromkeys(["som", "somali"], "so"),
    **dict.fromkeys(["swa", "swahili"], "sw"),
    **dict.fromkeys(["nep", "nepali"], "ne"),
    **dict.fromkeys(["mya", "bur", "burmese"], "my"),
    **dict.fromkeys(["fas", "per", "persian", "farsi"], "fa"),
    **dict.fromkeys(["pus", "pashto"], "ps"),
    **dict.fromkeys(["jpn", "japanese"], "ja"),
    **dict.fromkeys(["ita", "italian"], "it"),
    **dict.fromkeys(["ben", "bengali", "bangla"], "bn"),
    **dict.fromkeys(["guj", "gujarati"], "gu"),
    **dict.fromkeys(["pan", "punjabi"], "pa"),
    **dict.fromkeys(["tel", "telugu"], "te"),
    **dict.fromkeys(["tam", "tamil"], "ta"),
    **dict.fromkeys(["ukr", "ukrainian"], "uk"),
    **dict.fromkeys(["tur", "turkish"], "tr"),
    **dict.fromkeys(["tir", "tigrinya"], "ti"),
    **dict.fromkeys(["orm", "oromo"], "om"),
    **dict.fromkeys(["cantonese"], "yue"),
    **dict.fromkeys(["dari"], "prs"),
    **dict.fromkeys(["american sign language", "asl"], "ase"),
}


# ---------------------------------------------------------------- languages
def languages_of(service: Service, warnings: list[Problem]) -> list[str]:
    languages = service.languages or [lang for p in service.places for lang in p.languages]
    codes: list[str] = []
    for language in languages:
        code = language_code(language.code, language.name)
        if code is None:
            shown = language.code or language.name or "?"
            warnings.append(
                Problem(
                    language.loc.text,
                    f"language {shown!r} is not an ISO 639 code or a known name: left out",
                )
            )
        elif code not in codes:
            codes.append(code)
    return sorted(codes)[:MAX_LANGUAGES]


def language_code(code: str | None, name: str | None) -> str | None:
    """ISO 639-1 where one exists (``spa`` -> ``es``), else the code; None when unknown."""
    if code is not None:
        candidate = code.strip().replace("_", "-")
        if _LANGUAGE_RE.fullmatch(candidate) and len(candidate) <= 35:
            primary, _, rest = candidate.partition("-")
            mapped = LANGUAGES.get(primary.casefold(), primary.casefold())
            return f"{mapped}-{rest}" if rest else mapped
    if name is not None:
        return LANGUAGES.get(name.strip().casefold())
    return None


def area_of(
    service: Service, radius_km: float | None, warnings: list[Problem]
) -> tuple[list[str], dict[str, float] | None, float | None]:
    """Postal codes, location and radius: the service areas first, else the locations."""
    codes: set[str] = set()
    for area in service.areas:
        found, why = _area_codes(area)
        if not found:
            warnings.append(
                Problem(area.loc.text, f"{why}: this service area gives no postal code")
            )
        codes.update(found)
    location: dict[str, float] | None = None
    for place in service.places:
        point = _coordinates(place, warnings)
        if point is not None and location is None:
            location = point
    radius: float | None = None
    if not codes:
        for place in service.places:
            for raw in place.physical or place.other:
                normal = normalize_postal_code(raw)
                if _POSTAL_RE.fullmatch(normal):
                    codes.add(normal)
                else:
                    warnings.append(Problem(place.loc.text, "not a postal code: left out"))
        radius = radius_km if location is not None else None
    if len(codes) > MAX_POSTAL_CODES:
        warnings.append(
            Problem(
                service.loc.text,
                f"{len(codes)} postal codes: the first {MAX_POSTAL_CODES} are kept",
            )
        )
    return sorted(codes)[:MAX_POSTAL_CODES], location, radius


def _area_codes(area: Area) -> tuple[set[str], str]:
    """The US ZIP codes an area names or contains, and why there are none when there are none."""
    codes = _zips_in_text(area.name)
    kind = (area.extent_type or "").strip().casefold()
    extent = area.extent
    if extent is None or (isinstance(extent, str) and not extent.strip()):
        return codes, "no extent and no postal code in its name"
    why = "no postal code in its extent or name"
    if kind == "geojson":
        try:
            document = json.loads(extent) if isinstance(extent, str) else extent
        except json.JSONDecodeError:
            return codes, "its geojson extent is not JSON"
        try:
            inside = postal_codes_in_geojson(document)
        except ValueError as exc:
            return codes, f"its geojson extent is not a usable area ({exc})"
        codes |= set(inside)
        why = "no US postal code centroid lies inside its polygon"
    elif kind in ("", "text"):
        codes |= _zips_in_text(extent if isinstance(extent, str) else None)
    else:
        why = f"extent_type {kind!r} is not read (geojson and text are)"
    return codes, why


def _zips_in_text(text: str | None) -> set[str]:
    """US ZIP codes named in free text that the zipcodes data knows (so "10000 meals" is none)."""
    if not text:
        return set()
    return {m.group(1) for m in _ZIP_IN_TEXT.finditer(text) if centroid(m.group(1)) is not None}


def _coordinates(place: Place, warnings: list[Problem]) -> dict[str, float] | None:
    if place.latitude is None and place.longitude is None:
        return None
    lat, lon = number(place.latitude), number(place.longitude)
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        warnings.append(
            Problem(
                place.loc.text,
                "latitude/longitude missing or out of range: "
                "the location's coordinates are left out",
            )
        )
        return None
    return {"lat": lat, "lon": lon}


def number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------- GeoJSON
def postal_codes_in_geojson(document: object) -> list[str]:
    """US ZIP codes whose centroid lies inside a GeoJSON (Multi)Polygon, Feature or collection.

    Raises ValueError for a document that holds no polygon.
    """
    polygons = list(_polygons(document))
    if not polygons:
        raise ValueError("no Polygon or MultiPolygon in it")
    boxes = []
    for rings in polygons:
        xs, ys = [p[0] for p in rings[0]], [p[1] for p in rings[0]]
        boxes.append((min(xs), min(ys), max(xs), max(ys), rings))
    found = []
    for zip5, lat, lon in _zip_centroids():
        for x0, y0, x1, y1, rings in boxes:
            if x0 <= lon <= x1 and y0 <= lat <= y1 and _inside(lon, lat, rings):
                found.append(zip5)
                break
    return found


@lru_cache(maxsize=1)
def _zip_centroids() -> tuple[tuple[str, float, float], ...]:
    """Active STANDARD US ZIP codes with their centroids (the zipcodes data, loaded once).

    PO Box and unique ZIP codes cover no area: their recorded point is often a
    county's default, which would put Irving's PO boxes inside a Dallas polygon.
    """
    records: list[dict[str, Any]] = zipcodes.list_all()  # type: ignore[no-untyped-call]
    found = []
    for record in records:
        lat, lon = number(record.get("lat")), number(record.get("long"))
        zip5 = record.get("zip_code")
        standard = record.get("active") and record.get("zip_code_type") == "STANDARD"
        if standard and isinstance(zip5, str) and lat is not None and lon is not None:
            found.append((zip5, lat, lon))
    return tuple(found)


def _inside(x: float, y: float, rings: list[list[tuple[float, float]]]) -> bool:
    """Whether (x, y) lies in the polygon: inside its outer ring and outside its holes."""
    return _in_ring(x, y, rings[0]) and not any(_in_ring(x, y, hole) for hole in rings[1:])


def _in_ring(x: float, y: float, ring: list[tuple[float, float]]) -> bool:
    # Ray casting (even-odd rule).
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _polygons(document: object) -> Iterator[list[list[tuple[float, float]]]]:
    if not isinstance(document, dict):
        raise ValueError("a GeoJSON object was expected")
    kind = document.get("type")
    if kind == "FeatureCollection":
        for feature in _list_of(document, "features"):
            yield from _polygons(feature)
    elif kind == "Feature":
        if document.get("geometry") is not None:
            yield from _polygons(document.get("geometry"))
    elif kind == "GeometryCollection":
        for geometry in _list_of(document, "geometries"):
            yield from _polygons(geometry)
    elif kind == "Polygon":
        yield _rings(document.get("coordinates"))
    elif kind == "MultiPolygon":
        for polygon in _list_of(document, "coordinates"):
            yield _rings(polygon)
    elif isinstance(kind, str):
        raise ValueError(f"a {kind} has no area")
    else:
        raise ValueError("its type is missing")


def _list_of(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise ValueError(f"{key} is not an array")
    return value


def _rings(value: object) -> list[list[tuple[float, float]]]:
    if not isinstance(value, list) or not value:
        raise ValueError("a polygon's coordinates must be an array of rings")
    rings = []
    for ring in value:
        if not isinstance(ring, list) or len(ring) < 4:
            raise ValueError("a polygon ring needs at least 4 positions")
        points = []
        for position in ring:
            if (
                not isinstance(position, list)
                or len(position) < 2
                or number(position[0]) is None
                or number(position[1]) is None
            ):
                raise ValueError("a position must be [longitude, latitude] numbers")
            points.append((float(position[0]), float(position[1])))
        rings.append(points)
    return rings


__all__ = [
    "LANGUAGES",
    "area_of",
    "language_code",
    "languages_of",
    "number",
    "postal_codes_in_geojson",
]
