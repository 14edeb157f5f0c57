"""FHIR Subscriptions (R4 backport, rest-hook, id-only) on the party's referral Tasks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.subscriptions import TASK_TOPIC
from connectors.gateway.dependencies import Party, Running
from connectors.gateway.egress import header_problem
from connectors.gateway.notifier import receiver_url
from connectors.gateway.rest import JSON_BODY, fhir, resource_body
from connectors.gateway.store import Subscription

router = APIRouter(tags=["clinic", "organization"])


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
    held = await asyncio.to_thread(gateway.store.subscriptions, who.kind, who.id)
    if len(held) >= policy.max_subscriptions:
        raise GatewayInputError(
            f"a party holds at most {policy.max_subscriptions} Subscriptions; delete one first",
            status=409,
            code="too-costly",
        )
    sub_id = uuid.uuid4().hex
    stored = {**resource, "id": sub_id, "status": "active"}
    stored["channel"] = {**channel, "header": ["(hidden)"] if headers else []}
    sub = Subscription(sub_id, who.kind, who.id, endpoint, headers, stored, time.time(), 0)
    await asyncio.to_thread(gateway.store.add_subscription, sub)
    gateway.view(who)
    location = f"{gateway.config.base_url}/fhir/Subscription/{sub_id}"
    return fhir(stored, 201, {"Location": location})


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
    sub = await asyncio.to_thread(gateway.store.subscription, sub_id)
    if sub is None or (sub.party_kind, sub.party_id) != (who.kind, who.id):
        raise StarletteHTTPException(404, "no such Subscription")
    return fhir(sub.resource)


@router.delete("/fhir/Subscription/{sub_id}", status_code=204)
async def delete_subscription(sub_id: str, who: Party, gateway: Running) -> Response:
    if not await asyncio.to_thread(gateway.store.delete_subscription, who.kind, who.id, sub_id):
        raise StarletteHTTPException(404, "no such Subscription")
    return Response(status_code=204)


__all__ = ["router"]
