"""ACK latency of ``refnet mllp``, alone and while hostile senders are in flight.

Starts an embedded broker (or uses ``--bootstrap``), provisions two facilities under
a unique prefix, runs ``refnet mllp --port 0`` as a subprocess, and prints:

1. the happy path: ``--messages`` ADT A01 sent one after another on one connection
   (python-hl7's MLLP client), each ACK awaited: p50, p95, max;
2. a second facility's ACK waits, on a new connection per message, while on other
   connections a slow sender trickles a message at one byte a second, a 10 MB frame
   is being sent, and garbage arrives.

    .venv/bin/python benchmarks/mllp_ack.py [--messages 200] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hl7
from hl7.mllp import open_hl7_connection

from connectors.kafka.admin import apply_topics, delete_topics
from deploy.local.broker import LocalBroker
from deploy.settings import Settings
from schemas.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
START, END = b"\x0b", b"\x1c\r"


def a01(facility: str, n: int) -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|EPIC|{facility}|REFNET|REFNET|202603041015-0600||ADT^A01^ADT_A01|"
            f"B{n}-{uuid.uuid4().hex[:12]}|P|2.5.1",
            "EVN|A01|202603041012-0600",
            f"PID|1||MRN-{n:05d}^^^H^MR||Rivera^Ana||19840217|F|||^^Dallas^TX^75201",
            "PV1|1|E|||||||||||||||||V-" + str(n),
            "DG1|1||J45.41^Asthma^I10",
        ]
    )


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
    return (
        f"{name}: n={len(ms)} p50 {statistics.median(ms):.1f} ms  p95 {p95:.1f} ms  "
        f"max {ms[-1]:.1f} ms"
    )


async def happy_path(port: int, facility: str, messages: int) -> list[float]:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    waits = []
    try:
        for n in range(messages):
            started = time.perf_counter()
            writer.writemessage(hl7.parse(a01(facility, n)))
            await writer.drain()
            answer = await reader.readmessage()
            waits.append(time.perf_counter() - started)
            assert answer["MSA.F1"] == "AA", str(answer)
    finally:
        writer.close()
    return waits


async def one_message(port: int, facility: str, n: int) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(START + a01(facility, n).encode() + END)
        await writer.drain()
        reply = await reader.readuntil(END)
    finally:
        writer.close()
    assert b"MSA|AA|" in reply, reply
    return time.perf_counter() - started


async def under_attack(port: int, victim: str, facility: str, samples: int) -> list[float]:
    _, slow_w = await asyncio.open_connection("127.0.0.1", port)
    frames = 0

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in START + a01(victim, 0).encode() + END:
                slow_w.write(bytes([byte]))
                await slow_w.drain()
                await asyncio.sleep(1)

    async def flood() -> None:
        # one 10 MB frame after another, each on a new connection, for as long as we sample
        nonlocal frames
        big = START + a01(victim, 1).encode() + b"\rNTE|1||" + b"x" * 10_000_000 + END
        while True:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(big)
                await writer.drain()
                await reader.readuntil(END)
                frames += 1
                writer.close()

    async def garbage() -> None:
        for _ in range(samples):
            with contextlib.suppress(ConnectionError):
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(os.urandom(4096))
                await w.drain()
                w.close()
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(t()) for t in (trickle, flood, garbage)]
    await asyncio.sleep(0.05)
    waits = []
    try:
        for n in range(samples):
            waits.append(await one_message(port, facility, 10_000 + n))
            await asyncio.sleep(0.05)
        in_flight = "still sending" if not tasks[0].done() else "done"
        print(f"  (meanwhile: {frames} frames of 10 MB answered AR; the slow sender {in_flight})")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        slow_w.close()
    return waits


def start_listener(bootstrap: str, prefix: str, data_dir: str) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env |= {
        "REFNET_KAFKA_BOOTSTRAP": bootstrap,
        "REFNET_TOPIC_PREFIX": prefix,
        "REFNET_DATA_DIR": data_dir,
        "REFNET_LOG_LEVEL": "error",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "mllp", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r":(\d+)$", line.strip())
    if not found:
        process.kill()
        raise SystemExit(f"refnet mllp did not start: {line!r}")
    return process, int(found.group(1))


def run(bootstrap: str, messages: int, samples: int) -> None:
    topics = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}", partitions=3)
    victim, other = "victim-hospital", "other-hospital"
    for facility in (victim, other):
        apply_topics(bootstrap, topics.facility_catalog(facility))
    with tempfile.TemporaryDirectory(prefix="refnet-mllp-bench-") as data_dir:
        process, port = start_listener(bootstrap, topics.prefix, data_dir)
        try:
            asyncio.run(happy_path(port, victim, 20))  # warm up: connections, metadata
            print(
                summary(
                    "happy path, one connection", asyncio.run(happy_path(port, victim, messages))
                )
            )
            quiet = asyncio.run(under_attack_baseline(port, other, samples))
            print(summary("second facility, new connection each, quiet", quiet))
            print(
                summary(
                    "second facility, new connection each, slow sender + 10 MB frame + garbage",
                    asyncio.run(under_attack(port, victim, other, samples)),
                )
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    names = [t.name for f in (victim, other) for t in topics.facility_catalog(f)]
    delete_topics(bootstrap, names)


async def under_attack_baseline(port: int, facility: str, samples: int) -> list[float]:
    waits = []
    for n in range(samples):
        waits.append(await one_message(port, facility, 20_000 + n))
        await asyncio.sleep(0.05)
    return waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--samples", type=int, default=40, help="second facility's messages")
    parser.add_argument("--bootstrap", default=None, help="a running broker (else embedded)")
    args = parser.parse_args()
    if args.bootstrap:
        run(args.bootstrap, args.messages, args.samples)
        return 0
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="refnet-mllp-kafka-") as kafka_dir:
        broker = LocalBroker(
            Path(kafka_dir),
            cache_dir=settings.cache_dir,
            version=settings.kafka_version,
            port=0,
            heap=settings.kafka_heap,
        )
        state = broker.start(tie_to_parent=True)
        try:
            print(f"kafka {settings.kafka_version} at {state.bootstrap}; cpus {os.cpu_count()}")
            run(state.bootstrap, args.messages, args.samples)
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
