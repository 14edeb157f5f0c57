"""Referral Tasks: clinics and organizations search and read theirs; organizations update.

A clinic's Tasks come from its updates topic, an organization's from its
referrals topic: the offer, its withdrawal, and the network's answers to the
organization's updates (``referral.status-recorded``, ``message.refused``), so each
Task shows the network's truth; anything another party owns is absent (404).

An organization's update the lifecycle forbids from the network's current status is
refused (409, or 422 for a missing reason) and nothing is published; an allowed one
is published and answered with the network's decision if it arrives within
``confirm_wait`` seconds (200, or 409 naming the network's rule), else 202 with the
Task as the network has it.
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
from connectors.gateway.names import OrgNames, name_references
from connectors.gateway.rest import (
    JSON_BODY,
    PATCH_BODY,
    check_if_match,
    fhir,
    json_body,
    mapped,
    read_answer,
    resource_body,
    versioned,
)
from connectors.gateway.search import parse_search, searchset
from connectors.gateway.state import Gateway
from connectors.gateway.tokens import PartyRef
from connectors.gateway.views import PartyView
from schemas.codes import TaskStatus
from schemas.events import ReferralOffered, ReferralStatusChanged
from streams.decisions.lifecycle import Forbidden, ForbiddenCode, ReferralState, apply_org_status

router = APIRouter()

Resources = list[dict[str, Any]]


#: the parameters a Task search takes besides :data:`connectors.gateway.search.CONTROL`
TASK_PARAMS = ("requester", "owner", "status")
Found = list[tuple[dict[str, Any], Resources]]


@router.get("/fhir/Task", tags=["clinic", "organization"])
async def search_tasks(
    request: Request,
    who: Referrer,
    gateway: Running,
    requester: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    include: Annotated[list[str] | None, Query(alias="_include")] = None,
    count: Annotated[int | None, Query(alias="_count")] = None,
    sort: Annotated[str | None, Query(alias="_sort")] = None,
) -> Response:
    search = parse_search(
        "Task", request.query_params.multi_items(), TASK_PARAMS, request.headers.get("prefer")
    )
    base = gateway.config.base_url
    view = await gateway.ready_view(who)
    values = search.values
    wanted = set(values["status"].split(",")) if "status" in values else None
    include = list(search.include)
    found: Found
    if who.kind == "clinic":
        if not _names_party(values.get("requester"), who) or values.get("owner") not in (
            None,
            "Organization/refnet",
            "refnet",
        ):
            return fhir(searchset(base, search, []))
        found = _clinic_tasks(view, wanted, include, gateway.names)
    else:
        if not _names_party(values.get("owner"), who):
            return fhir(searchset(base, search, []))
        found = _org_tasks(view, wanted, include, gateway.names)
    return fhir(searchset(base, search, found))


def _clinic_tasks(
    view: PartyView, wanted: set[str] | None, include: list[str] | None, names: OrgNames
) -> Found:
    found: Found = []
    for record in list(view.records.values()):
        if "update" not in record:
            continue
        sr, task = name_references(clinic_task(record, view.party.id), names)
        if wanted is None or task["status"] in wanted:
            found.append(
                (versioned(task, task["lastModified"]), [sr] if _includes(include, "focus") else [])
            )
    return found


def _org_tasks(
    view: PartyView, wanted: set[str] | None, include: list[str] | None, names: OrgNames
) -> Found:
    found: Found = []
    for record in list(view.records.values()):
        if "offer" not in record:
            continue
        task, sr, patient = name_references(org_task(record, view.party.id), names)
        if wanted is None or task["status"] in wanted:
            includes: Resources = []
            if _includes(include, "focus"):
                includes.append(sr)
            if _includes(include, "patient"):
                includes.append(patient)
            found.append((versioned(task, task["lastModified"]), includes))
    return found


async def _resources(
    gateway: Gateway, who: PartyRef, task_id: str
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The party's (referral id, Task, ServiceRequest, Patient or None) of ``task_id``."""
    view = await gateway.ready_view(who)
    rid, record = _find(view, task_id)
    if who.kind == "clinic":
        sr, task = name_references(clinic_task(record, who.id), gateway.names)
        return rid, task, sr, None
    task, sr, patient = name_references(org_task(record, who.id), gateway.names)
    return rid, task, sr, patient


@router.get("/fhir/Task/{task_id}", tags=["clinic", "organization"])
async def read_task(task_id: str, who: Referrer, gateway: Running) -> Response:
    _, task, _, _ = await _resources(gateway, who, task_id)
    return read_answer(task, task["lastModified"])


