"""Internal command envelopes on the network's own topics.

The ingress re-keys what parties publish onto two internal topics so that each
piece of state has exactly one owner:

* ``{prefix}.network.patients.v1`` keyed ``clinic_id:patient_id``: the patient
  agent owns "at most one open referral per patient and category";
* ``{prefix}.network.referrals.v1`` keyed ``referral_id``: the referral agent
  owns each referral's lifecycle. Timers, organizations and clinics change a
  referral only by sending it a command here.

Every command carries a ``command_id``: the owner records the ids it has
applied, so a command delivered twice (at-least-once, replays) has no second
effect.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.codes import Category, EncounterClass, EncounterEvent, Priority
from schemas.events import (
    Consent,
    ConsentUpdated,
    DeadLetterSource,
    EncounterReason,
    Patient,
    ReferralCancelled,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
)
from schemas.events.referrals import Coding

#: Namespace of the network's deterministic ids (uuid5): a replayed input yields
#: the same output ids, so every downstream consumer can deduplicate.
NETWORK_NAMESPACE = uuid5(NAMESPACE_URL, "https://refnet.invalid/network/v1")


#: SHA-1 of the namespace, copied for each id instead of hashing the namespace again
_NAMESPACE_SHA1 = hashlib.sha1(NETWORK_NAMESPACE.bytes, usedforsecurity=False)


def derived_id(*parts: object) -> UUID:
    """A stable UUID for an output derived from ``parts``: the ``uuid5`` of their
    joined text in :data:`NETWORK_NAMESPACE`."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return UUID(bytes=digest.digest()[:16], version=5)


def patient_key(clinic_id: str, patient_id: str) -> str:
    return f"{clinic_id}:{patient_id}"


#: Longest id the contract allows.
MAX_ID_LENGTH = 128


def fit_id(text: str) -> str:
    """``text`` as an id of at most :data:`MAX_ID_LENGTH` characters, stable on replay.

    Every id the network derives from ids a party chose (a screening's referral
    ids, the network's scoped referral ids) goes through here: a party may use
    ids up to the limit, so a derived id can be longer. A long one keeps its
    beginning and ends with ``~`` and 32 hex digits of a hash of the whole.
    """
    if len(text) <= MAX_ID_LENGTH:
        return text
    digest = derived_id("id", text).hex
    return f"{text[: MAX_ID_LENGTH - len(digest) - 1].rstrip()}~{digest}"


