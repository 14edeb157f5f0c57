"""What the referral owner consults besides the record, and what it decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from schemas.events import ServiceUpserted
from schemas.topics import Topics
from streams.decisions.limits import Limits
from streams.decisions.matching import DEFAULT_RESPONSE_SLA, MatchRequest, OrgRecord
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals.record import ReferralRecord


@runtime_checkable
class Directory(Protocol):
    """A directory that can narrow itself to the services that may serve a request."""

    def candidates(self, request: MatchRequest) -> list[ServiceUpserted]: ...


@dataclass(frozen=True)
class Context:
    """What the referral owner may consult besides the record."""

    topics: Topics
    now: datetime
    #: the services, or anything with ``candidates(request)`` that narrows them
    #: (:meth:`streams.runtime.view.NetworkState.candidates`)
    directory: Sequence[ServiceUpserted] | Directory = ()
    org_stats: Mapping[str, OrgRecord] = field(default_factory=dict)
    load: Mapping[str, int] = field(default_factory=dict)
    default_sla: timedelta = DEFAULT_RESPONSE_SLA
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class ReferralDecision:
    """``record`` None: nothing to write; ``delete``: the referral leaves the table."""

    record: ReferralRecord | None
    outputs: list[Outgoing]
    dead_letter: str | None = None  # the kind, for metrics
    delete: bool = False


__all__ = ["Context", "Directory", "ReferralDecision"]
