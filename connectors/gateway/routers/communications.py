"""Hospital encounter alerts, as FHIR Communications: clinics and organizations read their own.

The alerts are the ``encounter.alerted`` events the party's view read from its
inbox topic (a clinic's updates, an organization's referrals); another party's
are absent (404).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.communications import communication_id, render_alert
from connectors.gateway.dependencies import Referrer, Running
from connectors.gateway.names import name_references
from connectors.gateway.rest import fhir, searchset

router = APIRouter(tags=["clinic", "organization"])


@router.get("/fhir/Communication")
async def search_communications(who: Referrer, gateway: Running) -> Response:
    """The party's alerts, newest first."""
    view = await gateway.ready_view(who)
    alerts = sorted(view.alerts.values(), key=lambda a: str(a.get("occurred_at")), reverse=True)
    matches = [name_references(render_alert(a, who.kind, who.id), gateway.names) for a in alerts]
    return fhir(searchset(gateway.config.base_url, matches, []))


@router.get("/fhir/Communication/{communication}")
async def read_communication(communication: str, who: Referrer, gateway: Running) -> Response:
    view = await gateway.ready_view(who)
    for alert in list(view.alerts.values()):
        if communication_id(alert) == communication:
            return fhir(name_references(render_alert(alert, who.kind, who.id), gateway.names))
    raise StarletteHTTPException(404, "no such Communication for this party")


__all__ = ["router"]
