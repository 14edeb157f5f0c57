"""Loop-closure and quality figures, computed in SQL from the ledger.

Every figure describes a cohort: the referrals *opened* in ``[since, until)``
(duplicates, which the network refused, are not referrals) and, for the
screening measures, the screenings *scored* in that window, each followed for
as long as its measure says (30 or 60 days), even past ``until``.

* referral counts (``opened``, ``accepted``, ``completed``, ``failed``,
  ``unmatched``, ``expired``, ``consent_required``, ``network_error``,
  ``cancelled``, ``open``) count referrals; ``rejected`` and ``timed_out``
  count *offers* (one referral may be refused by one organization and accepted
  by the next), and ``rejected_by_reason`` splits ``rejected`` by reason code
  (a :class:`~schemas.codes.ReasonCode`; free text counts as ``other``, since
  an organization's own words may name the patient and these figures are
  published without authentication on the status page);
* ``loop_closure_rate``: :func:`streams.decisions.loop_closure.loop_closure_rate`,
  the share of the referrals ``offered`` to an organization whose organization
  reported the outcome (``completed``, or ``failed`` as reported by it);
* time to accept: opening to first acceptance; time to close: opening to the
  closing with an outcome (seconds; interpolated percentiles, as
  ``percentile_cont``);
* organizations: per organization offered a referral of the cohort: offers,
  answers, time to answer (offer to acceptance or rejection), timeouts,
  referrals it completed or failed;
* ``sns_e`` (NCQA HEDIS SNS-E style): for the food, housing and transportation
  domains, positive screens with an accepted or completed referral of the same
  patient in the same domain within 30 days of the screening;
* ``mips_498`` (CMS MIPS #498 style): screenings positive for food, housing,
  transportation, utilities or interpersonal safety with a referral for one of
  those needs accepted within 60 days;
* ``service_gaps``: by category, postal code and preferred language, the
  referrals that ended unmatched, the offers that timed out and the rejections
  for lack of capacity: where the region lacks capacity.

``by`` stratifies every figure (``strata``) by organization, category,
preferred language and/or postal code. Organization strata take each offer's
organization for offers, rejections and timeouts, and the last organization
offered for referrals; the screening measures have no organization strata.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from schemas.codes import ReasonCode
from streams.decisions.loop_closure import loop_closure_rate

#: --by values and the SQL of each on a referral row ``r`` (and an event row ``e``).
DIMENSIONS: Final = ("org", "category", "language", "postal-code")
_KEYS: Final = {
    "org": "org",
    "category": "category",
    "language": "language",
    "postal-code": "postal_code",
}
_REFERRAL_SQL: Final = {
    "org": "coalesce(r.org_id, '(none)')",
    "category": "coalesce(r.category, '(unknown)')",
    "language": "coalesce(r.preferred_language, '(unknown)')",
    "postal-code": "coalesce(r.postal_code, '(unknown)')",
}
_EVENT_SQL: Final = {**_REFERRAL_SQL, "org": "coalesce(e.org_id, '(none)')"}
_SCREEN_SQL: Final = {
    "category": "p.category",
    "language": "coalesce(p.language, '(unknown)')",
    "postal-code": "coalesce(p.postal_code, '(unknown)')",
}
PERCENTILES: Final = (0.5, 0.9, 0.95)
SNS_E_DOMAINS: Final = {
    "food-insecurity": "food",
    "housing-instability": "housing",
    "homelessness": "housing",
    "inadequate-housing": "housing",
    "transportation-insecurity": "transportation",
}
MIPS_498_CATEGORIES: Final = (
    "food-insecurity",
    "housing-instability",
    "homelessness",
    "inadequate-housing",
    "transportation-insecurity",
    "utility-insecurity",
    "intimate-partner-violence",
)
COUNTS: Final = (
    "opened",
    "accepted",
    "rejected",
    "timed_out",
    "completed",
    "failed",
    "unmatched",
    "expired",
    "consent_required",
    "network_error",
    "cancelled",
    "open",
    "closed_with_outcome",
    "offered",
    "loop_closed",
)
_COHORT: Final = "r.opened_at >= $1 AND r.opened_at < $2 AND NOT r.duplicate"
#: An event's reason as aggregates show it: a reason code, ``other`` for free text.
_REASON_SQL: Final = (
    "CASE WHEN e.payload->>'reason' IS NULL THEN '(none)' "
    "WHEN e.payload->>'reason' IN ("
    + ", ".join(f"'{code.value}'" for code in ReasonCode)
    + f") THEN e.payload->>'reason' ELSE '{ReasonCode.OTHER.value}' END"
)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _select(dims: Sequence[str], sql: dict[str, str]) -> str:
    return "".join(f"{sql[d]} AS d{n}, " for n, d in enumerate(dims))


def _group(dims: Sequence[str], *more: str) -> str:
    columns = [f"d{n}" for n in range(len(dims))] + list(more)
    return f"GROUP BY {', '.join(columns)}" if columns else ""


def _key(dims: Sequence[str], row: Any) -> tuple[str, ...]:
    return tuple(row[f"d{n}"] for n in range(len(dims)))


def _percentiles(values: Sequence[float] | None, count: int) -> dict[str, Any]:
    shown: dict[str, Any] = {"count": count}
    shown_values: Sequence[float | None] = values or [None] * len(PERCENTILES)
    for p, value in zip(PERCENTILES, shown_values, strict=True):
        shown[f"p{round(p * 100)}"] = value
    return shown


async def _referrals(conn: Any, since: datetime, until: datetime, dims: Sequence[str]) -> Any:
    seconds = "greatest(0, extract(epoch FROM r.{end} - r.opened_at))::float8"
    pct = "ARRAY[" + ", ".join(str(p) for p in PERCENTILES) + "]"
    sql = f"""
        SELECT {_select(dims, _REFERRAL_SQL)}
            count(*) AS opened,
            count(*) FILTER (WHERE r.accepted_at IS NOT NULL) AS accepted,
            count(*) FILTER (WHERE r.status = 'completed') AS completed,
            count(*) FILTER (WHERE r.status = 'failed' AND r.business_status IS NULL) AS failed,
            count(*) FILTER (WHERE r.business_status = 'unmatched') AS unmatched,
            count(*) FILTER (WHERE r.business_status = 'expired') AS expired,
            count(*) FILTER (WHERE r.business_status = 'consent-required') AS consent_required,
            count(*) FILTER (WHERE r.business_status = 'network-error') AS network_error,
            count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
            count(*) FILTER (WHERE r.closed_at IS NULL) AS open,
            count(*) FILTER (WHERE r.loop_closed) AS closed_with_outcome,
            count(*) FILTER (WHERE r.offers > 0) AS offered,
            count(*) FILTER (WHERE r.offers > 0 AND r.loop_closed) AS loop_closed,
            percentile_cont({pct}) WITHIN GROUP (ORDER BY {seconds.format(end="accepted_at")})
                FILTER (WHERE r.accepted_at IS NOT NULL) AS to_accept,
            percentile_cont({pct}) WITHIN GROUP (ORDER BY {seconds.format(end="closed_at")})
                FILTER (WHERE r.loop_closed) AS to_close
        FROM referrals r WHERE {_COHORT} {_group(dims)}
    """  # noqa: S608 - only the fixed SQL of DIMENSIONS is formatted in
    return await conn.fetch(sql, since, until)


async def _offers(conn: Any, since: datetime, until: datetime, dims: Sequence[str]) -> Any:
    """Rejections (with their reasons) and timeouts, by the offer's own organization."""
    sql = f"""
        SELECT {_select(dims, _EVENT_SQL)} e.step,
            {_REASON_SQL} AS reason, count(*) AS n
        FROM referral_events e JOIN referrals r USING (referral_id)
        WHERE {_COHORT} AND e.step IN ('rejected', 'timed_out')
        {_group(dims, "e.step", _REASON_SQL)}
    """  # noqa: S608
    return await conn.fetch(sql, since, until)


