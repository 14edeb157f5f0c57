"""Reading HSDS files: JSON objects and arrays, and tabular data packages (CSV).

Both readers fill a :class:`connectors.openreferral.importer.Directory` with HSDS's own
objects and where each came from (a JSON path, or a CSV line), and record every
problem instead of stopping at the first: :func:`connectors.openreferral.importer.read`
then refuses the whole import if there is one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Final

from connectors.openreferral.model import (
    Area,
    Attribute,
    CapacityIn,
    Directory,
    Language,
    Loc,
    Organization,
    Place,
    Service,
)
from connectors.openreferral.taxonomy import Term


# ---------------------------------------------------------------- JSON
def read_json(path: Path, directory: Directory) -> None:
    """Read one HSDS JSON file: an object, an array of objects, or an API page."""
    name = path.name
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        directory.error(name, f"not UTF-8 text (byte {exc.start})")
        return
    except json.JSONDecodeError as exc:
        directory.error(name, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        return
    except OSError as exc:
        directory.error(name, f"cannot be read ({exc.strerror})")
        return
    if isinstance(document, dict) and isinstance(document.get("contents"), list):
        items, base = document["contents"], f"{name} $.contents"
    elif isinstance(document, list):
        items, base = document, f"{name} $"
    elif isinstance(document, dict):
        items, base = [document], ""
    else:
        directory.error(name, "expected an HSDS object or an array of objects")
        return
    before = (len(directory.organizations), len(directory.services))
    for index, item in enumerate(items):
        loc = Loc(f"{base}[{index}]" if base else f"{name} $")
        if not isinstance(item, dict):
            directory.error(loc.text, "expected an object")
            continue
        _read_object(item, loc, directory)
    orgs = len(directory.organizations) - before[0]
    services = len(directory.services) - before[1]
    directory.sources.append(f"{path}: HSDS JSON, {orgs} organization(s), {services} service(s)")


def _read_object(item: dict[str, Any], loc: Loc, directory: Directory) -> None:
    """Dispatch on what the object is (HSDS objects carry no type field)."""
    if isinstance(item.get("services"), list) or _looks_like_organization(item):
        _json_organization(item, loc, directory)
    elif isinstance(item.get("service"), dict):  # service_at_location
        place = _json_location(item.get("location"), loc.child("location"), directory)
        service = _json_service(item["service"], loc.child("service"), directory, None)
        if service is not None and place is not None:
            service.places.append(place)
        for i, area in enumerate(_objects(item, "service_areas", loc, directory)):
            if service is not None:
                service.areas.append(_json_area(area, loc.item("service_areas", i), directory))
    elif "status" in item or "organization" in item or "organization_id" in item:
        _json_service(item, loc, directory, None)
    elif "location_type" in item or "addresses" in item or "latitude" in item:
        directory.warn(loc.text, "a location without services: nothing to import from it")
    elif "code" in item or "taxonomy" in item or "term_uri" in item:
        term = _json_term(item, loc, directory)
        if term is not None and term.id:
            directory.terms.setdefault(term.id, term)
    else:
        directory.error(loc.text, "not an HSDS organization, service or service_at_location")


def _looks_like_organization(item: dict[str, Any]) -> bool:
    keys = {
        "legal_status",
        "tax_status",
        "year_incorporated",
        "organization_identifiers",
        "website",
        "funding",
        "programs",
    }
    return "status" not in item and bool(keys & item.keys())


def _json_organization(item: dict[str, Any], loc: Loc, directory: Directory) -> str | None:
    org_id = _required_text(item, "id", loc, directory)
    name = _required_text(item, "name", loc, directory)
    if org_id is None or name is None:
        return None
    org = Organization(org_id, name, loc)
    for i, ident in enumerate(_objects(item, "organization_identifiers", loc, directory)):
        if str(ident.get("identifier_scheme") or "").strip().casefold() == "refnet":
            org.pinned = _text(ident.get("identifier"))
            org.pinned_loc = loc.item("organization_identifiers", i)
    directory.add_organization(org)
    for i, nested in enumerate(_objects(item, "services", loc, directory)):
        _json_service(nested, loc.item("services", i), directory, org_id)
    return org_id


def _json_service(
    item: dict[str, Any], loc: Loc, directory: Directory, org_id: str | None
) -> Service | None:
    service_id = _required_text(item, "id", loc, directory)
    name = _required_text(item, "name", loc, directory)
    status = _required_text(item, "status", loc, directory)
    nested_org = item.get("organization")
    if isinstance(nested_org, dict):
        org_id = _json_organization(nested_org, loc.child("organization"), directory) or org_id
    elif org_id is None:
        org_id = _text(item.get("organization_id"))
    if service_id is None or name is None or status is None:
        return None
    service = Service(
        id=service_id,
        name=name,
        status=status,
        org_ref=org_id,
        loc=loc,
        alternate_name=_text(item.get("alternate_name")),
        description=_text(item.get("description")),
        minimum_age=item.get("minimum_age"),
        maximum_age=item.get("maximum_age"),
    )
    for i, lang in enumerate(_objects(item, "languages", loc, directory)):
        service.languages.append(_json_language(lang, loc.item("languages", i)))
    for i, area in enumerate(_objects(item, "service_areas", loc, directory)):
        service.areas.append(_json_area(area, loc.item("service_areas", i), directory))
    for i, sal in enumerate(_objects(item, "service_at_locations", loc, directory)):
        sal_loc = loc.item("service_at_locations", i)
        place = _json_location(sal.get("location"), sal_loc.child("location"), directory)
        if place is not None:
            service.places.append(place)
        for j, area in enumerate(_objects(sal, "service_areas", sal_loc, directory)):
            service.areas.append(_json_area(area, sal_loc.item("service_areas", j), directory))
    for i, cap in enumerate(_objects(item, "capacities", loc, directory)):
        service.capacities.append(_json_capacity(cap, loc.item("capacities", i)))
    for i, attr in enumerate(_objects(item, "attributes", loc, directory)):
        service.attributes.append(_json_attribute(attr, loc.item("attributes", i), directory))
    for i, term in enumerate(_objects(item, "taxonomy_terms", loc, directory)):  # older exports
        parsed = _json_term(term, loc.item("taxonomy_terms", i), directory)
        service.attributes.append(Attribute(parsed, None, None, loc.item("taxonomy_terms", i)))
    directory.services.append(service)
    return service


def _json_location(item: object, loc: Loc, directory: Directory) -> Place | None:
    if item is None:
        return None
    if not isinstance(item, dict):
        directory.error(loc.text, "expected an object")
        return None
    place = Place(_text(item.get("id")), item.get("latitude"), item.get("longitude"), loc)
    for i, address in enumerate(_objects(item, "addresses", loc, directory)):
        code = _text(address.get("postal_code"))
        if code is None:
            continue
        kind = str(address.get("address_type") or "physical").strip().casefold()
        (place.physical if kind == "physical" else place.other).append(code)
        del i
    for i, lang in enumerate(_objects(item, "languages", loc, directory)):
        place.languages.append(_json_language(lang, loc.item("languages", i)))
    return place


def _json_area(item: dict[str, Any], loc: Loc, directory: Directory) -> Area:
    del directory
    return Area(_text(item.get("name")), item.get("extent"), _text(item.get("extent_type")), loc)


def _json_language(item: dict[str, Any], loc: Loc) -> Language:
    return Language(_text(item.get("code")), _text(item.get("name")), loc)


def _json_capacity(item: dict[str, Any], loc: Loc) -> CapacityIn:
    unit = item.get("unit")
    unit_name = _text(unit.get("name")) if isinstance(unit, dict) else _text(unit)
    return CapacityIn(
        item.get("available"), item.get("maximum"), unit_name, _text(item.get("updated")), loc
    )


def _json_attribute(item: dict[str, Any], loc: Loc, directory: Directory) -> Attribute:
    term = item.get("taxonomy_term")
    parsed = _json_term(term, loc.child("taxonomy_term"), directory) if term is not None else None
    return Attribute(parsed, _text(item.get("taxonomy_term_id")), _text(item.get("value")), loc)


def _json_term(item: object, loc: Loc, directory: Directory) -> Term | None:
    if not isinstance(item, dict):
        directory.error(loc.text, "expected a taxonomy_term object")
        return None
    taxonomy = _text(item.get("taxonomy"))
    detail = item.get("taxonomy_detail")
    if taxonomy is None and isinstance(detail, dict):
        taxonomy = _text(detail.get("name"))
    return Term(
        _text(item.get("id")), _text(item.get("code")), _text(item.get("name")), taxonomy, loc.text
    )


def _objects(
    item: dict[str, Any], key: str, loc: Loc, directory: Directory
) -> list[dict[str, Any]]:
    """``item[key]`` as a list of objects; null or absent is empty, anything else an error."""
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        directory.error(loc.at(key), "expected an array")
        return []
    found = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict):
            found.append(entry)
        else:
            directory.error(loc.item(key, i).text, "expected an object")
    return found


def _text(value: object) -> str | None:
    """A string value, stripped; numbers become text (ids); anything else or blank is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _required_text(item: dict[str, Any], key: str, loc: Loc, directory: Directory) -> str | None:
    value = _text(item.get(key))
    if value is None:
        directory.error(loc.at(key), "required by HSDS and missing or empty")
    return value


