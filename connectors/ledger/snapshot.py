"""What the live status page (no authentication) shows, from the ledger.

The report's headline figures, the referrals by current status, the service gaps, the
dead letters (kinds and places only) and the answers the parties heard of their own
messages. The service gaps are published only as aggregates by category and postal
code (no preferred language), and a cell whose gaps (unmatched referrals, timed-out
offers and no-capacity rejections) total fewer than :data:`GAP_MIN_COUNT` is left out
(counted in ``service_gaps_suppressed``): the page can be read by anyone, and a small
count in one area may point at a person. Reasons are codes only (``rejected_by_reason``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from connectors.ledger.reporting import _COHORT, build_report
from streams.decisions.geo import centroid

#: The smallest total of gaps a category x postal-code cell needs to be shown.
GAP_MIN_COUNT: Final = 5
#: The most cells shown (the largest gaps first).
MAX_GAPS: Final = 50
_GAP_COUNTS: Final = ("unmatched", "timed_out", "no_capacity")


def public_gaps(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The report's gap rows summed by category and postal code, largest first, without
    the cells under :data:`GAP_MIN_COUNT`; and how many cells were left out."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row["category"]), str(row["postal_code"]))
        cell = cells.setdefault(
            key, {"category": key[0], "postal_code": key[1], **dict.fromkeys(_GAP_COUNTS, 0)}
        )
        for name in _GAP_COUNTS:
            cell[name] += int(row[name])
    shown = [c for c in cells.values() if sum(c[n] for n in _GAP_COUNTS) >= GAP_MIN_COUNT]
    shown.sort(key=lambda c: (-sum(c[n] for n in _GAP_COUNTS), c["category"], c["postal_code"]))
    return shown, len(cells) - len(shown)


async def status_snapshot(conn: Any, since: datetime, until: datetime) -> dict[str, Any]:
    """What the live status page shows: the report's headline figures, the referrals
    by current status, the service gaps, the dead letters (kinds and places only) and the
    answers the parties heard of their own messages, by kind."""
    figures = await build_report(conn, since, until)
    gaps, suppressed = public_gaps(figures["service_gaps"])
    for gap in gaps:  # where the page's map draws it: the postal code's centroid
        found = centroid(gap["postal_code"])
        gap["centroid"] = [round(found[0], 3), round(found[1], 3)] if found else None
    statuses = await conn.fetch(
        f"""
        SELECT r.status, coalesce(r.business_status, '') AS business, count(*) AS n
        FROM referrals r WHERE {_COHORT} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
        """,  # noqa: S608
        since,
        until,
    )
    kinds = await conn.fetch(
        "SELECT kind, count(*) AS n, max(occurred_at) AS last FROM dead_letters "
        "WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY kind ORDER BY 2 DESC, 1",
        since,
        until,
    )
    recent = await conn.fetch(
        "SELECT occurred_at, kind, source_topic FROM dead_letters "
        "ORDER BY occurred_at DESC, event_id LIMIT 8"
    )
    # each dead letter of a party's message was answered to the party (message.refused)
    answered = await conn.fetch(
        "SELECT kind, count(*) AS n FROM dead_letters "
        "WHERE occurred_at >= $1 AND occurred_at < $2 AND (source_topic LIKE "
        "'%.clinic.%.submissions.v1' OR source_topic LIKE '%.org.%.updates.v1') "
        "GROUP BY kind ORDER BY 2 DESC, 1",
        since,
        until,
    )
    screenings = await conn.fetchval(
        "SELECT count(*) FROM screenings WHERE screened_at >= $1 AND screened_at < $2",
        since,
        until,
    )
    return {
        "since": figures["since"],
        "until": figures["until"],
        "totals": figures["totals"],
        "time_to_accept_seconds": figures["time_to_accept_seconds"],
        "time_to_close_seconds": figures["time_to_close_seconds"],
        "rejected_by_reason": figures["rejected_by_reason"],
        "statuses": [
            {
                "status": r["status"] + (f" / {r['business']}" if r["business"] else ""),
                "count": int(r["n"]),
            }
            for r in statuses
        ],
        "organizations": figures["organizations"],
        "service_gaps": gaps[:MAX_GAPS],
        "service_gaps_suppressed": suppressed,
        "service_gaps_min_count": GAP_MIN_COUNT,
        "answers": {
            "refused_by_kind": [{"kind": a["kind"], "count": int(a["n"])} for a in answered],
            "screenings_answered": int(screenings or 0),
        },
        "dead_letters": {
            "total": sum(int(k["n"]) for k in kinds),
            "by_kind": [
                {"kind": k["kind"], "count": int(k["n"]), "last": k["last"].isoformat()}
                for k in kinds
            ],
            "recent": [
                {"at": r["occurred_at"].isoformat(), "kind": r["kind"], "topic": r["source_topic"]}
                for r in recent
            ],
        },
    }


__all__ = ["GAP_MIN_COUNT", "public_gaps", "status_snapshot"]
