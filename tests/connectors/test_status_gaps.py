"""The status page (no authentication) shows service gaps only as aggregates by category
and postal code, with small counts suppressed (issue 18, item 21): no preferred
language, no cell under the threshold, no organization's words."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from connectors.ledger.sink import Ledger
from connectors.ledger.snapshot import GAP_MIN_COUNT, public_gaps, status_snapshot
from tests.connectors.fresh_db import fresh_database
from tests.connectors.test_report import SINCE, T0, UNTIL, H, Script

pytestmark = pytest.mark.integration


def _scenario() -> Script:
    s = Script()
    for n, language in enumerate(["es", "es", "es", "en", "en"]):
        s.referral(f"f{n}", "food-insecurity", language, "10451", f"pt-f{n}").offer(
            "pantry-a", T0
        ).reject("no-capacity", T0 + H).end("unmatched", "no-matching-service", T0 + H)
    s.referral("h", "housing-instability", "es", "10452", "pt-h").end(
        "unmatched", "no-matching-service", T0
    )
    return s


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    async with fresh_database(database_url) as url:
        connected = await Ledger.connect(url)
        try:
            await connected.write_batch(_scenario().batch())
            yield connected
        finally:
            await connected.close()


async def test_gaps_are_by_category_and_area_with_small_counts_suppressed(
    ledger: Ledger,
) -> None:
    async with ledger.pool.acquire() as conn:
        snapshot = await status_snapshot(conn, SINCE, UNTIL)
    assert GAP_MIN_COUNT == 5
    # by language, each food cell (3 and 2) would be under the threshold; together, 5
    lat, lon = snapshot["service_gaps"][0].pop("centroid")  # where the page's map draws it
    assert 40.7 < lat < 40.9 and -74.0 < lon < -73.8  # 10451, the Bronx
    assert snapshot["service_gaps"] == [
        {
            "category": "food-insecurity",
            "postal_code": "10451",
            "unmatched": 5,
            "timed_out": 0,
            "no_capacity": 5,
        }
    ]
    assert snapshot["service_gaps_suppressed"] == 1  # housing in 10452: one referral
    assert snapshot["service_gaps_min_count"] == GAP_MIN_COUNT
    assert '"language"' not in json.dumps(snapshot["service_gaps"])


def test_a_cell_counts_referrals_and_offers_together_against_the_threshold() -> None:
    rows = [
        {"category": "c", "postal_code": "1", "language": "es", "unmatched": 1, "timed_out": 2,
         "no_capacity": 1},
        {"category": "c", "postal_code": "1", "language": "en", "unmatched": 0, "timed_out": 1,
         "no_capacity": 0},
        {"category": "c", "postal_code": "2", "language": "en", "unmatched": 4, "timed_out": 0,
         "no_capacity": 0},
    ]  # fmt: skip
    shown, hidden = public_gaps(rows)
    assert shown == [
        {"category": "c", "postal_code": "1", "unmatched": 1, "timed_out": 3, "no_capacity": 1}
    ]
    assert hidden == 1
