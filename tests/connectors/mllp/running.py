"""A listener on the real broker for the MLLP tests, and ways to talk to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import hl7

from connectors.kafka import clients
from connectors.kafka.admin import apply_topics
from connectors.mllp import ListenerConfig, serve
from schemas.topics import Topics

START, END = b"\x0b", b"\x1c\r"


@dataclass(frozen=True)
class Running:
    host: str
    port: int
    config: ListenerConfig


def provision(bootstrap: str, topics: Topics, *facilities: str) -> None:
    for facility in facilities:
        apply_topics(bootstrap, topics.facility_catalog(facility))


@asynccontextmanager
async def listening(
    bootstrap: str, config: ListenerConfig, *, facility_cache: float = 10.0
) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            replace(config, host="127.0.0.1", port=0),
            bootstrap,
            stop,
            facility_cache=facility_cache,
            on_listening=lambda host, port: bound.set_result((host, port)),
        )
    )
    try:
        host, port = await asyncio.wait_for(asyncio.shield(bound), 30)
        yield Running(host, port, config)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def send_raw(running: Running, payload: bytes) -> bytes:
    """One frame over a plain socket; the ACK frame's payload."""
    reader, writer = await asyncio.open_connection(running.host, running.port)
    try:
        writer.write(START + payload + END)
        await writer.drain()
        reply = await asyncio.wait_for(reader.readuntil(END), 30)
        return reply[1:-2]
    finally:
        writer.close()


async def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 15) -> list:
    """Every record of ``topic`` once ``expected`` are there (or the timeout passed),
    and whatever came within a short while after."""
    consumer = clients.consumer(bootstrap, topic, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        settle = None
        while loop.time() < deadline and (settle is None or loop.time() < settle):
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
            if len(records) >= expected and settle is None:
                settle = loop.time() + 1.0
    finally:
        await consumer.stop()
    return records


def msa(reply: bytes) -> tuple[str, str, str]:
    message = hl7.parse(reply.decode("utf-8"))
    return message["MSA.F1"], message["MSA.F2"], message["MSA.F3"]