# ---------------------------------------------------------------- tabular data package
#: resource name -> (default file, required columns, groups of which one column is needed)
TABLES: Final[dict[str, tuple[str, frozenset[str], tuple[frozenset[str], ...]]]] = {
    "organization": ("organizations.csv", frozenset({"id", "name"}), ()),
    "service": ("services.csv", frozenset({"id", "organization_id", "name", "status"}), ()),
    "location": ("locations.csv", frozenset({"id"}), ()),
    "address": ("addresses.csv", frozenset({"location_id", "postal_code"}), ()),
    "service_at_location": (
        "service_at_location.csv",
        frozenset({"service_id", "location_id"}),
        (),
    ),
    "service_area": (
        "service_areas.csv",
        frozenset(),
        (frozenset({"service_id", "service_at_location_id"}),),
    ),
    "language": (
        "languages.csv",
        frozenset(),
        (frozenset({"service_id", "location_id", "phone_id"}), frozenset({"code", "name"})),
    ),
    "attribute": ("attributes.csv", frozenset({"link_id", "taxonomy_term_id"}), ()),
    "taxonomy_term": ("taxonomy_terms.csv", frozenset({"id"}), (frozenset({"code", "name"}),)),
    "taxonomy": ("taxonomies.csv", frozenset({"id", "name"}), ()),
    "service_capacity": ("service_capacity.csv", frozenset({"service_id", "available"}), ()),
    "unit": ("units.csv", frozenset({"id", "name"}), ()),
    "organization_identifier": (
        "organization_identifiers.csv",
        frozenset({"organization_id", "identifier"}),
        (),
    ),
}
#: Tables a package must have.
MANDATORY: Final = ("organization", "service")

