"""An index of the directory, so that ranking looks only at services that might serve.

:func:`streams.decisions.matching.rank` applies every hard limit to every service it is
given; with thousands of services, most fail on category or area. The index
narrows the set first, by the two limits that rule most services out, and
returns a superset of the services that pass them:

* by ``(category, postal code)`` for services that list postal codes (ZIP+4
  compares as its ZIP, as in matching);
* by category and a grid of 0.25 degree cells for services with a location
  and ``radius_km``: a service is filed under every cell its radius's bounding
  box touches, and a patient's postal-code centroid looks in its own cell.
  A service whose box would cover more than :data:`MAX_CELLS` cells is kept in
  a short list checked for every request of its category.

The index holds service ids only; the caller maps them to the current
(capacity-adjusted) records, so an offer's reservation does not rebuild it:
only a change of the directory itself (or of the reachable organizations) does.
Ranking stays exactly :func:`streams.decisions.matching.rank` over the narrowed set.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from schemas.codes import Category
from schemas.events import ServiceUpserted
from streams.decisions.geo import centroid, normalize_postal_code

#: Grid cell size in degrees of latitude and longitude (~28 km north-south).
CELL_DEGREES = 0.25
#: A radius service covering more cells than this is checked for every request.
MAX_CELLS = 4096
_KM_PER_DEGREE = 111.32


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return (math.floor(lat / CELL_DEGREES), math.floor(lon / CELL_DEGREES))


def _cells(lat: float, lon: float, radius_km: float) -> list[tuple[int, int]] | None:
    """Cells the radius's bounding box touches, or None when there are too many."""
    dlat = radius_km / _KM_PER_DEGREE
    # longitude degrees shrink with latitude; near the poles, cover every longitude
    shrink = max(math.cos(math.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    dlon = min(radius_km / (_KM_PER_DEGREE * shrink), 180.0)
    low = _cell(lat - dlat, lon - dlon)
    high = _cell(lat + dlat, lon + dlon)
    count = (high[0] - low[0] + 1) * (high[1] - low[1] + 1)
    if count > MAX_CELLS:
        return None
    return [(a, o) for a in range(low[0], high[0] + 1) for o in range(low[1], high[1] + 1)]


class DirectoryIndex:
    """Service ids by category and area (see the module docstring)."""

    def __init__(self, services: Iterable[ServiceUpserted]) -> None:
        self._by_code: dict[tuple[Category, str], list[str]] = defaultdict(list)
        self._by_cell: dict[tuple[Category, tuple[int, int]], list[str]] = defaultdict(list)
        self._wide: dict[Category, list[str]] = defaultdict(list)
        self.size = 0
        for service in services:
            self.size += 1
            self._add(service)

    def _add(self, service: ServiceUpserted) -> None:
        codes = {normalize_postal_code(code) for code in service.postal_codes}
        cells: list[tuple[int, int]] | None = []
        if service.location is not None and service.radius_km is not None:
            cells = _cells(service.location.lat, service.location.lon, service.radius_km)
        for category in set(service.categories):
            for code in codes:
                self._by_code[(category, code)].append(service.service_id)
            if cells is None:
                self._wide[category].append(service.service_id)
            else:
                for cell in cells:
                    self._by_cell[(category, cell)].append(service.service_id)

    def candidates(self, category: Category, postal_code: str | None) -> list[str]:
        """Ids of the services that may cover ``postal_code`` for ``category`` (a superset)."""
        if postal_code is None or not postal_code.strip():
            return []
        found = list(self._by_code.get((category, normalize_postal_code(postal_code)), ()))
        point = centroid(postal_code)
        if point is not None:
            found += self._by_cell.get((category, _cell(*point)), ())
            found += self._wide.get(category, ())
        return list(dict.fromkeys(found))  # distinct, in a stable order


__all__ = ["CELL_DEGREES", "MAX_CELLS", "DirectoryIndex"]
