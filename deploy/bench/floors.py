"""1b. The floors: what Faust itself allows for refnet's topology, measured in the
same run as refnet's pipeline (see :mod:`deploy.bench.floor_app`).

Each floor app runs in a process of its own on fresh topics; the same
screenings are published at once, after one warm-up message went through, and
the floor is the rate from publishing to the last output read back, with the
app's CPU seconds per message (as ``pipeline`` and ``cost`` measure refnet).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from connectors.kafka.admin import apply_topics
from deploy.bench.kafka import BackgroundReader, Out, new_producer, publish, screening_record
from deploy.bench.process import cpu
from deploy.launcher import stop_worker
from schemas.topics import TopicKind, TopicSpec

#: what each floor is called in the output, by topology
NAMES = {
    "rekey-onehop": (
        "bare Faust pipeline of refnet's topology (plain consumer re-key as refnet's "
        "ingress, then one agent updating a patient and a referral table)"
    ),
    "pipeline": (
        "bare Faust pipeline (plain consumer re-key as refnet's ingress, then two agents "
        "with a changelogged table each)"
    ),
    "pipeline-faust": "bare Faust pipeline, the re-key a third Faust agent",
    "onehop": "bare Faust one-hop agent with a changelogged table",
}


class SinkReader(BackgroundReader):
    timeout_ms = 100
    max_records = 5000

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, topic)
        self.count = 0
        self.last = 0.0

    def received(self, batch: dict[Any, list[Any]]) -> None:
        moved = sum(len(records) for records in batch.values())
        if moved:
            self.count += moved
            self.last = time.perf_counter()

    async def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.count < count:
            raise TimeoutError(f"{self.count} of {count} messages came out")


def _start(
    bootstrap: str, prefix: str, topology: str, data_dir: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "deploy.bench.floor_app",
                bootstrap,
                prefix,
                topology,
                str(data_dir / prefix),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def floor(
    bootstrap: str, data_dir: Path, topology: str, count: int, out: Out
) -> dict[str, Any]:
    prefix = f"floor{uuid.uuid4().hex[:8]}"
    source, sink = f"{prefix}.in", f"{prefix}.out"
    await asyncio.to_thread(
        apply_topics,
        bootstrap,
        [
            TopicSpec(source, TopicKind.CLINIC_SUBMISSIONS, partitions=6),
            TopicSpec(sink, TopicKind.ORG_REFERRALS, partitions=6),
            # created before the app starts, as `refnet topics apply` does for refnet
            *(
                TopicSpec(f"{prefix}.{name}", TopicKind.NETWORK_PATIENTS, partitions=6)
                for name in ("patients", "referrals")
            ),
            *(
                TopicSpec(
                    f"{prefix}-{topology}-{table}-changelog",
                    TopicKind.PATIENTS_CHANGELOG,
                    partitions=6,
                    config={"cleanup.policy": "compact"},
                )
                for table in ("patients", "referrals", "onehop")
            ),
        ],
    )
    log = data_dir / f"{prefix}.log"
    producer = await new_producer(bootstrap)
    reader = SinkReader(bootstrap, sink)
    proc = _start(bootstrap, prefix, topology, data_dir, log)
    try:
        await reader.start()
        await publish(producer, source, [screening_record(f"{prefix}w", 0)])
        await reader.wait(1, 180)
        items = [screening_record(prefix, i) for i in range(count)]
        cpu_before = cpu(proc.pid)
        started = time.perf_counter()
        await publish(producer, source, items)
        await reader.wait(1 + count, 600)
        seconds = reader.last - started
        cpu_s = cpu(proc.pid) - cpu_before
    except TimeoutError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"the {topology} floor stalled ({exc}); its log ends: {tail}") from exc
    finally:
        await reader.stop()
        await producer.stop()
        stop_worker(proc)
    rate = count / seconds
    out(
        f"   floor, {NAMES[topology]}: {count} messages in {seconds:.2f}s: {rate:,.0f} "
        f"messages/s, {cpu_s / count * 1000:.2f} CPU seconds per 1,000"
    )
    return {
        "messages": count,
        "seconds": round(seconds, 3),
        "messages_per_s": round(rate, 1),
        "cpu_s_per_1000": round(cpu_s / count * 1000, 3),
    }


async def floors(bootstrap: str, data_dir: Path, count: int, out: Out) -> dict[str, Any]:
    """Every floor, one after the other."""
    return {topology: await floor(bootstrap, data_dir, topology, count, out) for topology in NAMES}