Rows = list[tuple[Loc, dict[str, str]]]


def read_package(folder: Path, directory: Directory) -> None:
    """Read an HSDS tabular data package: a folder of CSV files, ``datapackage.json`` optional."""
    paths = _resource_paths(folder, directory)
    if paths is None:
        return
    tables: dict[str, Rows] = {}
    for name, path in paths.items():
        rows = _read_table(name, path, directory)
        if rows is not None:
            tables[name] = rows
    for name in MANDATORY:
        if name not in paths:
            directory.error(
                str(folder),
                f"no {TABLES[name][0]}: an HSDS tabular data package "
                "has at least organizations.csv and services.csv",
            )
    if directory.errors:
        return
    before = (len(directory.organizations), len(directory.services))
    _build(tables, directory)
    orgs = len(directory.organizations) - before[0]
    services = len(directory.services) - before[1]
    directory.sources.append(
        f"{folder}: HSDS tabular data package ({len(tables)} CSV files), "
        f"{orgs} organization(s), {services} service(s)"
    )


def _resource_paths(folder: Path, directory: Directory) -> dict[str, Path] | None:
    descriptor = folder / "datapackage.json"
    names = {name: folder / spec[0] for name, spec in TABLES.items()}
    if descriptor.is_file():
        try:
            package = json.loads(descriptor.read_text(encoding="utf-8-sig"))
            resources = package["resources"]
            if not isinstance(resources, list):
                raise TypeError("resources is not an array")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            directory.error(str(descriptor), f"not a usable data package descriptor ({exc})")
            return None
        for resource in resources:
            if isinstance(resource, dict) and resource.get("name") in TABLES:
                path = resource.get("path")
                if isinstance(path, str) and path and not Path(path).is_absolute():
                    names[resource["name"]] = folder / path
        missing = [
            str(p.relative_to(folder))
            for n, p in names.items()
            if n in MANDATORY and not p.is_file()
        ]
        if missing:
            directory.error(str(descriptor), f"names {', '.join(missing)}, not found in {folder}")
            return None
    return {name: path for name, path in names.items() if path.is_file()}


def _read_table(name: str, path: Path, directory: Directory) -> Rows | None:
    _, required, one_of = TABLES[name]
    try:
        header, rows = read_csv_rows(path)
    except UnicodeDecodeError as exc:
        directory.error(path.name, f"not UTF-8 text (byte {exc.start})")
        return None
    except (ValueError, csv.Error) as exc:
        directory.error(path.name, f"not a valid CSV file: {exc}")
        return None
    except OSError as exc:
        directory.error(path.name, f"cannot be read ({exc.strerror})")
        return None
    columns = set(header)
    missing = sorted(required - columns)
    for group in one_of:
        if not group & columns:
            missing.append(" or ".join(sorted(group)))
    if missing:
        directory.error(
            path.name,
            f"missing column(s) {', '.join(missing)} (HSDS {name} needs "
            f"{', '.join(sorted(required)) or 'them'})",
        )
        return None
    found: Rows = []
    for line, row in rows:
        loc = Loc(f"{path.name} line {line}", tabular=True)
        for column in sorted(required):
            if not row.get(column):
                directory.error(loc.at(column), "required and empty")
        found.append((loc, row))
    return found


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV file's header and its rows with their first line numbers.

    Raises ValueError for a row with more fields than the header.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, restkey="\x00extra")
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        rows: list[tuple[int, dict[str, str]]] = []
        line = reader.line_num
        for row in reader:
            if "\x00extra" in row:
                raise ValueError(f"line {line + 1} has more fields than the header")
            rows.append((line + 1, {k: (v or "").strip() for k, v in row.items() if k}))
            line = reader.line_num
    return header, rows


