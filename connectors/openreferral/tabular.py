"""Reading HSDS tabular data packages: a folder of CSV files, ``datapackage.json`` optional.

The reader fills a :class:`connectors.openreferral.model.Directory` with HSDS's own
objects and the CSV line each came from, joining the tables by their ids, and
records every problem instead of stopping at the first:
:func:`connectors.openreferral.importer.read` then refuses the whole import if
there is one. JSON files are read by :mod:`connectors.openreferral.json_files`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Final

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
    before = directory.sizes()
    _build(tables, directory)
    directory.sources.append(
        f"{folder}: HSDS tabular data package ({len(tables)} CSV files), "
        f"{directory.added_since(before)}"
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


__all__ = ["MANDATORY", "TABLES", "read_csv_rows", "read_package"]
