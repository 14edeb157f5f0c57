"""``refnet directory import``: an Open Referral (HSDS) directory onto the directory topic."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Final

from pydantic import TypeAdapter, ValidationError

from connectors.kafka.admin import DEFAULT_LIMITS, BatchLimits
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


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"a whole number from {low:,} to {high:,}")
        return value

    return parse


def cmd_directory_generate(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.directory.generate import write

    size = write(Path(args.out), args.organizations, args.seed)
    print(
        f"wrote {args.organizations} organization(s), one service each (seed {args.seed}), "
        f"to {args.out} ({size:,} bytes)"
    )
    return 0


def cmd_directory_import(settings: Settings, args: argparse.Namespace) -> int:
    limits = BatchLimits(
        topics=args.max_topics_per_request,
        partitions=args.max_partitions_per_request,
        records=args.max_records_per_request,
        acls=args.max_acls_per_request,
    )
    options = ImportOptions(
        paths=tuple(Path(p) for p in args.paths),
        mapping=Path(args.mapping) if args.mapping else DEFAULT_MAPPING,
        source=args.source,
        dry_run=args.dry_run,
        prune=args.prune,
        strict=args.strict,
        radius_km=args.radius_km,
        default_sla=args.default_response_sla,
        partitions=args.partitions,
        limits=limits,
        progress=not args.no_progress,
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
    imp.add_argument(
        "--partitions",
        type=_count(1, 1_000),
        default=None,
        metavar="N",
        help="partitions of each organization's two topics (default: REFNET_PARTITIONS; "
        "a region of thousands of organizations: 1, see docs/directory.md)",
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bars on stderr (rich)")
    _limits(imp)
    imp.set_defaults(func=cmd_directory_import)
    gen = sub.add_parser(
        "generate",
        help="write a generated Open Referral (HSDS 3.1) directory, for trying a region's scale",
        description=(
            "Organizations with one service each, in the sample region's postal codes, with "
            "Open Eligibility terms the bundled mapping knows. The same seed gives the same file."
        ),
    )
    gen.add_argument("--organizations", type=_count(1, 100_000), default=1_000, metavar="N")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--out", required=True, metavar="FILE", help="the JSON file to write")
    gen.set_defaults(func=cmd_directory_generate)


def _limits(imp: argparse.ArgumentParser) -> None:
    """The most one admin request carries (the broker refuses over 10,000 of any)."""
    for name, default, what in (
        ("topics", DEFAULT_LIMITS.topics, "topics"),
        ("partitions", DEFAULT_LIMITS.partitions, "partitions"),
        ("records", DEFAULT_LIMITS.records, "metadata records (topics, partitions, configs)"),
        ("acls", DEFAULT_LIMITS.acls, "ACL bindings"),
    ):
        imp.add_argument(
            f"--max-{name}-per-request",
            type=_count(1, 10_000),
            default=default,
            metavar="N",
            help=f"{what} per admin request (default: %(default)s)",
        )
