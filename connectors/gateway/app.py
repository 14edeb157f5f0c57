"""``refnet gateway``: the FHIR API, webhooks and web inbox in front of the parties' topics.

Every request names its party with ``Authorization: Bearer <api_token>`` (a token
made by ``refnet provision``) and acts only as that party: it publishes to the
party's own outbox topic and reads the gateway's view of the party's own inbox
topic (:mod:`connectors.gateway.views`). Anything another party owns is absent
(404), not forbidden. Bad input answers 4xx with an OperationOutcome; the access
log names the route, the status, the party and the time taken, never a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.gateway import (
    CAPACITY_EXTENSION,
    GatewayInputError,
    Resolver,
    apply_json_patch,
    clinic_task,
    operation_outcome,
    org_task,
    referral_from,
    screening_from,
    status_change_from,
)
from connectors.fhir.mapping import fhir_id
from connectors.gateway.notifier import Deliverer, Target, check_url, new_secret
from connectors.gateway.store import Delivery, GatewayStore, Subscription, Webhook
from connectors.gateway.tokens import PartyRef, TokenStore
from connectors.gateway.views import PartyView, party_auth
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from schemas.events import ServiceCapacityChanged
from schemas.topics import Topics

log = logging.getLogger("refnet.gateway")
access_log = logging.getLogger("refnet.gateway.access")

FHIR_JSON = "application/fhir+json"
#: the SubscriptionTopic a party subscribes to (R4 backport: Subscription.criteria)
TASK_TOPIC = "urn:refnet:SubscriptionTopic:referral-task"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
CLOSED = frozenset({"completed", "failed", "rejected", "cancelled"})
MAX_BODY = 1_000_000

_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FHIR_JSON: {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json-patch+json": {
                "schema": {"type": "array", "items": {"type": "object"}}
            }
        },
    }
}


@dataclass(frozen=True)
class GatewayConfig:
    bootstrap: str
    topics: Topics
    data_dir: Path
    auth: KafkaAuth = PLAINTEXT
    #: testing and local development: let webhooks and subscriptions post to http://127.0.0.1
    allow_http_webhooks: bool = False
    retry_base: float = 2.0
    retry_max: float = 3600.0
    #: a CA file that receivers' certificates may also chain to (e.g. the local CA)
    webhook_ca: str | None = None
    ready_timeout: float = 15.0
    base_url: str = "http://127.0.0.1:8080"


class Gateway:
    """The running parts: token lookup, per-party views, the store and the deliverer."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.tokens = TokenStore(config.data_dir)
        self.views: dict[PartyRef, PartyView] = {}
        self._store: GatewayStore | None = None
        self._deliverer: Deliverer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def store(self) -> GatewayStore:
        if self._store is None:
            raise RuntimeError("the gateway has not started")
        return self._store

    @property
    def deliverer(self) -> Deliverer:
        if self._deliverer is None:
            raise RuntimeError("the gateway has not started")
        return self._deliverer

    async def start(self) -> None:
        """Open the store and start the deliverer and the views (nothing before: building
        the app, for instance to publish its OpenAPI description, touches no file)."""
        self._store = GatewayStore(self.config.data_dir / "gateway" / "gateway.sqlite3")
        self._deliverer = Deliverer(
            self._store,
            self._target,
            retry_base=self.config.retry_base,
            retry_max=self.config.retry_max,
            verify_tls=self.config.webhook_ca or True,
        )
        for party in self.tokens.parties():
            self.view(party)
        self._tasks.append(asyncio.create_task(self.deliverer.run(), name="deliverer"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(v.stop() for v in self.views.values()))
        if self._store is not None:
            self._store.close()

    def view(self, party: PartyRef) -> PartyView:
        found = self.views.get(party)
        if found is None or found.stopped:
            bootstrap, auth = party_auth(self.config.data_dir, party, self.config.auth)
            found = PartyView(
                party,
                self.config.topics,
                self.config.bootstrap or bootstrap or "",
                auth,
                listener=self._on_event,
                provisioned=lambda: party in self.tokens.parties(),
            )
            self.views[party] = found
            found.start()
        return found

    async def ready_view(self, party: PartyRef) -> PartyView:
        view = self.view(party)
        if not await view.wait_ready(self.config.ready_timeout):
            raise GatewayInputError(
                "the gateway is still reading this party's topic; retry shortly",
                status=503,
                code="transient",
            )
        return view

    # ------------------------------------------------------------ notifications
    async def _on_event(self, party: PartyRef, message: dict[str, Any]) -> None:
        event_id = str(message.get("event_id"))
        occurred = _epoch(message.get("occurred_at"))
        added = False
        if party.kind == "org":
            body = json.dumps(
                {
                    "type": message.get("event_type"),
                    "timestamp": message.get("occurred_at"),
                    "data": message,
                },
                separators=(",", ":"),
            ).encode()
            for hook in await asyncio.to_thread(self.store.webhooks, party.id):
                if occurred >= hook.created_at - 1:
                    added |= await asyncio.to_thread(
                        self.store.enqueue, "webhook", hook.id, event_id, body
                    )
        for sub in await asyncio.to_thread(self.store.subscriptions, party.kind, party.id):
            # a view re-reads its topic at every start: an event already queued keeps its number
            if occurred >= sub.created_at - 1 and not await asyncio.to_thread(
                self.store.has_delivery, sub.id, event_id
            ):
                rid = str(message["referral_id"])
                body = json.dumps(self._notification(sub, rid, message)).encode()
                added |= await asyncio.to_thread(
                    self.store.enqueue, "subscription", sub.id, event_id, body
                )
        if added:
            self.deliverer.wake()

    def _notification(self, sub: Subscription, rid: str, message: dict[str, Any]) -> dict[str, Any]:
        number = self.store.next_event_number(sub.id)
        focus = f"{self.config.base_url}/fhir/Task/{fhir_id(rid)}"
        status = {
            "resourceType": "Parameters",
            "id": str(uuid.uuid4()),
            "meta": {"profile": [f"{BACKPORT}/backport-subscription-status-r4"]},
            "parameter": [
                {"name": "subscription", "valueReference": {"reference": f"Subscription/{sub.id}"}},
                {"name": "topic", "valueCanonical": TASK_TOPIC},
                {"name": "status", "valueCode": "active"},
                {"name": "type", "valueCode": "event-notification"},
                {"name": "events-since-subscription-start", "valueString": str(number)},
                {
                    "name": "notification-event",
                    "part": [
                        {"name": "event-number", "valueString": str(number)},
                        {"name": "timestamp", "valueInstant": message.get("occurred_at")},
                        {"name": "focus", "valueReference": {"reference": focus}},
                    ],
                },
            ],
        }
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"profile": [f"{BACKPORT}/backport-subscription-notification-r4"]},
            "type": "history",
            "timestamp": datetime.now(UTC).isoformat(),
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{status['id']}",
                    "resource": status,
                    "request": {"method": "GET", "url": f"Subscription/{sub.id}/$status"},
                    "response": {"status": "200"},
                },
                {
                    "fullUrl": focus,
                    "request": {"method": "PUT", "url": f"Task/{fhir_id(rid)}"},
                    "response": {"status": "200"},
                },
            ],
        }

    def _target(self, delivery: Delivery) -> Target | None:
        if delivery.kind == "webhook":
            hook = self.store.webhook(delivery.target_id)
            return None if hook is None else Target(hook.url, hook.secret, {})
        sub = self.store.subscription(delivery.target_id)
        if sub is None:
            return None
        headers = {}
        for line in sub.headers:
            name, _, value = line.partition(":")
            if name.strip() and value.strip():
                headers[name.strip()] = value.strip()
        return Target(sub.endpoint, None, {**headers, "content-type": FHIR_JSON})


