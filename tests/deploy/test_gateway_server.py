"""`refnet gateway`'s uvicorn holds its doors: a client that sends its request one header
line at a time is cut off; one that sends whole requests is served (real sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from deploy.gateway_server import server_options
from deploy.settings import Settings


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def _server(read_timeout: float) -> AsyncIterator[int]:
    settings = Settings.from_env({"REFNET_GATEWAY_READ_TIMEOUT": str(read_timeout)})
    config = uvicorn.Config(
        _app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        **server_options(settings),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _closed(reader: asyncio.StreamReader) -> bool:
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(reader.read(), 0.01) == b""
    return False


async def test_a_client_sending_one_header_line_at_a_time_is_cut_off() -> None:
    async with _server(read_timeout=1.0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sent_until = time.monotonic() + 15
        cut_off = False
        while time.monotonic() < sent_until and not cut_off:
            try:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
            except ConnectionError:
                cut_off = True
                break
            await asyncio.sleep(0.3)
            cut_off = await _closed(reader)
        writer.close()
        assert cut_off, "the server kept a half-sent request open"


async def test_a_client_sending_its_body_slowly_is_cut_off() -> None:
    async with _server(read_timeout=1.0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        cut_off = False
        for _ in range(50):
            try:
                writer.write(b"x")
                await writer.drain()
            except ConnectionError:
                cut_off = True
                break
            await asyncio.sleep(0.3)
            if await _closed(reader):
                cut_off = True
                break
        writer.close()
        assert cut_off, "the server kept a half-sent body open"


async def test_whole_requests_on_one_connection_are_served() -> None:
    async with _server(read_timeout=1.0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            assert await asyncio.wait_for(reader.readexactly(2), 5) == b"ok"
            await asyncio.sleep(0.6)  # idle between requests, within the keep-alive
        writer.close()


async def test_a_request_head_over_the_limit_is_refused() -> None:
    async with _server(read_timeout=30.0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 4")
