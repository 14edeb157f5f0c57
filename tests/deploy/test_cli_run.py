"""`refnet run`, the README's "run the network" command, end to end."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.events import to_bytes
from schemas.topics import Topics
from tests.network import builders as b
from tests.network.placed import placed_id

pytestmark = pytest.mark.integration


async def test_refnet_run_starts_everything_and_a_screening_reaches_the_pantry() -> None:
    data_dir = Path("/tmp") / f"refnet-run-{os.getpid()}"  # short: a Unix socket lives in it
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env.update(REFNET_DATA_DIR=str(data_dir), REFNET_KAFKA_PORT="0", REFNET_PARTITIONS="3")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.cli",
            "run",
            "--clinic",
            "mott-haven",
            "--org",
            "bronx-pantry",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines: dict[str, str] = {}
        while len(lines) < 2:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
            assert line, "refnet run exited before printing its addresses"
            export, assignment = shlex.split(line)  # export NAME=value, shell-quoted
            assert export == "export"
            key, _, value = assignment.partition("=")
            lines[key] = value
        assert lines["REFNET_DATABASE_URL"].startswith("postgresql://")
        bootstrap = lines["REFNET_KAFKA_BOOTSTRAP"]
        topics = Topics()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            service = b.service("svc-pantry-1", "bronx-pantry")
            await producer.send_and_wait(topics.directory, to_bytes(service), key=b"svc-pantry-1")
            screening = b.screening("scr-0001", answers=b.FOOD_ONLY)
            await producer.send_and_wait(
                topics.clinic_submissions("mott-haven"), to_bytes(screening), key=b"pt-8c21"
            )
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topics.org_referrals("bronx-pantry"),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 90)
        finally:
            await consumer.stop()
        offer = json.loads(record.value)
        assert offer["event_type"] == "referral.offered"
        assert offer["referral_id"] == placed_id(
            Topics(partitions=3), "mott-haven", "scr-0001", "pt-8c21"
        )
        # Ctrl-C stops the worker cleanly
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(
            [sys.executable, "-m", "deploy.cli", "dev", "down"],
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)