def _epoch(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return time.time()


# ===================================================================== the app


def _fhir(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def _outcome(status: int, message: str, code: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _fhir(operation_outcome(message, code=code), status, headers)


async def _json_body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise GatewayInputError("the body is larger than 1 MB", status=413, code="too-costly")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise GatewayInputError("the body is larger than 1 MB", status=413, code="too-costly")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise GatewayInputError("the body is not JSON", status=400, code="structure") from None


def _resource(body: Any, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("resourceType") != kind:
        raise GatewayInputError(f"the body must be a {kind} resource", status=400, code="structure")
    return body


def _searchset(
    base: str, matches: list[dict[str, Any]], includes: list[dict[str, Any]]
) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in matches
    ] + [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in includes
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}


def _names_party(value: str | None, party: PartyRef) -> bool:
    """Whether a requester/owner search value names the party (or is absent)."""
    if value is None:
        return True
    return value in (party.id, f"Organization/{party.id}")


# ===================================================================== who is asking


async def _party(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> PartyRef:
    gateway: Gateway = request.app.state.gateway
    scheme, _, token = (authorization or "").partition(" ")
    found = gateway.tokens.lookup(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise StarletteHTTPException(401, "a valid Authorization: Bearer token is required")
    request.state.party = found.label
    return found


Party = Annotated[PartyRef, Depends(_party)]


def _clinic(who: Party) -> PartyRef:
    if who.kind != "clinic":
        raise StarletteHTTPException(403, "only a clinic's token may do this")
    return who


def _org(who: Party) -> PartyRef:
    if who.kind != "org":
        raise StarletteHTTPException(403, "only an organization's token may do this")
    return who


Clinic = Annotated[PartyRef, Depends(_clinic)]
Org = Annotated[PartyRef, Depends(_org)]


def create_app(config: GatewayConfig) -> FastAPI:
    gateway = Gateway(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="refnet gateway",
        version="1",
        description=(
            "FHIR R4 (Gravity SDOH Clinical Care) for clinics and community organizations, "
            "signed webhooks and a web inbox, in front of refnet's Kafka topics."
        ),
        lifespan=lifespan,
    )
    app.state.gateway = gateway

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        """Prometheus metrics of the gateway (webhook deliveries), no labels with ids."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------ errors and logs
    @app.exception_handler(GatewayInputError)
    async def _input_error(request: Request, exc: GatewayInputError) -> Response:
        return _outcome(exc.status, str(exc), exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}
        return _outcome(exc.status_code, str(exc.detail), code.get(exc.status_code, "invalid"))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        return _outcome(400, where or "invalid request", "invalid")

    @app.middleware("http")
    async def _access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.monotonic()
        try:
            response = await call_next(request)
        except Exception:
            log.exception("gateway error on %s %s", request.method, _route(request))
            response = _outcome(500, "internal error", "exception")
        access_log.info(
            "%s %s %d %s %.0fms",
            request.method,
            _route(request),
            response.status_code,
            getattr(request.state, "party", "-"),
            (time.monotonic() - started) * 1000,
        )
        return response

    # ------------------------------------------------------------ open
    @app.get("/healthz", tags=["gateway"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "parties": len(gateway.views)}

    @app.get("/fhir/metadata", tags=["fhir"])
    async def metadata() -> Response:
        return _fhir(_capability_statement())

    @app.get("/inbox", response_class=HTMLResponse, tags=["inbox"])
    async def inbox() -> HTMLResponse:
        page = (resources.files("connectors.gateway") / "inbox.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/me", tags=["gateway"])
    async def me(who: Party) -> dict[str, str]:
        return {"party": who.kind, "id": who.id}

    # ------------------------------------------------------------ clinics
    @app.post(
        "/fhir/QuestionnaireResponse", tags=["clinic"], openapi_extra=_JSON_BODY, status_code=201
    )
    async def post_questionnaire_response(request: Request, who: Clinic) -> Response:
        qr = _resource(await _json_body(request), "QuestionnaireResponse")
        event, consented = _mapped(lambda: screening_from(qr, Resolver()))
        await _publish(gateway, who, event.patient.id, event)
        return _accepted("QuestionnaireResponse", event.screening_id, consented)

    @app.post("/fhir/ServiceRequest", tags=["clinic"], openapi_extra=_JSON_BODY, status_code=201)
    async def post_service_request(request: Request, who: Clinic) -> Response:
        sr = _resource(await _json_body(request), "ServiceRequest")
        event = _mapped(lambda: referral_from(sr, Resolver()))
        await _publish(gateway, who, event.patient.id, event)
        return _fhir(
            operation_outcome(
                f"accepted as referral {event.referral_id}; GET /fhir/Task/"
                f"{fhir_id(event.referral_id)} follows it",
                severity="information",
                code="informational",
            ),
            201,
            {"Location": f"{config.base_url}/fhir/Task/{fhir_id(event.referral_id)}"},
        )

    @app.post("/fhir", tags=["clinic"], openapi_extra=_JSON_BODY)
    async def post_transaction(request: Request, who: Clinic) -> Response:
        bundle = _resource(await _json_body(request), "Bundle")
        if bundle.get("type") not in ("transaction", "batch"):
            raise GatewayInputError("POST /fhir takes a transaction (or batch) Bundle")
        entries = bundle.get("entry")
        if not isinstance(entries, list) or not entries or len(entries) > 100:
            raise GatewayInputError("the Bundle needs 1 to 100 entries")
        index: dict[str, dict[str, Any]] = {}
        ordered: list[dict[str, Any]] = []
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise GatewayInputError("each Bundle entry needs a resource")
            ordered.append(resource)
            if isinstance(entry.get("fullUrl"), str):
                index[entry["fullUrl"]] = resource
            if isinstance(resource.get("id"), str):
                index[f"{resource['resourceType']}/{resource['id']}"] = resource
        resolver = Resolver(index)
        events: list[tuple[str, Any]] = []
        answers: list[dict[str, Any]] = []
        for resource in ordered:
            kind = resource["resourceType"]
            if kind == "QuestionnaireResponse":
                event, _ = _mapped(lambda r=resource: screening_from(r, resolver))  # type: ignore[misc]
                events.append((event.patient.id, event))
                answers.append(
                    {
                        "status": "201 Created",
                        "location": f"QuestionnaireResponse/{fhir_id(event.screening_id)}",
                    }
                )
            elif kind == "ServiceRequest":
                event = _mapped(lambda r=resource: referral_from(r, resolver))  # type: ignore[misc]
                events.append((event.patient.id, event))
                answers.append(
                    {"status": "201 Created", "location": f"Task/{fhir_id(event.referral_id)}"}
                )
            elif kind in ("Patient", "Consent"):
                answers.append({"status": "200 OK"})
            else:
                raise GatewayInputError(
                    f"a Bundle entry of type {kind[:40]!r} is not taken (Patient, Consent, "
                    "QuestionnaireResponse, ServiceRequest)"
                )
        if not events:
            raise GatewayInputError("the Bundle holds no QuestionnaireResponse or ServiceRequest")
        for key, event in events:
            await _publish(gateway, who, key, event)
        return _fhir(
            {
                "resourceType": "Bundle",
                "type": f"{bundle['type']}-response",
                "entry": [{"response": a} for a in answers],
            }
        )

    # ------------------------------------------------------------ Tasks
    @app.get("/fhir/Task", tags=["clinic", "organization"])
    async def search_tasks(
        who: Party,
        requester: str | None = None,
        owner: str | None = None,
        status: str | None = None,
        include: Annotated[list[str] | None, Query(alias="_include")] = None,
    ) -> Response:
        view = await gateway.ready_view(who)
        wanted = set(status.split(",")) if status else None
        matches: list[dict[str, Any]] = []
        includes: list[dict[str, Any]] = []
        if who.kind == "clinic":
            if not _names_party(requester, who) or owner not in (
                None,
                "Organization/refnet",
                "refnet",
            ):
                return _fhir(_searchset(config.base_url, [], []))
            for record in list(view.records.values()):
                sr, task = clinic_task(record, who.id)
                if wanted is None or task["status"] in wanted:
                    matches.append(task)
                    if _includes(include, "focus"):
                        includes.append(sr)
        else:
            if not _names_party(owner, who):
                return _fhir(_searchset(config.base_url, [], []))
            own = await asyncio.to_thread(gateway.store.statuses, who.id)
            for rid, record in list(view.records.items()):
                task, sr, patient = org_task({**record, "own": own.get(rid)}, who.id)
                if wanted is None or task["status"] in wanted:
                    matches.append(task)
                    if _includes(include, "focus"):
                        includes.append(sr)
                    if _includes(include, "patient"):
                        includes.append(patient)
        return _fhir(_searchset(config.base_url, matches, includes))

    @app.get("/fhir/Task/{task_id}", tags=["clinic", "organization"])
    async def read_task(task_id: str, who: Party) -> Response:
        view = await gateway.ready_view(who)
        rid, record = _find(view, task_id)
        if who.kind == "clinic":
            return _fhir(clinic_task(record, who.id)[1])
        own = (await asyncio.to_thread(gateway.store.statuses, who.id)).get(rid)
        return _fhir(org_task({**record, "own": own}, who.id)[0])

    async def change_task(
        who: PartyRef, task_id: str, make: Callable[[dict[str, Any]], Any]
    ) -> Response:
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
        event = _mapped(lambda: status_change_from(make(current), rid))
        await _publish(gateway, who, rid, event)
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
        return _fhir(
            org_task({**record, "own": own, "modified": event.occurred_at.isoformat()}, who.id)[0]
        )

    @app.patch("/fhir/Task/{task_id}", tags=["organization"], openapi_extra=_PATCH_BODY)
    async def patch_task(task_id: str, request: Request, who: Org) -> Response:
        operations = await _json_body(request)
        if not isinstance(operations, list):
            raise GatewayInputError(
                "PATCH takes a JSON Patch array (application/json-patch+json)",
                status=400,
                code="structure",
            )
        return await change_task(who, task_id, lambda task: apply_json_patch(task, operations))

    @app.put("/fhir/Task/{task_id}", tags=["organization"], openapi_extra=_JSON_BODY)
    async def put_task(task_id: str, request: Request, who: Org) -> Response:
        task = _resource(await _json_body(request), "Task")
        if task.get("id") not in (None, task_id):
            raise GatewayInputError("the Task's id differs from the URL's", status=400)
        return await change_task(who, task_id, lambda _: task)

    # ------------------------------------------------------------ capacity
    @app.get("/fhir/HealthcareService", tags=["organization"])
    async def search_services(who: Org) -> Response:
        services = await asyncio.to_thread(gateway.store.capacities, who.id)
        found = [
            _service(who.id, sid, available) for sid, (available, _) in sorted(services.items())
        ]
        return _fhir(_searchset(config.base_url, found, []))

    @app.put(
        "/fhir/HealthcareService/{service_id}", tags=["organization"], openapi_extra=_JSON_BODY
    )
    async def put_service(service_id: str, request: Request, who: Org) -> Response:
        resource = _resource(await _json_body(request), "HealthcareService")
        available = None
        for ext in resource.get("extension") or []:
            if isinstance(ext, dict) and ext.get("url") == CAPACITY_EXTENSION:
                for part in ext.get("extension") or []:
                    if isinstance(part, dict) and part.get("url") == "available":
                        available = part.get("valueUnsignedInt", part.get("valueInteger"))
        if not isinstance(available, int) or isinstance(available, bool) or available < 0:
            raise GatewayInputError(
                f"the HealthcareService needs the capacity-status extension ({CAPACITY_EXTENSION}) "
                "with the sub-extension 'available' (valueUnsignedInt)"
            )
        event = _mapped(
            lambda: ServiceCapacityChanged.new(service_id=service_id, available=available)
        )
        await _publish(gateway, who, service_id, event)
        await asyncio.to_thread(gateway.store.set_capacity, who.id, service_id, available)
        return _fhir(_service(who.id, service_id, available))

    # ------------------------------------------------------------ subscriptions
    @app.post(
        "/fhir/Subscription",
        tags=["clinic", "organization"],
        openapi_extra=_JSON_BODY,
        status_code=201,
    )
    async def create_subscription(request: Request, who: Party) -> Response:
        resource = _resource(await _json_body(request), "Subscription")
        if resource.get("criteria") != TASK_TOPIC:
            raise GatewayInputError(f"Subscription.criteria must be the topic {TASK_TOPIC}")
        channel = resource.get("channel")
        if not isinstance(channel, dict) or channel.get("type") != "rest-hook":
            raise GatewayInputError("Subscription.channel.type must be rest-hook")
        endpoint = channel.get("endpoint")
        problem = (
            check_url(endpoint, allow_http_loopback=config.allow_http_webhooks)
            if isinstance(endpoint, str)
            else "Subscription.channel.endpoint is required"
        )
        if problem:
            raise GatewayInputError(problem)
        content: object = "id-only"
        payload_ext = (
            (channel.get("_payload") or {}).get("extension")
            if isinstance(channel.get("_payload"), dict)
            else None
        )
        for ext in payload_ext or []:
            if isinstance(ext, dict) and str(ext.get("url")).endswith("backport-payload-content"):
                content = ext.get("valueCode")
        if content != "id-only":
            raise GatewayInputError("only id-only payloads are sent (backport-payload-content)")
        headers = channel.get("header") or []
        if (
            not isinstance(headers, list)
            or not all(isinstance(h, str) and len(h) < 1000 for h in headers)
            or len(headers) > 10
        ):
            raise GatewayInputError("Subscription.channel.header must be at most 10 strings")
        assert isinstance(endpoint, str)
        sub_id = uuid.uuid4().hex
        stored = {**resource, "id": sub_id, "status": "active"}
        stored["channel"] = {**channel, "header": ["(hidden)"] if headers else []}
        sub = Subscription(sub_id, who.kind, who.id, endpoint, headers, stored, time.time(), 0)
        await asyncio.to_thread(gateway.store.add_subscription, sub)
        gateway.view(who)
        return _fhir(stored, 201, {"Location": f"{config.base_url}/fhir/Subscription/{sub_id}"})

    @app.get("/fhir/Subscription/{sub_id}", tags=["clinic", "organization"])
    async def read_subscription(sub_id: str, who: Party) -> Response:
        sub = await asyncio.to_thread(gateway.store.subscription, sub_id)
        if sub is None or (sub.party_kind, sub.party_id) != (who.kind, who.id):
            raise StarletteHTTPException(404, "no such Subscription")
        return _fhir(sub.resource)

    @app.delete("/fhir/Subscription/{sub_id}", tags=["clinic", "organization"], status_code=204)
    async def delete_subscription(sub_id: str, who: Party) -> Response:
        if not await asyncio.to_thread(gateway.store.delete_subscription, who.kind, who.id, sub_id):
            raise StarletteHTTPException(404, "no such Subscription")
        return Response(status_code=204)

    # ------------------------------------------------------------ webhooks
    @app.post("/webhooks", tags=["organization"], openapi_extra=_JSON_BODY, status_code=201)
    async def create_webhook(request: Request, who: Org) -> Response:
        body = await _json_body(request)
        url = body.get("url") if isinstance(body, dict) else None
        problem = (
            check_url(url, allow_http_loopback=config.allow_http_webhooks)
            if isinstance(url, str)
            else 'the body must be {"url": "https://..."}'
        )
        if problem:
            raise GatewayInputError(problem)
        assert isinstance(url, str)
        hook = Webhook(uuid.uuid4().hex, who.id, url, new_secret(), time.time())
        await asyncio.to_thread(gateway.store.add_webhook, hook)
        gateway.view(who)
        return JSONResponse(
            {"id": hook.id, "url": hook.url, "secret": hook.secret, "created_at": hook.created_at},
            status_code=201,
        )

    @app.get("/webhooks", tags=["organization"])
    async def list_webhooks(who: Org) -> list[dict[str, Any]]:
        hooks = await asyncio.to_thread(gateway.store.webhooks, who.id)
        return [
            {
                "id": h.id,
                "url": h.url,
                "created_at": h.created_at,
                "deliveries": await asyncio.to_thread(gateway.store.deliveries, h.id),
            }
            for h in hooks
        ]

    @app.delete("/webhooks/{hook_id}", tags=["organization"], status_code=204)
    async def delete_webhook(hook_id: str, who: Org) -> Response:
        if not await asyncio.to_thread(gateway.store.delete_webhook, who.id, hook_id):
            raise StarletteHTTPException(404, "no such webhook")
        await asyncio.to_thread(gateway.store.drop_target, hook_id)
        return Response(status_code=204)

    return app


# ===================================================================== helpers


def _includes(include: list[str] | None, what: str) -> bool:
    wanted = {"focus": ("Task:focus", "*"), "patient": ("Task:patient", "Task:for", "*")}[what]
    return any(i in wanted for i in include or [])


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(no route)"


def _mapped(make: Callable[[], Any]) -> Any:
    """Run a mapping; a resource of the wrong shape (a string where an object belongs) is 422."""
    try:
        return make()
    except GatewayInputError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError, RecursionError):
        raise GatewayInputError(
            "the resource has an element of the wrong type or shape", code="structure"
        ) from None


async def _publish(gateway: Gateway, who: PartyRef, key: str, event: Any) -> None:
    view = gateway.view(who)
    try:
        await view.publish(key, event)
    except Exception as exc:  # noqa: BLE001 - any failure to publish is the same 503
        log.warning("publishing for %s failed: %s", who.label, type(exc).__name__)
        raise GatewayInputError(
            "the network could not be reached; nothing was sent, retry",
            status=503,
            code="transient",
        ) from None


def _find(view: PartyView, task_id: str) -> tuple[str, dict[str, Any]]:
    needed = "update" if view.party.kind == "clinic" else "offer"
    for rid, record in list(view.records.items()):
        if fhir_id(rid) == task_id and needed in record:
            return rid, record
    raise StarletteHTTPException(404, "no such Task")


def _accepted(kind: str, ident: str, consented: bool) -> Response:
    outcome = operation_outcome(
        f"accepted as screening {ident}", severity="information", code="informational"
    )
    if not consented:
        outcome["issue"].append(
            {
                "severity": "warning",
                "code": "business-rule",
                "diagnostics": "no Consent came with the screening: it is scored, and nothing "
                "is disclosed to any organization",
            }
        )
    return _fhir(outcome, 201)


def _service(org_id: str, service_id: str, available: int) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": fhir_id(service_id),
        "identifier": [{"system": "urn:refnet:service-id", "value": service_id}],
        "providedBy": {"reference": f"Organization/{org_id}"},
        "extension": [
            {
                "url": CAPACITY_EXTENSION,
                "extension": [
                    {"url": "available", "valueUnsignedInt": available},
                    {"url": "capacityNotes", "valueString": f"{available} available"},
                ],
            }
        ],
    }


def _capability_statement() -> dict[str, Any]:
    def interactions(*names: str) -> list[dict[str, str]]:
        return [{"code": n} for n in names]

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "refnet gateway"},
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <api_token from refnet provision>"
                },
                "interaction": [{"code": "transaction"}],
                "resource": [
                    {"type": "QuestionnaireResponse", "interaction": interactions("create")},
                    {"type": "ServiceRequest", "interaction": interactions("create")},
                    {
                        "type": "Task",
                        "interaction": interactions("read", "search-type", "patch", "update"),
                        "searchParam": [
                            {"name": "requester", "type": "reference"},
                            {"name": "owner", "type": "reference"},
                            {"name": "status", "type": "token"},
                        ],
                        "searchInclude": ["Task:focus", "Task:patient"],
                    },
                    {
                        "type": "HealthcareService",
                        "interaction": interactions("search-type", "update"),
                    },
                    {
                        "type": "Subscription",
                        "interaction": interactions("create", "read", "delete"),
                    },
                ],
            }
        ],
    }


__all__ = ["TASK_TOPIC", "Gateway", "GatewayConfig", "create_app"]
