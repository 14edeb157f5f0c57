"""``refnet mllp`` as another program runs it: a subprocess on the real broker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import hl7
import pytest
from hl7.mllp import open_hl7_connection

from schemas.topics import Topics
from tests.connectors.hl7.adt_messages import adt
from tests.connectors.mllp.running import provision

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


async def test_refnet_mllp_listens_answers_and_stops_on_sigterm(
    kafka_bootstrap: str, topics: Topics, unique: str, tmp_path: Path
) -> None:
    facility = f"mercy-{unique}"
    provision(kafka_bootstrap, topics, facility)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env |= {
        "REFNET_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "REFNET_TOPIC_PREFIX": topics.prefix,
        "REFNET_DATA_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "mllp", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
        found = re.fullmatch(r"refnet mllp: listening on mllp://127\.0\.0\.1:(\d+)\n", line)
        assert found, line
        reader, writer = await open_hl7_connection("127.0.0.1", int(found.group(1)))
        writer.writemessage(hl7.parse(adt(facility=facility, control_id="CLI-1").decode()))
        await writer.drain()
        answer = await asyncio.wait_for(reader.readmessage(), 30)
        writer.close()
        assert (answer["MSA.F1"], answer["MSA.F2"]) == ("AA", "CLI-1")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.to_thread(process.wait), 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
