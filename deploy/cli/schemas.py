"""``refnet schemas export``: the published JSON Schemas."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy.cli.common import Subparsers
from deploy.settings import Settings


def cmd_schemas_export(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.jsonschema import export

    directory = Path(args.dir) if args.dir else None
    for path in export(directory) if directory else export():
        print(path)
    return 0


def register(sub: Subparsers) -> None:
    schemas = sub.add_parser("schemas", help="the published JSON Schemas")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_sub.add_parser("export", help="write one JSON Schema per event")
    export.add_argument("--dir", help="output directory (default: schemas/json in the package)")
    export.set_defaults(func=cmd_schemas_export)
