"""Reading HSDS JSON files: an object, an array of objects, or an API page.

The reader fills a :class:`connectors.openreferral.model.Directory` with HSDS's own
objects and the JSON path each came from, and records every problem instead of
stopping at the first: :func:`connectors.openreferral.importer.read` then refuses
the whole import if there is one. Tabular data packages are read by
:mod:`connectors.openreferral.tabular`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    before = directory.sizes()
    for index, item in enumerate(items):
        loc = Loc(f"{base}[{index}]" if base else f"{name} $")
        if not isinstance(item, dict):
            directory.error(loc.text, "expected an object")
            continue
        _read_object(item, loc, directory)
    directory.sources.append(f"{path}: HSDS JSON, {directory.added_since(before)}")


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


__all__ = ["read_json"]
