"""The live status page: what the ledger knows, on one page that updates itself.

Served by a worker on ``REFNET_STATUS_PORT`` (a supervised task, like the
ledger sink). Every ``refresh`` seconds it computes a snapshot from the ledger
(:func:`connectors.ledger.reporting.status_snapshot`: referrals by status, loop
closure, time to accept, each organization's answers, timeouts and
rejections, the service gaps, the dead letters) and pushes it, when it
changed, to every open page over server-sent events (``/events``);
``/status.json`` serves the same snapshot once. The page holds aggregate
figures, codes and organization ids only: never a patient or referral id.

A ledger that cannot be reached is waited for: the page says so and keeps the
last figures; it never stops the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from connectors.ledger.reporting import status_snapshot
from connectors.ledger.sink import UNAVAILABLE_ERRORS, Ledger

log = logging.getLogger(__name__)

#: Seconds between keep-alive comments on an idle event stream (proxies drop silent ones).
HEARTBEAT = 15.0


def page() -> str:
    """The page itself (HTML, CSS and the script that listens to ``/events``)."""
    return (resources.files("connectors.status") / "status.html").read_text("utf-8")


class StatusPage:
    """An aiohttp server for the page, fed from the ledger (the supervisor's entry point)."""

    def __init__(
        self,
        database_url: str,
        *,
        port: int,
        host: str = "127.0.0.1",
        refresh: float = 5.0,
        window: timedelta = timedelta(days=30),
    ) -> None:
        self.database_url = database_url
        self.port = port
        self.host = host
        self.refresh = refresh
        self.window = window
        self.snapshot: dict[str, Any] = {"ledger": "connecting", "version": 0}
        self._changed = asyncio.Event()
        self._ledger: Ledger | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/status.json", self._json)
        app.router.add_get("/events", self._events)
        return app

    async def run(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            log.info("status page on http://%s:%d/", self.host, self.port)
            while True:
                await self.update()
                await asyncio.sleep(self.refresh)
        finally:
            await runner.cleanup()
            if self._ledger is not None:
                with contextlib.suppress(Exception):  # stopping anyway
                    await self._ledger.close()
                self._ledger = None

    async def update(self) -> None:
        """Compute a snapshot; publish it when it differs from the last one."""
        now = datetime.now(UTC)
        try:
            if self._ledger is None:
                self._ledger = await Ledger.connect(self.database_url, min_size=1, max_size=2)
            async with self._ledger.pool.acquire() as conn:
                figures = await status_snapshot(conn, now - self.window, now)
            state = {"ledger": "ok", **figures}
        except UNAVAILABLE_ERRORS as exc:
            if self.snapshot.get("ledger") != "unavailable":
                log.warning("status page: the ledger is unavailable (%s)", type(exc).__name__)
            if self._ledger is not None:
                with contextlib.suppress(Exception):
                    await self._ledger.close()
                self._ledger = None
            state = {**self.snapshot, "ledger": "unavailable"}
        if _without_clock(state) != _without_clock(self.snapshot):
            self.snapshot = {
                **state,
                "version": int(self.snapshot["version"]) + 1,
                "updated_at": now.isoformat(),
            }
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(
            text=page(), content_type="text/html", headers={"Cache-Control": "no-cache"}
        )

    async def _json(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot, headers={"Cache-Control": "no-cache"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        sent = -1
        with contextlib.suppress(ConnectionError):  # the page was closed
            while True:
                version = int(self.snapshot["version"])
                if version != sent:
                    data = json.dumps(self.snapshot, separators=(",", ":"))
                    await response.write(f"event: status\ndata: {data}\n\n".encode())
                    sent = version
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), timeout=HEARTBEAT)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
        return response


def _without_clock(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without what changes every time (the window's ends, the version)."""
    return {
        k: v for k, v in snapshot.items() if k not in {"since", "until", "version", "updated_at"}
    }
