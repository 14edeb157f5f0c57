from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from deploy.local.broker import LocalBroker
from deploy.local.database import LocalDatabase
from deploy.local.runtime import BrokerError, _kafka_uuid, free_port, process_cmdline
from deploy.local.state import cluster_id, metadata_ready


def test_missing_java_is_reported_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither java nor mvn on PATH
    broker = LocalBroker(tmp_path / "kafka", cache_dir=tmp_path / "cache", port=0)
    with pytest.raises(BrokerError, match="'java' was not found"):
        broker.start(timeout=5)


def test_nothing_recorded_means_not_running(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", cache_dir=tmp_path / "cache")
    assert broker.state() is None
    assert broker.stop() is False


@pytest.mark.integration
def test_the_session_broker_answers_metadata_requests(kafka_bootstrap: str) -> None:
    assert metadata_ready(kafka_bootstrap, timeout=5)


@pytest.mark.integration
def test_a_second_broker_on_a_taken_port_is_refused(kafka_bootstrap: str, tmp_path: Path) -> None:
    host, port = kafka_bootstrap.rsplit(":", 1)
    from deploy.settings import Settings

    cache = Settings.from_env({}).cache_dir
    broker = LocalBroker(tmp_path / "kafka", cache_dir=cache, host=host, port=int(port))
    with pytest.raises(BrokerError, match="already in use"):
        broker.start(timeout=10)


def _record(broker: LocalBroker, pid: int, port: int) -> None:
    broker.data_dir.mkdir(parents=True, exist_ok=True)
    broker.state_path.write_text(
        json.dumps(
            {"pid": pid, "host": "127.0.0.1", "port": port, "controller_port": 1, "started_at": 0}
        )
    )


def test_a_live_recorded_pid_that_does_not_answer_is_not_a_running_broker(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", cache_dir=tmp_path / "cache")
    _record(broker, os.getpid(), free_port())  # alive, but pytest, and nothing listens
    started = time.monotonic()
    assert broker.state() is None
    assert time.monotonic() - started < 2.5
    assert broker.recorded() is not None
    assert broker.stop() is False  # not our broker: not signalled (we are still here)
    assert not broker.state_path.exists()


def test_a_process_that_answers_but_is_no_kafka_is_not_a_running_broker(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "kafka", cache_dir=tmp_path / "cache")
    with socket.socket() as server:  # accepts connections, never speaks Kafka
        server.bind(("127.0.0.1", 0))
        server.listen()
        _record(broker, os.getpid(), server.getsockname()[1])
        started = time.monotonic()
        assert broker.state() is None
        assert time.monotonic() - started < 2.5


def test_a_zombie_or_a_gone_pid_does_not_run(tmp_path: Path) -> None:
    child = subprocess.Popen(["true"])
    for _ in range(100):  # exited, not yet reaped: a zombie
        if Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            break
        time.sleep(0.02)
    assert process_cmdline(child.pid) is None
    assert process_cmdline(os.getpid()) is not None
    child.wait()
    assert process_cmdline(child.pid) is None


def test_a_stale_postmaster_pid_is_not_a_running_database(tmp_path: Path) -> None:
    db = LocalDatabase(tmp_path)
    db.pgdata.mkdir(parents=True)
    lines = [str(os.getpid()), str(db.pgdata), "0", "5432", str(db.pgdata), "", "0 0", "ready"]
    (db.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
    assert db.url() is None
    assert db.pid() is None
    assert db.stop() is False  # pytest is no postgres: not signalled
    assert not (db.pgdata / "postmaster.pid").exists()


@pytest.mark.integration
def test_the_session_broker_answers_with_its_own_cluster_id(kafka_bootstrap: str) -> None:
    assert cluster_id(kafka_bootstrap, timeout=5)


def test_cluster_ids_never_start_with_a_dash() -> None:
    # kafka-storage format -t <id> reads an id starting with '-' as an option
    assert not any(_kafka_uuid().startswith("-") for _ in range(5000))
