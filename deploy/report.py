"""``refnet report``: loop closure, quality measures and service gaps, from the ledger.

The figures are computed in SQL by :mod:`connectors.ledger.reporting`; this module
reads the command line and prints them as a table, JSON or CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from connectors.ledger.reporting import DIMENSIONS
from deploy.settings import Settings

DEFAULT_WINDOW = timedelta(days=30)


class ReportError(RuntimeError):
    """Bad options or an unreachable ledger: printed without a traceback, exit 2."""


def register(subparsers: Any) -> None:
    """Add ``refnet report`` to the CLI."""
    report = subparsers.add_parser(
        "report",
        help="loop closure, quality measures and service gaps from the ledger",
        description=(
            "Figures of the referrals opened (and screenings scored) between --since and "
            "--until, computed from the PostgreSQL ledger. Times are seconds in JSON and CSV."
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

    from deploy.cli import resolve_database

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
    from connectors.ledger.reporting import build_report
    from connectors.ledger.sink import Ledger

    ledger = await Ledger.connect(url, min_size=1, max_size=1)
    try:
        async with ledger.pool.acquire() as conn:
            return await build_report(conn, since, until, by)
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


# ---------------------------------------------------------------- output
def render(report: dict[str, Any], form: str) -> str:
    if form == "json":
        return json.dumps(report, indent=2) + "\n"
    if form == "csv":
        return to_csv(report)
    return to_table(report)


def _sections(report: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "all", report
    for stratum in report.get("strata", []):
        yield ";".join(f"{k}={v}" for k, v in stratum["stratum"].items()), stratum


def to_csv(report: dict[str, Any]) -> str:
    """Tidy rows: section, stratum, item, metric, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "stratum", "item", "metric", "value"])
    for stratum, part in _sections(report):
        for name, value in part["totals"].items():
            writer.writerow(["totals", stratum, "", name, _csv(value)])
        for reason, n in part["rejected_by_reason"].items():
            writer.writerow(["rejected_by_reason", stratum, reason, "count", n])
        for section in ("time_to_accept_seconds", "time_to_close_seconds"):
            for name, value in part[section].items():
                writer.writerow([section, stratum, "", name, _csv(value)])
        for org in part.get("organizations", []):
            for name, value in org.items():
                if name != "org_id":
                    writer.writerow(["organizations", stratum, org["org_id"], name, _csv(value)])
        if part.get("sns_e"):
            for domain, figures in part["sns_e"].items():
                for name, value in figures.items():
                    writer.writerow(["sns_e", stratum, domain, name, _csv(value)])
        if part.get("mips_498"):
            for name, value in part["mips_498"].items():
                writer.writerow(["mips_498", stratum, "", name, _csv(value)])
    for gap in report["service_gaps"]:
        item = f"{gap['category']}/{gap['postal_code']}/{gap['language']}"
        for name in ("unmatched", "timed_out", "no_capacity"):
            writer.writerow(["service_gaps", "all", item, name, gap[name]])
    return out.getvalue()


def _csv(value: Any) -> Any:
    return "" if value is None else value


def duration(seconds: float | None) -> str:
    """Seconds for people: 45s, 12m, 3h 05m, 2d 4h."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells[1:]
    ]
    return lines


def to_table(report: dict[str, Any]) -> str:
    lines = [f"refnet report: referrals opened {report['since']} .. {report['until']}"]
    for stratum, part in _sections(report):
        lines += ["", f"== {stratum} =="] if stratum != "all" else [""]
        t = part["totals"]
        lines.append(
            f"loop closure {percent(t['loop_closure_rate'])} "
            f"({t['closed_with_outcome']} of {t['opened']} closed with an outcome)"
        )
        lines += _table(
            [
                "opened",
                "accepted",
                "completed",
                "failed",
                "rejected",
                "timed out",
                "unmatched",
                "expired",
                "consent req.",
                "cancelled",
                "open",
            ],
            [
                [
                    t["opened"],
                    t["accepted"],
                    t["completed"],
                    t["failed"],
                    t["rejected"],
                    t["timed_out"],
                    t["unmatched"],
                    t["expired"],
                    t["consent_required"],
                    t["cancelled"],
                    t["open"],
                ]
            ],
        )
        if part["rejected_by_reason"]:
            reasons = ", ".join(f"{r} {n}" for r, n in part["rejected_by_reason"].items())
            lines.append(f"rejected by reason: {reasons}")
        for label, key in (
            ("time to accept", "time_to_accept_seconds"),
            ("time to close ", "time_to_close_seconds"),
        ):
            p = part[key]
            lines.append(
                f"{label}: p50 {duration(p['p50'])}, p90 {duration(p['p90'])}, "
                f"p95 {duration(p['p95'])} (n={p['count']})"
            )
        if part.get("sns_e"):
            s = part["sns_e"]
            lines.append(
                "SNS-E (intervention within 30 days): "
                + ", ".join(
                    f"{d} {percent(s[d]['rate'])} ({s[d]['intervened']}/{s[d]['positive']})"
                    for d in ("food", "housing", "transportation", "all")
                )
            )
        if part.get("mips_498"):
            m = part["mips_498"]
            lines.append(
                f"MIPS #498 (connected within 60 days): {percent(m['rate'])} "
                f"({m['connected']}/{m['positive']})"
            )
        if part.get("organizations"):
            lines.append("organizations:")
            lines += _table(
                [
                    "org",
                    "offers",
                    "accepted",
                    "rejected",
                    "timed out",
                    "pending",
                    "answered",
                    "median answer",
                    "completed",
                    "failed",
                ],
                [
                    [
                        o["org_id"],
                        o["offers"],
                        o["accepted"],
                        o["rejected"],
                        o["timed_out"],
                        o["pending"],
                        percent(o["answer_rate"]),
                        duration(o["median_answer_seconds"]),
                        o["completed"],
                        o["failed"],
                    ]
                    for o in part["organizations"]
                ],
            )
    lines += ["", "service gaps (unmatched referrals, timed-out offers, no-capacity rejections):"]
    if report["service_gaps"]:
        lines += _table(
            ["category", "postal code", "language", "unmatched", "timed out", "no capacity"],
            [
                [
                    g["category"],
                    g["postal_code"],
                    g["language"],
                    g["unmatched"],
                    g["timed_out"],
                    g["no_capacity"],
                ]
                for g in report["service_gaps"]
            ],
        )
    else:
        lines.append("none")
    return "\n".join(lines) + "\n"
