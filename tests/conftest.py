"""Session fixtures: the real Kafka broker and the real PostgreSQL.

Both start once per test session (or are reused: REFNET_KAFKA_BOOTSTRAP and
REFNET_DATABASE_URL name running ones). Each test gets a unique topic prefix,
so tests never see each other's topics or consumer groups.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from connectors.kafka.auth import KafkaAuth
from deploy.local.broker import LocalBroker
from deploy.local.database import LocalDatabase
from deploy.settings import Settings
from schemas.topics import Topics

if TYPE_CHECKING:
    from deploy.provision import Admin


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings from the environment (REFNET_*), read once for the session."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def kafka_bootstrap(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Kafka broker: the one in REFNET_KAFKA_BOOTSTRAP, or an embedded one."""
    if base_settings.kafka_bootstrap:
        yield base_settings.kafka_bootstrap
        return
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka"),
        cache_dir=base_settings.cache_dir,
        version=base_settings.kafka_version,
        port=0,
        heap=base_settings.kafka_heap,
    )
    state = broker.start(tie_to_parent=True)
    try:
        yield state.bootstrap
    finally:
        broker.stop()


@dataclass(frozen=True)
class SecureKafka:
    """A broker in secure mode: SASL_SSL (SCRAM-SHA-512) and the StandardAuthorizer."""

    bootstrap: str
    #: the super user that creates topics, credentials and ACLs
    operator: KafkaAuth
    ca: Path

    def admin(self, data_dir: Path, network_user: str | None = None) -> Admin:
        from deploy.provision import Admin

        return Admin(self.bootstrap, self.operator, data_dir, network_user)


@pytest.fixture(scope="session")
def secure_kafka(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureKafka]:
    """An embedded broker in secure mode (``refnet dev up --secure``), for the session.

    Always embedded, whatever REFNET_KAFKA_BOOTSTRAP says: its operator's
    credentials are made when its storage is formatted.
    """
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka-secure"),
        cache_dir=base_settings.cache_dir,
        version=base_settings.kafka_version,
        port=0,
        heap="384m",
        secure=True,
    )
    state = broker.start(tie_to_parent=True)
    try:
        yield SecureKafka(state.bootstrap, broker.auth(state), broker.ca_path)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def database_url(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real PostgreSQL: REFNET_DATABASE_URL, or an embedded pgserver."""
    if base_settings.database_url:
        yield base_settings.database_url
        return
    data_dir = _short_tmp(tmp_path_factory)
    db = LocalDatabase(data_dir)
    url = db.start()
    try:
        yield url
    finally:
        db.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _short_tmp(factory: pytest.TempPathFactory) -> Path:
    # Unix socket paths are limited to ~107 bytes: keep the pg data dir short.
    path = Path("/tmp") / f"refnet-pg-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


@pytest.fixture
def topics() -> Topics:
    """A topic catalog under a prefix unique to this test."""
    return Topics(prefix=f"t{uuid.uuid4().hex[:10]}", partitions=3)


@pytest.fixture
def unique() -> str:
    """A short unique token for group ids and party ids."""
    return uuid.uuid4().hex[:10]


def pytest_report_header(config: pytest.Config) -> str:
    where = os.environ.get("REFNET_KAFKA_BOOTSTRAP") or "embedded broker"
    return f"refnet: kafka={where}"
