"""An organization's signed webhooks (:mod:`connectors.gateway.notifier`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError
from connectors.gateway.dependencies import Org, Running
from connectors.gateway.notifier import new_secret, receiver_url
from connectors.gateway.rest import JSON_BODY, json_body
from connectors.gateway.store import Webhook

router = APIRouter(tags=["organization"])


@router.post("/webhooks", openapi_extra=JSON_BODY, status_code=201)
async def create_webhook(request: Request, who: Org, gateway: Running) -> Response:
    body = await json_body(request)
    url = receiver_url(
        body.get("url") if isinstance(body, dict) else None,
        allow_http_loopback=gateway.config.allow_http_webhooks,
        missing='the body must be {"url": "https://..."}',
    )
    limit = gateway.config.policy.max_webhooks
    if len(await gateway.store.webhooks(who.id)) >= limit:
        raise GatewayInputError(
            f"an organization holds at most {limit} webhooks; delete one first",
            status=409,
            code="too-costly",
        )
    hook = Webhook(uuid.uuid4().hex, who.id, url, new_secret(), time.time())
    await gateway.store.add_webhook(hook)
    gateway.view(who)
    return JSONResponse(
        {"id": hook.id, "url": hook.url, "secret": hook.secret, "created_at": hook.created_at},
        status_code=201,
    )


@router.get("/webhooks")
async def list_webhooks(who: Org, gateway: Running) -> list[dict[str, Any]]:
    hooks = await gateway.store.webhooks(who.id)
    return [
        {
            "id": h.id,
            "url": h.url,
            "created_at": h.created_at,
            "deliveries": await gateway.store.deliveries(h.id),
        }
        for h in hooks
    ]


@router.delete("/webhooks/{hook_id}", status_code=204)
async def delete_webhook(hook_id: str, who: Org, gateway: Running) -> Response:
    if not await gateway.store.delete_webhook(who.id, hook_id):
        raise StarletteHTTPException(404, "no such webhook")
    return Response(status_code=204)


__all__ = ["router"]
