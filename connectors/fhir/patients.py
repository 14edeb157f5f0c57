"""Who a clinic's resource is about: the references it makes, and the Patient they name.

A Patient is contained in the posted resource (``subject: {"reference": "#p"}``),
or a Bundle entry the subject names (by ``fullUrl`` or ``Patient/{id}``). The
network's patient id is the Patient's first ``identifier.value`` (the clinic's
MRN), else its ``id``. A bare reference to a Patient the gateway cannot see is
refused: the network needs a given name to contact the patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connectors.fhir.inputs import (
    GatewayInputError,
    first_value,
    json_array,
    json_object,
    nonblank,
    validation_message,
)
from schemas.events import Patient


class Resolver:
    """Finds the resources a posted resource refers to: contained ones, then a Bundle's."""

    def __init__(self, bundle: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.bundle = dict(bundle or {})

    def find(self, owner: dict[str, Any], reference: object, kind: str) -> dict[str, Any] | None:
        ref = (
            nonblank(json_object(reference, "a reference").get("reference")) if reference else None
        )
        if ref is None:
            return None
        if ref.startswith("#"):
            for item in json_array(owner.get("contained"), "contained"):
                if (
                    isinstance(item, dict)
                    and item.get("resourceType") == kind
                    and item.get("id") == ref[1:]
                ):
                    return item
            raise GatewayInputError(f"the reference {kind} #{'…'} names no contained {kind}")
        found = self.bundle.get(ref)
        if found is not None and found.get("resourceType") == kind:
            return found
        return None

    def first(self, owner: dict[str, Any], kind: str) -> dict[str, Any] | None:
        for item in json_array(owner.get("contained"), "contained"):
            if isinstance(item, dict) and item.get("resourceType") == kind:
                return item
        for item in self.bundle.values():
            if item.get("resourceType") == kind:
                return item
        return None


def _language(found: dict[str, Any]) -> str | None:
    language = None
    for comm in json_array(found.get("communication"), "Patient.communication"):
        concept = json_object(comm, "communication").get("language", {})
        codings = json_array(concept.get("coding"), "coding")
        language = next((c.get("code") for c in codings if isinstance(c, dict)), None)
        if language:
            break
    return language


@dataclass(frozen=True)
class PatientFields:
    """What refnet reads of a FHIR Patient: its id and demographics (None: absent)."""

    resource: dict[str, Any]
    id: str
    given: str | None
    family: str | None

    def first(self, element: str, field: str, **match: str) -> str | None:
        value: str | None = first_value(
            self.resource.get(element), f"Patient.{element}", field, **match
        )
        return value

    @property
    def phone(self) -> str | None:
        return self.first("telecom", "value", system="phone")

    @property
    def postal_code(self) -> str | None:
        return self.first("address", "postalCode")


def referenced_patient(
    resource: dict[str, Any], resolver: Resolver, field: str, why: str
) -> PatientFields:
    """The Patient ``resource.{field}`` names (contained, or in the same Bundle), read;
    ``why``: why the network needs it, for the refusal when there is none."""
    reference = resource.get(field)
    found = resolver.find(resource, reference, "Patient") if reference else None
    if found is None:
        raise GatewayInputError(
            f"{resource.get('resourceType')}.{field} must name a Patient contained in the "
            f"resource or carried in the same transaction Bundle ({why})"
        )
    ident = first_value(found.get("identifier"), "Patient.identifier", "value")
    ident = ident or nonblank(found.get("id"))
    if ident is None:
        raise GatewayInputError("the Patient needs an identifier or an id")
    names = [n for n in json_array(found.get("name"), "Patient.name") if isinstance(n, dict)]
    given = next(
        (g for n in names for g in json_array(n.get("given"), "Patient.name.given") if nonblank(g)),
        None,
    )
    family = next((n["family"] for n in names if nonblank(n.get("family"))), None)
    return PatientFields(found, ident, given, family)


def patient_from(resource: dict[str, Any], resolver: Resolver, field: str) -> Patient:
    """The Patient ``resource.{field}`` names, as refnet's patient."""
    found = referenced_patient(resource, resolver, field, "the network needs a given name")
    if found.given is None:
        raise GatewayInputError("the Patient needs a given name (Patient.name.given)")
    try:
        return Patient(
            id=found.id,
            given_name=found.given,
            family_name=found.family,
            phone=found.phone,
            preferred_language=_language(found.resource),
            postal_code=found.postal_code,
            birth_date=found.resource.get("birthDate"),
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Patient: {validation_message(exc)}") from None


__all__ = ["PatientFields", "Resolver", "patient_from", "referenced_patient"]
