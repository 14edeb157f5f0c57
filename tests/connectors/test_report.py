"""`refnet report`'s figures, computed in SQL, equal what a known history produced.

The history is written through the ledger's own write path (the fold into the
current state included), with times chosen so that every expected figure can
be worked out by hand: the expected values below are that arithmetic.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.ledger.reporting import build_report
from connectors.ledger.rows import dead_letter_row, row_of, screening_row
from connectors.ledger.sink import Ledger
from connectors.ledger.write import Batch
from deploy import report as cli_report
from schemas.events import (
    DeadLetter,
    DeadLetterError,
    DeadLetterSource,
    Need,
    ReferralStateChanged,
    ScreeningScored,
)
from tests.connectors.fresh_db import fresh_database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
SINCE, UNTIL = T0 - 30 * D, T0 + 60 * D


@dataclass
class Ref:
    """One referral's events, as the network writes them (streams/referrals.py)."""

    script: Script
    referral_id: str
    category: str
    language: str | None
    postal_code: str | None
    patient_id: str
    screening_id: str | None
    status: str = "draft"
    business: str | None = None
    attempt: int = 0
    org: str | None = None

    def _event(self, at: datetime, to: str, business: str | None, actor: str, **kw: Any) -> Ref:
        event = ReferralStateChanged(
            event_id=uuid.uuid4(),
            occurred_at=at,
            referral_id=self.referral_id,
            clinic_referral_id=self.referral_id.split(":", 1)[1],
            patient_id=self.patient_id,
            clinic_id="mott-haven",
            category=self.category,
            screening_id=self.screening_id,
            from_status=self.status,
            to_status=to,
            business_status=business,
            org_id=kw.pop("org", None),
            service_id=kw.pop("service", None),
            attempt=self.attempt,
            actor=actor,
            preferred_language=self.language,
            postal_code=self.postal_code,
            **kw,
        )
        self.script.events.append(event)
        self.status = "requested" if business == "re-routed" else to
        return self

    def offer(self, org: str, at: datetime) -> Ref:
        self.attempt += 1
        self.org = org
        return self._event(at, "requested", "offered", "network", org=org, service=f"svc-{org}")

    def reject(self, reason: str, at: datetime) -> Ref:
        return self._event(at, "rejected", "re-routed", "organization", org=self.org, reason=reason)

    def timeout(self, at: datetime) -> Ref:
        return self._event(at, "requested", "re-routed", "network", org=self.org, reason="timeout")

    def accept(self, at: datetime) -> Ref:
        return self._event(at, "accepted", None, "organization", org=self.org)

    def complete(self, at: datetime) -> Ref:
        return self._event(at, "completed", None, "organization", org=self.org, outcome="enrolled")

    def fail(self, reason: str, at: datetime) -> Ref:
        return self._event(at, "failed", None, "organization", org=self.org, reason=reason)

    def end(self, business: str, reason: str, at: datetime) -> Ref:
        org = self.org if business == "expired" else None
        return self._event(at, "failed", business, "network", org=org, reason=reason)

    def duplicate(self, at: datetime) -> Ref:
        reason = "duplicate-open-referral"
        return self._event(at, "cancelled", "duplicate", "network", reason=reason)


@dataclass
class Script:
    events: list[ReferralStateChanged] = field(default_factory=list)
    screenings: list[ScreeningScored] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def referral(
        self,
        name: str,
        category: str,
        language: str | None,
        postal_code: str | None,
        patient: str,
        screening: str | None = None,
    ) -> Ref:
        return Ref(self, f"mott-haven:{name}", category, language, postal_code, patient, screening)

    def screened(self, screening_id: str, patient: str, at: datetime, *needs: str) -> None:
        self.screenings.append(
            ScreeningScored(
                event_id=uuid.uuid4(),
                occurred_at=at,
                screening_id=screening_id,
                patient_id=patient,
                clinic_id="mott-haven",
                instrument="ahc-hrsn",
                needs=[Need(category=n, rule="test.rule") for n in needs],
                consented_categories=list(needs),
            )
        )

    def dead_letter(self, kind: str) -> None:
        self.dead_letters.append(
            DeadLetter(
                event_id=uuid.uuid4(),
                occurred_at=T0,
                source=DeadLetterSource(topic="sdoh.org.x.updates.v1", partition=0, offset=7),
                error=DeadLetterError(kind=kind, message="why"),
                payload_base64="",
            )
        )

    def batch(self) -> Batch:
        return Batch(
            events=[row_of(e) for e in self.events],
            screenings=[screening_row(s) for s in self.screenings],
            dead_letters=[dead_letter_row(d) for d in self.dead_letters],
        )


