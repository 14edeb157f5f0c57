"""PRAPARE (93025-5): refnet's rule (PRAPARE publishes none).

* ``prapare.housing.no-housing``: 71802-3 LA30190-5 "I do not have housing"
  -> homelessness.
* ``prapare.housing.worried``: 93033-9 LA33-6 Yes -> housing-instability
  (both housing needs may be derived: someone staying with others may also
  fear losing that place).
* 93031-3 "unable to get when really needed" (multi-select):
  ``prapare.unable-to-get.food`` LA30125-1 -> food-insecurity;
  ``prapare.unable-to-get.utilities`` LA30124-4 -> utility-insecurity;
  ``prapare.unable-to-get.material`` clothing LA30126-9, child care
  LA30127-7, phone LA30129-3 or other LA46-8 -> material-hardship;
  ``prapare.unable-to-get.health-care`` medicine or any health care
  LA30128-5 -> medical-cost-burden. "I choose not to answer" together with
  items is ``contradictory``; the items still count.
* ``prapare.transportation.yes``: 93030-5 (multi-select) LA30133-5 (medical)
  or LA30134-3 (non-medical), or a plain LA33-6 Yes ->
  transportation-insecurity; No together with a yes is ``contradictory``,
  the yes counts.
* ``prapare.social-contact.less-than-weekly``: 93029-7 LA27722-0 ->
  social-connection.
* ``prapare.stress.quite-a-bit-or-more``: 93038-8 LA13902-4 Quite a bit or
  LA13914-9 Very much -> stress ("Somewhat" is negative).
* ``prapare.safety.not-safe``: 93026-3 LA32-8 No (does not feel safe where
  they live) -> intimate-partner-violence; ``prapare.safety.afraid-of-partner``:
  76501-6 LA33-6 Yes -> intimate-partner-violence.
* ``prapare.incarceration.yes``: 93028-9 LA33-6 Yes -> incarceration-status.
* Demographic and asset items (race, language, income, education,
  employment, insurance, ...) are known but not scored. The optional items
  (93026-3, 76501-6, 93028-9, 93027-1) are never reported ``missing``.
"""

from __future__ import annotations

from typing import Final

from schemas import instruments as loinc
from schemas.codes import Category
from streams.decisions.scoring.rules import Multi, Rule, Single, each

#: Transportation answers that are a yes; the plain LA33-6 Yes (AHC's list) counts too.
TRANSPORT_YES: Final = frozenset(
    {loinc.PRAPARE_TRANSPORT_MEDICAL, loinc.PRAPARE_TRANSPORT_NON_MEDICAL, loinc.YES}
)
_MATERIAL: Final = (Category.MATERIAL_HARDSHIP, "prapare.unable-to-get.material")
_DECLINE: Final = loinc.CHOOSE_NOT_TO_ANSWER
_IPV: Final = Category.INTIMATE_PARTNER_VIOLENCE

RULES: Final[tuple[Rule, ...]] = (
    Single(
        loinc.PRAPARE_HOUSING,
        loinc.PRAPARE_HOUSING_ANSWERS,
        each([loinc.PRAPARE_NO_HOUSING], Category.HOMELESSNESS, "prapare.housing.no-housing"),
    ),
    Single(
        loinc.PRAPARE_HOUSING_WORRY,
        loinc.PRAPARE_YES_NO_ANSWERS,
        each([loinc.YES], Category.HOUSING_INSTABILITY, "prapare.housing.worried"),
    ),
    Multi(
        loinc.PRAPARE_UNABLE_TO_GET,
        {
            loinc.PRAPARE_FOOD: (Category.FOOD_INSECURITY, "prapare.unable-to-get.food"),
            loinc.PRAPARE_UTILITIES: (
                Category.UTILITY_INSECURITY,
                "prapare.unable-to-get.utilities",
            ),
            loinc.PRAPARE_CLOTHING: _MATERIAL,
            loinc.PRAPARE_CHILD_CARE: _MATERIAL,
            loinc.PRAPARE_PHONE: _MATERIAL,
            loinc.PRAPARE_OTHER: _MATERIAL,
            loinc.PRAPARE_MEDICINE: (
                Category.MEDICAL_COST_BURDEN,
                "prapare.unable-to-get.health-care",
            ),
        },
        {_DECLINE},
    ),
    Multi(
        loinc.PRAPARE_TRANSPORTATION,
        each(
            sorted(TRANSPORT_YES),
            Category.TRANSPORTATION_INSECURITY,
            "prapare.transportation.yes",
        ),
        {loinc.NO, loinc.PRAPARE_UNABLE_TO_RESPOND, _DECLINE},
    ),
    Single(
        loinc.PRAPARE_SOCIAL_CONTACT,
        loinc.PRAPARE_SOCIAL_CONTACT_ANSWERS,
        each(
            [loinc.PRAPARE_LESS_THAN_WEEKLY],
            Category.SOCIAL_CONNECTION,
            "prapare.social-contact.less-than-weekly",
        ),
    ),
    Single(
        loinc.PRAPARE_STRESS,
        loinc.PRAPARE_STRESS_ANSWERS,
        each(
            [loinc.PRAPARE_STRESS_QUITE_A_BIT, loinc.PRAPARE_STRESS_VERY_MUCH],
            Category.STRESS,
            "prapare.stress.quite-a-bit-or-more",
        ),
    ),
    # The optional additional questions: never reported missing.
    Single(
        loinc.PRAPARE_FEEL_SAFE,
        loinc.PRAPARE_SAFETY_ANSWERS,
        each([loinc.NO], _IPV, "prapare.safety.not-safe"),
        required=False,
    ),
    Single(
        loinc.PRAPARE_AFRAID_OF_PARTNER,
        loinc.PRAPARE_SAFETY_ANSWERS,
        each([loinc.YES], _IPV, "prapare.safety.afraid-of-partner"),
        required=False,
    ),
    Single(
        loinc.PRAPARE_INCARCERATION,
        loinc.PRAPARE_YES_NO_ANSWERS,
        each([loinc.YES], Category.INCARCERATION_STATUS, "prapare.incarceration.yes"),
        required=False,
    ),
)

__all__ = ["RULES", "TRANSPORT_YES"]
