"""Encounter routes in the ledger: read from the event log, stored once, reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka.structs import ConsumerRecord

from connectors.ledger.encounters import encounter_report, encounter_row
from connectors.ledger.sink import Ledger, LedgerSink
from connectors.ledger.write import Batch
from deploy.report import to_csv, to_table
from schemas.events import EncounterRouted, to_bytes
from tests.connectors.fresh_db import fresh_database

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
LOG = "sdoh.referrals.events.v1"
RECIPIENTS = {"clinic": "mott-haven", "organization": "bronx-pantry"}
H = timedelta(hours=1)


def route(
    encounter: UUID,
    outcome: str,
    kind: str | None = None,
    *,
    seconds: float = 60,
    event: str = "ed-visit",
) -> EncounterRouted:
    return EncounterRouted.model_validate(
        {
            "event_id": uuid4(),
            "occurred_at": T0 + timedelta(seconds=seconds),
            "encounter_event_id": encounter,
            "facility_id": "lincoln-hospital",
            "event": event,
            "encounter_class": "EMER",
            "encounter_at": T0,
            "outcome": outcome,
            "recipient_kind": kind,
            "recipient_id": {"clinic": "mott-haven", "organization": "bronx-pantry"}.get(
                kind or ""
            ),
            "referral_id": "mott-haven:r-1" if kind == "organization" else None,
        }
    )


def record(value: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(LOG, 0, offset, 0, 0, b"k", value, None, 1, len(value), [])


def test_the_sink_reads_an_encounters_routing_from_the_event_log() -> None:
    sink = LedgerSink("unused:1", LOG, "postgresql://unused", group_id="g")
    routed = route(uuid4(), "alerted", "clinic")
    batch = sink._batch([record(to_bytes(routed))])
    assert batch.events == []
    assert batch.encounters == [encounter_row(routed)]
    assert sink.skipped == 0


def figures() -> dict[str, Any]:
    return {
        "encounters": 3,
        "alerts": {
            "clinic": 2,
            "organization": 1,
            "by_event": {"ed-visit": {"clinic": 1, "organization": 1}, "admit": {"clinic": 1}},
        },
        "time_to_alert_seconds": {
            "all": {"p50": 60.0, "p95": 110.0},
            "clinic": {"p50": 30.0, "p95": 57.0},
            "organization": {"p50": 120.0, "p95": 120.0},
        },
        "no_consent": 1,
        "no_match": 1,
    }


def empty_report(encounters: dict[str, Any] | None) -> dict[str, Any]:
    totals = {"loop_closure_rate": None, "closed_with_outcome": 0, "offered": 0, "loop_closed": 0}
    totals |= {k: 0 for k in ("opened", "accepted", "completed", "failed", "rejected")}
    totals |= {k: 0 for k in ("timed_out", "unmatched", "expired", "consent_required")}
    totals |= {"cancelled": 0, "open": 0}
    none = {"p50": None, "p90": None, "p95": None, "count": 0}
    report = {
        "since": "2026-11-01",
        "until": "2026-12-01",
        "totals": totals,
        "rejected_by_reason": {},
        "time_to_accept_seconds": none,
        "time_to_close_seconds": none,
        "service_gaps": [],
    }
    if encounters is not None:
        report["encounters"] = encounters
    return report


def test_the_report_prints_alerts_by_kind_and_event_time_to_alert_and_what_was_dropped() -> None:
    table = to_table(empty_report(figures()))
    assert "encounter alerts (3 encounters routed): 2 to clinics, 1 to organizations" in table
    assert "time from encounter to alert (all): p50 1m 00s, p95 1m 50s" in table
    assert "time from encounter to alert (organization): p50 2m 00s, p95 2m 00s" in table
    assert "dropped: 1 organization alerts without consent, 1 encounters without a matching" in (
        table
    )
    assert "admit" in table and "ed-visit" in table
    rows = to_csv(empty_report(figures())).splitlines()
    assert "encounters,all,,no_consent,1" in rows
    assert "encounters,all,organization,alerts,1" in rows
    assert "encounters,all,ed-visit/organization,alerts,1" in rows
    assert "encounters,all,all,time_to_alert_p95,110.0" in rows
    assert "encounter" not in to_table(empty_report(None))


@pytest.mark.integration
async def test_routes_are_stored_once_and_reported(database_url: str) -> None:
    seen, consent_kept, stranger = uuid4(), uuid4(), uuid4()
    routes = [
        route(seen, "alerted", "clinic", seconds=30),
        route(seen, "alerted", "organization", seconds=90),
        route(consent_kept, "alerted", "clinic", seconds=10, event="admit"),
        route(consent_kept, "no-consent", "organization", seconds=10, event="admit"),
        route(stranger, "no-match", seconds=5),
    ]
    async with fresh_database(database_url) as url:
        ledger = await Ledger.connect(url)
        try:
            batch = Batch(encounters=[encounter_row(r) for r in routes])
            assert (await ledger.write_batch(batch)).encounters == 5
            assert (await ledger.write_batch(batch)).encounters == 0  # replayed: nothing new
            async with ledger.pool.acquire() as conn:
                report = await encounter_report(conn, T0, T0 + timedelta(hours=1))
                later = await encounter_report(
                    conn, T0 + timedelta(hours=1), T0 + timedelta(hours=2)
                )
        finally:
            await ledger.close()
    assert report["encounters"] == 3
    assert report["alerts"] == {
        "clinic": 2,
        "organization": 1,
        "by_event": {"admit": {"clinic": 1}, "ed-visit": {"clinic": 1, "organization": 1}},
    }
    assert (report["no_consent"], report["no_match"]) == (1, 1)
    latency = report["time_to_alert_seconds"]
    assert latency["clinic"] == {"p50": 20.0, "p95": 29.0}
    assert latency["organization"] == {"p50": 90.0, "p95": 90.0}
    assert latency["all"]["p50"] == 30.0
    assert later["encounters"] == 0 and later["alerts"]["clinic"] == 0
    assert json.dumps(report)  # the JSON form of refnet report
