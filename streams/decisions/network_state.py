"""What every worker knows about the whole network, as pure state.

:class:`NetworkState` folds the directory (services), the capacity the
organizations report, and the referral event log (answers in time, time-outs,
offers) into what matching consults: the offerable services with their current
capacity, each organization's record and each service's load. Kafka reading
lives in :class:`streams.runtime.view.NetworkView`, which keeps one current.
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from schemas.codes import BusinessStatus, Party, TaskStatus
from schemas.events import Capacity, ReferralStateChanged, ServiceCapacityChanged, ServiceUpserted
from streams.decisions.directory_index import DirectoryIndex
from streams.decisions.matching import MatchRequest, OrgRecord


class RecordDocument(Protocol):
    """A snapshot of the view's record (:class:`streams.runtime.view_snapshot.Document`)."""

    @property
    def on_time(self) -> Mapping[str, int]: ...

    @property
    def timed_out(self) -> Mapping[str, int]: ...

    @property
    def offers(self) -> Mapping[str, int]: ...

    @property
    def reserved(self) -> Mapping[str, tuple[int, datetime | None]]: ...

    @property
    def counted(self) -> Sequence[tuple[str, int]]: ...

    @property
    def holding(self) -> Sequence[tuple[str, int, str, datetime]]: ...


#: Offers remembered for de-duplicating reservations (the owner's and the log's).
MAX_COUNTED_OFFERS = 200_000
_EARLIEST = datetime.min.replace(tzinfo=UTC)
#: Statuses in which an offer holds its place: pending (requested / offered) or
#: accepted (the organization works on it).
_HOLDING = frozenset(
    {TaskStatus.REQUESTED, TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD}
)


@dataclass
class _CapacityReport:
    #: places left; None: a capacity status without a count (unknown)
    available: int | None
    at: datetime


