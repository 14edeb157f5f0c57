"""The ledger's report as people and programs read it: a table, JSON or CSV.

The figures come from :func:`connectors.ledger.reporting.build_report`;
``refnet report`` (:mod:`deploy.cli.report`) reads the command line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any


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
    for row in _encounter_rows(report.get("encounters")):
        writer.writerow(["encounters", "all", *row])
    return out.getvalue()


def _encounter_rows(figures: dict[str, Any] | None) -> Iterator[tuple[str, str, Any]]:
    """The encounter figures as (item, metric, value) rows."""
    if not figures:
        return
    alerts = figures["alerts"]
    for name in ("encounters", "no_consent", "no_match"):
        yield "", name, figures[name]
    for kind in ("clinic", "organization"):
        yield kind, "alerts", alerts.get(kind, 0)
    for event, kinds in alerts["by_event"].items():
        for kind, n in kinds.items():
            yield f"{event}/{kind}", "alerts", n
    for kind, p in figures["time_to_alert_seconds"].items():
        for name in ("p50", "p95"):
            yield kind, f"time_to_alert_{name}", _csv(p[name])


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


#: The totals' columns: heading and key.
TOTALS: tuple[tuple[str, str], ...] = (
    ("opened", "opened"),
    ("accepted", "accepted"),
    ("completed", "completed"),
    ("failed", "failed"),
    ("rejected", "rejected"),
    ("timed out", "timed_out"),
    ("unmatched", "unmatched"),
    ("expired", "expired"),
    ("consent req.", "consent_required"),
    ("cancelled", "cancelled"),
    ("open", "open"),
)
#: The organizations' columns: heading and how a row's cell reads.
ORGANIZATIONS: tuple[tuple[str, Any], ...] = (
    ("org", lambda o: o["org_id"]),
    ("offers", lambda o: o["offers"]),
    ("accepted", lambda o: o["accepted"]),
    ("rejected", lambda o: o["rejected"]),
    ("timed out", lambda o: o["timed_out"]),
    ("pending", lambda o: o["pending"]),
    ("answered", lambda o: percent(o["answer_rate"])),
    ("median answer", lambda o: duration(o["median_answer_seconds"])),
    ("completed", lambda o: o["completed"]),
    ("failed", lambda o: o["failed"]),
)
#: The service gaps' columns: heading and key.
GAPS: tuple[tuple[str, str], ...] = (
    ("category", "category"),
    ("postal code", "postal_code"),
    ("language", "language"),
    ("unmatched", "unmatched"),
    ("timed out", "timed_out"),
    ("no capacity", "no_capacity"),
)


def to_table(report: dict[str, Any]) -> str:
    lines = [f"refnet report: referrals opened {report['since']} .. {report['until']}"]
    for stratum, part in _sections(report):
        lines += ["", f"== {stratum} =="] if stratum != "all" else [""]
        lines += _part_lines(part)
    lines += ["", "service gaps (unmatched referrals, timed-out offers, no-capacity rejections):"]
    if report["service_gaps"]:
        lines += _table(
            [h for h, _ in GAPS], [[g[k] for _, k in GAPS] for g in report["service_gaps"]]
        )
    else:
        lines.append("none")
    lines += _encounter_lines(report.get("encounters"))
    return "\n".join(lines) + "\n"


def _encounter_lines(figures: dict[str, Any] | None) -> list[str]:
    """The encounter alerts: sent by kind and by event, time to alert, what was dropped."""
    if figures is None:
        return []
    alerts, latency = figures["alerts"], figures["time_to_alert_seconds"]
    lines = [
        "",
        f"encounter alerts ({figures['encounters']} encounters routed): "
        f"{alerts.get('clinic', 0)} to clinics, {alerts.get('organization', 0)} to "
        "organizations",
    ]
    for kind in ("all", "clinic", "organization"):
        if kind in latency:
            p = latency[kind]
            lines.append(
                f"time from encounter to alert ({kind}): p50 {duration(p['p50'])}, "
                f"p95 {duration(p['p95'])}"
            )
    lines.append(
        f"dropped: {figures['no_consent']} organization alerts without consent, "
        f"{figures['no_match']} encounters without a matching patient"
    )
    by_event = alerts["by_event"]
    if by_event:
        rows = [
            [event, kinds.get("clinic", 0), kinds.get("organization", 0)]
            for event, kinds in sorted(by_event.items())
        ]
        lines += _table(["encounter event", "clinic alerts", "organization alerts"], rows)
    return lines


def _part_lines(part: dict[str, Any]) -> list[str]:
    """One section of the table: the whole report, or one stratum."""
    t = part["totals"]
    lines = [
        f"loop closure {percent(t['loop_closure_rate'])} "
        f"({t['loop_closed']} of {t['offered']} offered closed with an outcome)"
    ]
    lines += _table([h for h, _ in TOTALS], [[t[k] for _, k in TOTALS]])
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
            [h for h, _ in ORGANIZATIONS],
            [[cell(o) for _, cell in ORGANIZATIONS] for o in part["organizations"]],
        )
    return lines
