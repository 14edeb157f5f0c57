"""Referral Tasks: clinics and organizations search and read theirs; organizations update.

A clinic's Tasks come from its updates topic, an organization's from its
referrals topic with its own last answer (the store) over the offer; anything
another party owns is absent (404).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.mapping import fhir_id
from connectors.fhir.patch import apply_json_patch
from connectors.fhir.tasks import CLOSED, clinic_task, org_task, status_change_from
from connectors.gateway.dependencies import Org, Referrer, Running
from connectors.gateway.rest import (
    JSON_BODY,
    PATCH_BODY,
    fhir,
    json_body,
    mapped,
    resource_body,
    searchset,
)
from connectors.gateway.state import Gateway
from connectors.gateway.tokens import PartyRef
from connectors.gateway.views import PartyView
from schemas.events import ReferralOffered

router = APIRouter()

Resources = list[dict[str, Any]]


@router.get("/fhir/Task", tags=["clinic", "organization"])
async def search_tasks(
    who: Referrer,
    gateway: Running,
    requester: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    include: Annotated[list[str] | None, Query(alias="_include")] = None,
) -> Response:
    view = await gateway.ready_view(who)
    wanted = set(status.split(",")) if status else None
    if who.kind == "clinic":
        if not _names_party(requester, who) or owner not in (
            None,
            "Organization/refnet",
            "refnet",
        ):
            return fhir(searchset(gateway.config.base_url, [], []))
        matches, includes = _clinic_tasks(view, wanted, include)
    else:
        if not _names_party(owner, who):
            return fhir(searchset(gateway.config.base_url, [], []))
        own = await asyncio.to_thread(gateway.store.statuses, who.id)
        matches, includes = _org_tasks(view, own, wanted, include)
    return fhir(searchset(gateway.config.base_url, matches, includes))


def _clinic_tasks(
    view: PartyView, wanted: set[str] | None, include: list[str] | None
) -> tuple[Resources, Resources]:
    matches: Resources = []
    includes: Resources = []
    for record in list(view.records.values()):
        sr, task = clinic_task(record, view.party.id)
        if wanted is None or task["status"] in wanted:
            matches.append(task)
            if _includes(include, "focus"):
                includes.append(sr)
    return matches, includes


def _org_tasks(
    view: PartyView,
    own: dict[str, Any],
    wanted: set[str] | None,
    include: list[str] | None,
) -> tuple[Resources, Resources]:
    matches: Resources = []
    includes: Resources = []
    for rid, record in list(view.records.items()):
        task, sr, patient = org_task({**record, "own": own.get(rid)}, view.party.id)
        if wanted is None or task["status"] in wanted:
            matches.append(task)
            if _includes(include, "focus"):
                includes.append(sr)
            if _includes(include, "patient"):
                includes.append(patient)
    return matches, includes


@router.get("/fhir/Task/{task_id}", tags=["clinic", "organization"])
async def read_task(task_id: str, who: Referrer, gateway: Running) -> Response:
    view = await gateway.ready_view(who)
    rid, record = _find(view, task_id)
    if who.kind == "clinic":
        return fhir(clinic_task(record, who.id)[1])
    own = (await asyncio.to_thread(gateway.store.statuses, who.id)).get(rid)
    return fhir(org_task({**record, "own": own}, who.id)[0])


@router.patch("/fhir/Task/{task_id}", tags=["organization"], openapi_extra=PATCH_BODY)
async def patch_task(task_id: str, request: Request, who: Org, gateway: Running) -> Response:
    operations = await json_body(request)
    if not isinstance(operations, list):
        raise GatewayInputError(
            "PATCH takes a JSON Patch array (application/json-patch+json)",
            status=400,
            code="structure",
        )
    return await _change_task(
        gateway, who, task_id, lambda task: apply_json_patch(task, operations)
    )


@router.put("/fhir/Task/{task_id}", tags=["organization"], openapi_extra=JSON_BODY)
async def put_task(task_id: str, request: Request, who: Org, gateway: Running) -> Response:
    task = await resource_body(request, "Task")
    if task.get("id") not in (None, task_id):
        raise GatewayInputError("the Task's id differs from the URL's", status=400)
    return await _change_task(gateway, who, task_id, lambda _: task)


async def _change_task(
    gateway: Gateway, who: PartyRef, task_id: str, make: Callable[[dict[str, Any]], Any]
) -> Response:
    """Publish the organization's new Task ``make`` makes of the current one; answer it."""
    view = await gateway.ready_view(who)
    rid, record = _find(view, task_id)
    statuses = await asyncio.to_thread(gateway.store.statuses, who.id)
    current, _, _ = org_task({**record, "own": statuses.get(rid)}, who.id)
    if record.get("withdrawn"):
        raise GatewayInputError(
            "the network withdrew this offer; it can no longer change",
            status=409,
            code="conflict",
        )
    if current["status"] in CLOSED:
        raise GatewayInputError(
            f"the Task is {current['status']}; it can no longer change",
            status=409,
            code="conflict",
        )
    offer = ReferralOffered.model_validate(record["offer"])
    event = mapped(lambda: status_change_from(make(current), rid, offer))
    await gateway.publish(who, rid, event)
    await asyncio.to_thread(
        gateway.store.set_status,
        who.id,
        rid,
        event.status.value,
        event.reason,
        event.outcome,
        event.note,
    )
    own = {
        "status": event.status.value,
        "reason": event.reason,
        "outcome": event.outcome,
        "note": event.note,
    }
    changed = {**record, "own": own, "modified": event.occurred_at.isoformat()}
    return fhir(org_task(changed, who.id)[0])


def _names_party(value: str | None, party: PartyRef) -> bool:
    """Whether a requester/owner search value names the party (or is absent)."""
    if value is None:
        return True
    return value in (party.id, f"Organization/{party.id}")


def _includes(include: list[str] | None, what: str) -> bool:
    wanted = {"focus": ("Task:focus", "*"), "patient": ("Task:patient", "Task:for", "*")}[what]
    return any(i in wanted for i in include or [])


def _find(view: PartyView, task_id: str) -> tuple[str, dict[str, Any]]:
    needed = "update" if view.party.kind == "clinic" else "offer"
    for rid, record in list(view.records.items()):
        if fhir_id(rid) == task_id and needed in record:
            return rid, record
    raise StarletteHTTPException(404, "no such Task")


__all__ = ["router"]