@dataclass
class NetworkState:
    """The pure part of the view: folds events into the directory and the record."""

    services: dict[str, ServiceUpserted] = field(default_factory=dict)
    capacity: dict[str, _CapacityReport] = field(default_factory=dict)
    on_time: Counter[str] = field(default_factory=Counter)
    timed_out: Counter[str] = field(default_factory=Counter)
    offers: Counter[str] = field(default_factory=Counter)
    #: offers made since the service's capacity figure in force (reservations)
    reserved: Counter[str] = field(default_factory=Counter)
    #: (referral_id, attempt) of offers already counted, oldest first, bounded
    _counted: OrderedDict[tuple[str, int], None] = field(default_factory=OrderedDict, repr=False)
    #: referral_id -> (attempt, service_id, offered at) of each offer holding a place
    #: (pending or accepted), oldest first, bounded: released when the offer ends
    _holding: OrderedDict[str, tuple[int, str, datetime]] = field(
        default_factory=OrderedDict, repr=False
    )
    #: organizations with a referrals topic (None: not known yet, nothing filtered)
    reachable: frozenset[str] | None = None
    _directory: list[ServiceUpserted] | None = field(default=None, repr=False)
    _index: DirectoryIndex | None = field(default=None, repr=False)
    _stats: dict[str, OrgRecord] | None = field(default=None, repr=False)
    #: service_id -> (service, capacity report, reservations, effective service):
    #: the last :meth:`effective` of each service, used again while all three are
    #: the same (most candidates of an offer did not change since the last one)
    _effective: dict[str, tuple[ServiceUpserted, _CapacityReport | None, int, ServiceUpserted]] = (
        field(default_factory=dict, repr=False, compare=False)
    )

    def set_reachable(self, org_ids: frozenset[str]) -> None:
        """Only these organizations can be offered referrals: their topics exist."""
        if org_ids != self.reachable:
            self.reachable = org_ids
            self._directory = None
            self._index = None

    def upsert(self, service: ServiceUpserted) -> None:
        self.services[service.service_id] = service
        report = self.capacity.get(service.service_id)
        if service.capacity is not None and (report is None or report.at < service.occurred_at):
            self.reserved.pop(service.service_id, None)  # a new figure in force
        self._directory = None
        self._index = None

    def remove(self, service_id: str) -> None:
        self.services.pop(service_id, None)
        self._effective.pop(service_id, None)
        self._directory = None
        self._index = None

    def report_capacity(self, event: ServiceCapacityChanged) -> None:
        current = self.capacity.get(event.service_id)
        if current is None or event.occurred_at >= current.at:
            self.capacity[event.service_id] = _CapacityReport(event.available, event.occurred_at)
            self.reserved.pop(event.service_id, None)  # the organization's figure counts anew
            self._directory = None

    def reserve(self, referral_id: str, attempt: int, service_id: str, at: datetime) -> None:
        """Count an offer against the service's capacity while it holds a place.

        Called by the referral owner as it offers, and again when the event log
        brings the same offer back: each (referral, attempt) counts once. An
        offer older than the figure in force is already in that figure. The
        place is held while the offer is pending or accepted, until the
        organization reports a new figure or :meth:`release` (the offer ended).
        """
        key = (referral_id, attempt)
        if key in self._counted:
            return
        self._counted[key] = None
        if len(self._counted) > MAX_COUNTED_OFFERS:
            self._counted.popitem(last=False)
        self.release(referral_id)  # a referral holds one offer at a time
        self._holding[referral_id] = (attempt, service_id, at)
        if len(self._holding) > MAX_COUNTED_OFFERS:
            self._holding.popitem(last=False)
        if at >= (self.figure_since(service_id) or _EARLIEST):
            self.reserved[service_id] += 1
            self._directory = None

    def release(self, referral_id: str) -> None:
        """The referral's offer ended other than accepted (rejected, withdrawn, timed
        out, cancelled, closed): its place is free again. An offer older than the
        figure in force is in that figure, not in the reservations: nothing to free."""
        held = self._holding.pop(referral_id, None)
        if held is None:
            return
        _, service_id, at = held
        if at >= (self.figure_since(service_id) or _EARLIEST) and self.reserved[service_id] > 0:
            self.reserved[service_id] -= 1
            if not self.reserved[service_id]:
                del self.reserved[service_id]
            self._directory = None

    def figure_since(self, service_id: str) -> datetime | None:
        """When the capacity figure in force for ``service_id`` was given (None: never)."""
        service = self.services.get(service_id)
        report = self.capacity.get(service_id)
        times = [t.at for t in (report,) if t is not None]
        if service is not None:
            times.append(service.occurred_at)
        return max(times) if times else None

    def record_snapshot(self, recent: int) -> dict[str, Any]:
        """What the event log has taught this view, as plain data (see
        :mod:`streams.runtime.view_snapshot`): with the log's positions, enough to go on
        from there instead of from the log's beginning."""
        return {
            "on_time": dict(self.on_time),
            "timed_out": dict(self.timed_out),
            "offers": dict(self.offers),
            "reserved": {
                sid: (n, self.figure_since(sid)) for sid, n in self.reserved.items() if n > 0
            },
            "counted": list(itertools.islice(reversed(self._counted), recent))[::-1],
            "holding": [(rid, *held) for rid, held in self._holding.items()],
        }

    def restore(self, document: RecordDocument) -> None:
        """Take a snapshot's record, before the events after its positions.

        The directory and the capacity reports are read whole first (they are
        compacted). A service's reservations are taken only if its capacity
        figure is still the one they were counted against: a newer figure
        counts anew, as when it arrives live.
        """
        self.on_time.update(document.on_time)
        self.timed_out.update(document.timed_out)
        self.offers.update(document.offers)
        for service_id, (count, since) in document.reserved.items():
            if count > 0 and self.figure_since(service_id) == since:
                self.reserved[service_id] += count
        for referral_id, attempt in document.counted:
            self._counted[(referral_id, attempt)] = None
        for referral_id, attempt, service_id, at in document.holding:
            self._holding[referral_id] = (attempt, service_id, at)
            self._counted[(referral_id, attempt)] = None
        while len(self._holding) > MAX_COUNTED_OFFERS:
            self._holding.popitem(last=False)
        while len(self._counted) > MAX_COUNTED_OFFERS:
            self._counted.popitem(last=False)
        self._stats = None
        self._directory = None

    def record(self, event: ReferralStateChanged) -> None:
        if event.business_status is BusinessStatus.OFFERED and event.service_id:
            self.offers[event.service_id] += 1
            self.reserve(event.referral_id, event.attempt, event.service_id, event.occurred_at)
        elif event.to_status not in _HOLDING or event.business_status is not None:
            # rejected, re-routed (timeout, rejection, removal), or ended
            self.release(event.referral_id)
        if event.org_id is None:
            return
        answered = event.actor is Party.ORGANIZATION and event.to_status in (
            TaskStatus.ACCEPTED,
            TaskStatus.REJECTED,
        )
        if answered:
            self.on_time[event.org_id] += 1
            self._stats = None
        elif event.reason == "timeout" and event.actor is Party.NETWORK:
            self.timed_out[event.org_id] += 1
            self._stats = None

    def effective(self, service: ServiceUpserted) -> ServiceUpserted:
        """The service with the newest capacity figure (directory or organization),
        less the offers made since that figure (each open offer reserves a place)."""
        report = self.capacity.get(service.service_id)
        reserved = self.reserved.get(service.service_id, 0)
        cached = self._effective.get(service.service_id)
        if (
            cached is not None
            and cached[0] is service
            and cached[1] is report
            and cached[2] == reserved
        ):
            return cached[3]
        found = self._effective_now(service, report, reserved)
        self._effective[service.service_id] = (service, report, reserved, found)
        return found

    @staticmethod
    def _effective_now(
        service: ServiceUpserted, report: _CapacityReport | None, reserved: int
    ) -> ServiceUpserted:
        if report is None or report.at < service.occurred_at:
            if service.capacity is None or not reserved:
                return service
            available = service.capacity.available
        elif report.available is None:
            return service.model_copy(update={"capacity": None})
        else:
            available = report.available
        unit = service.capacity.unit if service.capacity else None
        maximum = service.capacity.maximum if service.capacity else None
        capacity = Capacity(available=max(0, available - reserved), unit=unit, maximum=maximum)
        return service.model_copy(update={"capacity": capacity})

    def directory(self) -> list[ServiceUpserted]:
        """Every service that can be offered a referral, with its current capacity.

        A service of an organization whose referrals topic does not exist (not
        provisioned yet) is left out: an offer could not be delivered. Rebuilt
        only after a change.
        """
        if self._directory is None:
            self._directory = [
                self.effective(s)
                for s in self.services.values()
                if self.reachable is None or s.org_id in self.reachable
            ]
        return self._directory

    def org_stats(self) -> Mapping[str, OrgRecord]:
        """Each organization's answering record (rebuilt only after it changed)."""
        if self._stats is None:
            orgs = set(self.on_time) | set(self.timed_out)
            self._stats = {
                org: OrgRecord(answered_in_time=self.on_time[org], timed_out=self.timed_out[org])
                for org in orgs
            }
        return MappingProxyType(self._stats)

    def load(self) -> Mapping[str, int]:
        """Offers per service (a read-only view: no copy per command)."""
        return MappingProxyType(self.offers)

    def candidates(self, request: MatchRequest) -> list[ServiceUpserted]:
        """The offerable services that may serve ``request`` (category and area), with
        their current capacity: what ranking needs to look at, whatever the
        directory's size (see :mod:`streams.decisions.directory_index`)."""
        if self._index is None:
            self._index = DirectoryIndex(
                s
                for s in self.services.values()
                if self.reachable is None or s.org_id in self.reachable
            )
        found = []
        for service_id in self._index.candidates(request.category, request.postal_code):
            service = self.services.get(service_id)
            if service is not None:
                found.append(self.effective(service))
        return found


__all__ = ["MAX_COUNTED_OFFERS", "NetworkState", "RecordDocument"]
