"""The gateway's FHIR REST plumbing: request bodies in, resources and OperationOutcomes out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connectors.fhir.inputs import GatewayInputError, operation_outcome

log = logging.getLogger("refnet.gateway")

FHIR_JSON = "application/fhir+json"
MAX_BODY = 1_000_000

#: OpenAPI of a route that reads a FHIR resource (or any JSON object) from its body
JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FHIR_JSON: {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
#: OpenAPI of a route that reads a JSON Patch from its body
PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json-patch+json": {
                "schema": {"type": "array", "items": {"type": "object"}}
            }
        },
    }
}

T = TypeVar("T")


def fhir(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR JSON response."""
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


def outcome(status: int, message: str, code: str) -> Response:
    """An error as an OperationOutcome (a 401 also asks for a Bearer token)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return fhir(operation_outcome(message, code=code), status, headers)


async def json_body(request: Request) -> Any:
    """The request's JSON body, at most :data:`MAX_BODY` bytes."""
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


async def resource_body(request: Request, kind: str) -> dict[str, Any]:
    """The request's body, which must be a FHIR resource of type ``kind``."""
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != kind:
        raise GatewayInputError(f"the body must be a {kind} resource", status=400, code="structure")
    return body


def searchset(
    base: str, matches: list[dict[str, Any]], includes: list[dict[str, Any]]
) -> dict[str, Any]:
    """A search's Bundle: the matches, then the resources they include."""
    entries = [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": mode},
        }
        for mode, found in (("match", matches), ("include", includes))
        for r in found
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}


#: what reading a resource of an unexpected shape raises (a number where a list belongs)
SHAPE_ERRORS: tuple[type[Exception], ...] = (
    AttributeError,
    TypeError,
    KeyError,
    IndexError,
    ValueError,
    RecursionError,
)
_WRITES = frozenset({"POST", "PUT", "PATCH"})


def refuse_wrong_shapes(app: FastAPI) -> None:
    """Answer 422 when a POST, PUT or PATCH body of a shape the route did not expect
    raises while being read (anywhere: a mapping not wrapped in :func:`mapped` too).

    The warning names the route and the exception's type, never the body. Anything
    else (and any such error on a read) stays a 500: a fault of the gateway's own.
    """

    async def wrong_shape(request: Request, exc: Exception) -> Response:
        if request.method not in _WRITES or isinstance(exc, GatewayInputError):
            raise exc
        route = getattr(request.scope.get("route"), "path", "(no route)")
        log.warning(
            "refused a body of the wrong shape on %s %s (%s)",
            request.method,
            route,
            type(exc).__name__,
        )
        return outcome(422, "the resource has an element of the wrong type or shape", "structure")

    for kind in SHAPE_ERRORS:
        app.add_exception_handler(kind, wrong_shape)


def mapped(make: Callable[[], T]) -> T:
    """Run a mapping; a resource of the wrong shape (a string where an object belongs) is 422."""
    try:
        return make()
    except GatewayInputError:
        raise
    except SHAPE_ERRORS:
        raise GatewayInputError(
            "the resource has an element of the wrong type or shape", code="structure"
        ) from None


__all__ = [
    "FHIR_JSON",
    "JSON_BODY",
    "MAX_BODY",
    "PATCH_BODY",
    "fhir",
    "json_body",
    "mapped",
    "outcome",
    "refuse_wrong_shapes",
    "resource_body",
    "searchset",
]
