"""Open Referral (HSDS 3.0 and 3.1) directories in, ``service.upserted`` events out.

A region's 211 usually exports its directory in the Human Services Data
Specification: JSON objects as HSDS APIs return them (an ``organization`` with
its ``services``, a ``service`` with its ``organization``, a
``service_at_location``, an array of them, or an API page whose ``contents``
holds them) or a tabular data package (a folder of CSV files, with or without
``datapackage.json``). :func:`read` turns either into a :class:`Directory`
(HSDS's own shape, with where each value came from) and :func:`convert` turns
that into one :class:`~schemas.events.ServiceUpserted` per service:

- ``service_id``: the HSDS service id, unchanged;
- ``org_id``: :func:`org_id_for` the service's organization: an
  ``organization_identifier`` with ``identifier_scheme`` ``refnet`` pins it;
  otherwise it is the organization's name made a party id (lowercase ASCII
  letters and digits joined by ``-``, at most 48 characters) and ``-`` and the
  first 6 hex digits of the SHA-256 of the HSDS organization id. Re-importing
  the same directory gives the same ids; renaming an organization changes its id
  (and topics) unless it is pinned;
- ``categories``: the :mod:`connectors.openreferral.taxonomy` mapping of the service's
  taxonomy terms, else of keywords in its text; a service nothing maps is
  reported (:class:`UnmappedService`) and never published;
- ``postal_codes``: US ZIP codes of the service areas (the extent's text and
  the area's name, or the centroids inside a GeoJSON polygon); when the areas
  give none, the postal codes of the service's locations, with ``location`` and
  ``radius_km`` around the first located one;
- ``languages`` (ISO 639-1 where one exists), ``min_age``, ``max_age``,
  ``status``, ``capacity`` (HSDS 3.1 ``capacities``: the latest updated one);
- ``response_sla``: an attribute whose taxonomy term has code
  ``refnet:response_sla`` (or code ``response_sla`` in the taxonomy ``refnet``)
  and an ISO 8601 duration as its value, else the import's default, else none
  (the network's ``REFNET_DEFAULT_RESPONSE_SLA`` applies).

What cannot be imported is a :class:`Problem` naming the file, the row or JSON
path, and the field; :func:`read` and :func:`convert` collect every one and
raise :class:`HsdsError` with all of them, so that nothing is published from a
file that is partly wrong. Values that only make a service reach fewer people
(coordinates out of range, an unreadable area, an unknown language) are
warnings instead, reported and skipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from uuid import UUID, uuid5

from pydantic import TypeAdapter, ValidationError

from connectors.openreferral.areas import area_of, languages_of
from connectors.openreferral.json_files import read_json
from connectors.openreferral.model import (
    CapacityIn,
    Directory,
    HsdsError,
    Organization,
    Problem,
    Service,
)
from connectors.openreferral.tabular import read_package
from connectors.openreferral.taxonomy import Mapping, Term
from schemas.codes import PARTY_ID_RE, Category, ServiceStatus
from schemas.events import ID_PATTERN, MAX_CATEGORIES, ResponseSla, ServiceUpserted

#: Radius around a service's location when no service area names postal codes.
DEFAULT_RADIUS_KM: Final = 5.0
#: Event ids of imported records derive from the service id and content under this.
EVENT_NAMESPACE: Final = UUID("6c0b1d9e-6f5e-4f7c-9a59-0e4e2b8f1c33")
#: Longest slug of an organization name in a derived org_id.
ORG_SLUG_LENGTH: Final = 48

_ID_RE: Final = re.compile(ID_PATTERN)
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SLA_ADAPTER: Final[TypeAdapter[timedelta]] = TypeAdapter(ResponseSla)


def read(paths: Iterable[Path]) -> Directory:
    """Read HSDS JSON files and tabular data packages (folders) into one directory.

    Raises :class:`HsdsError` with every problem found; warnings stay in the result.
    """
    directory = Directory()
    for path in paths:
        if path.is_dir():
            read_package(path, directory)
        elif path.is_file():
            read_json(path, directory)
        else:
            directory.error(str(path), "no such file or folder")
    _check_duplicates(directory)
    if directory.errors:
        raise HsdsError(directory.errors)
    return directory


def _check_duplicates(directory: Directory) -> None:
    seen: dict[str, Service] = {}
    for service in directory.services:
        first = seen.setdefault(service.id, service)
        if first is not service:
            directory.error(
                service.loc.text, f"service {service.id} appears twice (first at {first.loc.text})"
            )


# ---------------------------------------------------------------- conversion
@dataclass(frozen=True)
class ImportedService:
    """A service ready to publish, and how its categories were found."""

    event: ServiceUpserted
    org_name: str
    mapped_by: tuple[str, ...]
    where: str


@dataclass(frozen=True)
class UnmappedService:
    """A service whose categories nothing in the mapping gives: reported, not published."""

    service_id: str
    name: str
    where: str
    terms: tuple[str, ...]


@dataclass
class Conversion:
    services: list[ImportedService] = field(default_factory=list)
    unmapped: list[UnmappedService] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: org_id -> organization name, for every organization with a published service
    organizations: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def convert(
    directory: Directory,
    mapping: Mapping,
    *,
    now: datetime,
    radius_km: float | None = DEFAULT_RADIUS_KM,
    default_sla: timedelta | None = None,
) -> Conversion:
    """Map every service of ``directory``; raise :class:`HsdsError` when one cannot be."""
    errors: list[Problem] = []
    result = Conversion(warnings=list(directory.warnings), sources=list(directory.sources))
    org_ids = _org_ids(directory, errors)
    claimed: dict[str, str] = {}
    for service in directory.services:
        org = directory.organizations.get(service.org_ref or "")
        if org is None:
            where = service.loc.at("organization_id")
            errors.append(
                Problem(
                    where,
                    f"organization {service.org_ref!r} is not in the import"
                    if service.org_ref
                    else "the service names no organization",
                )
            )
            continue
        org_id = org_ids.get(org.id)
        if org_id is None:
            continue
        mapped = _convert_one(
            service,
            org_id,
            _name(org.name, service.loc.text, result.warnings) or None,
            directory,
            mapping,
            now=now,
            radius_km=radius_km,
            default_sla=default_sla,
            errors=errors,
            warnings=result.warnings,
        )
        if isinstance(mapped, UnmappedService):
            result.unmapped.append(mapped)
        elif mapped is not None:
            result.services.append(
                ImportedService(mapped[0], org.name, mapped[1], service.loc.text)
            )
            result.organizations[org_id] = org.name
            claimed.setdefault(org_id, org.id)
    if errors:
        raise HsdsError(errors)
    return result


def _org_ids(directory: Directory, errors: list[Problem]) -> dict[str, str]:
    ids: dict[str, str] = {}
    owner: dict[str, Organization] = {}
    for org in directory.organizations.values():
        if org.pinned is not None:
            if not PARTY_ID_RE.fullmatch(org.pinned):
                where = (org.pinned_loc or org.loc).at("identifier")
                errors.append(Problem(where, "a refnet org_id must match [a-z0-9][a-z0-9-]{1,62}"))
                continue
            party = org.pinned
        else:
            party = org_id_for(org.id, org.name)
        other = owner.setdefault(party, org)
        if other is not org:
            errors.append(
                Problem(
                    org.loc.text,
                    f"organizations {other.id} and {org.id} both "
                    f"get org_id {party}: pin one with an organization_identifier "
                    "whose identifier_scheme is refnet",
                )
            )
            continue
        ids[org.id] = party
    return ids


def org_id_for(hsds_id: str, name: str) -> str:
    """The party id of an HSDS organization: its name's slug and a digest of its id."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    slug = slug[:ORG_SLUG_LENGTH].rstrip("-")
    digest = hashlib.sha256(hsds_id.encode("utf-8")).hexdigest()[:6]
    return f"{slug}-{digest}" if slug else f"org-{digest}"


