"""A patient's record at its owner (streams.decisions.patients): its open referral per
category, the referrals it remembers and their network ids, the commands it applied."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.codes import Category
from streams.decisions.commands import network_referral_id

#: How many processed event ids a patient keeps for de-duplication.
SEEN_LIMIT = 500
#: How many referral ids a patient's record remembers (open ones always; the
#: oldest closed ones are forgotten first). Closed ones also leave with retention.
REFERRALS_LIMIT = 1000


class PatientRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    open: dict[Category, str] = Field(default_factory=dict)
    referrals: dict[str, Category] = Field(default_factory=dict)
    seen: list[str] = Field(default_factory=list)
    #: the patient's linkage keys (streams.decisions.linkage), linked to this record
    linkage_keys: list[str] = Field(default_factory=list)
    #: the network's id of each of ``referrals`` whose id is not the plain
    #: ``network_referral_id`` (placed in the patient's partition, see ``Placement``)
    network_ids: dict[str, str] = Field(default_factory=dict)

    def network_id(self, clinic_id: str, referral_id: str) -> str:
        """The network's id of the clinic's ``referral_id`` (one of ``referrals``)."""
        placed = self.network_ids.get(referral_id)
        return placed if placed is not None else network_referral_id(clinic_id, referral_id)

    def forget(self, referral_id: str) -> None:
        self.referrals.pop(referral_id, None)
        self.network_ids.pop(referral_id, None)

    def remember(self, command_id: str) -> None:
        self.seen.append(command_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]
        if len(self.referrals) > REFERRALS_LIMIT:
            still_open = set(self.open.values())
            for referral_id in list(self.referrals):
                if len(self.referrals) <= REFERRALS_LIMIT:
                    break
                if referral_id not in still_open:
                    self.forget(referral_id)

    @property
    def empty(self) -> bool:
        """Nothing open and nothing remembered: the record can leave the table."""
        return not self.open and not self.referrals


__all__ = ["REFERRALS_LIMIT", "SEEN_LIMIT", "PatientRecord"]
