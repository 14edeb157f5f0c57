"""FHIR Subscriptions (R4 backport, rest-hook, id-only) on the party's referral Tasks.

A new Subscription is ``requested``; the gateway then sends its endpoint a
``handshake`` notification (through the same guarded client as deliveries, within
the attempt deadline) and marks it ``active`` on a 2xx answer, ``error`` otherwise
(logged and counted by result, never with the endpoint).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.subscriptions import TASK_TOPIC, handshake
from connectors.gateway.dependencies import Party, Running
from connectors.gateway.egress import (
    failure_category,
    guarded_client,
    header_problem,
    parse_headers,
    status_category,
    url_problem,
)
from connectors.gateway.notifier import receiver_url
from connectors.gateway.rest import FHIR_JSON, JSON_BODY, fhir, resource_body
from connectors.gateway.state import Gateway
from connectors.gateway.store import Subscription

log = logging.getLogger("refnet.gateway.subscriptions")

router = APIRouter(tags=["clinic", "organization"])

HANDSHAKES = Counter(
    "refnet_gateway_subscription_handshakes",
    "Handshakes sent to new Subscriptions' endpoints, by result (active, error)",
    ["result"],
)
#: the handshakes under way (kept so that none is collected before it ends)
_HANDSHAKING: set[asyncio.Task[None]] = set()


@router.post("/fhir/Subscription", openapi_extra=JSON_BODY, status_code=201)
async def create_subscription(request: Request, who: Party, gateway: Running) -> Response:
    resource = await resource_body(request, "Subscription")
    policy = gateway.config.policy
    if len(json.dumps(resource)) > policy.max_subscription_bytes:
        raise GatewayInputError(
            f"a Subscription is at most {policy.max_subscription_bytes} bytes",
            status=413,
            code="too-costly",
        )
    channel, endpoint, headers = _rest_hook(resource, gateway.config.allow_http_webhooks)
    held = await gateway.store.subscriptions(who.kind, who.id)
    if len(held) >= policy.max_subscriptions:
        raise GatewayInputError(
            f"a party holds at most {policy.max_subscriptions} Subscriptions; delete one first",
            status=409,
            code="too-costly",
        )
    sub_id = uuid.uuid4().hex
    stored = {**resource, "id": sub_id, "status": "requested"}
    stored["channel"] = {**channel, "header": ["(hidden)"] if headers else []}
    sub = Subscription(sub_id, who.kind, who.id, endpoint, headers, stored, time.time(), 0)
    await gateway.store.add_subscription(sub)
    gateway.view(who)
    task = asyncio.create_task(_handshake(gateway, sub), name=f"handshake-{sub_id}")
    _HANDSHAKING.add(task)
    task.add_done_callback(_HANDSHAKING.discard)
    location = f"{gateway.config.base_url}/fhir/Subscription/{sub_id}"
    return fhir(stored, 201, {"Location": location})


async def _handshake(gateway: Gateway, sub: Subscription) -> None:
    """Send ``sub`` its handshake; store it ``active`` on a 2xx answer, ``error`` otherwise."""
    policy = gateway.config.policy
    error: str | None = "invalid-target"
    try:
        if url_problem(sub.endpoint, allow_http_loopback=True) is None:
            headers = {"content-type": FHIR_JSON, **parse_headers(sub.headers)}
            body = json.dumps(handshake(sub.id)).encode()
            async with guarded_client(
                allow_private=policy.allow_private,
                extra_ca=gateway.config.webhook_ca,
                timeout=policy.attempt_deadline,
            ) as client:
                async with asyncio.timeout(policy.attempt_deadline):
                    answer = await client.post(sub.endpoint, content=body, headers=headers)
                error = status_category(answer.status_code)
    except Exception as exc:  # noqa: BLE001 - a failed handshake is this Subscription's alone
        error = failure_category(exc)
    result = "error" if error else "active"
    HANDSHAKES.labels(result).inc()
    if error:
        log.warning("handshake of Subscription %s failed (%s)", sub.id, error)
    else:
        log.info("handshake of Subscription %s answered; it is active", sub.id)
    try:
        resource = {**sub.resource, "status": result}
        if error:
            resource["error"] = f"handshake failed: {error}"
        await gateway.store.set_subscription_resource(sub.id, resource)
    except Exception:
        log.exception("the status of Subscription %s could not be stored", sub.id)


def _rest_hook(resource: dict[str, Any], allow_http: bool) -> tuple[dict[str, Any], str, list[str]]:
    """The Subscription's channel, endpoint and headers, if the gateway can serve it."""
    if resource.get("criteria") != TASK_TOPIC:
        raise GatewayInputError(f"Subscription.criteria must be the topic {TASK_TOPIC}")
    channel = resource.get("channel")
    if not isinstance(channel, dict) or channel.get("type") != "rest-hook":
        raise GatewayInputError("Subscription.channel.type must be rest-hook")
    endpoint = receiver_url(
        channel.get("endpoint"),
        allow_http_loopback=allow_http,
        missing="Subscription.channel.endpoint is required",
    )
    content: object = "id-only"
    payload = channel.get("_payload")
    payload_ext = payload.get("extension") if isinstance(payload, dict) else None
    if payload_ext is not None and not isinstance(payload_ext, list):
        raise GatewayInputError("Subscription.channel._payload.extension must be an array")
    for ext in payload_ext or []:
        if isinstance(ext, dict) and str(ext.get("url")).endswith("backport-payload-content"):
            content = ext.get("valueCode")
    if content != "id-only":
        raise GatewayInputError("only id-only payloads are sent (backport-payload-content)")
    headers = channel.get("header") or []
    if not isinstance(headers, list) or len(headers) > 10:
        raise GatewayInputError("Subscription.channel.header must be at most 10 strings")
    for line in headers:
        problem = header_problem(line)
        if problem:
            raise GatewayInputError(problem)
    return channel, endpoint, headers


@router.get("/fhir/Subscription/{sub_id}")
async def read_subscription(sub_id: str, who: Party, gateway: Running) -> Response:
    sub = await gateway.store.subscription(sub_id)
    if sub is None or (sub.party_kind, sub.party_id) != (who.kind, who.id):
        raise StarletteHTTPException(404, "no such Subscription")
    return fhir(sub.resource)


@router.delete("/fhir/Subscription/{sub_id}", status_code=204)
async def delete_subscription(sub_id: str, who: Party, gateway: Running) -> Response:
    if not await gateway.store.delete_subscription(who.kind, who.id, sub_id):
        raise StarletteHTTPException(404, "no such Subscription")
    return Response(status_code=204)


__all__ = ["router"]
