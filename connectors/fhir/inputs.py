"""What the gateway's FHIR readers share: the input error, OperationOutcome, JSON shape checks.

Every message names the rule broken, never the value: values may be patient data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from schemas.codes import SDOH_CATEGORY_SYSTEM
from schemas.errors import RefnetError


class GatewayInputError(RefnetError, ValueError):
    """Input refused: ``status`` (4xx), a FHIR issue ``code`` and a value-free message."""

    def __init__(self, message: str, *, status: int = 422, code: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def operation_outcome(
    diagnostics: str, *, severity: str = "error", code: str = "invalid"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def validation_message(error: ValidationError) -> str:
    """Where and what, never the input value."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "resource"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def json_object(value: object, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 422 naming ``what``."""
    if not isinstance(value, dict):
        raise GatewayInputError(f"{what} must be a JSON object")
    return value


def json_array(value: object, what: str) -> list[Any]:
    """``value`` if it is a JSON array (absent: empty), else a 422 naming ``what``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise GatewayInputError(f"{what} must be a JSON array")
    return value


def nonblank(value: object) -> str | None:
    """``value`` if it is a string with more than white space, else None."""
    return value if isinstance(value, str) and value.strip() else None


def first_value(items: object, what: str, key: str, **where: str) -> Any:
    """The first non-blank ``key`` among the objects of ``items`` that match ``where``."""
    return next(
        (
            item[key]
            for item in json_array(items, what)
            if isinstance(item, dict)
            and all(item.get(k) == v for k, v in where.items())
            and nonblank(item.get(key))
        ),
        None,
    )


def first_text(items: object, what: str) -> str | None:
    """The first non-blank ``text`` of a list of annotations (``note``), or None."""
    return next(
        (
            n["text"]
            for n in json_array(items, what)
            if isinstance(n, dict) and nonblank(n.get("text"))
        ),
        None,
    )


def sdoh_category_codes(concepts: object, what: str, concept_what: str) -> Iterator[str]:
    """The codes of the SDOHCC category codings in a list of CodeableConcepts."""
    for concept in json_array(concepts, what):
        for coding in json_array(json_object(concept, concept_what).get("coding"), "coding"):
            if isinstance(coding, dict) and coding.get("system") == SDOH_CATEGORY_SYSTEM:
                yield str(coding.get("code"))


__all__ = [
    "GatewayInputError",
    "first_text",
    "first_value",
    "json_array",
    "json_object",
    "nonblank",
    "operation_outcome",
    "sdoh_category_codes",
    "validation_message",
]
