"""The published JSON Schemas of the wire contract, generated from the models.

One schema per event, ``<event_type>.schema.json``, JSON Schema draft 2020-12.
What the models enforce beyond JSON Schema's ``format`` (which validators do not
check by default) is carried by patterns: timestamps need an offset, event ids
are hyphenated UUIDs, party ids follow the contract's pattern. ``refnet schemas
export`` writes them with :func:`export`; a test fails when the checked-in files
under ``schemas/json`` drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from schemas.events import EVENT_TYPES

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
ID_BASE: Final = "urn:refnet:schemas:v1:"
#: Where the checked-in schemas live.
DEFAULT_DIRECTORY: Final = Path(__file__).resolve().parent / "json"


def file_name(event_type: str) -> str:
    return f"{event_type}.schema.json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of each event, as accepted by the network."""
    schemas: dict[str, dict[str, Any]] = {}
    for event_type, model in sorted(EVENT_TYPES.items()):
        body = model.model_json_schema(mode="validation")
        schemas[file_name(event_type)] = {
            "$schema": DRAFT,
            "$id": f"{ID_BASE}{event_type}",
            **body,
            "title": f"{event_type} ({model.__name__}), wire contract v1",
        }
    return schemas


def render(schema: dict[str, Any]) -> str:
    """Deterministic text of one schema: sorted keys, indent 2, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path = DEFAULT_DIRECTORY) -> list[Path]:
    """Write every schema under ``directory`` (created if missing); return the paths.

    Schema files of events that no longer exist are left alone: v1 never drops
    an event, so a stale file means a mistake worth seeing in review.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["DEFAULT_DIRECTORY", "DRAFT", "ID_BASE", "export", "file_name", "json_schemas", "render"]
