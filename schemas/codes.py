"""Code systems every event speaks: SDOH categories, referral statuses, reasons.

Values are the wire values of docs/contract.md; the enums are `StrEnum`
so that a model field typed with one serializes to the plain string.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

SDOH_CATEGORY_SYSTEM: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
)
LOINC_SYSTEM: Final = "http://loinc.org"

#: clinic_id and org_id: lowercase, they appear in topic names.
PARTY_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{1,62}$"
PARTY_ID_RE: Final = re.compile(PARTY_ID_PATTERN)


class Category(StrEnum):
    """Gravity SDOH categories (HL7 SDOH Clinical Care IG STU 2.3)."""

    SDOH_CATEGORY_UNSPECIFIED = "sdoh-category-unspecified"
    FOOD_INSECURITY = "food-insecurity"
    HOUSING_INSTABILITY = "housing-instability"
    HOMELESSNESS = "homelessness"
    INADEQUATE_HOUSING = "inadequate-housing"
    TRANSPORTATION_INSECURITY = "transportation-insecurity"
    FINANCIAL_INSECURITY = "financial-insecurity"
    MATERIAL_HARDSHIP = "material-hardship"
    EDUCATIONAL_ATTAINMENT = "educational-attainment"
    EMPLOYMENT_STATUS = "employment-status"
    VETERAN_STATUS = "veteran-status"
    STRESS = "stress"
    SOCIAL_CONNECTION = "social-connection"
    INTIMATE_PARTNER_VIOLENCE = "intimate-partner-violence"
    ELDER_ABUSE = "elder-abuse"
    PERSONAL_HEALTH_LITERACY = "personal-health-literacy"
    HEALTH_INSURANCE_COVERAGE_STATUS = "health-insurance-coverage-status"
    MEDICAL_COST_BURDEN = "medical-cost-burden"
    DIGITAL_LITERACY = "digital-literacy"
    DIGITAL_ACCESS = "digital-access"
    UTILITY_INSECURITY = "utility-insecurity"
    INCARCERATION_STATUS = "incarceration-status"
    LANGUAGE_ACCESS = "language-access"


class TaskStatus(StrEnum):
    """FHIR Task.status values used for referrals (Gravity STU 2.x)."""

    DRAFT = "draft"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    FAILED = "failed"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"


TERMINAL_STATUSES: Final = frozenset(
    {
        TaskStatus.REJECTED,
        TaskStatus.CANCELLED,
        TaskStatus.FAILED,
        TaskStatus.COMPLETED,
        TaskStatus.ENTERED_IN_ERROR,
    }
)


class OrgStatus(StrEnum):
    """Statuses an organization may report in referral.status-changed."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BusinessStatus(StrEnum):
    """The network's business statuses (Task.businessStatus) on top of Task.status."""

    OFFERED = "offered"
    RE_ROUTED = "re-routed"
    UNMATCHED = "unmatched"
    EXPIRED = "expired"
    CONSENT_REQUIRED = "consent-required"
    DUPLICATE = "duplicate"
    #: the network could not go on with the referral (an internal error, counted
    #: and dead-lettered as ``internal``); the clinic may refer again.
    NETWORK_ERROR = "network-error"
    #: the organization working on it was deprovisioned (its topics are gone)
    ORGANIZATION_REMOVED = "organization-removed"


class ReasonCode(StrEnum):
    """Reasons for rejected, failed or cancelled (docs/contract.md), plus network codes."""

    NO_CAPACITY = "no-capacity"
    NOT_ELIGIBLE = "not-eligible"
    SERVICE_NOT_PROVIDED = "service-not-provided"
    ALREADY_ENROLLED = "already-enrolled"
    COULD_NOT_CONTACT = "could-not-contact"
    CLIENT_DECLINED = "client-declined"
    NO_LONGER_INTERESTED = "no-longer-interested"
    OTHER = "other"
    # set by the network
    TIMEOUT = "timeout"
    CANCELLED_BY_CLINIC = "cancelled-by-clinic"
    NO_MATCHING_SERVICE = "no-matching-service"
    CONSENT_NOT_GRANTED = "consent-not-granted"
    DUPLICATE_OPEN_REFERRAL = "duplicate-open-referral"
    CONSENT_EXPIRED = "consent-expired"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    #: an accepted, in-progress or on-hold referral heard nothing for too long
    NO_RECENT_UPDATE = "no-recent-update"
    #: the referral was offered the maximum number of times (REFNET_MAX_ATTEMPTS)
    ATTEMPTS_EXHAUSTED = "attempts-exhausted"
    INTERNAL_ERROR = "internal-error"
    ORGANIZATION_REMOVED = "organization-removed"


class WithdrawReason(StrEnum):
    """Why the network withdraws an offer from an organization."""

    TIMEOUT = "timeout"
    CANCELLED_BY_CLINIC = "cancelled-by-clinic"
    SERVICE_REMOVED = "service-removed"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    CONSENT_EXPIRED = "consent-expired"
    EXPIRED = "expired"
    INTERNAL_ERROR = "internal-error"
    ORGANIZATION_REMOVED = "organization-removed"


class Instrument(StrEnum):
    AHC_HRSN = "ahc-hrsn"
    HUNGER_VITAL_SIGN = "hunger-vital-sign"
    PRAPARE = "prapare"


class Priority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"


class Party(StrEnum):
    """Who asks for a referral status change."""

    CLINIC = "clinic"
    ORGANIZATION = "organization"
    NETWORK = "network"


