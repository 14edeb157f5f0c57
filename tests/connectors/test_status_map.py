"""The status page draws its service gaps as a map of postal-code centroids itself (issue
18, item 21), under a Content-Security-Policy that admits only its own inline script and
style: headless chromium shows one circle per gap and reports no CSP violation, and the
table stays beside the map for screen readers."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.status.page import StatusPage, page

pytestmark = pytest.mark.integration


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gap(category: str, postal_code: str, centroid: list[float] | None, n: int) -> dict[str, Any]:
    return {
        "category": category,
        "postal_code": postal_code,
        "unmatched": n,
        "timed_out": 1,
        "no_capacity": 0,
        "centroid": centroid,
    }


SNAPSHOT: dict[str, Any] = {
    "ledger": "ok",
    "version": 1,
    "since": "2026-11-01T00:00:00+00:00",
    "until": "2026-12-01T00:00:00+00:00",
    "updated_at": "2026-12-01T00:00:00+00:00",
    "totals": {
        "open": 3, "opened": 20, "accepted": 9, "loop_closure_rate": 0.5, "loop_closed": 8,
        "offered": 16, "timed_out": 2, "rejected": 3,
    },
    "time_to_accept_seconds": {"count": 9, "p50": 3600, "p90": 7200, "p95": 9000},
    "statuses": [{"status": "completed", "count": 8}],
    "organizations": [
        {"org_id": "vickery-meadow-welcome-center-1dc5c7", "name": "Vickery Meadow Welcome Center",
         "offers": 4, "accepted": 3, "rejected": 1, "timed_out": 0, "answer_rate": 1.0,
         "median_answer_seconds": 60},
    ],
    "service_gaps": [
        _gap("food-insecurity", "75231", [32.876, -96.746], 9),
        _gap("housing-instability", "75231", [32.876, -96.746], 5),
        _gap("food-insecurity", "75243", [32.91, -96.738], 6),
        _gap("utility-insecurity", "00000", None, 7),
    ],
    "service_gaps_suppressed": 2,
    "service_gaps_min_count": 5,
    "dead_letters": {"total": 0, "by_kind": [], "recent": []},
    "answers": {"refused_by_kind": [], "screenings_answered": 0},
}  # fmt: skip


def test_the_page_fetches_nothing_and_has_no_inline_style_attribute() -> None:
    html = page()
    assert not re.search(r"""\s(src|href)=["']?(https?:)?//""", html)
    assert "style=" not in html


async def test_the_map_draws_under_the_pages_csp_beside_the_table() -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium is missing: deploy/bootstrap.sh installs it"
    port = _port()
    status = StatusPage("postgresql://refnet@127.0.0.1:1/none", port=port, refresh=60)
    status.snapshot = dict(SNAPSHOT)
    running = asyncio.create_task(status.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(100):
                if status.snapshot.get("ledger") == "unavailable":
                    break
                await asyncio.sleep(0.05)
            index = await client.get("/")
        policy = index.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "unsafe-inline" not in policy
        assert index.headers["x-content-type-options"] == "nosniff"
        violations: list[str] = []
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                view = await browser.new_page(viewport={"width": 390, "height": 844})
                view.on("console", lambda m: violations.append(m.text))
                await view.goto(f"http://127.0.0.1:{port}/")
                # a selector, not wait_for_function: the page's CSP admits no eval
                await view.wait_for_selector("#gap-map circle", state="attached", timeout=20_000)
                assert await view.locator("#gap-map circle").count() == 3  # one has no centroid
                assert await view.is_visible("#gap-map")
                legend = await view.inner_text("#gap-legend")
                assert "food-insecurity" in legend and "housing-instability" in legend
                assert "utility-insecurity" in await view.inner_text("#gaps")  # the table: all
                orgs = await view.inner_text("#orgs")
                assert "Vickery Meadow Welcome Center" in orgs and "1dc5c7" not in orgs
                assert "2 left out" in await view.inner_text("#gaps-note")
            finally:
                await browser.close()
        assert not [v for v in violations if "Content Security Policy" in v], violations
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
