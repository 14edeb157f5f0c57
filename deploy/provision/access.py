"""How a command reaches Kafka: for the workers, or as the operator for admin calls."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.kafka.auth import KafkaAuth
from deploy.provision.files import credentials_path
from deploy.provision.parties import Admin
from deploy.provision.principals import ProvisionError


@dataclass(frozen=True)
class Access:
    """Where a client connects and how; ``credentials``: the file it came from, if any."""

    bootstrap: str
    auth: KafkaAuth
    credentials: Path | None = None


def _file_bootstrap(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return KafkaAuth.from_file(path)[0]
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None


def kafka_access(settings: Any, broker: Any, *, admin: bool) -> Access:
    """How the CLI reaches Kafka, for the workers (``admin`` False) or for admin calls.

    The bootstrap servers: ``REFNET_KAFKA_BOOTSTRAP``, else the credentials
    file's ``bootstrap.servers`` (``REFNET_KAFKA_ADMIN_CREDENTIALS`` for admin
    calls, then ``REFNET_KAFKA_CREDENTIALS``), else the embedded Kafka if it
    runs. Authentication: the settings; but when they say nothing (PLAINTEXT)
    and the embedded Kafka is secure, its own files: the operator's for admin
    calls, the network's (``refnet dev up --secure`` made it) for workers.
    """
    auth = settings.kafka_admin_auth() if admin else settings.kafka_auth()
    bootstrap = settings.kafka_bootstrap
    if not bootstrap and admin:
        bootstrap = _file_bootstrap(settings.kafka_admin_credentials)
    if not bootstrap:
        bootstrap = _file_bootstrap(settings.kafka_credentials)
    if bootstrap:
        return Access(bootstrap, auth)
    state = broker.state()
    if state is None:
        raise ProvisionError(
            "no Kafka broker: run 'refnet dev up' for the embedded one, "
            "or set REFNET_KAFKA_BOOTSTRAP=host:port"
        )
    if not state.secure or auth.security_protocol != "PLAINTEXT":
        return Access(state.bootstrap, auth)
    if admin:
        return Access(state.bootstrap, broker.auth(state), broker.operator_path)
    path = credentials_path(settings.data_dir, "network", "")
    try:
        return Access(state.bootstrap, KafkaAuth.from_file(path)[1], path)
    except ValueError:
        raise ProvisionError(
            f"the embedded Kafka is secure and the network's credentials ({path}) cannot be "
            "read: run 'refnet dev up --secure' again, or set REFNET_KAFKA_CREDENTIALS"
        ) from None


def admin_for(settings: Any, broker: Any) -> Admin:
    """The admin calls' access, and the network's principal to grant party topics to."""
    access = kafka_access(settings, broker, admin=True)
    worker = settings.kafka_auth()
    network_user = worker.username if worker.sasl else None
    if network_user is None:
        path = credentials_path(settings.data_dir, "network", "")
        if path.exists() and access.credentials == broker.operator_path:
            network_user = KafkaAuth.from_file(path)[1].username
    return Admin(access.bootstrap, access.auth, settings.data_dir, network_user)


def secure_lines(
    settings: Any, bootstrap: str, network_file: Path, operator_file: Path
) -> list[tuple[str, str]]:
    """The ``REFNET_*`` settings of the network's principal, as ``refnet dev up --secure``
    prints them (with the operator's file for the admin calls)."""
    auth = KafkaAuth.from_file(network_file)[1]
    return [
        ("REFNET_KAFKA_BOOTSTRAP", bootstrap),
        ("REFNET_KAFKA_SECURITY_PROTOCOL", auth.security_protocol),
        ("REFNET_KAFKA_SASL_USERNAME", auth.username or ""),
        ("REFNET_KAFKA_SASL_PASSWORD", auth.password or ""),
        ("REFNET_KAFKA_SSL_CA", auth.ca_location or ""),
        ("REFNET_KAFKA_ADMIN_CREDENTIALS", str(operator_file)),
    ]
