"""The minimum-necessary projection of a patient, defined once.

Community organizations are usually not HIPAA covered entities: a clinic may
disclose to them only with the patient's consent and only the minimum necessary
for the purpose (45 CFR 164.502(b)). A food pantry needs a name to ask for, a
phone number to call, a language to speak and a postal code to check its
service area; it never needs a birth date, a family name, the screening's
answers or the patient's other needs. Every offer to an organization is built
from :func:`offered_patient`, so that widening what leaves the network is one
reviewed change here, not a field added somewhere in an agent.
"""

from __future__ import annotations

from schemas.events import OfferedPatient, Patient


def offered_patient(patient: Patient) -> OfferedPatient:
    """What an organization offered a referral may know of ``patient``.

    Given name, phone, preferred language and postal code only: never the
    patient id, family name or birth date (nor, since they are not on
    :class:`Patient`, the answers or other needs).
    """
    return OfferedPatient(
        given_name=patient.given_name,
        phone=patient.phone,
        preferred_language=patient.preferred_language,
        postal_code=patient.postal_code,
    )


__all__ = ["offered_patient"]
