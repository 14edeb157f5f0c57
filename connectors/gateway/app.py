"""``refnet gateway``: the FHIR API, webhooks and web inbox in front of the parties' topics.

Every request names its party with ``Authorization: Bearer <api_token>`` (a token
made by ``refnet provision``) and acts only as that party: it publishes to the
party's own outbox topic and reads the gateway's view of the party's own inbox
topic (:mod:`connectors.gateway.views`). Anything another party owns is absent
(404), not forbidden. Bad input answers 4xx with an OperationOutcome; the access
log names the route, the status, the party and the time taken, never a body.

The app is one router per resource (:mod:`connectors.gateway.routers`) over the
running parts (:class:`~connectors.gateway.state.Gateway`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError
from connectors.gateway.pages import secure_pages
from connectors.gateway.rest import outcome, refuse_wrong_shapes
from connectors.gateway.routers import (
    communications,
    encounters,
    inbox,
    metadata,
    organizations,
    screenings,
    services,
    subscriptions,
    tasks,
    webhooks,
)
from connectors.gateway.state import Gateway, GatewayConfig

log = logging.getLogger("refnet.gateway")
access_log = logging.getLogger("refnet.gateway.access")

#: HTTP errors as OperationOutcome issue codes
_ISSUE_CODES = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}


def create_app(config: GatewayConfig) -> FastAPI:
    """The gateway's app; its views and deliverer start with the app's lifespan."""
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
    for module in (
        metadata,
        inbox,
        screenings,
        tasks,
        services,
        subscriptions,
        webhooks,
        encounters,
        communications,
        organizations,
    ):
        app.include_router(module.router)
    app.add_exception_handler(GatewayInputError, _input_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.middleware("http")(_access_log)
    secure_pages(app)  # security headers on every answer; no CDN-loaded /docs
    refuse_wrong_shapes(app)  # a body of an unexpected shape is a 422, never a 500
    return app


async def _input_error(request: Request, exc: GatewayInputError) -> Response:
    return outcome(exc.status, str(exc), exc.code)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    return outcome(exc.status_code, str(exc.detail), _ISSUE_CODES.get(exc.status_code, "invalid"))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
    return outcome(400, where or "invalid request", "invalid")


async def _access_log(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.monotonic()
    try:
        response = await call_next(request)
    except Exception:
        log.exception("gateway error on %s %s", request.method, _route(request))
        response = outcome(500, "internal error", "exception")
    access_log.info(
        "%s %s %d %s %.0fms",
        request.method,
        _route(request),
        response.status_code,
        getattr(request.state, "party", "-"),
        (time.monotonic() - started) * 1000,
    )
    return response


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(no route)"


__all__ = ["GatewayConfig", "create_app"]