def network_referral_id(clinic_id: str, referral_id: str) -> str:
    """The network's id of a clinic's referral: what organizations and the log see.

    Clinics choose referral and screening ids, so two clinics may use the same
    one; the network's id is scoped by the clinic (Gravity's indirect pattern:
    the platform's downstream Task has an id of its own). The clinic keeps
    seeing its own id.
    """
    return fit_id(f"{clinic_id}:{referral_id}")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` (what its default partitioner hashes keys
    with), unsigned, as aiokafka's ``murmur2``: the body's 4-byte words unpacked at
    once (a screening's referral may try several ids, and every keyed message sent
    is hashed)."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    body = length - length % 4
    for k in struct.unpack_from(f"<{body // 4}I", data):
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        h = ((h * m) & 0xFFFFFFFF) ^ ((k * m) & 0xFFFFFFFF)
    tail = length - body
    if tail:
        if tail == 3:
            h ^= data[body + 2] << 16
        if tail >= 2:
            h ^= data[body + 1] << 8
        h ^= data[body]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (aiokafka's, Faust's) gives ``key``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Placement:
    """Where a patient's record lives: ``partition`` of ``partitions`` (the patient and
    referral commands' topics have as many). The patient owner gives a referral it
    opens an id in the same partition, so that it decides the referral itself."""

    partitions: int
    partition: int


def placed_referral_id(clinic_id: str, referral_id: str, placement: Placement | None) -> str:
    """The network's id of the clinic's ``referral_id``, in ``placement``'s partition.

    :func:`network_referral_id` when it lands there already (or without a
    placement), else that id with ``~k`` appended for the smallest ``k`` that
    lands there (shortened to fit as :func:`fit_id` does): the same inputs give the
    same id, so a replay derives it again. None found in :data:`PLACE_TRIES` times
    the partition count: the plain id (its referral then takes the extra hop).
    """
    plain = network_referral_id(clinic_id, referral_id)
    if placement is None or placement.partitions <= 1:
        return plain
    partitions, partition = placement.partitions, placement.partition
    if key_partition(plain, partitions) == partition:
        return plain
    for k in range(1, PLACE_TRIES * partitions + 1):
        placed = fit_id(f"{clinic_id}:{referral_id}~{k}")
        if key_partition(placed, partitions) == partition:
            return placed
    return plain


#: Tries per partition at a placed referral id (each lands with chance 1/partitions).
PLACE_TRIES = 32


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    command_id: str


class ToReferral(Command):
    """A command for one referral's owner, keyed by the network's referral id."""

    referral_id: str  # the network's id (network_referral_id)


class ReferralRequest(BaseModel):
    """What a referral is about: who refers whom, for which need, under which consent."""

    referral_id: str  # the network's id: organizations and the event log see it
    clinic_referral_id: str  # the id the clinic knows: its updates carry it
    clinic_id: str
    patient: Patient
    consent: Consent
    category: Category
    screening_id: str | None = None
    requested_service_id: str | None = None
    priority: Priority = Priority.ROUTINE
    note: str | None = None
    #: the requested service's codings (the clinic's ServiceRequest.code), bounded on the wire
    codes: list[Coding] = Field(default_factory=list)

    def request_fields(self) -> dict[str, Any]:
        """The request's fields by name, to build another model from them."""
        return {name: getattr(self, name) for name in ReferralRequest.model_fields}


# ------------------------------------------------------------------ patients topic
class SubmissionReceived(Command):
    """A clinic's screening.submitted / referral.requested / referral.cancelled."""

    kind: Literal["submission"] = "submission"
    clinic_id: str
    source: DeadLetterSource
    #: the network's clock when the ingress took the submission: it dates what the
    #: network says of it (None in commands written before it was recorded)
    received_at: datetime | None = None
    event: Annotated[
        ScreeningSubmitted | ReferralRequested | ReferralCancelled | ConsentUpdated,
        Field(discriminator="event_type"),
    ]
    #: the patient's linkage keys, computed by the ingress from the submission's
    #: demographics (streams.decisions.linkage); empty when too little is known
    linkage_keys: list[str] = Field(default_factory=list)


class Encounter(BaseModel):
    """What the network keeps of a facility's ``encounter.notified``: no name, phone,
    birth date, address or facility patient id, only what the alerts report."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    encounter_event_id: UUID
    facility_id: str
    event: EncounterEvent
    encounter_class: EncounterClass
    encounter_at: datetime
    reasons: list[EncounterReason] = Field(default_factory=list)
    #: the network's clock when the ingress took the encounter
    received_at: datetime


class PatientEncounter(Command):
    """From the linkage owner: an encounter matched this clinic's patient."""

    kind: Literal["encounter"] = "encounter"
    encounter: Encounter


class ReferralClosed(Command):
    """From the referral agent: the referral ended; free the patient's category."""

    kind: Literal["closed"] = "closed"
    referral_id: str  # the id the clinic knows
    category: Category


class ForgetReferral(Command):
    """From the referral agent: the closed referral left its table (retention)."""

    kind: Literal["forget"] = "forget"
    referral_id: str  # the id the clinic knows


PatientCommand = Annotated[
    SubmissionReceived | ReferralClosed | ForgetReferral | PatientEncounter,
    Field(discriminator="kind"),
]
PATIENT_COMMAND: TypeAdapter[PatientCommand] = TypeAdapter(PatientCommand)


# ------------------------------------------------------------------ referrals topic
class OpenReferral(ReferralRequest, Command):
    kind: Literal["open"] = "open"
    cause_event_id: UUID
    requested_at: datetime


class CancelReferral(ToReferral):
    kind: Literal["cancel"] = "cancel"
    clinic_id: str
    reason: str | None = None
    cause_event_id: UUID
    source: DeadLetterSource


class OrganizationStatus(Command):
    kind: Literal["org-status"] = "org-status"
    org_id: str
    event: ReferralStatusChanged
    source: DeadLetterSource


class OfferTimeout(ToReferral):
    """From a timer: the offer of ``attempt`` may have passed its respond_by."""

    kind: Literal["timeout"] = "timeout"
    attempt: int


class UpdateConsent(ToReferral):
    """From the patient agent: the clinic replaced the patient's consent."""

    kind: Literal["consent"] = "consent"
    clinic_id: str
    consent: Consent
    cause_event_id: UUID
    at: datetime


class ExpireReferral(ToReferral):
    """From a timer: an active referral may have gone without an update too long."""

    kind: Literal["expire"] = "expire"
    step: int


class OrganizationRemoved(ToReferral):
    """From a worker's view: the organization holding this referral was deprovisioned."""

    kind: Literal["org-removed"] = "org-removed"
    org_id: str


class PurgeReferral(ToReferral):
    """From a timer: a closed referral may have outlived its retention."""

    kind: Literal["purge"] = "purge"


class AlertReferral(ToReferral):
    """From the patient owner: tell the organization holding the referral of an
    encounter, as far as the patient's consent allows."""

    kind: Literal["encounter-alert"] = "encounter-alert"
    encounter: Encounter


ReferralCommand = Annotated[
    OpenReferral
    | CancelReferral
    | OrganizationStatus
    | OfferTimeout
    | UpdateConsent
    | ExpireReferral
    | PurgeReferral
    | OrganizationRemoved
    | AlertReferral,
    Field(discriminator="kind"),
]
REFERRAL_COMMAND: TypeAdapter[ReferralCommand] = TypeAdapter(ReferralCommand)


# ------------------------------------------------------------------ linkage topic
class LinkPatient(Command):
    """From the patient owner: the linkage key (the message key) is this patient's."""

    kind: Literal["link"] = "link"
    patient: str  # clinic_id:patient_id


class UnlinkPatient(Command):
    """From the patient owner: the patient left its table; the key is no longer its."""

    kind: Literal["unlink"] = "unlink"
    patient: str


class FindPatients(Command):
    """An encounter looking for its patients: it visits the owner of ``keys[index]``,
    which adds the patients of that key to ``matched`` and passes it on (the last
    owner fans it out to the patients' owners)."""

    kind: Literal["find"] = "find"
    keys: list[str]
    #: the keys of the strict rules among ``keys`` (streams.decisions.linkage.STRICT_RULES)
    strict: list[str] = Field(default_factory=list)
    index: int = 0
    matched: list[str] = Field(default_factory=list)
    #: those of ``matched`` found on a strict key: when any, only they hear of it
    matched_strict: list[str] = Field(default_factory=list)
    encounter: Encounter


LinkageCommand = Annotated[LinkPatient | UnlinkPatient | FindPatients, Field(discriminator="kind")]
LINKAGE_COMMAND: TypeAdapter[LinkageCommand] = TypeAdapter(LinkageCommand)


def encode(command: Command) -> bytes:
    return command.model_dump_json().encode()


__all__ = [
    "LINKAGE_COMMAND",
    "PATIENT_COMMAND",
    "PLACE_TRIES",
    "REFERRAL_COMMAND",
    "AlertReferral",
    "CancelReferral",
    "Command",
    "Encounter",
    "ExpireReferral",
    "FindPatients",
    "ForgetReferral",
    "LinkPatient",
    "LinkageCommand",
    "OfferTimeout",
    "OpenReferral",
    "OrganizationRemoved",
    "OrganizationStatus",
    "PatientCommand",
    "PatientEncounter",
    "Placement",
    "PurgeReferral",
    "ReferralClosed",
    "ReferralCommand",
    "ReferralRequest",
    "SubmissionReceived",
    "ToReferral",
    "UnlinkPatient",
    "UpdateConsent",
    "derived_id",
    "encode",
    "fit_id",
    "key_partition",
    "murmur2",
    "network_referral_id",
    "patient_key",
    "placed_referral_id",
]
