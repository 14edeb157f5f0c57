"""Real HTTP receivers on localhost for the deliverer's tests (asyncio streams, HTTP/1.1)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass, field


@dataclass
class Receiver:
    """Answers each POST with ``status``; ``drip`` > 0 sends the answer one byte per
    ``drip`` seconds (a receiver that holds a connection open)."""

    status: int = 200
    drip: float = 0.0
    tls: ssl.SSLContext | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: when each request arrived (``time.monotonic()``), in order
    arrivals: list[float] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def url(self, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((headers, body))
                self.arrivals.append(time.monotonic())
                self.started.set()
                answer = b"ok" * 50
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\ncontent-length: {len(answer)}\r\n\r\n".encode()
                )
                if self.drip:
                    for byte in answer:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(self.drip)
                else:
                    writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
