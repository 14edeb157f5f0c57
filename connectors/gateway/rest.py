"""The gateway's FHIR REST plumbing: request bodies in, resources and OperationOutcomes out."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic_core import from_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError, operation_outcome
from schemas.decode import json_depth_exceeds

log = logging.getLogger("refnet.gateway")

FHIR_JSON = "application/fhir+json"
MAX_BODY = 1_000_000
#: How deeply a body's JSON may nest (a resource is level 1): a QuestionnaireResponse
#: with ten levels of nested groups is about 25; more is refused before it is mapped.
MAX_BODY_DEPTH = 64

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


def _json_media(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON (FHIR, JSON Patch, any ``+json``); none is taken as JSON."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


async def json_body(request: Request) -> Any:
    """The request's JSON body, at most :data:`MAX_BODY` bytes; a body declared as
    something other than JSON (``text/plain``, a form) is 415."""
    if not _json_media(request.headers.get("content-type")):
        raise GatewayInputError(
            f"the body must be {FHIR_JSON} (or application/json)",
            status=415,
            code="not-supported",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise GatewayInputError("the body is larger than 1 MB", status=413, code="too-costly")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise GatewayInputError("the body is larger than 1 MB", status=413, code="too-costly")
    try:
        # pydantic-core's parser, as the Kafka doors use: it refuses NaN and lone
        # surrogates and stops at a fixed depth, where json.loads would recurse
        document = from_json(body, allow_inf_nan=False, cache_strings=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise _too_deep() from None
        raise GatewayInputError("the body is not JSON", status=400, code="structure") from None
    if json_depth_exceeds(document, MAX_BODY_DEPTH):
        raise _too_deep()
    return document


def _too_deep() -> GatewayInputError:
    return GatewayInputError(
        f"the body nests deeper than {MAX_BODY_DEPTH} levels", status=400, code="too-costly"
    )


async def resource_body(request: Request, kind: str) -> dict[str, Any]:
    """The request's body, which must be a FHIR resource of type ``kind``."""
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") != kind:
        raise GatewayInputError(f"the body must be a {kind} resource", status=400, code="structure")
    return body


def searchset(
    base: str, matches: list[dict[str, Any]], includes: list[dict[str, Any]]
) -> dict[str, Any]:
    """A search's Bundle: the matches, then the resources they include (no ``entry``
    when there are none: FHIR JSON has no empty arrays)."""
    entries = [
        {
            "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": mode},
        }
        for mode, found in (("match", matches), ("include", includes))
        for r in found
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
    if entries:
        bundle["entry"] = entries
    return bundle


def version_of(resource: dict[str, Any]) -> str:
    """A resource's version: a digest of its content (``meta`` aside), so that any change,
    whoever made it (the organization, the network), is a new version."""
    content = {k: v for k, v in resource.items() if k != "meta"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def versioned(resource: dict[str, Any], last_updated: str | None = None) -> dict[str, Any]:
    """``resource`` with ``meta.versionId`` (and ``meta.lastUpdated`` when known)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = version_of(resource)
    if last_updated:
        meta["lastUpdated"] = last_updated
    return {**resource, "meta": meta}


def read_answer(resource: dict[str, Any], last_updated: str | None = None) -> Response:
    """A read's answer: the resource with its version, and the version as a weak ``ETag``."""
    body = versioned(resource, last_updated)
    return fhir(body, headers={"ETag": f'W/"{body["meta"]["versionId"]}"'})


def check_if_match(if_match: str | None, current: dict[str, Any]) -> None:
    """Refuse (412) an update whose ``If-Match`` names another version than the current one."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != "*" and wanted != version_of(current):
        raise StarletteHTTPException(412, "the resource changed since that version (If-Match)")


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
    "MAX_BODY_DEPTH",
    "PATCH_BODY",
    "check_if_match",
    "fhir",
    "json_body",
    "mapped",
    "outcome",
    "read_answer",
    "refuse_wrong_shapes",
    "resource_body",
    "searchset",
    "version_of",
    "versioned",
]
