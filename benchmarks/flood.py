"""Fairness: another clinic's latency while one clinic floods at 10x its quota.

A real broker (embedded), one real worker, two clinics. The *steady* clinic
publishes screenings at a modest rate for ``--seconds``; meanwhile, in the
flood runs, the *flooding* clinic publishes at ten times the per-party quota.
Three runs, each on topics of its own: no flood; the flood without a quota
(today's default); the flood with the quota (``--quota`` messages a second,
bursts of ``--burst``). For each it prints the steady clinic's latency from
publish to its first ``referral.updated`` (offered or unmatched), p50 and p99,
and how many of the flood's messages were refused as ``limit``.

    .venv/bin/python benchmarks/flood.py [--quota 20] [--burst 40] [--seconds 20]

Bounded: each run waits at most ``--timeout`` seconds for the steady clinic's
referrals, and the flood stops with the steady clinic's screenings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from benchmarks.network_throughput import (  # noqa: E402
    UpdatesReader,
    directory,
    network_env,
    pct,
    screenings,
    tail,
    wait_for,
)
from connectors.kafka import clients  # noqa: E402
from connectors.kafka.admin import apply_topics  # noqa: E402
from deploy.launcher import start_worker, stop_worker  # noqa: E402
from deploy.local.broker import LocalBroker  # noqa: E402
from deploy.settings import Settings  # noqa: E402
from schemas.topics import Topics  # noqa: E402

STEADY, FLOODER = "steady-clinic", "flood-clinic"


async def count_limit_letters(bootstrap: str, topic: str) -> int:
    consumer = clients.consumer(bootstrap, topic, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    count, quiet = 0, 0
    try:
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            records = [r for rs in batch.values() for r in rs]
            quiet = 0 if records else quiet + 1
            for r in records:
                if r.value and json.loads(r.value)["error"]["kind"] == "limit":
                    count += 1
    finally:
        await consumer.stop()
    return count


async def one_run(
    args: argparse.Namespace, bootstrap: str, tmp: Path, *, flood: bool, quota: bool
) -> dict[str, object]:
    run_id = uuid.uuid4().hex[:8]
    topics = Topics(prefix=f"flood{run_id}", partitions=args.partitions)
    orgs = [f"flood-org-{i}" for i in range(4)]
    specs = topics.network_catalog()
    specs += topics.clinic_catalog(STEADY) + topics.clinic_catalog(FLOODER)
    for org in orgs:
        specs += topics.org_catalog(org)
    await asyncio.to_thread(apply_topics, bootstrap, specs)
    producer = clients.producer(bootstrap, linger_ms=5)
    await producer.start()
    reader = UpdatesReader(bootstrap, topics.clinic_updates(STEADY))
    worker: subprocess.Popen[bytes] | None = None
    log = tmp / f"worker-{run_id}.log"
    try:
        for key, value in directory(topics, 20, orgs):
            await producer.send(topics.directory, value, key=key.encode())
        await producer.flush()
        await reader.start()
        env = network_env(bootstrap, topics, tmp / run_id, "warning")
        if quota:
            env |= {"REFNET_PARTY_RATE": str(args.quota), "REFNET_PARTY_BURST": str(args.burst)}
        worker = await asyncio.to_thread(start_worker, env, log, cwd=ROOT)
        steady = screenings(int(args.seconds * args.steady_rate) + 1, f"s{run_id}")
        _, warm_pid, warm_value, warm_refs = steady.pop(0)
        await producer.send_and_wait(
            topics.clinic_submissions(STEADY), warm_value, key=warm_pid.encode()
        )
        await wait_for(lambda: warm_refs[0] in reader.first, args.timeout, worker, log)

        flood_rate = 10 * args.quota
        flooded = screenings(int(args.seconds * flood_rate), f"f{run_id}") if flood else []
        published: dict[str, float] = {}

        async def publish(batch: list, topic: str, rate: float, record: bool) -> None:
            start = time.perf_counter()
            for i, (sid, pid, value, _) in enumerate(batch):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                if record:
                    published[sid] = time.time()
                await producer.send(topic, value, key=pid.encode())

        await asyncio.gather(
            publish(steady, topics.clinic_submissions(STEADY), args.steady_rate, True),
            publish(flooded, topics.clinic_submissions(FLOODER), flood_rate, False),
        )
        await producer.flush()
        expected = {rid for _, _, _, rids in steady for rid in rids}
        complete = True
        try:
            await wait_for(lambda: expected <= reader.first.keys(), args.timeout, worker, log)
        except TimeoutError:
            complete = False
        first_ms: dict[str, int] = {}
        for rid in expected & reader.first.keys():
            u = reader.first[rid]
            assert u.screening_id is not None
            first_ms[u.screening_id] = min(
                first_ms.get(u.screening_id, u.timestamp_ms), u.timestamp_ms
            )
        latencies = sorted(ms / 1000 - published[sid] for sid, ms in first_ms.items())
        refused = await count_limit_letters(bootstrap, topics.deadletter) if flood else 0
        return {
            "run": ("flood" if flood else "no flood") + (", quota" if quota else ", no quota"),
            "steady screenings": len(steady),
            "flood screenings": len(flooded),
            "flood refused (limit)": refused,
            "complete": complete,
            "p50 s": round(pct(latencies, 50), 3),
            "p99 s": round(pct(latencies, 99), 3),
        }
    finally:
        await reader.stop()
        await producer.stop()
        await asyncio.to_thread(stop_worker, worker)
        if args.keep_log:
            print(tail(log))


async def run(args: argparse.Namespace, tmp: Path) -> int:
    settings = Settings.from_env()
    broker = LocalBroker(
        tmp / "kafka",
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        port=0,
        heap=settings.kafka_heap,
    )
    state = await asyncio.to_thread(broker.start, tie_to_parent=True)
    try:
        print(
            f"quota {args.quota:g}/s (bursts of {args.burst:g}); steady clinic "
            f"{args.steady_rate:g}/s; flood {10 * args.quota:g}/s; {args.seconds:g} s each"
        )
        for flood, quota in ((False, False), (True, False), (True, True)):
            result = await one_run(args, state.bootstrap, tmp, flood=flood, quota=quota)
            print("  ".join(f"{k}: {v}" for k, v in result.items()), flush=True)
    finally:
        await asyncio.to_thread(broker.stop)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quota", type=float, default=20, help="messages/s per party")
    parser.add_argument("--burst", type=float, default=40)
    parser.add_argument("--steady-rate", type=float, default=2, help="steady clinic's screenings/s")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--keep-log", action="store_true")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="refnet-flood-") as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    raise SystemExit(main())
