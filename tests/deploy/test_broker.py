from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.broker import BrokerError, LocalBroker, metadata_ready


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
