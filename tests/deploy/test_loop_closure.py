"""One definition of loop closure (issue 18, item 21): the demo's summary and the
ledger's figure (the status page and ``refnet report``) agree on the same referrals.

The history is the one ``refnet report``'s tests work out by hand, plus a referral an
organization stops after accepting (the ledger's ``failed``), written through the
ledger's own write path and counted by the demo's tally from the same events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.ledger.reporting import build_report
from connectors.ledger.sink import Ledger
from deploy.demo.tally import Tally
from tests.connectors.fresh_db import fresh_database
from tests.connectors.test_report import T0, UNTIL, D, H, Script, scenario

pytestmark = pytest.mark.integration


def history() -> Script:
    s = scenario()
    s.referral("k", "food-insecurity", "en", "10451", "pt-9").offer("pantry-b", T0).accept(
        T0 + H
    )._event(T0 + 2 * D, "cancelled", None, "organization", org="pantry-b", reason="other")
    return s


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    async with fresh_database(database_url) as url:
        connected = await Ledger.connect(url)
        try:
            await connected.write_batch(history().batch())
            yield connected
        finally:
            await connected.close()


async def test_the_demos_tally_and_the_ledger_agree_on_loop_closure(ledger: Ledger) -> None:
    tally = Tally()
    for event in history().events:
        tally.state_changed(event, org_names={})
    async with ledger.pool.acquire() as conn:
        # every referral of the history opened in the window, as the demo counts them all
        totals = (await build_report(conn, T0 - 60 * D, UNTIL))["totals"]

    # offered to an organization: a, b, c, e, g, h, k (d never was, f is a duplicate);
    # closed by its organization with an outcome: a completed, e and k failed
    assert totals["offered"] == 7
    assert totals["loop_closure_rate"] == round(3 / 7, 4)
    assert tally.summary()["loop_closure_rate"] == totals["loop_closure_rate"]


def test_the_metrics_count_each_referral_offered_once_for_the_loop_closure_ratio() -> None:
    """Prometheus' ``refnet:loop_closure_ratio:7d`` divides by the referrals offered to an
    organization (``first_offered``, once per referral), as every other figure does."""
    from connectors.ledger.rows import row_of
    from connectors.ledger.state import fold
    from connectors.observability.metrics import COUNTED_STEPS

    current = None
    steps: list[str | None] = []
    for event in history().events:
        if event.referral_id.endswith(":b"):  # offered twice: rejected, then accepted
            current, seen = fold(current, row_of(event))
            steps += [s.step for s in seen if s.metric == "step"]
    assert steps.count("offered") == 2 and steps.count("first_offered") == 1
    assert "first_offered" in COUNTED_STEPS
    rules = (Path(__file__).resolve().parents[2] / "deploy/prometheus/alerts.yml").read_text()
    assert 'step="first_offered"' in rules
