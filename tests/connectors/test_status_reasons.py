"""Only reason codes reach the aggregates the status page and `refnet report` publish:
an organization's free-text reason counts as ``other`` and appears nowhere."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from connectors.ledger.reporting import build_report
from connectors.ledger.sink import Ledger
from connectors.ledger.snapshot import status_snapshot
from connectors.status.page import StatusPage
from deploy import report as cli_report
from tests.connectors.fresh_db import fresh_database
from tests.connectors.test_report import SINCE, T0, UNTIL, H, Script

pytestmark = pytest.mark.integration

FREE_TEXT = "Maria Lopez moved to 12 Elm St, call 718-555-0100"


def _scenario() -> Script:
    s = Script()
    s.referral("a", "food-insecurity", "es", "10451", "pt-1").offer("pantry-a", T0).reject(
        FREE_TEXT, T0 + H
    ).offer("pantry-b", T0 + H).reject("no-capacity", T0 + 2 * H).offer(
        "pantry-c", T0 + 2 * H
    ).reject("other", T0 + 3 * H)
    return s


@pytest.fixture
async def url(database_url: str) -> AsyncIterator[str]:
    async with fresh_database(database_url) as fresh:
        ledger = await Ledger.connect(fresh)
        try:
            await ledger.write_batch(_scenario().batch())
        finally:
            await ledger.close()
        yield fresh


async def test_free_text_reasons_count_as_other_in_every_aggregate(url: str) -> None:
    ledger = await Ledger.connect(url)
    try:
        async with ledger.pool.acquire() as conn:
            whole = await build_report(conn, SINCE, UNTIL)
            stratified = await build_report(conn, SINCE, UNTIL, ("org", "category"))
            snapshot = await status_snapshot(conn, SINCE, UNTIL)
    finally:
        await ledger.close()
    assert whole["rejected_by_reason"] == {"no-capacity": 1, "other": 2}
    assert snapshot["rejected_by_reason"] == {"no-capacity": 1, "other": 2}
    by_org = {s["stratum"]["org"]: s["rejected_by_reason"] for s in stratified["strata"]}
    assert by_org["pantry-c"] == {"other": 1}
    for published in (whole, stratified, snapshot):
        text = json.dumps(published, default=str)
        assert "Lopez" not in text and "Elm" not in text
    for form in ("table", "csv", "json"):
        assert "Lopez" not in cli_report.render(stratified, form)


async def test_the_status_page_publishes_no_free_text(url: str) -> None:
    status = StatusPage(url, port=0)
    status.window = timedelta(days=3650)  # the scenario's fixed times are in it
    await status.update()
    served = (await status._json()).body
    assert isinstance(served, bytes)
    assert status.snapshot["ledger"] == "ok"
    assert b"Lopez" not in served and b'"other"' in served
