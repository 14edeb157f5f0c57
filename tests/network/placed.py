"""The network's id of a screening's referral, as the patient owner places it (issue 21):
in the partition of its patient's key, so that the patients agent decides it in one hop."""

from __future__ import annotations

from schemas.topics import Topics
from streams.decisions.commands import Placement, key_partition, placed_referral_id


def placed_id(
    topics: Topics,
    clinic_id: str,
    screening_id: str,
    patient_id: str,
    category: str = "food-insecurity",
) -> str:
    """What organizations are offered for ``screening_id``'s need in ``category``."""
    count = topics.partitions
    home = key_partition(f"{clinic_id}:{patient_id}", count)
    return placed_referral_id(clinic_id, f"{screening_id}.{category}", Placement(count, home))


__all__ = ["placed_id"]
