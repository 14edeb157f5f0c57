"""FHIR search as implementers expect it: paging, sorting and unknown parameters.

A search takes the parameters its route names, plus ``_count`` (page size, 1 to
:data:`MAX_COUNT`, default :data:`DEFAULT_COUNT`), ``_getpagesoffset`` (where the
page starts; ``next`` links carry it), ``_sort`` (``_lastUpdated`` or
``-_lastUpdated``; any other sort is refused) and ``_include``. Any other
parameter is refused (400) unless the request says ``Prefer: handling=lenient``:
then it is ignored, and the Bundle's ``self`` link names only the parameters
used. The answer is a ``searchset`` Bundle with ``total`` (all matches), a
``self`` link, a ``next`` link when more pages follow, and no ``entry`` when
nothing matched (FHIR JSON has no empty arrays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from connectors.fhir.inputs import GatewayInputError

DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 200
#: the parameters every search takes (besides its own)
CONTROL: Final = frozenset({"_count", "_getpagesoffset", "_sort", "_include"})
SORTS: Final = frozenset({"_lastUpdated", "-_lastUpdated"})
#: parameters of the HTTP exchange rather than the search, never refused nor echoed
_TRANSPORT: Final = frozenset({"_format", "_pretty"})

Resources = list[dict[str, Any]]


@dataclass(frozen=True)
class Search:
    """A search's parameters, as used: ``used`` is what the ``self`` link names."""

    kind: str
    values: dict[str, str]
    include: tuple[str, ...] = ()
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: str | None = None
    used: list[tuple[str, str]] = field(default_factory=list)

    def link(self, base: str, offset: int) -> str:
        params = [(k, v) for k, v in self.used if k not in ("_count", "_getpagesoffset")]
        params += [("_count", str(self.count))]
        if offset:
            params.append(("_getpagesoffset", str(offset)))
        return f"{base}/fhir/{self.kind}?{urlencode(params)}"


def handling(prefer: str | None) -> str:
    """``strict`` or ``lenient`` from a ``Prefer`` header (default strict)."""
    for part in (prefer or "").replace(",", ";").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "handling" and value.strip().strip('"') == "lenient":
            return "lenient"
    return "strict"


def _number(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise GatewayInputError(f"{name} must be a whole number from {low} to {high}", status=400)
    return int(value)


def parse_search(
    kind: str,
    query: Iterable[tuple[str, str]],
    supported: Iterable[str],
    prefer: str | None = None,
) -> Search:
    """The search ``query`` asks for of ``kind``; unknown parameters per ``prefer``."""
    known = CONTROL | frozenset(supported)
    strict = handling(prefer) == "strict"
    values: dict[str, str] = {}
    include: list[str] = []
    used: list[tuple[str, str]] = []
    count, offset, sort = DEFAULT_COUNT, 0, None
    for name, value in query:
        if name in _TRANSPORT:
            continue
        if name not in known:
            if strict:
                raise GatewayInputError(
                    f"{kind} search has no parameter {name[:40]!r} (supported: "
                    f"{', '.join(sorted(known))}; send Prefer: handling=lenient to ignore it)",
                    status=400,
                    code="not-supported",
                )
            continue
        if name == "_count":
            count = _number("_count", value, 1, MAX_COUNT)
        elif name == "_getpagesoffset":
            offset = _number("_getpagesoffset", value, 0, 10**9)
        elif name == "_sort":
            if value not in SORTS:
                raise GatewayInputError(
                    "_sort supports only _lastUpdated and -_lastUpdated",
                    status=400,
                    code="not-supported",
                )
            sort = value
        elif name == "_include":
            include.append(value)
        else:
            values[name] = value
        used.append((name, value))
    return Search(kind, values, tuple(include), count, offset, sort, used)


def last_updated(resource: Mapping[str, Any]) -> str:
    """When a resource last changed (its ``meta.lastUpdated``, else ``lastModified``)."""
    meta = resource.get("meta") or {}
    return str(meta.get("lastUpdated") or resource.get("lastModified") or "")


def searchset(
    base: str, search: Search, found: Sequence[tuple[dict[str, Any], Resources]]
) -> dict[str, Any]:
    """The page of ``found`` (each match with the resources it includes) ``search`` asks for."""
    ordered = list(found)
    if search.sort is not None:
        ordered.sort(key=lambda pair: last_updated(pair[0]), reverse=search.sort.startswith("-"))
    page = ordered[search.offset : search.offset + search.count]
    links = [{"relation": "self", "url": search.link(base, search.offset)}]
    if search.offset + search.count < len(ordered):
        links.append({"relation": "next", "url": search.link(base, search.offset + search.count)})
    entries = [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": mode},
        }
        for match, includes in page
        for mode, r in [("match", match), *(("include", i) for i in includes)]
    ]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(ordered),
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


__all__ = [
    "CONTROL",
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "Search",
    "handling",
    "last_updated",
    "parse_search",
    "searchset",
]
