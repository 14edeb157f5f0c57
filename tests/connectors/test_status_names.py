"""People read organizations' names on the status page (issue 18, item 21): names from
the directory (``service.upserted``'s ``org_name``); ids stay in the JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from connectors.ledger.sink import Ledger
from connectors.status.page import StatusPage, org_names
from schemas.events import ServiceUpserted
from tests.connectors.fresh_db import fresh_database
from tests.connectors.test_report import T0, H, Script

pytestmark = pytest.mark.integration


def _service(org_id: str, name: str | None) -> ServiceUpserted:
    return ServiceUpserted.new(
        service_id=f"svc-{org_id}",
        org_id=org_id,
        org_name=name,
        name="Pantry",
        status="active",
        categories=["food-insecurity"],
    )


@pytest.fixture
async def url(database_url: str) -> AsyncIterator[str]:
    s = Script()
    s.referral("a", "food-insecurity", "en", "10451", "pt-1").offer(
        "vickery-meadow-welcome-center-1dc5c7", T0
    ).accept(T0 + H)
    s.referral("b", "food-insecurity", "en", "10451", "pt-2").offer("unnamed-org", T0)
    async with fresh_database(database_url) as fresh:
        ledger = await Ledger.connect(fresh)
        try:
            await ledger.write_batch(s.batch())
        finally:
            await ledger.close()
        yield fresh


async def test_the_page_shows_the_directorys_names_and_keeps_the_ids(url: str) -> None:
    services = [
        _service("vickery-meadow-welcome-center-1dc5c7", "Vickery Meadow Welcome Center"),
        _service("unnamed-org", None),
    ]
    assert org_names(services) == {
        "vickery-meadow-welcome-center-1dc5c7": "Vickery Meadow Welcome Center"
    }
    page = StatusPage(
        url, port=0, names=lambda: org_names(services), window=datetime.now(UTC) - T0 + 10 * H
    )
    try:
        await page.update()
    finally:
        await page.close()
    orgs = {o["org_id"]: o for o in page.snapshot["organizations"]}
    assert orgs["vickery-meadow-welcome-center-1dc5c7"]["name"] == "Vickery Meadow Welcome Center"
    assert orgs["unnamed-org"]["name"] is None  # the page shows the id then
