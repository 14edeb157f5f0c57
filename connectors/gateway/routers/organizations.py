"""Organizations as the directory names them: ``GET /fhir/Organization/{id}``.

Any party's token may read an organization the directory has named (a
``service.upserted`` with an ``org_name``): its id, its identifier, its name and
``active``. Directory data is public; an organization not named is absent (404).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.gateway.dependencies import Party, Running
from connectors.gateway.rest import fhir

router = APIRouter(tags=["fhir"])

#: the identifier system of a network party's id
PARTY_ID_SYSTEM = "urn:refnet:party-id"


@router.get("/fhir/Organization/{org_id}")
async def read_organization(org_id: str, who: Party, gateway: Running) -> Response:
    name = gateway.names.get(org_id)
    if not name:
        raise StarletteHTTPException(404, "no Organization of that id in the directory")
    return fhir(
        {
            "resourceType": "Organization",
            "id": org_id,
            "identifier": [{"system": PARTY_ID_SYSTEM, "value": org_id}],
            "active": True,
            "name": name,
        }
    )


__all__ = ["PARTY_ID_SYSTEM", "router"]