def _convert_one(
    service: Service,
    org_id: str,
    org_name: str | None,
    directory: Directory,
    mapping: Mapping,
    *,
    now: datetime,
    radius_km: float | None,
    default_sla: timedelta | None,
    errors: list[Problem],
    warnings: list[Problem],
) -> tuple[ServiceUpserted, tuple[str, ...]] | UnmappedService | None:
    loc = service.loc
    count = len(errors)
    if len(service.id) > 128 or not _ID_RE.fullmatch(service.id):
        errors.append(
            Problem(
                loc.at("id"),
                "a service id must be 1 to 128 printable characters "
                "without leading or trailing blanks",
            )
        )
    status = _status(service.status)
    if status is None:
        errors.append(
            Problem(loc.at("status"), "must be active, inactive, defunct or temporarily closed")
        )
    min_age = _age(service.minimum_age, loc.at("minimum_age"), errors)
    max_age = _age(service.maximum_age, loc.at("maximum_age"), errors)
    if min_age is not None and max_age is not None and min_age > max_age:
        errors.append(Problem(loc.at("minimum_age"), "minimum_age is above maximum_age"))
    terms, sla = _terms_and_sla(service, directory, errors)
    sla = sla if sla is not None else default_sla
    capacity = _capacity(service.capacities, errors, warnings)
    if len(errors) > count:
        return None
    categories, mapped_by = _categories(service, terms, mapping)
    if not categories:
        shown = tuple(t.describe() for t in terms)
        return UnmappedService(service.id, service.name, loc.text, shown)
    postal_codes, location, radius = area_of(service, radius_km, warnings)
    body = {
        "event_id": uuid5(EVENT_NAMESPACE, f"{service.id}\n{now.isoformat()}"),
        "occurred_at": now,
        "service_id": service.id,
        "org_id": org_id,
        "org_name": org_name,
        "name": _name(service.name, loc.at("name"), warnings),
        "status": status,
        "categories": sorted(categories)[:MAX_CATEGORIES],
        "postal_codes": postal_codes,
        "location": location,
        "radius_km": radius,
        "languages": languages_of(service, warnings),
        "min_age": min_age,
        "max_age": max_age,
        "capacity": capacity,
        "response_sla": sla,
    }
    try:
        event = ServiceUpserted.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            field_name = ".".join(str(part) for part in err["loc"]) or "service"
            errors.append(Problem(loc.text, f"{field_name}: {err['msg']}"))
        return None
    return event, mapped_by


