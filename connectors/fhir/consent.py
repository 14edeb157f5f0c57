"""The patient's consent: an SDOHCC Consent as refnet's :class:`~schemas.events.Consent`.

A Consent is contained in the posted resource, named in its ``supportingInfo``,
or a Bundle entry. ``status`` active and ``provision.type`` permit (or absent)
grant; anything else does not. ``provision.period.end`` is the expiry; the
categories consented to are the SDOHCC category codings
(``SDOHCC-CodeSystemTemporaryCodes``) in ``provision.code`` (none: all
categories). A ``period.end`` may have any precision FHIR allows: a year,
year-month or date ends at the end of that year, month or day in UTC.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

from pydantic import ValidationError

from connectors.fhir.inputs import (
    GatewayInputError,
    json_array,
    json_object,
    sdoh_category_codes,
    validation_message,
)
from connectors.fhir.patients import Resolver
from schemas.codes import Category
from schemas.events import Consent


def consent_from(resource: dict[str, Any] | None) -> Consent:
    """An SDOHCC Consent as refnet's consent (None: not granted)."""
    if resource is None:
        return Consent(granted=False)
    provision = resource.get("provision") or {}
    provision = json_object(provision, "Consent.provision")
    granted = resource.get("status") == "active" and provision.get("type", "permit") == "permit"
    categories: list[Category] = []
    for code in sdoh_category_codes(provision.get("code"), "Consent.provision.code", "code"):
        try:
            categories.append(Category(code))
        except ValueError:
            raise GatewayInputError("Consent.provision.code: not an SDOHCC category code") from None
    period = provision.get("period") or {}
    try:
        return Consent(
            granted=granted,
            categories=sorted(set(categories)) or None,
            expires_at=period_end(json_object(period, "Consent.provision.period").get("end")),
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Consent: {validation_message(exc)}") from None


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
    """The Consent a resource's ``supportingInfo`` names, else the first one it can see."""
    for info in json_array(resource.get("supportingInfo"), "supportingInfo"):
        found = resolver.find(resource, info, "Consent")
        if found is not None:
            return found
    return resolver.first(resource, "Consent")


__all__ = ["consent_from", "consent_of"]