def scenario() -> Script:
    s = Script()
    s.referral("a", "food-insecurity", "es", "10451", "pt-1", "s1").offer("pantry-a", T0).accept(
        T0 + 2 * H
    ).complete(T0 + 3 * D)
    (
        s.referral("b", "food-insecurity", "en", "10451", "pt-2")
        .offer("pantry-a", T0 + H)
        .reject("no-capacity", T0 + 5 * H)
        .offer("pantry-b", T0 + 5 * H)
        .accept(T0 + 9 * H)
        ._event(T0 + 10 * H, "in-progress", None, "organization", org="pantry-b")
    )
    (
        s.referral("c", "housing-instability", "es", "10452", "pt-3", "s3")
        .offer("housing-org", T0)
        .timeout(T0 + D)
        .end("unmatched", "no-matching-service", T0 + D)
    )
    s.referral("d", "transportation-insecurity", "en", "10452", "pt-4", "s4").end(
        "consent-required", "consent-not-granted", T0
    )
    s.referral("e", "food-insecurity", "es", "10451", "pt-5", "s5").offer("pantry-b", T0).accept(
        T0 + 4 * H
    ).fail("could-not-contact", T0 + 10 * D)
    s.referral("f", "food-insecurity", "es", "10451", "pt-1", "s1b").duplicate(T0 + H)
    s.referral("g", "food-insecurity", "en", "10453", "pt-7").offer("pantry-a", T0).accept(
        T0 + H
    ).end("expired", "no-recent-update", T0 + 31 * D)
    s.referral("h", "food-insecurity", "en", "10453", "pt-8").offer("pantry-a", T0 - 40 * D)
    s.screened("s1", "pt-1", T0 - H, "food-insecurity")
    s.screened("s3", "pt-3", T0 - H, "housing-instability")
    s.screened("s4", "pt-4", T0 - H, "transportation-insecurity", "food-insecurity")
    s.screened("s5", "pt-5", T0 - 29 * D - 22 * H, "food-insecurity")
    s.screened("s7", "pt-7", T0 - 40 * D, "food-insecurity")
    s.dead_letter("decode")
    return s


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    async with fresh_database(database_url) as url:
        connected = await Ledger.connect(url)
        try:
            await connected.write_batch(scenario().batch())
            yield connected
        finally:
            await connected.close()


async def report(ledger: Ledger, *by: str) -> dict[str, Any]:
    async with ledger.pool.acquire() as conn:
        return await build_report(conn, SINCE, UNTIL, by)


async def test_totals_count_the_cohort_opened_in_the_window(ledger: Ledger) -> None:
    totals = (await report(ledger))["totals"]

    assert totals == {
        "opened": 6,  # a, b, c, d, e, g: the duplicate f is no referral, h opened before
        "accepted": 4,  # a, b, e, g
        "rejected": 1,  # b's first offer
        "timed_out": 1,  # c's offer
        "completed": 1,  # a
        "failed": 1,  # e, by its organization
        "unmatched": 1,  # c
        "expired": 1,  # g
        "consent_required": 1,  # d
        "network_error": 0,
        "cancelled": 0,
        "open": 1,  # b, in progress
        "closed_with_outcome": 2,  # a completed, e failed by its organization
        "offered": 5,  # a, b, c, e, g: d never reached an organization
        "loop_closed": 2,  # a and e, both offered
        "loop_closure_rate": 0.4,
    }


async def test_time_to_accept_and_close_are_interpolated_percentiles(ledger: Ledger) -> None:
    figures = await report(ledger)

    # accepted after 1 h (g), 2 h (a), 4 h (e), 8 h (b: opened at T0+1h, accepted at T0+9h)
    assert figures["time_to_accept_seconds"] == {
        "count": 4,
        "p50": pytest.approx(10800.0),  # between 2 h and 4 h
        "p90": pytest.approx(14400 + 0.7 * 14400),  # rank 2.7 of 0..3
        "p95": pytest.approx(14400 + 0.85 * 14400),
    }
    # closed with an outcome after 3 days (a) and 10 days (e)
    assert figures["time_to_close_seconds"] == {
        "count": 2,
        "p50": pytest.approx(6.5 * 86400),
        "p90": pytest.approx(3 * 86400 + 0.9 * 7 * 86400),
        "p95": pytest.approx(3 * 86400 + 0.95 * 7 * 86400),
    }
    assert figures["rejected_by_reason"] == {"no-capacity": 1}


async def test_each_organization_answers_and_closes_its_own_offers(ledger: Ledger) -> None:
    organizations = {o["org_id"]: o for o in (await report(ledger))["organizations"]}

    assert organizations["pantry-a"] == {
        "org_id": "pantry-a",
        "offers": 3,  # a, b, g (h opened before the window)
        "accepted": 2,
        "rejected": 1,
        "timed_out": 0,
        "pending": 0,
        "answer_rate": 1.0,
        "acceptance_rate": 0.6667,
        "median_answer_seconds": pytest.approx(7200.0),  # 1 h, 2 h, 4 h
        "completed": 1,
        "failed": 0,
    }
    assert organizations["pantry-b"]["offers"] == 2
    assert organizations["pantry-b"]["median_answer_seconds"] == pytest.approx(4 * 3600.0)
    assert organizations["pantry-b"]["failed"] == 1
    assert organizations["housing-org"] | {} == {
        "org_id": "housing-org",
        "offers": 1,
        "accepted": 0,
        "rejected": 0,
        "timed_out": 1,
        "pending": 0,
        "answer_rate": 0.0,
        "acceptance_rate": 0.0,
        "median_answer_seconds": None,
        "completed": 0,
        "failed": 0,
    }


