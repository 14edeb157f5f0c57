"""The patient as clinics send them, their consent, and what an organization may see."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StrictBool

from schemas.codes import Category, EncounterAlerts
from schemas.events.base import WireModel
from schemas.events.fields import (
    MAX_CATEGORIES,
    NULL_IS_NO_ALERTS,
    Id,
    Language,
    Name,
    Phone,
    PostalCode,
    Timestamp,
)


class Patient(WireModel):
    """The patient as the clinic knows them. Stays inside the network."""

    id: Id
    given_name: Name
    family_name: Name | None = None
    phone: Phone | None = None
    preferred_language: Language | None = Field(default=None, description="ISO 639 code")
    postal_code: PostalCode | None = None
    birth_date: date | None = None


class Consent(WireModel):
    """The patient's consent to disclose to community organizations."""

    granted: StrictBool = Field(description='true or false; "yes" or 1 is not consent')
    categories: Annotated[list[Category], Field(max_length=MAX_CATEGORIES)] | None = Field(
        default=None, description="categories consented to; null means all"
    )
    expires_at: Timestamp | None = None
    encounter_alerts: Annotated[EncounterAlerts, NULL_IS_NO_ALERTS] = Field(
        default=EncounterAlerts.NONE,
        description=(
            "what organizations serving the patient may hear of hospital encounters: "
            "none (the default; null means none), encounter (its kind and date), "
            "with-reason (and its reason codes). Clinics hear every encounter."
        ),
    )

    def alerts_organization(self, category: Category, at: datetime) -> EncounterAlerts:
        """What an organization serving ``category`` may hear of an encounter at ``at``."""
        if not self.covers(category, at):
            return EncounterAlerts.NONE
        return self.encounter_alerts

    def covers(self, category: Category, at: datetime) -> bool:
        """Whether this consent allows disclosure for ``category`` at time ``at``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("consent is checked at an aware time")
        if not self.granted:
            return False
        if self.expires_at is not None and at >= self.expires_at:
            return False
        return self.categories is None or category in self.categories


class OfferedPatient(WireModel):
    """The minimum necessary about a patient for an organization (see schemas.privacy)."""

    given_name: Name
    phone: Phone | None = None
    preferred_language: Language | None = None
    postal_code: PostalCode | None = None


__all__ = ["Consent", "OfferedPatient", "Patient"]
