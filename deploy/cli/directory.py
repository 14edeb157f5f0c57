"""``refnet directory import``: an Open Referral (HSDS) directory onto the directory topic."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Final

from pydantic import TypeAdapter, ValidationError

from connectors.openreferral.importer import DEFAULT_RADIUS_KM
from deploy.cli.common import Subparsers
from deploy.directory.importer import (
    DEFAULT_MAPPING,
    DEFAULT_SOURCE,
    ImportOptions,
    kafka_admin,
    run_import,
)
from deploy.directory.kafka import DirectoryError
from deploy.provision.principals import ProvisionError
from deploy.settings import Settings
from schemas.events import ResponseSla

_SLA: Final[TypeAdapter[timedelta]] = TypeAdapter(ResponseSla)


def _sla(text: str) -> timedelta:
    try:
        return _SLA.validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            "an ISO 8601 duration of at most P90D, such as PT24H"
        ) from None


def _radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 500:
        raise argparse.ArgumentTypeError("kilometres, from 0 to 500")
    return value


def cmd_directory_import(settings: Settings, args: argparse.Namespace) -> int:
    options = ImportOptions(
        paths=tuple(Path(p) for p in args.paths),
        mapping=Path(args.mapping) if args.mapping else DEFAULT_MAPPING,
        source=args.source,
        dry_run=args.dry_run,
        prune=args.prune,
        strict=args.strict,
        radius_km=args.radius_km,
        default_sla=args.default_response_sla,
    )
    try:
        return run_import(settings, kafka_admin(settings), options, sys.stdout)
    except (DirectoryError, ProvisionError) as exc:
        print(f"refnet directory import: {exc}", file=sys.stderr)
        return 2


def register(subparsers: Subparsers) -> None:
    """Add ``refnet directory import`` to the CLI."""
    directory = subparsers.add_parser("directory", help="the service directory (Open Referral)")
    sub = directory.add_subparsers(dest="directory_command", required=True)
    imp = sub.add_parser(
        "import",
        help="publish an Open Referral (HSDS 3.0/3.1) directory as service.upserted events",
        description=(
            "Read HSDS JSON files (an organization, a service, a service_at_location, an array "
            "of them or an API page) and tabular data packages (folders of CSV files), map "
            "them to service.upserted events, provision each organization's topics and publish "
            "what changed to the directory topic in one transaction."
        ),
    )
    imp.add_argument("paths", nargs="+", metavar="PATH", help="a JSON file or a CSV folder")
    imp.add_argument(
        "--mapping",
        metavar="FILE",
        help=f"taxonomy-to-category mapping (TOML; default {DEFAULT_MAPPING.name})",
    )
    imp.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be published; publish and provision nothing",
    )
    imp.add_argument(
        "--prune",
        action="store_true",
        help="remove services an earlier import of this --source published and "
        "this one no longer has",
    )
    imp.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="name of this directory, for --prune (default: %(default)s)",
    )
    imp.add_argument(
        "--strict",
        action="store_true",
        help="publish nothing when a service cannot be mapped or a warning is raised (exit 1)",
    )
    imp.add_argument(
        "--radius-km",
        type=_radius,
        default=DEFAULT_RADIUS_KM,
        help="radius around a service's location when its service areas name no "
        "postal code (default: %(default)s)",
    )
    imp.add_argument(
        "--default-response-sla",
        type=_sla,
        default=None,
        metavar="DURATION",
        help="response_sla of services without a refnet:response_sla attribute "
        "(default: none, the network's REFNET_DEFAULT_RESPONSE_SLA applies)",
    )
    imp.set_defaults(func=cmd_directory_import)
