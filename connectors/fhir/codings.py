"""Codings between FHIR and the wire: what a party codes reaches the other side coded.

Reading (a party's resource to an event): a coding names a system of the wire's
allow-list (``schemas.codes.CODING_SYSTEMS``) and a bounded code; a coding of any
other system is refused (422) with the rule, never carried and never dropped
unsaid. A coding without a system is a bare code: the reason's text, as before
codings were carried. Displays are never read: they are the sender's text.

* ``ServiceRequest.code`` -> ``codes`` (at most ``MAX_CODES``).
* ``Task.statusReason`` -> ``reason_coding``: its first coding with a system.
* ``Task.output`` -> ``outputs``: an output whose ``type`` has a coding of the
  allow-list (e.g. SDOHCC ``resulting-activity``) and whose value is a
  ``valueCodeableConcept``, or a ``valueReference`` to a Procedure contained in
  the Task (``#id``; its ``code``), becomes ``{type, value}``. A reference to a
  Procedure refnet does not hold is refused: refnet carries codes, not references.

Rendering (an event to a resource): codings as sent, with the display refnet knows
for the code (``schemas.codes.CODING_DISPLAYS``), none otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from connectors.fhir.inputs import GatewayInputError, json_array, json_object, nonblank
from schemas.codes import CODING_SYSTEMS, REFNET_REASON_SYSTEM, ReasonCode, coding_display
from schemas.events.referrals import MAX_CODES, MAX_OUTPUTS, Coding, TaskOutput

#: refnet's own Task.output type for an organization's free-text outcome.
OUTPUT_TYPE_SYSTEM: Final = "urn:refnet:codesystem:task-output"

_CODINGS: Final = TypeAdapter(list[Coding])
_OUTPUTS: Final = TypeAdapter(list[TaskOutput])
_SYSTEMS_RULE: Final = (
    "a coding's system must be one refnet carries ("
    + ", ".join(CODING_SYSTEMS)
    + ") and its code 1 to 64 letters, digits or ._:/-"
)


# ===================================================================== reading
def _codings(concept: object, what: str) -> list[Coding]:
    """The codings with a system of a CodeableConcept; any outside the allow-list: 422."""
    if concept is None:
        return []
    found = []
    for item in json_array(json_object(concept, what).get("coding"), f"{what}.coding"):
        coding = json_object(item, f"{what}.coding")
        if coding.get("system") is None:
            continue  # a bare code: text, as it always was
        try:
            found.append(
                Coding.model_validate({"system": coding["system"], "code": coding.get("code")})
            )
        except ValidationError:
            rule = f"{what}.coding: {_SYSTEMS_RULE}"
            raise GatewayInputError(rule, code="code-invalid") from None
    return found


def request_codes(concept: object) -> list[Coding]:
    """``ServiceRequest.code``'s codings, as ``referral.requested`` carries them."""
    codes = _codings(concept, "ServiceRequest.code")
    if len(codes) > MAX_CODES:
        raise GatewayInputError(f"ServiceRequest.code: at most {MAX_CODES} codings")
    return codes


def status_reason_coding(concept: object) -> Coding | None:
    """``Task.statusReason``'s first coding with a system."""
    codes = _codings(concept, "Task.statusReason")
    return codes[0] if codes else None


def _contained_code(task: dict[str, Any], reference: object) -> object:
    ref = nonblank(json_object(reference, "Task.output.valueReference").get("reference"))
    for resource in json_array(task.get("contained"), "Task.contained"):
        if (
            ref is not None
            and isinstance(resource, dict)
            and resource.get("resourceType") == "Procedure"
            and f"#{resource.get('id')}" == ref
        ):
            return resource.get("code")
    raise GatewayInputError(
        "Task.output.valueReference: refnet carries codes, not references; contain the "
        "Procedure in the Task (reference #id, with a code) or send a valueCodeableConcept",
        code="not-supported",
    )


