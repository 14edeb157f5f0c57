"""``refnet report``: loop closure, quality measures, service gaps and encounter alerts,
from the ledger.

The figures are computed in SQL by :mod:`connectors.ledger.reporting` and printed
by :mod:`deploy.report`; this module reads the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from connectors.ledger.reporting import DIMENSIONS
from deploy.cli.common import Subparsers
from deploy.environment import resolve_database
from deploy.report import render
from deploy.settings import Settings
from schemas.errors import RefnetError

DEFAULT_WINDOW = timedelta(days=30)


class ReportError(RefnetError, RuntimeError):
    """Bad options or an unreachable ledger: printed without a traceback, exit 2."""


def register(subparsers: Subparsers) -> None:
    """Add ``refnet report`` to the CLI."""
    report = subparsers.add_parser(
        "report",
        help="loop closure, quality measures, service gaps and encounter alerts from the ledger",
        description=(
            "Figures of the referrals opened (and screenings scored) between --since and "
            "--until, and of the encounter alerts sent then, computed from the PostgreSQL "
            "ledger. Times are seconds in JSON and CSV."
        ),
    )
    report.add_argument(
        "--since",
        help="start: a date, an ISO 8601 time, or a duration before --until such as P7D "
        "(default: 30 days before --until)",
    )
    report.add_argument("--until", help="end (exclusive): a date or ISO 8601 time (default: now)")
    report.add_argument(
        "--by",
        action="append",
        choices=DIMENSIONS,
        default=[],
        help="stratify every figure (repeatable: --by language --by postal-code)",
    )
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.set_defaults(func=cmd_report)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report; bad options or an unreachable ledger: a message and exit 2."""
    try:
        sys.stdout.write(render(_report(settings, args), args.format))
    except ReportError as exc:
        sys.stderr.write(f"refnet: {exc}\n")
        return 2
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg

    until = parse_time(args.until, "--until") if args.until else datetime.now(UTC)
    since = parse_since(args.since, until) if args.since else until - DEFAULT_WINDOW
    if since >= until:
        raise ReportError(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    url = resolve_database(settings)
    try:
        return asyncio.run(fetch_report(url, since, until, args.by))
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise ReportError(f"cannot reach the ledger's PostgreSQL ({type(exc).__name__})") from None
    except asyncpg.PostgresError as exc:  # e.g. a missing database, a refused password
        raise ReportError(f"the ledger's PostgreSQL refused: {exc}") from None


async def fetch_report(
    url: str, since: datetime, until: datetime, by: Sequence[str]
) -> dict[str, Any]:
    from connectors.ledger.encounters import encounter_report
    from connectors.ledger.reporting import build_report
    from connectors.ledger.sink import Ledger

    ledger = await Ledger.connect(url, min_size=1, max_size=1)
    try:
        async with ledger.pool.acquire() as conn:
            report = await build_report(conn, since, until, by)
            report["encounters"] = await encounter_report(conn, since, until)
            return report
    finally:
        await ledger.close()


def parse_time(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (without an offset: UTC)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(
            f"{option} {text!r}: give a date (2026-11-01) or an ISO 8601 time "
            "(2026-11-01T09:00:00-05:00)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_since(text: str, until: datetime) -> datetime:
    if text[:1] in {"P", "p"}:
        try:
            return until - TypeAdapter(timedelta).validate_python(text.upper())
        except ValidationError:
            raise ReportError(f"--since {text!r}: not an ISO 8601 duration (P7D, PT12H)") from None
    return parse_time(text, "--since")