class EncounterEvent(StrEnum):
    """What happened at a facility (HL7 v2 ADT trigger, or a FHIR Encounter's status)."""

    #: admitted as an inpatient (ADT A01)
    ADMIT = "admit"
    #: discharged, or the visit ended (ADT A03)
    DISCHARGE = "discharge"
    #: seen in an emergency department (ADT A04 with class EMER, or A01 with class EMER)
    ED_VISIT = "ed-visit"
    #: registered for an outpatient or observation visit (ADT A04, other classes)
    REGISTRATION = "registration"
    #: moved between inpatient and outpatient (ADT A06, A07)
    TRANSFER = "transfer"
    #: the visit's information changed (ADT A08)
    UPDATE = "update"


class EncounterClass(StrEnum):
    """The encounter's class: HL7 v3 ActCode, as FHIR's Encounter.class."""

    INPATIENT = "IMP"
    EMERGENCY = "EMER"
    AMBULATORY = "AMB"
    OBSERVATION = "OBSENC"
    SHORT_STAY = "SS"
    HOME_HEALTH = "HH"
    VIRTUAL = "VR"
    PRE_ADMISSION = "PRENC"


#: Code systems an encounter's reason may use.
ICD10CM_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED_SYSTEM: Final = "http://snomed.info/sct"
#: US Core procedure code systems besides SNOMED CT (ServiceRequest.code, Task.output).
CPT_SYSTEM: Final = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM: Final = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#: refnet's own reason codes (:class:`ReasonCode`) as a FHIR code system.
REFNET_REASON_SYSTEM: Final = "urn:refnet:codesystem:reason"

#: The code systems a coding on the wire may name (``referral.requested`` codes, an
#: organization's status reason and outputs): an allow-list, so that a coding is a
#: code of a known terminology and never a place for free text.
CODING_SYSTEMS: Final = (
    SNOMED_SYSTEM,
    LOINC_SYSTEM,
    ICD10CM_SYSTEM,
    CPT_SYSTEM,
    HCPCS_SYSTEM,
    SDOH_CATEGORY_SYSTEM,
    REFNET_REASON_SYSTEM,
)
#: Task.output type of a resulting activity (SDOHCC temporary codes).
RESULTING_ACTIVITY: Final = "resulting-activity"

#: Displays of the codes refnet knows, by (system, code). Codings travel as system and
#: code only; the side that renders them adds the display from here when it has one.
CODING_DISPLAYS: Final[dict[tuple[str, str], str]] = {
    (SNOMED_SYSTEM, "410606002"): "Social service procedure",
    (SNOMED_SYSTEM, "467771000124109"): "Assistance with application for food pantry program",
    (SDOH_CATEGORY_SYSTEM, RESULTING_ACTIVITY): "Resulting Activity",
    (SDOH_CATEGORY_SYSTEM, "capacity"): "Capacity",
    (SDOH_CATEGORY_SYSTEM, "no-capacity"): "No Capacity",
}


def coding_display(system: str, code: str) -> str | None:
    """The display of a code refnet knows, else None."""
    return CODING_DISPLAYS.get((system, code))


class EncounterAlerts(StrEnum):
    """What a patient's consent lets the organizations serving them hear of encounters.

    The clinics that screened or referred the patient hear every encounter; an
    organization hears one only as far as this allows, and only for a referral
    in a category the consent covers.
    """

    #: organizations hear nothing (the default: consent is never widened)
    NONE = "none"
    #: the kind of encounter (admission, ED visit, ...) and its date
    ENCOUNTER = "encounter"
    #: that and the encounter's reason codes (diagnoses)
    WITH_REASON = "with-reason"


class DeadLetterKind(StrEnum):
    DECODE = "decode"
    VALIDATION = "validation"
    TRANSITION = "transition"
    AUTHORIZATION = "authorization"
    UNKNOWN_REFERRAL = "unknown-referral"
    DUPLICATE_OPEN_REFERRAL = "duplicate-open-referral"
    UNKNOWN_EVENT_TYPE = "unknown-event-type"
    UNKNOWN_TOPIC = "unknown-topic"
    #: a message over one of the edge's limits (size, depth, lengths, time)
    LIMIT = "limit"
    #: the network failed on a command (the exception's type, never its values)
    INTERNAL = "internal"
    #: a message for a party whose topic does not exist (deprovisioned)
    UNDELIVERABLE = "undeliverable"


class ServiceStatus(StrEnum):
    """HSDS service.status."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DEFUNCT = "defunct"
    TEMPORARILY_CLOSED = "temporarily closed"


__all__ = [
    "CODING_DISPLAYS",
    "CODING_SYSTEMS",
    "CPT_SYSTEM",
    "HCPCS_SYSTEM",
    "ICD10CM_SYSTEM",
    "LOINC_SYSTEM",
    "PARTY_ID_PATTERN",
    "PARTY_ID_RE",
    "REFNET_REASON_SYSTEM",
    "RESULTING_ACTIVITY",
    "SDOH_CATEGORY_SYSTEM",
    "SNOMED_SYSTEM",
    "TERMINAL_STATUSES",
    "BusinessStatus",
    "Category",
    "DeadLetterKind",
    "EncounterAlerts",
    "EncounterClass",
    "EncounterEvent",
    "Instrument",
    "OrgStatus",
    "Party",
    "Priority",
    "ReasonCode",
    "ServiceStatus",
    "TaskStatus",
    "WithdrawReason",
    "coding_display",
]
