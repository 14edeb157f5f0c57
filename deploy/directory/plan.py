"""What an import changes on the directory topic: new, changed, unchanged, removed."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.openreferral.importer import Conversion, ImportedService, content_hash


@dataclass(frozen=True)
class Current:
    """A service on the directory topic now: its content hash and who published it."""

    content_hash: str | None
    source: str | None


@dataclass
class Plan:
    """What an import changes on the directory topic."""

    new: list[ImportedService] = field(default_factory=list)
    changed: list[ImportedService] = field(default_factory=list)
    unchanged: list[ImportedService] = field(default_factory=list)
    #: service ids to remove (``--prune``)
    remove: list[str] = field(default_factory=list)

    @property
    def publish(self) -> list[ImportedService]:
        return [*self.new, *self.changed]


def plan(conversion: Conversion, current: dict[str, Current], *, source: str, prune: bool) -> Plan:
    """Compare an import with the topic's current records."""
    result = Plan()
    for service in conversion.services:
        now = current.get(service.event.service_id)
        if now is None:
            result.new.append(service)
        elif now.content_hash == content_hash(service.event):
            result.unchanged.append(service)
        else:
            result.changed.append(service)
    if prune:
        imported = {s.event.service_id for s in conversion.services}
        imported |= {u.service_id for u in conversion.unmapped}  # reported, never silently removed
        result.remove = sorted(
            sid for sid, now in current.items() if now.source == source and sid not in imported
        )
    return result