async def _organizations(
    conn: Any, since: datetime, until: datetime, dims: Sequence[str]
) -> list[dict[str, Any]]:
    others = [d for d in dims if d != "org"]
    sql = f"""
        WITH offers AS (
            SELECT {_select(others, _REFERRAL_SQL)} e.org_id, e.referral_id,
                (e.payload->>'attempt')::bigint AS attempt, e.occurred_at
            FROM referral_events e JOIN referrals r USING (referral_id)
            WHERE {_COHORT} AND e.step = 'offered' AND e.org_id IS NOT NULL
        ), answers AS (
            SELECT DISTINCT ON (e.referral_id, (e.payload->>'attempt')::bigint)
                e.referral_id, (e.payload->>'attempt')::bigint AS attempt, e.step, e.occurred_at
            FROM referral_events e JOIN referrals r USING (referral_id)
            WHERE {_COHORT} AND e.step IN ('accepted', 'rejected', 'timed_out')
            ORDER BY e.referral_id, (e.payload->>'attempt')::bigint, e.seq
        ), closed AS (
            SELECT {_select(others, _REFERRAL_SQL)} e.org_id,
                count(*) FILTER (WHERE e.step = 'completed') AS completed,
                count(*) FILTER (WHERE e.step = 'failed') AS failed
            FROM referral_events e JOIN referrals r USING (referral_id)
            WHERE {_COHORT} AND e.step IN ('completed', 'failed') AND e.org_id IS NOT NULL
            {_group(others, "e.org_id")}
        ), answered AS (
            SELECT {"".join(f"o.d{n}, " for n in range(len(others)))} o.org_id,
                count(*) AS offers,
                count(*) FILTER (WHERE a.step = 'accepted') AS accepted,
                count(*) FILTER (WHERE a.step = 'rejected') AS rejected,
                count(*) FILTER (WHERE a.step = 'timed_out') AS timed_out,
                count(*) FILTER (WHERE a.step IS NULL) AS pending,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY
                    greatest(0, extract(epoch FROM a.occurred_at - o.occurred_at))::float8)
                    FILTER (WHERE a.step IN ('accepted', 'rejected')) AS median_answer_seconds
            FROM offers o LEFT JOIN answers a USING (referral_id, attempt)
            GROUP BY {"".join(f"o.d{n}, " for n in range(len(others)))} o.org_id
        )
        SELECT a.*, coalesce(c.completed, 0) AS completed, coalesce(c.failed, 0) AS failed
        FROM answered a LEFT JOIN closed c
            ON c.org_id = a.org_id {"".join(f" AND c.d{n} = a.d{n}" for n in range(len(others)))}
        ORDER BY a.org_id
    """  # noqa: S608
    rows = []
    for row in await conn.fetch(sql, since, until):
        answered = row["accepted"] + row["rejected"]
        decided = row["offers"] - row["pending"]
        rows.append(
            {
                **{_KEYS[d]: row[f"d{n}"] for n, d in enumerate(others)},
                "org_id": row["org_id"],
                "offers": row["offers"],
                "accepted": row["accepted"],
                "rejected": row["rejected"],
                "timed_out": row["timed_out"],
                "pending": row["pending"],
                "answer_rate": _rate(answered, decided),
                "acceptance_rate": _rate(row["accepted"], row["offers"]),
                "median_answer_seconds": row["median_answer_seconds"],
                "completed": row["completed"],
                "failed": row["failed"],
            }
        )
    return rows