def _build(tables: dict[str, Rows], directory: Directory) -> None:
    """Join the tables into organizations and services (dangling optional links: warnings)."""
    taxonomies = {row["id"]: row["name"] for _, row in tables.get("taxonomy", [])}
    for loc, row in tables.get("taxonomy_term", []):
        taxonomy = row.get("taxonomy") or taxonomies.get(row.get("taxonomy_id", ""))
        term = Term(
            row["id"], row.get("code") or None, row.get("name") or None, taxonomy or None, loc.text
        )
        directory.terms.setdefault(term.id or "", term)
    pins: dict[str, tuple[str, Loc]] = {}
    for loc, row in tables.get("organization_identifier", []):
        if row.get("identifier_scheme", "").casefold() == "refnet":
            pins[row["organization_id"]] = (row["identifier"], loc)
    for loc, row in tables["organization"]:
        org = Organization(row["id"], row["name"], loc)
        if row["id"] in pins:
            org.pinned, org.pinned_loc = pins[row["id"]]
        directory.add_organization(org)
    places: dict[str, Place] = {}
    for loc, row in tables.get("location", []):
        places[row["id"]] = Place(
            row["id"], row.get("latitude") or None, row.get("longitude") or None, loc
        )
    for loc, row in tables.get("address", []):
        place = places.get(row["location_id"])
        if place is None:
            directory.warn(loc.at("location_id"), "no such location: address ignored")
            continue
        kind = (row.get("address_type") or "physical").casefold()
        (place.physical if kind == "physical" else place.other).append(row["postal_code"])
    services: dict[str, Service] = {}
    for loc, row in tables["service"]:
        service = Service(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            org_ref=row["organization_id"],
            loc=loc,
            alternate_name=row.get("alternate_name") or None,
            description=row.get("description") or None,
            minimum_age=row.get("minimum_age") or None,
            maximum_age=row.get("maximum_age") or None,
        )
        services.setdefault(service.id, service)
        directory.services.append(service)
    _link(tables, directory, services, places)


def _link(
    tables: dict[str, Rows],
    directory: Directory,
    services: dict[str, Service],
    places: dict[str, Place],
) -> None:
    at_location: dict[str, Service] = {}
    for loc, row in tables.get("service_at_location", []):
        service, place = services.get(row["service_id"]), places.get(row["location_id"])
        if service is None:
            directory.warn(loc.at("service_id"), "no such service: row ignored")
        elif place is None:
            directory.warn(loc.at("location_id"), "no such location: row ignored")
        else:
            service.places.append(place)
            if row.get("id"):
                at_location[row["id"]] = service
    for loc, row in tables.get("service_area", []):
        service = services.get(row.get("service_id", "")) or at_location.get(
            row.get("service_at_location_id", "")
        )
        if service is None:
            directory.warn(loc.text, "links to no service in the import: row ignored")
            continue
        service.areas.append(
            Area(
                row.get("name") or None,
                row.get("extent") or None,
                row.get("extent_type") or None,
                loc,
            )
        )
    for loc, row in tables.get("language", []):
        language = Language(row.get("code") or None, row.get("name") or None, loc)
        if row.get("service_id") in services:
            services[row["service_id"]].languages.append(language)
        elif row.get("location_id") in places:
            places[row["location_id"]].languages.append(language)
    units = {row["id"]: row["name"] for _, row in tables.get("unit", [])}
    for loc, row in tables.get("service_capacity", []):
        service = services.get(row["service_id"])
        if service is None:
            directory.warn(loc.at("service_id"), "no such service: capacity ignored")
            continue
        unit = units.get(row.get("unit_id", "")) or row.get("unit") or None
        service.capacities.append(
            CapacityIn(
                row["available"], row.get("maximum") or None, unit, row.get("updated") or None, loc
            )
        )
    known = set(directory.organizations) | set(places)
    for loc, row in tables.get("attribute", []):
        service = services.get(row["link_id"])
        if service is None:
            if row["link_id"] not in known:
                directory.warn(loc.at("link_id"), "links to nothing in the import: row ignored")
            continue
        service.attributes.append(
            Attribute(None, row["taxonomy_term_id"], row.get("value") or None, loc)
        )


__all__ = ["MANDATORY", "TABLES", "read_csv_rows", "read_json", "read_package"]