def task_outputs(task: dict[str, Any]) -> list[TaskOutput]:
    """The coded outputs of a Task an organization wrote."""
    outputs: list[TaskOutput] = []
    for item in json_array(task.get("output"), "Task.output"):
        output = json_object(item, "Task.output")
        if "valueReference" in output:
            value: object = _contained_code(task, output["valueReference"])
        elif "valueCodeableConcept" in output:
            value = output["valueCodeableConcept"]
        else:
            continue  # valueString: the outcome's text
        kinds = _codings(output.get("type"), "Task.output.type")
        values = _codings(value, "Task.output.value")
        if not kinds or not values:
            if "valueReference" in output:
                raise GatewayInputError(
                    "Task.output: a contained Procedure needs a coded type and a coded code",
                    code="required",
                )
            continue  # no coded type or value: the outcome's text, as before
        outputs.append(TaskOutput(type=kinds[0], value=values[0]))
    if len(outputs) > MAX_OUTPUTS:
        raise GatewayInputError(f"Task.output: at most {MAX_OUTPUTS} coded outputs")
    return outputs


def stored_codes(value: object) -> list[Coding]:
    """Codings of a stored event (written by the network: validated, never refused)."""
    return _CODINGS.validate_python(value or [])


def stored_outputs(value: object) -> list[TaskOutput]:
    return _OUTPUTS.validate_python(value or [])


def stored_coding(value: object) -> Coding | None:
    return Coding.model_validate(value) if value else None


# ===================================================================== rendering
def rendered(coding: Coding) -> dict[str, str]:
    """A FHIR Coding: system and code as sent, the display refnet knows for it."""
    out = {"system": coding.system, "code": coding.code}
    display = coding_display(coding.system, coding.code)
    if display is not None:
        out["display"] = display
    return out


def code_concept(codes: Sequence[Coding]) -> dict[str, Any]:
    return {"coding": [rendered(c) for c in codes]}


def status_reason(
    reason: str | None, fallback: str | None, coded: Coding | None = None
) -> dict[str, Any] | None:
    """Task.statusReason: the organization's coding, refnet's reason code, the reason as text
    (the profile requires ``text``); ``fallback`` (a completed Task's outcome) without one."""
    if reason is None:
        return {"text": fallback} if fallback is not None else None
    codings = [rendered(coded)] if coded is not None else []
    if reason in {code.value for code in ReasonCode} and (
        coded is None or (coded.system, coded.code) != (REFNET_REASON_SYSTEM, reason)
    ):
        codings.append({"system": REFNET_REASON_SYSTEM, "code": reason})
    concept: dict[str, Any] = {"text": reason}
    if codings:
        concept["coding"] = codings
    return concept


def outcome_output(outcome: str) -> dict[str, Any]:
    """A Task.output carrying an organization's free-text outcome."""
    return {
        "type": {
            "coding": [{"system": OUTPUT_TYPE_SYSTEM, "code": "outcome"}],
            "text": "Outcome",
        },
        "valueString": outcome,
    }


def task_output(outcome: str | None, coded: Iterable[TaskOutput] = ()) -> list[dict[str, Any]]:
    """Task.output: each coded output in the IG's shape, then the outcome's text unless it
    is only the code of one of them."""
    outputs = [
        {"type": code_concept([o.type]), "valueCodeableConcept": code_concept([o.value])}
        for o in coded
    ]
    if outcome and outcome not in {o["valueCodeableConcept"]["coding"][0]["code"] for o in outputs}:
        outputs.append(outcome_output(outcome))
    return outputs


def outcome_text(outcome: str | None, coded: Sequence[TaskOutput]) -> str | None:
    """What stands for a completed Task's outcome in ``statusReason.text``: the display of
    the coded output the outcome names, else the outcome."""
    for output in coded:
        if output.value.code == outcome:
            return coding_display(output.value.system, output.value.code) or outcome
    return outcome


__all__ = [
    "OUTPUT_TYPE_SYSTEM",
    "code_concept",
    "outcome_output",
    "outcome_text",
    "rendered",
    "request_codes",
    "status_reason",
    "status_reason_coding",
    "stored_codes",
    "stored_coding",
    "stored_outputs",
    "task_output",
    "task_outputs",
]