async def _screens(
    conn: Any, since: datetime, until: datetime, dims: Sequence[str], measure: str
) -> Any:
    """SNS-E (``measure`` "sns_e") or MIPS #498 units, and how many were met."""
    by_category = "category" in dims
    if measure == "sns_e":
        domains = ", ".join(f"('{c}', '{d}')" for c, d in SNS_E_DOMAINS.items())
        days, unit = 30, "p.domain"
        match = "rd.domain = p.domain" + (" AND r.category = p.category" if by_category else "")
        met = (
            f"((r.accepted_at >= p.screened_at AND r.accepted_at <= p.screened_at + "
            f"interval '{days} days') OR (r.status = 'completed' AND r.closed_at >= "
            f"p.screened_at AND r.closed_at <= p.screened_at + interval '{days} days'))"
        )
    else:
        domains = ", ".join(f"('{c}', 'hrsn')" for c in MIPS_498_CATEGORIES)
        days, unit = 60, "'all'"
        match = (
            "r.category = p.category"
            if by_category
            else "r.category IN (SELECT n2.category FROM screening_needs n2 WHERE "
            "n2.clinic_id = p.clinic_id AND n2.screening_id = p.screening_id)"
        )
        met = (
            f"(r.accepted_at >= p.screened_at AND r.accepted_at <= p.screened_at + "
            f"interval '{days} days')"
        )
    lookup = (
        "(SELECT r.{col} FROM referrals r WHERE r.clinic_id = s.clinic_id AND "
        "r.screening_id = s.screening_id AND r.{col} IS NOT NULL LIMIT 1)"
    )
    sql = f"""
        WITH domains(category, domain) AS (VALUES {domains}),
        positive AS (
            SELECT DISTINCT s.clinic_id, s.screening_id, s.patient_id, s.screened_at, d.domain,
                {"n.category" if by_category else "NULL::text"} AS category,
                {lookup.format(col="preferred_language")} AS language,
                {lookup.format(col="postal_code")} AS postal_code
            FROM screenings s
            JOIN screening_needs n USING (clinic_id, screening_id)
            JOIN domains d ON d.category = n.category
            WHERE s.screened_at >= $1 AND s.screened_at < $2
        )
        SELECT {_select(dims, _SCREEN_SQL)} {unit} AS domain, count(*) AS positive,
            count(*) FILTER (WHERE EXISTS (
                SELECT 1 FROM referrals r JOIN domains rd ON rd.category = r.category
                WHERE r.clinic_id = p.clinic_id AND r.patient_id = p.patient_id
                    AND NOT r.duplicate AND {match} AND {met}
            )) AS met
        FROM positive p {_group(dims, "domain")}
    """  # noqa: S608 - fixed SQL and the fixed code lists above
    return await conn.fetch(sql, since, until)