@router.get("/fhir/ServiceRequest/{request_id}", tags=["clinic", "organization"])
async def read_service_request(request_id: str, who: Referrer, gateway: Running) -> Response:
    """The referral's ServiceRequest, to the clinic that sent it or the organization offered it."""
    _, task, sr, _ = await _resources(gateway, who, request_id)
    return read_answer(sr, task["lastModified"])


@router.get("/fhir/Patient/{patient_id}", tags=["clinic", "organization"])
async def read_patient(patient_id: str, who: Referrer, gateway: Running) -> Response:
    """The Patient a party's Task is ``for``: the offer's minimum-necessary Patient to the
    organization; to the clinic, its own patient by id (the gateway keeps no demographics)."""
    view = await gateway.ready_view(who)
    for record in list(view.records.values()):
        if who.kind == "clinic" and "update" in record:
            if fhir_id(str(record["update"]["patient_id"])) == patient_id:
                return read_answer({"resourceType": "Patient", "id": patient_id})
        elif who.kind != "clinic" and "offer" in record:
            _, _, patient = org_task(record, who.id)
            if patient["id"] == patient_id:
                return read_answer(patient)
    raise StarletteHTTPException(404, "no such Patient")


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
        gateway,
        who,
        task_id,
        lambda task: apply_json_patch(task, operations),
        request.headers.get("if-match"),
    )


@router.put("/fhir/Task/{task_id}", tags=["organization"], openapi_extra=JSON_BODY)
async def put_task(task_id: str, request: Request, who: Org, gateway: Running) -> Response:
    task = await resource_body(request, "Task")
    if task.get("id") not in (None, task_id):
        raise GatewayInputError("the Task's id differs from the URL's", status=400)
    return await _change_task(
        gateway, who, task_id, lambda _: task, request.headers.get("if-match")
    )


async def _change_task(
    gateway: Gateway,
    who: PartyRef,
    task_id: str,
    make: Callable[[dict[str, Any]], Any],
    if_match: str | None = None,
) -> Response:
    """Publish the organization's new Task ``make`` makes of the current one; answer
    with the network's decision (or 202 while it is pending).

    ``if_match``: the version (``ETag``) the organization changed; another is 412. A
    move the lifecycle forbids from the network's current status is refused here and
    nothing is published.
    """
    view = await gateway.ready_view(who)
    rid, record = _find(view, task_id)
    current, _, _ = org_task(record, who.id)
    check_if_match(if_match, current)
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
    _check_move(current["status"], event)
    await gateway.publish(who, rid, event)
    answer = await _network_answer(view, rid, str(event.event_id), gateway.config.confirm_wait)
    if answer is not None and answer.get("refused"):
        raise GatewayInputError(
            f"the network refused the update ({answer['refused']['kind']}): "
            f"{answer['refused']['rule']}",
            status=409,
            code="business-rule",
        )
    task = org_task(view.records.get(rid, record), who.id)[0]
    response = read_answer(task, task["lastModified"])
    if answer is None:  # published; the network's report is pending
        response.status_code = 202
    return response


def _check_move(status: str, event: ReferralStatusChanged) -> None:
    """Refuse (409; 422 for a missing reason) a move the lifecycle forbids from the
    network's current status of the organization's Task, naming the rule."""
    checked = apply_org_status(
        ReferralState(TaskStatus(status)), event.status, reason=event.reason, outcome=event.outcome
    )
    if isinstance(checked, Forbidden):
        missing = checked.code is ForbiddenCode.REASON_REQUIRED
        raise GatewayInputError(
            f"the network would refuse this update ({checked.code.value}): {checked.message}",
            status=422 if missing else 409,
            code="business-rule",
        )


async def _network_answer(
    view: PartyView, rid: str, event_id: str, within: float
) -> dict[str, Any] | None:
    """The referral's record once the network answered ``event_id`` (confirmed it, or
    refused it: ``refused`` set), waiting at most ``within`` seconds; None meanwhile."""

    def answered() -> dict[str, Any] | None:
        record = view.records.get(rid) or {}
        recorded, refused = record.get("recorded") or {}, record.get("refused") or {}
        if recorded.get("cause_event_id") == event_id:
            return {**record, "refused": None}
        if refused.get("event_id") == event_id:
            return record
        return None

    if within <= 0:
        return answered()
    try:
        async with asyncio.timeout(within):
            async with view.changed:
                await view.changed.wait_for(lambda: answered() is not None)
    except TimeoutError:
        return None
    return answered()


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
