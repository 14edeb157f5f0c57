"""The directory: services and the capacity organizations report."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from schemas.codes import Category, ServiceStatus
from schemas.events.base import Event, WireModel
from schemas.events.fields import (
    MAX_CATEGORIES,
    MAX_LANGUAGES,
    MAX_POSTAL_CODES,
    NULL_IS_EMPTY,
    FiniteFloat,
    Id,
    Integer,
    Language,
    Name,
    PartyId,
    PostalCode,
    ResponseSla,
)


class Location(WireModel):
    lat: FiniteFloat = Field(ge=-90, le=90)
    lon: FiniteFloat = Field(ge=-180, le=180)


class Capacity(WireModel):
    """HSDS 3.1 draft ``service.capacities[]``: what is left now."""

    available: Integer = Field(ge=0)
    unit: Name | None = None
    maximum: Integer | None = Field(default=None, ge=0)


class ServiceUpserted(Event):
    """A service of the directory, created or replaced (compacted, key service_id)."""

    event_type: Literal["service.upserted"] = "service.upserted"
    service_id: Id
    org_id: PartyId
    name: Name
    org_name: Name | None = Field(
        default=None, description="the organization's name, as people read it (added in v1)"
    )
    status: ServiceStatus
    categories: Annotated[list[Category], Field(max_length=MAX_CATEGORIES)]
    postal_codes: Annotated[list[PostalCode], Field(max_length=MAX_POSTAL_CODES), NULL_IS_EMPTY] = (
        Field(default_factory=list, description="null means none")
    )
    location: Location | None = None
    radius_km: FiniteFloat | None = Field(default=None, ge=0)
    languages: Annotated[list[Language], Field(max_length=MAX_LANGUAGES), NULL_IS_EMPTY] = Field(
        default_factory=list, description="null means none"
    )
    min_age: Integer | None = Field(default=None, ge=0)
    max_age: Integer | None = Field(default=None, ge=0)
    capacity: Capacity | None = None
    response_sla: ResponseSla | None = Field(
        default=None, description="ISO 8601, e.g. PT24H; positive, at most P90D"
    )

    @model_validator(mode="after")
    def _age_bounds_ordered(self) -> Self:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        return self


class CapacityStatus(StrEnum):
    """The Gravity IG's (SDOH Clinical Care STU 3) capacity status of a service: codes of
    ``SDOHCC-CodeSystemTemporaryCodes`` (``SDOHCC-ValueSetCapacityStatus``)."""

    CAPACITY = "capacity"
    NO_CAPACITY = "no-capacity"
    WAITLIST = "waitlist"
    ADDITIONAL_ASSESSMENT_REQUIRED = "additional-assessment-required"


class ServiceCapacityChanged(Event):
    """An organization reports the capacity left in one of its services.

    ``available`` (places left) is required unless ``capacity_status`` (added in v1)
    is given; ``no-capacity`` means 0 places (a count above 0 with it is refused)."""

    event_type: Literal["service.capacity-changed"] = "service.capacity-changed"
    service_id: Id
    available: Integer | None = Field(
        default=None, ge=0, description="places left; required unless capacity_status is given"
    )
    capacity_status: CapacityStatus | None = Field(
        default=None,
        description="the IG's capacityStatus: capacity, no-capacity, waitlist, "
        "additional-assessment-required",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_capacity_is_zero(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("capacity_status") == CapacityStatus.NO_CAPACITY
            and data.get("available") is None
        ):
            return {**data, "available": 0}
        return data

    @model_validator(mode="after")
    def _a_count_or_a_status(self) -> Self:
        if self.available is None and self.capacity_status is None:
            raise ValueError("a capacity report needs available or capacity_status")
        if self.capacity_status is CapacityStatus.NO_CAPACITY and self.available:
            raise ValueError("capacity_status no-capacity with places available")
        return self


__all__ = ["Capacity", "CapacityStatus", "Location", "ServiceCapacityChanged", "ServiceUpserted"]
