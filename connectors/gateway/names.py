"""Organizations' names, as the directory publishes them, where people read them.

The gateway's inbox reader also follows the directory topic: each
``service.upserted`` carrying an ``org_name`` sets that organization's name (the
latest wins). The map is bounded (:data:`MAX_ORGANIZATIONS`, the least recently
named dropped first; names are length-bounded by the schema). Directory data is
public: no patient data is read here. :func:`name_references` adds a FHIR
``Reference.display`` to the ``Organization/{id}`` references of a resource.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from connectors.fhir.mapping import fhir_id
from connectors.fhir.tasks import NETWORK_ORG
from schemas.events.directory import ServiceUpserted

log = logging.getLogger("refnet.gateway.names")

#: organizations whose names the gateway keeps at most
MAX_ORGANIZATIONS = 10_000

REFUSED_EVENTS = Counter(
    "refnet_gateway_directory_refused",
    "Directory records the gateway could not read for organizations' names",
)


class OrgNames:
    """A bounded map organization id -> name, fed by the directory's records."""

    def __init__(self, capacity: int = MAX_ORGANIZATIONS) -> None:
        self.capacity = max(1, capacity)
        self._names: OrderedDict[str, str] = OrderedDict()
        #: FHIR id -> organization id (the same for a valid FHIR id)
        self._ids: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._names)

    def get(self, org_id: str) -> str | None:
        return self._names.get(org_id) or self._names.get(self._ids.get(org_id, ""))

    def set(self, org_id: str, name: str) -> None:
        self._names[org_id] = name
        self._names.move_to_end(org_id)
        self._ids[fhir_id(org_id)] = org_id
        while len(self._names) > self.capacity:
            dropped, _ = self._names.popitem(last=False)
            self._ids.pop(fhir_id(dropped), None)

    def apply(self, value: bytes | None) -> None:
        """One directory record: a ``service.upserted`` with an ``org_name`` names its
        organization; other events and tombstones change nothing; a record that does not
        parse is counted and logged (by its reason only) and skipped."""
        if value is None:
            return
        try:
            data = json.loads(value)
            if not isinstance(data, dict) or data.get("event_type") != "service.upserted":
                return
            service = ServiceUpserted.model_validate(data)
        except (ValueError, ValidationError) as exc:
            REFUSED_EVENTS.inc()
            reason = exc.errors()[0]["type"] if isinstance(exc, ValidationError) else "not JSON"
            log.warning("directory record skipped for names: %s", reason)
            return
        if service.org_name:
            self.set(service.org_id, service.org_name)


def name_references(resource: Any, names: OrgNames) -> Any:
    """``resource`` with ``display`` added (in place) to every ``Organization/{id}``
    reference whose organization has a name and which has no display yet."""
    if isinstance(resource, list | tuple):
        for item in resource:
            name_references(item, names)
    elif isinstance(resource, dict):
        ref = resource.get("reference")
        if isinstance(ref, str) and ref.startswith("Organization/") and "display" not in resource:
            ident = ref.removeprefix("Organization/")
            name = names.get(ident) if ident != NETWORK_ORG else None
            if name:
                resource["display"] = name
        for value in resource.values():
            if isinstance(value, dict | list):
                name_references(value, names)
    return resource


__all__ = ["MAX_ORGANIZATIONS", "REFUSED_EVENTS", "OrgNames", "name_references"]