def _status(value: str) -> ServiceStatus | None:
    normal = re.sub(r"[\s_-]+", " ", value.strip().casefold())
    try:
        return ServiceStatus(normal)
    except ValueError:
        return None


def _age(value: object, where: str, errors: list[Problem]) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0 or number != int(number):
        errors.append(Problem(where, "an age must be a whole number of years, 0 or more"))
        return None
    return int(number)


def _terms_and_sla(
    service: Service, directory: Directory, errors: list[Problem]
) -> tuple[list[Term], timedelta | None]:
    terms: list[Term] = []
    sla: timedelta | None = None
    for attribute in service.attributes:
        term = attribute.term
        if term is None and attribute.term_id is not None:
            term = directory.terms.get(attribute.term_id)
            if term is None:
                errors.append(
                    Problem(
                        attribute.loc.at("taxonomy_term_id"),
                        f"no taxonomy term {attribute.term_id!r} in the import",
                    )
                )
                continue
        if term is None:
            continue
        if term.is_response_sla():
            where = attribute.loc.at("value")
            try:
                sla = _SLA_ADAPTER.validate_python(attribute.value)
            except ValidationError:
                errors.append(
                    Problem(
                        where,
                        "a refnet:response_sla attribute needs an ISO 8601 "
                        "duration of at most P90D as its value, such as PT24H",
                    )
                )
            continue
        terms.append(term)
    return terms, sla


def _categories(
    service: Service, terms: list[Term], mapping: Mapping
) -> tuple[set[Category], tuple[str, ...]]:
    categories: set[Category] = set()
    how: list[str] = []
    for term in terms:
        found = mapping.for_term(term)
        if found is not None:
            categories.update(found[0])
            how.append(found[1])
    if not categories:
        text = " ".join(t for t in (service.name, service.alternate_name, service.description) if t)
        found_text = mapping.for_text(text)
        categories.update(found_text[0])
        how.extend(found_text[1])
    return categories, tuple(dict.fromkeys(how))


def _capacity(
    capacities: list[CapacityIn], errors: list[Problem], warnings: list[Problem]
) -> dict[str, object] | None:
    if not capacities:
        return None
    chosen = max(capacities, key=lambda c: _sortable_time(c.updated))
    if len(capacities) > 1:
        warnings.append(
            Problem(
                chosen.loc.text,
                f"{len(capacities)} capacities: only the latest updated one is used",
            )
        )
    available = _count(chosen.available, chosen.loc.at("available"), errors, required=True)
    maximum = _count(chosen.maximum, chosen.loc.at("maximum"), errors, required=False)
    if available is None:
        return None
    unit = chosen.unit[:200] if chosen.unit else None
    return {"available": available, "unit": unit, "maximum": maximum}


def _sortable_time(value: str | None) -> str:
    try:
        return datetime.fromisoformat((value or "").replace("Z", "+00:00")).isoformat()
    except ValueError:
        return ""


def _count(value: object, where: str, errors: list[Problem], *, required: bool) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(Problem(where, "required by HSDS and missing"))
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        errors.append(Problem(where, "must be a number, 0 or more"))
        return None
    return int(number)


def _name(value: str, where: str, warnings: list[Problem]) -> str:
    cleaned = _CONTROL_RE.sub(" ", value).strip()
    if len(cleaned) > 200:
        warnings.append(Problem(where, "longer than 200 characters: shortened"))
        cleaned = cleaned[:199].rstrip() + "…"
    return cleaned


# ---------------------------------------------------------------- identity
def content_hash(event: ServiceUpserted) -> str:
    """SHA-256 of what a service says, without its event id and time: equal means unchanged."""
    body = event.model_dump(mode="json", exclude={"event_id", "occurred_at"})
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = [
    "DEFAULT_RADIUS_KM",
    "Conversion",
    "HsdsError",
    "ImportedService",
    "UnmappedService",
    "content_hash",
    "convert",
    "org_id_for",
    "read",
]
