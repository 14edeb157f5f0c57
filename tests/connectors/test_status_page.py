"""The status page's server without a ledger: its URLs answer, its events stream, it stops."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx

from connectors.status.page import StatusPage, page


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_page_serves_its_snapshot_and_events_while_the_ledger_is_away() -> None:
    port = _port()
    status = StatusPage("postgresql://refnet@127.0.0.1:1/none", port=port, refresh=0.2)
    running = asyncio.create_task(status.run())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(100):
                if status.snapshot.get("ledger") == "unavailable":
                    break
                await asyncio.sleep(0.05)
            index = await client.get("/")
            assert index.status_code == 200
            assert index.headers["content-type"] == "text/html; charset=utf-8"
            assert index.headers["cache-control"] == "no-cache"
            assert index.text == page()
            assert (await client.get("/nowhere")).status_code == 404
            snapshot = (await client.get("/status.json")).json()
            assert snapshot["ledger"] == "unavailable"
            assert snapshot["version"] == 1
            async with client.stream("GET", "/events") as events:
                assert events.headers["content-type"].startswith("text/event-stream")
                assert events.headers["x-accel-buffering"] == "no"
                lines = events.aiter_lines()
                assert await anext(lines) == "event: status"
                data = await anext(lines)
                assert json.loads(data.removeprefix("data: ")) == status.snapshot
                running.cancel()  # an open page does not hold the worker's stop
                done, _ = await asyncio.wait({running}, timeout=10)
                assert done
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
