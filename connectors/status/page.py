"""The live status page: what the ledger knows, on one page that updates itself.

Served by a worker on ``REFNET_STATUS_PORT`` (a supervised task, like the
ledger sink), with FastAPI under uvicorn as the gateway is. Every ``refresh``
seconds it computes a snapshot from the ledger
(:func:`connectors.ledger.snapshot.status_snapshot`: referrals by status, loop
closure, time to accept, each organization's answers, timeouts and
rejections, the service gaps, the dead letters) and pushes it, when it
changed, to every open page over server-sent events (``/events``);
``/status.json`` serves the same snapshot once. The page holds aggregate
figures, codes, organization ids and the directory's organization names
(``names``) only: never a patient or referral id.

A ledger that cannot be reached is waited for: the page says so and keeps the
last figures; it never stops the worker.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from connectors.ledger.sink import UNAVAILABLE_ERRORS, Ledger
from connectors.ledger.snapshot import status_snapshot
from schemas.events import ServiceUpserted

log = logging.getLogger(__name__)

#: Seconds between keep-alive comments on an idle event stream (proxies drop silent ones).
HEARTBEAT = 15.0
#: Seconds open pages get to close their event streams when the worker stops.
SHUTDOWN_GRACE = 5
_NO_CACHE = {"Cache-Control": "no-cache"}


def page() -> str:
    """The page itself (HTML, CSS and the script that listens to ``/events``)."""
    return (resources.files("connectors.status") / "status.html").read_text("utf-8")


def _hashes(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    digests = (base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks)
    return " ".join(f"'sha256-{d}'" for d in digests)


def security_headers(html: str) -> dict[str, str]:
    """The page's headers: a CSP allowing only its own inline script and style (by hash)
    and its own origin's events, no framing, no sniffing, no referrer."""
    policy = (
        "default-src 'none'; "
        f"script-src {_hashes(html, 'script')}; "
        f"style-src {_hashes(html, 'style')}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def org_names(services: Iterable[ServiceUpserted]) -> dict[str, str]:
    """Each organization's name, from the directory's services that carry one."""
    return {s.org_id: s.org_name for s in services if s.org_name}


class _Server(uvicorn.Server):
    """uvicorn inside a worker: the worker, not uvicorn, handles the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class StatusPage:
    """A FastAPI app for the page, fed from the ledger (the supervisor's entry point)."""

    def __init__(
        self,
        database_url: str,
        *,
        port: int,
        host: str = "127.0.0.1",
        refresh: float = 5.0,
        window: timedelta = timedelta(days=30),
        names: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.database_url = database_url
        #: organization names by org_id (the directory's), for people to read
        self.names = names or dict
        self.port = port
        self.host = host
        self.refresh = refresh
        self.window = window
        self.snapshot: dict[str, Any] = {"ledger": "connecting", "version": 0}
        self._changed = asyncio.Event()
        self._closing = False
        self._ledger: Ledger | None = None

    def app(self) -> FastAPI:
        """``/`` the page, ``/status.json`` the snapshot, ``/events`` its changes (SSE)."""
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.add_api_route("/", self._index, methods=["GET", "HEAD"])
        app.add_api_route("/status.json", self._json, methods=["GET", "HEAD"])
        app.add_api_route("/events", self._events, methods=["GET"])
        return app

    async def run(self) -> None:
        """Serve the page and refresh the snapshot until cancelled."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family)
        config = uvicorn.Config(
            self.app(),
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        server = _Server(config)
        self._closing = False
        serving = asyncio.create_task(server.serve(sockets=[listener]), name="status-page")
        try:
            log.info("status page on http://%s:%d/", self.host, self.port)
            while not serving.done():
                await self.update()
                await asyncio.sleep(self.refresh)
            serving.result()
        finally:
            await self._stop(server, serving)
            listener.close()

    async def close(self) -> None:
        """Close the page's ledger connections (``run`` does it when it stops)."""
        if self._ledger is not None:
            with contextlib.suppress(Exception):  # stopping anyway
                await self._ledger.close()
            self._ledger = None

    async def _stop(self, server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
        self._closing = True
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # open event streams end
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(serving), SHUTDOWN_GRACE * 2)
        if not serving.done():
            serving.cancel()
        await self.close()

    async def update(self) -> None:
        """Compute a snapshot; publish it when it differs from the last one."""
        now = datetime.now(UTC)
        try:
            if self._ledger is None:
                self._ledger = await Ledger.connect(self.database_url, min_size=1, max_size=2)
            async with self._ledger.pool.acquire() as conn:
                figures = await status_snapshot(conn, now - self.window, now)
            named = self.names()
            for org in figures["organizations"]:
                org["name"] = named.get(org["org_id"])
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

    async def _index(self) -> HTMLResponse:
        html = page()
        return HTMLResponse(html, headers={**_NO_CACHE, **security_headers(html)})

    async def _json(self) -> Response:
        return Response(
            json.dumps(self.snapshot),
            media_type="application/json; charset=utf-8",
            headers=_NO_CACHE,
        )

    async def _events(self) -> StreamingResponse:
        headers = {**_NO_CACHE, "X-Accel-Buffering": "no"}
        return StreamingResponse(self._stream(), media_type="text/event-stream", headers=headers)

    async def _stream(self) -> AsyncIterator[bytes]:
        """The snapshot at once and at every change, a keep-alive comment when idle."""
        sent = -1
        while not self._closing:
            version = int(self.snapshot["version"])
            if version != sent:
                data = json.dumps(self.snapshot, separators=(",", ":"))
                yield f"event: status\ndata: {data}\n\n".encode()
                sent = version
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), timeout=HEARTBEAT)
            except TimeoutError:
                yield b": keep-alive\n\n"


def _without_clock(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without what changes every time (the window's ends, the version)."""
    return {
        k: v for k, v in snapshot.items() if k not in {"since", "until", "version", "updated_at"}
    }
