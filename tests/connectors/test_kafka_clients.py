"""Every Kafka client from one factory: the safe defaults, the caller's options, the auth.

The aiokafka classes are replaced by a recorder of what they were built with, so
none of these needs a broker (or an event loop).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from connectors.kafka import clients
from connectors.kafka.admin import AdminError, PartitionChangeRefused
from connectors.kafka.auth import KafkaAuth, KafkaAuthError
from schemas.errors import RefnetError

SASL = KafkaAuth(security_protocol="SASL_PLAINTEXT", username="clinic.bronx", password="s3cret")
SASL_AIOKAFKA = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "clinic.bronx",
    "sasl_plain_password": "s3cret",
}


class Built:
    """What a client class was called with."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


@pytest.fixture(autouse=True)
def recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"):
        monkeypatch.setattr(clients, name, type(name, (Built,), {}))


def test_a_producer_waits_for_every_replica_and_is_idempotent() -> None:
    built: Any = clients.producer("localhost:9092", client_id="ingress")
    assert type(built).__name__ == "AIOKafkaProducer"
    assert built.kwargs == {
        "bootstrap_servers": "localhost:9092",
        "acks": "all",
        "enable_idempotence": True,
        "client_id": "ingress",
    }


def test_a_producer_takes_the_callers_options_over_the_defaults() -> None:
    built: Any = clients.producer("localhost:9092", linger_ms=25, acks=1)
    assert built.kwargs["acks"] == 1
    assert built.kwargs["enable_idempotence"] is True
    assert built.kwargs["linger_ms"] == 25


def test_a_consumer_commits_only_when_told() -> None:
    built: Any = clients.consumer("localhost:9092", "a", "b", group_id="ledger")
    assert type(built).__name__ == "AIOKafkaConsumer"
    assert built.args == ("a", "b")
    assert built.kwargs == {
        "bootstrap_servers": "localhost:9092",
        "enable_auto_commit": False,
        "group_id": "ledger",
    }


def test_a_consumer_may_ask_for_auto_commit() -> None:
    built: Any = clients.consumer("localhost:9092", "a", enable_auto_commit=True)
    assert built.kwargs["enable_auto_commit"] is True


def test_an_admin_client_has_no_defaults_but_the_callers() -> None:
    built: Any = clients.admin("localhost:9092", client_id="lag")
    assert type(built).__name__ == "AIOKafkaAdminClient"
    assert built.kwargs == {"bootstrap_servers": "localhost:9092", "client_id": "lag"}


def test_the_auth_reaches_every_aiokafka_client() -> None:
    producer: Any = clients.producer("broker:9093", SASL)
    consumer: Any = clients.consumer("broker:9093", "a", auth=SASL)
    admin: Any = clients.admin("broker:9093", SASL)
    for built in (producer, consumer, admin):
        assert built.kwargs.items() >= SASL_AIOKAFKA.items()
    assert producer.kwargs["acks"] == "all"
    assert consumer.kwargs["enable_auto_commit"] is False


def test_plaintext_adds_no_security_keywords() -> None:
    built: Any = clients.consumer("localhost:9092", "a")
    assert not any(key.startswith(("security", "sasl", "ssl")) for key in built.kwargs)


def test_librdkafka_is_quiet_and_has_no_producer_guarantees_unless_asked() -> None:
    config = clients.librdkafka("localhost:9092")
    assert config["bootstrap.servers"] == "localhost:9092"
    assert isinstance(config["logger"], logging.Logger)
    assert config["logger"].propagate is False
    assert "acks" not in config
    assert "enable.idempotence" not in config


def test_librdkafka_producer_defaults_and_options() -> None:
    config = clients.librdkafka("localhost:9092", producer=True, **{"linger.ms": 5})
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == 5
    assert clients.librdkafka("localhost:9092", producer=True, acks="1")["acks"] == "1"


def test_librdkafka_merges_the_auth() -> None:
    config = clients.librdkafka("broker:9093", SASL, **{"client.id": "admin"})
    assert config["client.id"] == "admin"
    assert config["security.protocol"] == "sasl_plaintext"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "clinic.bronx"
    assert config["sasl.password"] == "s3cret"


def test_librdkafka_adds_its_null_handler_once() -> None:
    logger = clients.librdkafka("localhost:9092")["logger"]
    clients.librdkafka("localhost:9092")
    assert sum(isinstance(h, logging.NullHandler) for h in logger.handlers) == 1


def test_kafka_errors_are_refnet_errors_and_keep_their_builtin_base() -> None:
    assert issubclass(KafkaAuthError, RefnetError)
    assert issubclass(KafkaAuthError, ValueError)
    assert issubclass(AdminError, RefnetError)
    assert issubclass(AdminError, RuntimeError)
    assert issubclass(PartitionChangeRefused, AdminError)
    with pytest.raises(KafkaAuthError, match="needs a SASL username"):
        KafkaAuth(security_protocol="SASL_SSL")
