"""What the demo's network did, counted from its event log: live counts and the summary."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from schemas.codes import TaskStatus
from schemas.events import (
    ReferralStateChanged,
)
from streams.decisions.loop_closure import closes_loop, loop_closure_rate

# ---------------------------------------------------------------- summary
SUMMARY_KEYS: Final = (
    "screenings",
    "needs",
    "offers",
    "accepted",
    "rejected",
    "timeouts",
    "completed",
    "unmatched",
    "loop_closure_rate",
    "median_time_to_accept_s",
    "adt_sent",
    "adt_acknowledged",
    "alerts_to_clinics",
    "alerts_to_organizations",
)


@dataclass
class Tally:
    """What the network did, counted from its event log (``referral.state-changed``)."""

    screenings: int = 0
    scored: int = 0
    needs: int = 0
    offers: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    unmatched: Counter[str] = field(default_factory=Counter)
    consent_required: int = 0
    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    offered_referrals: set[str] = field(default_factory=set)
    closed_loops: set[str] = field(default_factory=set)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    accept_seconds: list[float] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    #: the hospital's ADT messages sent, and their ACK codes (AA, AE, AR, no-ack, unreachable)
    adt_sent: int = 0
    adt_acks: Counter[str] = field(default_factory=Counter)
    #: encounter.alerted read on the clinics' updates and organizations' referrals topics
    alerts_to_clinics: int = 0
    alerts_to_organizations: int = 0

    def adt_answered(self, codes: list[str]) -> None:
        self.adt_sent += len(codes)
        self.adt_acks.update(codes)

    def alerted(self, recipient: str) -> None:
        if recipient == "clinic":
            self.alerts_to_clinics += 1
        else:
            self.alerts_to_organizations += 1

    def scored_screening(self, needs: int) -> None:
        self.scored += 1
        self.needs += needs

    def state_changed(self, event: ReferralStateChanged, *, org_names: Mapping[str, str]) -> None:
        rid = event.referral_id
        category = event.category.value
        counts = self.by_category.setdefault(category, Counter())
        self.first_seen.setdefault(rid, event.occurred_at)
        business = event.business_status.value if event.business_status else None
        org = org_names.get(event.org_id or "", event.org_id or "")
        line: str | None = None
        if event.reason == "timeout":
            self.timeouts += 1
            counts["timeouts"] += 1
            line = f"{category}: {org} did not answer in time; re-routed"
        elif event.to_status is TaskStatus.REQUESTED and business == "offered":
            self.offers += 1
            counts["offered"] += 1
            self.offered_referrals.add(rid)
            line = f"{category}: offered to {org} (attempt {event.attempt})"
        elif event.to_status is TaskStatus.ACCEPTED:
            self.accepted += 1
            counts["accepted"] += 1
            start = self.first_seen.get(rid, event.occurred_at)
            self.accept_seconds.append(max(0.0, (event.occurred_at - start).total_seconds()))
            line = f"{category}: {org} accepted"
        elif event.to_status is TaskStatus.REJECTED:
            self.rejected[event.reason or "other"] += 1
            counts["rejected"] += 1
            line = f"{category}: {org} rejected ({event.reason})"
        elif event.to_status is TaskStatus.COMPLETED:
            self.completed += 1
            counts["completed"] += 1
            line = f"{category}: {org} completed"
        elif event.to_status is TaskStatus.FAILED:
            if business == "unmatched":
                self.unmatched[category] += 1
                counts["unmatched"] += 1
                line = f"{category}: no service left ({event.reason})"
            elif business == "consent-required":
                self.consent_required += 1
                line = f"{category}: consent does not cover it ({event.reason})"
            else:
                self.failed[event.reason or "other"] += 1
                line = f"{category}: {org} failed ({event.reason})"
        if closes_loop(event.to_status.value, business, event.actor.value):
            self.closed_loops.add(rid)
        if line is not None:
            self.recent.append(line)
            del self.recent[:-8]

    def summary(self) -> dict[str, Any]:
        """The summary the issue names (``--json`` prints exactly this object)."""
        offered = self.offered_referrals
        rate = loop_closure_rate(len(self.closed_loops & offered), len(offered))
        median = statistics.median(self.accept_seconds) if self.accept_seconds else None
        return {
            "screenings": self.screenings,
            "needs": self.needs,
            "offers": self.offers,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "timeouts": self.timeouts,
            "completed": self.completed,
            "unmatched": dict(sorted(self.unmatched.items())),
            "loop_closure_rate": rate,
            "median_time_to_accept_s": round(median, 3) if median is not None else None,
            "adt_sent": self.adt_sent,
            "adt_acknowledged": self.adt_acks["AA"],
            "alerts_to_clinics": self.alerts_to_clinics,
            "alerts_to_organizations": self.alerts_to_organizations,
        }
