"""RFC 6902 JSON Patch (add, replace, remove, test), as organizations PATCH their Tasks."""

from __future__ import annotations

import copy
from typing import Any

from connectors.fhir.inputs import GatewayInputError, json_array, json_object


def apply_json_patch(document: dict[str, Any], operations: object) -> dict[str, Any]:
    """RFC 6902 add / replace / remove / test on a copy of ``document`` (no move or copy)."""
    result = copy.deepcopy(document)
    for op in json_array(operations, "a JSON Patch"):
        op = json_object(op, "a JSON Patch operation")
        kind, path = op.get("op"), op.get("path")
        if kind not in ("add", "replace", "remove", "test") or not isinstance(path, str):
            raise GatewayInputError(
                "JSON Patch: each operation needs op add, replace, remove or test and a path"
            )
        if not path.startswith("/") or path == "/":
            raise GatewayInputError("JSON Patch: a path starts with / and names a member")
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
        parent: Any = result
        for token in tokens[:-1]:
            parent = _step(parent, token)
        last = tokens[-1]
        if kind == "test":
            if _step(parent, last) != op.get("value"):
                raise GatewayInputError("JSON Patch: a test failed", status=409, code="conflict")
        elif isinstance(parent, dict):
            if kind == "remove":
                if last not in parent:
                    raise GatewayInputError("JSON Patch: remove names no member")
                del parent[last]
            else:
                if "value" not in op:
                    raise GatewayInputError("JSON Patch: add and replace need a value")
                parent[last] = op["value"]
        elif isinstance(parent, list):
            index = len(parent) if last == "-" else _index(last, len(parent) + 1)
            if kind == "remove":
                if index >= len(parent):
                    raise GatewayInputError("JSON Patch: remove names no element")
                parent.pop(index)
            elif kind == "add":
                parent.insert(index, op.get("value"))
            else:
                if index >= len(parent):
                    raise GatewayInputError("JSON Patch: replace names no element")
                parent[index] = op.get("value")
        else:
            raise GatewayInputError(
                "JSON Patch: a path goes through a value that is not a container"
            )
    return result


def _index(token: str, size: int) -> int:
    if not token.isdigit() or int(token) >= size:
        raise GatewayInputError("JSON Patch: an array index is out of range")
    return int(token)


def _step(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise GatewayInputError("JSON Patch: a path names a missing member")
        return node[token]
    if isinstance(node, list):
        return node[_index(token, len(node))]
    raise GatewayInputError("JSON Patch: a path goes through a value that is not a container")


__all__ = ["apply_json_patch"]
