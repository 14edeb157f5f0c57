"""The organizations ``refnet demo`` plays: what each does with an offer, and when.

An organization's decision about an offer follows from the seed, the referral
and the attempt, so a run decides the same way whatever order messages arrive in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from deploy.demo.config import DemoConfig
from schemas.codes import OrgStatus
from schemas.events import (
    ReferralOffered,
    ReferralStatusChanged,
    ServiceCapacityChanged,
    ServiceUpserted,
)


# ---------------------------------------------------------------- organizations
@dataclass
class Action:
    """Something an organization does ``after`` seconds (real time) from now."""

    after: float
    topic_org: str
    key: str
    event: ReferralStatusChanged | ServiceCapacityChanged


@dataclass
class _Service:
    event: ServiceUpserted
    real: int | None
    taken: int = 0
    reported: int | None = None


class Organizations:
    """Every organization of the region: how it answers offers and reports capacity."""

    def __init__(
        self,
        services: Sequence[ServiceUpserted],
        org_names: Mapping[str, str],
        config: DemoConfig,
        *,
        seed: int,
        speed: float,
    ) -> None:
        self.config = config
        self.seed = seed
        self.speed = speed
        habits = config.organizations
        self.silent_by_org = {
            org_id: config.silent_by_name.get(name, float(habits["silent"]))
            for org_id, name in org_names.items()
        }
        rng = random.Random(f"{seed}:capacity")
        low, high = habits["real_capacity"]
        self.services: dict[str, _Service] = {}
        for service in services:
            advertised = service.capacity.available if service.capacity else None
            real = (
                None if advertised is None else max(1, round(advertised * rng.uniform(low, high)))
            )
            self.services[service.service_id] = _Service(service, real)
        #: referral -> service it holds a place in
        self.holding: dict[str, str] = {}

    def on_offer(self, org_id: str, offer: ReferralOffered) -> list[Action]:
        """What the organization does with an offer: nothing, reject, or accept then finish."""
        habits = self.config.organizations
        rng = random.Random(f"{self.seed}:{offer.referral_id}:{offer.service_id}")
        if rng.random() < self.silent_by_org.get(org_id, float(habits["silent"])):
            return []  # the offer times out at respond_by
        window = max(0.0, (offer.respond_by - offer.occurred_at).total_seconds())
        low, high = habits["answer_within"]
        delay = window * rng.uniform(low, high)
        service = self.services.get(offer.service_id)
        rid = offer.referral_id
        strict = self.config.not_eligible_by_category.get(offer.category)
        if rng.random() < (strict if strict is not None else float(habits["not_eligible"])):
            return [self._status(delay, org_id, rid, OrgStatus.REJECTED, reason="not-eligible")]
        if service is not None and service.real is not None and service.taken >= service.real:
            actions = [self._status(delay, org_id, rid, OrgStatus.REJECTED, reason="no-capacity")]
            if service.reported != 0:
                service.reported = 0
                actions.append(self._capacity(delay, org_id, offer.service_id, 0))
            return actions
        if service is not None:
            service.taken += 1
        self.holding[rid] = offer.service_id
        actions = [self._status(delay, org_id, rid, OrgStatus.ACCEPTED)]
        category = offer.category.value
        hours = self.config.outcome_hours.get(category) or self.config.outcome_hours["default"]
        done = delay + rng.uniform(*hours) * 3600 / self.speed
        if hours[0] >= 24:
            actions.append(
                self._status(delay + (done - delay) * 0.25, org_id, rid, OrgStatus.IN_PROGRESS)
            )
        roll = rng.random()
        if roll < float(habits["completed"]):
            actions.append(
                self._status(done, org_id, rid, OrgStatus.COMPLETED, outcome="service-provided")
            )
        elif roll < float(habits["completed"]) + float(habits["could_not_contact"]):
            actions.append(
                self._status(done, org_id, rid, OrgStatus.FAILED, reason="could-not-contact")
            )
        else:
            actions.append(
                self._status(done, org_id, rid, OrgStatus.FAILED, reason="client-declined")
            )
        return actions

    def release(self, referral_id: str) -> None:
        """The referral ended (outcome sent, or withdrawn): its place is free again."""
        service_id = self.holding.pop(referral_id, None)
        if service_id is not None and service_id in self.services:
            self.services[service_id].taken = max(0, self.services[service_id].taken - 1)

    def capacity_reports(self) -> list[Action]:
        """The periodic reports: each service whose free places changed since the last one."""
        actions = []
        for service_id, service in self.services.items():
            if service.real is None:
                continue
            free = max(0, service.real - service.taken)
            if free != service.reported:
                service.reported = free
                actions.append(self._capacity(0.0, service.event.org_id, service_id, free))
        return actions

    def _status(
        self,
        after: float,
        org_id: str,
        referral_id: str,
        status: OrgStatus,
        *,
        reason: str | None = None,
        outcome: str | None = None,
    ) -> Action:
        event = ReferralStatusChanged.new(
            referral_id=referral_id, status=status, reason=reason, outcome=outcome
        )
        return Action(after, org_id, referral_id, event)

    def _capacity(self, after: float, org_id: str, service_id: str, available: int) -> Action:
        event = ServiceCapacityChanged.new(service_id=service_id, available=available)
        return Action(after, org_id, service_id, event)
