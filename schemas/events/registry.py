"""Every event model by its wire ``event_type``, and the bytes of a Kafka message."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, TypeAdapter

from schemas.events.answers import MessageRefused, ReferralStatusRecorded, ScreeningAnswered
from schemas.events.base import Event
from schemas.events.deadletters import DeadLetter
from schemas.events.directory import ServiceCapacityChanged, ServiceUpserted
from schemas.events.encounters import EncounterAlerted, EncounterNotified, EncounterRouted
from schemas.events.referrals import (
    ConsentUpdated,
    ReferralCancelled,
    ReferralOffered,
    ReferralRequested,
    ReferralStateChanged,
    ReferralStatusChanged,
    ReferralUpdated,
    ReferralWithdrawn,
)
from schemas.events.screenings import ScreeningScored, ScreeningSubmitted

EVENT_MODELS: Final[tuple[type[Event], ...]] = (
    ScreeningSubmitted,
    ReferralRequested,
    ReferralCancelled,
    ConsentUpdated,
    ReferralOffered,
    ReferralWithdrawn,
    ReferralStatusChanged,
    ServiceCapacityChanged,
    ReferralUpdated,
    ServiceUpserted,
    ScreeningScored,
    ReferralStateChanged,
    DeadLetter,
    MessageRefused,
    ScreeningAnswered,
    EncounterNotified,
    EncounterAlerted,
    EncounterRouted,
    ReferralStatusRecorded,
)


def _event_type_of(model: type[Event]) -> str:
    default = model.model_fields["event_type"].default
    assert isinstance(default, str)
    return default


#: Wire ``event_type`` -> model.
EVENT_TYPES: Final[dict[str, type[Event]]] = {_event_type_of(m): m for m in EVENT_MODELS}

AnyEvent = Annotated[
    ScreeningSubmitted
    | ReferralRequested
    | ReferralCancelled
    | ConsentUpdated
    | ReferralOffered
    | ReferralWithdrawn
    | ReferralStatusChanged
    | ServiceCapacityChanged
    | ReferralUpdated
    | ServiceUpserted
    | ScreeningScored
    | ReferralStateChanged
    | DeadLetter
    | MessageRefused
    | ScreeningAnswered
    | EncounterNotified
    | EncounterAlerted
    | EncounterRouted
    | ReferralStatusRecorded,
    Field(discriminator="event_type"),
]
ANY_EVENT_ADAPTER: Final[TypeAdapter[AnyEvent]] = TypeAdapter(AnyEvent)


def to_bytes(event: Event) -> bytes:
    """The event as a Kafka message value: UTF-8 JSON, nulls included."""
    return event.model_dump_json(exclude_none=False).encode("utf-8")


def from_bytes(value: bytes | str) -> AnyEvent:
    """Parse any event, raising ``pydantic.ValidationError``; agents use ``schemas.decode``."""
    return ANY_EVENT_ADAPTER.validate_json(value)


__all__ = ["ANY_EVENT_ADAPTER", "EVENT_MODELS", "EVENT_TYPES", "AnyEvent", "from_bytes", "to_bytes"]
