"""The patient's consent: an SDOHCC Consent as refnet's :class:`~schemas.events.Consent`.

A Consent is contained in the posted resource, named in its ``supportingInfo``,
or a Bundle entry; a resource takes only a Consent whose ``patient`` is its own
``subject`` (none: not granted; two, neither named in ``supportingInfo``: a
422). ``status`` active and ``provision.type`` permit (or absent) grant;
anything else does not. ``provision.period.end`` is the expiry; the categories
consented to are the SDOHCC category codings
(``SDOHCC-CodeSystemTemporaryCodes``) in ``provision.code`` (none: all
categories). A ``period.end`` may have any precision FHIR allows: a year,
year-month or date ends at the end of that year, month or day in UTC.

Consent never widens. What refnet can represent narrows it: a nested ``deny``
provision naming SDOHCC categories removes them (from "all": the explicit list
of the others). Every other restriction (``actor``, ``purpose``, ``data``, a
future ``period.start``, a nested provision of another kind, a code outside the
SDOHCC categories, an action other than disclose) is refused with a 422 naming
the rule: dropping it would disclose more than the patient allowed.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from connectors.fhir.inputs import (
    GatewayInputError,
    first_value,
    json_array,
    json_object,
    nonblank,
    sdoh_category_codes,
    validation_message,
)
from connectors.fhir.patients import Resolver
from schemas.codes import SDOH_CATEGORY_SYSTEM, Category
from schemas.events import Consent

#: Provision elements refnet cannot represent: refused, never dropped.
UNREPRESENTABLE: Final = (
    "actor",
    "purpose",
    "securityLabel",
    "class",
    "data",
    "dataPeriod",
    "modifierExtension",
)
_ACTION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentaction"
_DATE: Final = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
#: A date without a time starts, somewhere on Earth, this long after 00:00 UTC.
_LATEST_DAY_START: Final = timedelta(hours=12)


def _refuse(where: str, rule: str) -> GatewayInputError:
    return GatewayInputError(f"{where}: {rule}; refnet cannot represent it and will not drop it")


def _categories(concepts: object, where: str) -> list[Category]:
    """The SDOHCC categories of ``concepts``; a concept without one is refused."""
    found: list[Category] = []
    for concept in json_array(concepts, where):
        codes = list(sdoh_category_codes([concept], where, "code"))
        if not codes:
            raise _refuse(where, f"a code outside the SDOHCC categories ({SDOH_CATEGORY_SYSTEM})")
        for code in codes:
            try:
                found.append(Category(code))
            except ValueError:
                raise GatewayInputError(f"{where}: not an SDOHCC category code") from None
    return found


def _start(value: object) -> datetime:
    """The latest instant a FHIR date or dateTime ``value`` may mean."""
    if not isinstance(value, str):
        raise GatewayInputError("Consent.provision.period.start must be a FHIR dateTime")
    day = _DATE.match(value)
    try:
        if day:
            year, month, date = day.group(1), day.group(2) or "01", day.group(3) or "01"
            at = datetime.fromisoformat(f"{year}-{month}-{date}T00:00:00+00:00")
            return at + _LATEST_DAY_START
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GatewayInputError("Consent.provision.period.start must be a FHIR dateTime") from None
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC) + _LATEST_DAY_START
    return at


def _check_restrictions(provision: dict[str, Any], where: str, now: datetime) -> None:
    for element in UNREPRESENTABLE:
        if provision.get(element) not in (None, [], {}):
            raise _refuse(f"{where}.{element}", "a restriction by " + element)
    for action in json_array(provision.get("action"), f"{where}.action"):
        codings = json_array(json_object(action, f"{where}.action").get("coding"), "coding")
        if not codings or any(
            not isinstance(c, dict)
            or c.get("system") != _ACTION_SYSTEM
            or c.get("code") != "disclose"
            for c in codings
        ):
            raise _refuse(f"{where}.action", "an action other than disclose")
    period = json_object(provision.get("period") or {}, f"{where}.period")
    if period.get("start") is not None and _start(period["start"]) > now:
        raise _refuse(f"{where}.period.start", "a consent that starts in the future")


def _denied(provision: dict[str, Any], now: datetime) -> tuple[set[Category], bool]:
    """The categories the nested provisions deny; True if one denies every category."""
    where = "Consent.provision.provision"
    denied: set[Category] = set()
    for nested in json_array(provision.get("provision"), where):
        nested = json_object(nested, where)
        if nested.get("type") != "deny":
            raise _refuse(f"{where}.type", "a nested provision other than deny")
        if nested.get("provision"):
            raise _refuse(f"{where}.provision", "a provision nested two levels deep")
        if json_object(nested.get("period") or {}, f"{where}.period"):
            raise _refuse(f"{where}.period", "a denial for a period")
        _check_restrictions(nested, where, now)
        codes = _categories(nested.get("code"), f"{where}.code")
        if not codes:
            return denied, True
        denied.update(codes)
    return denied, False


def consent_from(resource: dict[str, Any] | None, now: datetime | None = None) -> Consent:
    """An SDOHCC Consent as refnet's consent (None: not granted); see the module's rules."""
    if resource is None:
        return Consent(granted=False)
    now = now or datetime.now(UTC)
    provision = json_object(resource.get("provision") or {}, "Consent.provision")
    granted = resource.get("status") == "active" and provision.get("type", "permit") == "permit"
    if not granted:
        return Consent(granted=False)  # nothing nested can widen a refusal
    _check_restrictions(provision, "Consent.provision", now)
    categories = set(_categories(provision.get("code"), "Consent.provision.code"))
    denied, everything = _denied(provision, now)
    if denied:
        categories = (categories or set(Category)) - denied
        everything = everything or not categories
    if everything:
        return Consent(granted=False)
    period = json_object(provision.get("period") or {}, "Consent.provision.period")
    try:
        return Consent(
            granted=True,
            categories=sorted(categories) or None,
            expires_at=period_end(period.get("end")),
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Consent: {validation_message(exc)}") from None


def _ident(patient: dict[str, Any] | None) -> str | None:
    if patient is None:
        return None
    ident = first_value(patient.get("identifier"), "Patient.identifier", "value")
    return ident or nonblank(patient.get("id"))


def _belongs(
    consent: dict[str, Any], owner: dict[str, Any], subject: dict[str, Any], resolver: Resolver
) -> bool:
    """Whether ``consent.patient`` is ``subject`` (``owner``: where a ``#`` reference looks)."""
    reference = consent.get("patient")
    if not reference:
        return False
    patient = resolver.find(owner, reference, "Patient")
    if patient is None:
        return False
    return patient is subject or _ident(patient) == _ident(subject)


_PARTIAL = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def period_end(value: object) -> object:
    """A FHIR ``period.end`` of year, year-month or date precision as the last second of
    that year, month or day in UTC; a dateTime (or anything else) as it is."""
    found = _PARTIAL.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return value
    year, month, day = int(found[1]), int(found[2] or 12), found[3]
    if not 1 <= month <= 12:
        return value
    last = int(day) if day else calendar.monthrange(year, month)[1]
    return f"{year:04d}-{month:02d}-{last:02d}T23:59:59Z"


def consent_of(resource: dict[str, Any], resolver: Resolver) -> dict[str, Any] | None:
    """The Consent of ``resource``'s subject: the one ``supportingInfo`` names, else the
    only one contained or in the Bundle whose ``patient`` is the subject (two: a 422)."""
    subject = resolver.find(resource, resource.get("subject"), "Patient")
    if subject is None:
        return None
    for info in json_array(resource.get("supportingInfo"), "supportingInfo"):
        found = resolver.find(resource, info, "Consent")
        if found is None:
            continue
        owner = found if any(found is v for v in resolver.bundle.values()) else resource
        if not _belongs(found, owner, subject, resolver):
            raise GatewayInputError(
                "supportingInfo names a Consent whose patient is not the resource's subject"
            )
        return found
    mine: list[dict[str, Any]] = [
        item
        for item in json_array(resource.get("contained"), "contained")
        if isinstance(item, dict)
        and item.get("resourceType") == "Consent"
        and _belongs(item, resource, subject, resolver)
    ]
    for item in resolver.bundle.values():
        if (
            item.get("resourceType") == "Consent"
            and not any(item is seen for seen in mine)
            and _belongs(item, item, subject, resolver)
        ):
            mine.append(item)
    if len(mine) > 1:
        raise GatewayInputError(
            "more than one Consent of the resource's subject: refnet will not choose the wider "
            "(send one, or name it in supportingInfo)"
        )
    return mine[0] if mine else None


__all__ = ["UNREPRESENTABLE", "consent_from", "consent_of"]