def _sns_e(rows: Sequence[Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for domain in ("food", "housing", "transportation"):
        positive = sum(r["positive"] for r in rows if r["domain"] == domain)
        met = sum(r["met"] for r in rows if r["domain"] == domain)
        shown[domain] = {"positive": positive, "intervened": met, "rate": _rate(met, positive)}
    positive = sum(r["positive"] for r in rows)
    met = sum(r["met"] for r in rows)
    shown["all"] = {"positive": positive, "intervened": met, "rate": _rate(met, positive)}
    return shown


def _mips(rows: Sequence[Any]) -> dict[str, Any]:
    positive = sum(r["positive"] for r in rows)
    met = sum(r["met"] for r in rows)
    return {"positive": positive, "connected": met, "rate": _rate(met, positive)}


async def _gaps(conn: Any, since: datetime, until: datetime) -> list[dict[str, Any]]:
    sql = f"""
        WITH no_capacity AS (
            SELECT referral_id, count(*) AS n FROM referral_events
            WHERE step = 'rejected' AND payload->>'reason' = 'no-capacity' GROUP BY referral_id
        )
        SELECT coalesce(r.category, '(unknown)') AS category,
            coalesce(r.postal_code, '(unknown)') AS postal_code,
            coalesce(r.preferred_language, '(unknown)') AS language,
            count(*) FILTER (WHERE r.business_status = 'unmatched') AS unmatched,
            coalesce(sum(r.timeouts), 0) AS timed_out,
            coalesce(sum(nc.n), 0) AS no_capacity
        FROM referrals r LEFT JOIN no_capacity nc USING (referral_id)
        WHERE {_COHORT}
        GROUP BY 1, 2, 3
        HAVING count(*) FILTER (WHERE r.business_status = 'unmatched') > 0
            OR coalesce(sum(r.timeouts), 0) > 0 OR coalesce(sum(nc.n), 0) > 0
        ORDER BY count(*) FILTER (WHERE r.business_status = 'unmatched')
            + coalesce(sum(r.timeouts), 0) + coalesce(sum(nc.n), 0) DESC, 1, 2, 3
    """  # noqa: S608
    return [
        {
            "category": r["category"],
            "postal_code": r["postal_code"],
            "language": r["language"],
            "unmatched": int(r["unmatched"]),
            "timed_out": int(r["timed_out"]),
            "no_capacity": int(r["no_capacity"]),
        }
        for r in await conn.fetch(sql, since, until)
    ]


def _figures(referral: Any | None, offers: Sequence[Any]) -> dict[str, Any]:
    """One stratum's totals, rejections by reason and times."""
    from_events = {"rejected", "timed_out"}
    totals: dict[str, Any] = {
        name: int(referral[name]) if referral and name not in from_events else 0 for name in COUNTS
    }
    totals["rejected"] = sum(int(o["n"]) for o in offers if o["step"] == "rejected")
    totals["timed_out"] = sum(int(o["n"]) for o in offers if o["step"] == "timed_out")
    totals["loop_closure_rate"] = loop_closure_rate(totals["loop_closed"], totals["offered"])
    reasons: dict[str, int] = {}
    for o in offers:
        if o["step"] == "rejected":
            reasons[o["reason"]] = reasons.get(o["reason"], 0) + int(o["n"])
    return {
        "totals": totals,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "time_to_accept_seconds": _percentiles(
            referral["to_accept"] if referral else None, totals["accepted"]
        ),
        "time_to_close_seconds": _percentiles(
            referral["to_close"] if referral else None, totals["closed_with_outcome"]
        ),
    }


async def build_report(
    conn: Any, since: datetime, until: datetime, by: Sequence[str] = ()
) -> dict[str, Any]:
    """The report of the cohort opened in ``[since, until)``, stratified ``by``."""
    dims = [d for d in DIMENSIONS if d in by]  # a fixed order, each once
    unknown = set(by) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown dimension(s) {sorted(unknown)}; choose from {DIMENSIONS}")
    [whole] = await _referrals(conn, since, until, ())
    report: dict[str, Any] = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "by": [_KEYS[d] for d in dims],
        **_figures(whole, await _offers(conn, since, until, ())),
        "organizations": await _organizations(conn, since, until, ()),
        "sns_e": _sns_e(await _screens(conn, since, until, (), "sns_e")),
        "mips_498": _mips(await _screens(conn, since, until, (), "mips_498")),
        "service_gaps": await _gaps(conn, since, until),
    }
    if dims:
        report["strata"] = await _strata(conn, since, until, dims)
    return report


async def _strata(
    conn: Any, since: datetime, until: datetime, dims: Sequence[str]
) -> list[dict[str, Any]]:
    referrals = {_key(dims, r): r for r in await _referrals(conn, since, until, dims)}
    offers: dict[tuple[str, ...], list[Any]] = {}
    for row in await _offers(conn, since, until, dims):
        offers.setdefault(_key(dims, row), []).append(row)
    screen_dims = [d for d in dims if d != "org"]
    screens: dict[str, dict[tuple[str, ...], list[Any]]] = {"sns_e": {}, "mips_498": {}}
    if screen_dims == dims:
        for measure, grouped in screens.items():
            for row in await _screens(conn, since, until, dims, measure):
                grouped.setdefault(_key(dims, row), []).append(row)
    organizations = await _organizations(conn, since, until, dims)
    keys = sorted(set(referrals) | set(offers) | set(screens["sns_e"]) | set(screens["mips_498"]))
    strata = []
    for key in keys:
        stratum = dict(zip([_KEYS[d] for d in dims], key, strict=True))
        entry: dict[str, Any] = {
            "stratum": stratum,
            **_figures(referrals.get(key), offers.get(key, [])),
            "sns_e": _sns_e(screens["sns_e"].get(key, [])) if screen_dims == dims else None,
            "mips_498": _mips(screens["mips_498"].get(key, [])) if screen_dims == dims else None,
            "organizations": [
                o
                for o in organizations
                if all(o.get(k) == v for k, v in stratum.items() if k != "org")
                and ("org" not in stratum or o["org_id"] == stratum["org"])
            ],
        }
        strata.append(entry)
    return strata