async def test_quality_measures_follow_positive_screens_for_30_and_60_days(
    ledger: Ledger,
) -> None:
    figures = await report(ledger)

    # food: s1 met (a accepted 3 h after), s4 not (no food referral), s5 not (e accepted
    # 30 days 2 hours after); housing: s3 not (unmatched); transportation: s4 not.
    # s7 was screened before the window.
    assert figures["sns_e"] == {
        "food": {"positive": 3, "intervened": 1, "rate": 0.3333},
        "housing": {"positive": 1, "intervened": 0, "rate": 0.0},
        "transportation": {"positive": 1, "intervened": 0, "rate": 0.0},
        "all": {"positive": 5, "intervened": 1, "rate": 0.2},
    }
    # s1 and s5 (within 60 days) connected; s3 and s4 not
    assert figures["mips_498"] == {"positive": 4, "connected": 2, "rate": 0.5}


async def test_the_gap_table_shows_where_needs_went_unmet(ledger: Ledger) -> None:
    assert (await report(ledger))["service_gaps"] == [
        {
            "category": "housing-instability",
            "postal_code": "10452",
            "language": "es",
            "unmatched": 1,
            "timed_out": 1,
            "no_capacity": 0,
        },
        {
            "category": "food-insecurity",
            "postal_code": "10451",
            "language": "en",
            "unmatched": 0,
            "timed_out": 0,
            "no_capacity": 1,
        },
    ]


async def test_every_figure_is_stratified_by_language(ledger: Ledger) -> None:
    figures = await report(ledger, "language")
    strata = {s["stratum"]["language"]: s for s in figures["strata"]}

    assert set(strata) == {"en", "es"}
    es, en = strata["es"], strata["en"]
    assert (es["totals"]["opened"], en["totals"]["opened"]) == (3, 3)  # a c e / b d g
    assert (es["totals"]["closed_with_outcome"], en["totals"]["closed_with_outcome"]) == (2, 0)
    assert (es["totals"]["loop_closure_rate"], en["totals"]["loop_closure_rate"]) == (0.6667, 0.0)
    assert en["rejected_by_reason"] == {"no-capacity": 1}
    assert es["time_to_accept_seconds"]["p50"] == pytest.approx(3 * 3600.0)  # 2 h, 4 h
    assert en["time_to_accept_seconds"]["p50"] == pytest.approx(4.5 * 3600)  # 1 h, 8 h
    assert es["sns_e"]["food"] == {"positive": 2, "intervened": 1, "rate": 0.5}  # s1, s5
    assert en["sns_e"]["transportation"] == {"positive": 1, "intervened": 0, "rate": 0.0}
    assert es["mips_498"] == {"positive": 3, "connected": 2, "rate": 0.6667}  # s1 s3 s5
    assert [o["org_id"] for o in es["organizations"]] == ["housing-org", "pantry-a", "pantry-b"]
    assert sum(s["totals"]["opened"] for s in strata.values()) == figures["totals"]["opened"]


async def test_organization_strata_count_offers_by_the_offer_s_organization(
    ledger: Ledger,
) -> None:
    strata = {s["stratum"]["org"]: s for s in (await report(ledger, "org"))["strata"]}

    # b was rejected by pantry-a, then accepted by pantry-b (its last organization)
    assert strata["pantry-a"]["totals"]["rejected"] == 1
    assert strata["pantry-b"]["totals"]["rejected"] == 0
    assert strata["(none)"]["totals"]["consent_required"] == 1
    assert strata["pantry-a"]["sns_e"] is None  # screenings have no organization


async def test_the_cli_prints_json_csv_and_a_table(ledger: Ledger) -> None:
    figures = await report(ledger, "postal-code")

    assert json.loads(cli_report.render(figures, "json")) == json.loads(json.dumps(figures))
    rows = list(csv.DictReader(io.StringIO(cli_report.render(figures, "csv"))))
    opened = {r["stratum"]: r["value"] for r in rows if r["metric"] == "opened"}
    assert opened == {
        "all": "6",
        "postal_code=10451": "3",
        "postal_code=10452": "2",
        "postal_code=10453": "1",
    }
    table = cli_report.render(figures, "table")
    assert "loop closure 40.0% (2 of 5 offered closed with an outcome)" in table
    assert "time to accept: p50 3h 00m" in table
    assert "housing-instability  10452" in table
