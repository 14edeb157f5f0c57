"""`refnet dev up | status | down` start and stop real services and leave nothing behind."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.broker import LocalBroker
from deploy.local.database import LocalDatabase, accepts_connections
from deploy.local.runtime import process_cmdline
from deploy.local.state import metadata_ready

integration = pytest.mark.integration


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env.update(REFNET_DATA_DIR=str(data_dir), REFNET_KAFKA_PORT="0")
    return env


def _refnet(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        capture_output=True,
        text=True,
        env=_env(data_dir),
        timeout=180,
        check=False,
    )


def _env_lines(stdout: str) -> dict[str, str]:
    """``export NAME=value`` lines as a POSIX shell reads them."""
    words = [shlex.split(line) for line in stdout.strip().splitlines()]
    assert all(w[0] == "export" and len(w) == 2 for w in words), stdout
    return dict(w[1].split("=", 1) for w in words)


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


def _broker_pid(data_dir: Path) -> int:
    return int(json.loads((data_dir / "kafka" / "broker.json").read_text())["pid"])


def _wait_gone(pid: int) -> None:
    """Until ``pid`` no longer runs (it may stay a zombie: nobody need reap it)."""
    for _ in range(100):
        if process_cmdline(pid) is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still runs")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path("/tmp") / f"refnet-dev-{uuid.uuid4().hex[:8]}"  # short: a Unix socket lives in it
    try:
        yield path
    finally:
        _refnet(path, "dev", "down")
        subprocess.run(["rm", "-rf", str(path)], check=False)


@integration
def test_dev_up_prints_addresses_and_dev_down_leaves_no_process(data_dir: Path) -> None:
    up = _refnet(data_dir, "dev", "up")
    assert up.returncode == 0, up.stderr
    lines = _env_lines(up.stdout)
    assert set(lines) == {"REFNET_KAFKA_BOOTSTRAP", "REFNET_DATABASE_URL"}
    assert metadata_ready(lines["REFNET_KAFKA_BOOTSTRAP"], timeout=5)
    status = _refnet(data_dir, "dev", "status")
    assert status.returncode == 0
    assert _env_lines(status.stdout) == lines
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


@integration
def test_eval_of_dev_up_sets_the_variables_exactly(data_dir: Path) -> None:
    script = (
        'lines="$("$PYTHON" -m deploy.cli dev up)" || exit 9\n'
        'eval "$lines"\n'
        # exported: a child process (any later refnet command) sees them
        '"$PYTHON" -c \'import os; print(os.environ["REFNET_DATABASE_URL"]);'
        ' print(os.environ["REFNET_KAFKA_BOOTSTRAP"])\'\n'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={**_env(data_dir), "PYTHON": sys.executable},
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url, bootstrap = done.stdout.splitlines()
    assert url and bootstrap, done.stderr
    pgdata = data_dir / "pg"
    assert url == f"postgresql://postgres:@/postgres?host={pgdata}&port=5432"
    assert url == LocalDatabase(data_dir).url()
    state = LocalBroker(data_dir / "kafka", cache_dir=data_dir).state()
    assert state is not None
    assert bootstrap == state.bootstrap
    down = _refnet(data_dir, "dev", "down")
    assert "kafka: stopped" in down.stdout and "postgresql: stopped" in down.stdout


@integration
def test_dev_up_replaces_a_killed_broker_and_database(data_dir: Path) -> None:
    up = _refnet(data_dir, "dev", "up")
    assert up.returncode == 0, up.stderr
    first = _env_lines(up.stdout)
    broker_pid = _broker_pid(data_dir)
    postmaster = LocalDatabase(data_dir).pid()
    assert postmaster is not None

    os.kill(broker_pid, signal.SIGKILL)  # its pid stays a zombie here: init does not reap
    _wait_gone(broker_pid)
    status = _refnet(data_dir, "dev", "status")
    assert status.returncode == 3
    assert "# kafka: not running" in status.stderr
    assert _env_lines(status.stdout) == {"REFNET_DATABASE_URL": first["REFNET_DATABASE_URL"]}

    os.kill(postmaster, signal.SIGKILL)
    _wait_gone(postmaster)
    status = _refnet(data_dir, "dev", "status")
    assert status.returncode == 3
    assert "# postgresql: not running" in status.stderr
    assert status.stdout == ""

    again = _refnet(data_dir, "dev", "up")
    assert again.returncode == 0, again.stderr
    second = _env_lines(again.stdout)
    assert _broker_pid(data_dir) != broker_pid
    assert metadata_ready(second["REFNET_KAFKA_BOOTSTRAP"], timeout=5)
    assert accepts_connections(str(data_dir / "pg"), 5432)
    assert LocalDatabase(data_dir).pid() not in {None, postmaster}
    status = _refnet(data_dir, "dev", "status")
    assert status.returncode == 0
    assert _env_lines(status.stdout) == second

    down = _refnet(data_dir, "dev", "down")
    assert "kafka: stopped" in down.stdout and "postgresql: stopped" in down.stdout
    for _ in range(50):
        if not _processes_mentioning(str(data_dir)):
            break
        time.sleep(0.1)
    assert _processes_mentioning(str(data_dir)) == []


@integration
def test_dev_up_replaces_a_broker_that_runs_but_does_not_answer(data_dir: Path) -> None:
    up = _refnet(data_dir, "dev", "up", "--no-database")
    assert up.returncode == 0, up.stderr
    hung = _broker_pid(data_dir)
    os.kill(hung, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status = _refnet(data_dir, "dev", "status")
        assert status.returncode == 3
        assert f"pid {hung} recorded, nothing answers" in status.stderr
        assert time.monotonic() - started < 15  # the check is quick
        again = _refnet(data_dir, "dev", "up", "--no-database")
        assert again.returncode == 0, again.stderr
        assert "does not answer" in again.stderr
        assert process_cmdline(hung) is None  # the hung broker was stopped first
        assert metadata_ready(_env_lines(again.stdout)["REFNET_KAFKA_BOOTSTRAP"], timeout=5)
    finally:
        if process_cmdline(hung) is not None:
            os.kill(hung, signal.SIGKILL)


def test_dev_up_with_external_services_prints_lines_a_shell_reads_back_exactly() -> None:
    url = "postgresql://ann:it's&me@db.example/refnet?sslmode=require&target_session_attrs=any"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env.update(
        REFNET_KAFKA_BOOTSTRAP="k1:9092,k2:9092",
        REFNET_DATABASE_URL=url,
        PYTHON=sys.executable,
    )
    script = (
        'lines="$("$PYTHON" -m deploy.cli dev up)" || exit 9\n'
        'eval "$lines"\n'
        'printf \'%s\\n\' "$REFNET_DATABASE_URL" "$REFNET_KAFKA_BOOTSTRAP"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [url, "k1:9092,k2:9092"]
