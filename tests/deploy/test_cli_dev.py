"""`refnet dev up | status | down` start and stop real services and leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.local.broker import metadata_ready

pytestmark = pytest.mark.integration


def _refnet(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env.update(REFNET_DATA_DIR=str(data_dir), REFNET_KAFKA_PORT="0")
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and "pytest" not in cmdline:
            found.append(cmdline)
    return found


def test_dev_up_prints_addresses_and_dev_down_leaves_no_process(tmp_path: Path) -> None:
    data_dir = Path("/tmp") / f"refnet-dev-{os.getpid()}"  # short: a Unix socket lives in it
    try:
        up = _refnet(data_dir, "dev", "up")
        assert up.returncode == 0, up.stderr
        lines = dict(line.split("=", 1) for line in up.stdout.strip().splitlines())
        assert set(lines) == {"REFNET_KAFKA_BOOTSTRAP", "REFNET_DATABASE_URL"}
        assert metadata_ready(lines["REFNET_KAFKA_BOOTSTRAP"], timeout=5)
        status = _refnet(data_dir, "dev", "status")
        assert status.returncode == 0
        assert f"REFNET_KAFKA_BOOTSTRAP={lines['REFNET_KAFKA_BOOTSTRAP']}" in status.stdout
        assert _processes_mentioning(str(data_dir))
        down = _refnet(data_dir, "dev", "down")
        assert down.returncode == 0
        assert "kafka: stopped" in down.stdout and "postgresql: stopped" in down.stdout
        for _ in range(50):
            if not _processes_mentioning(str(data_dir)):
                break
            time.sleep(0.1)
        assert _processes_mentioning(str(data_dir)) == []
        assert _refnet(data_dir, "dev", "status").returncode == 3
    finally:
        _refnet(data_dir, "dev", "down")
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)
