"""What the settings name: the embedded services, the topics, and the way to Kafka and
PostgreSQL, as every command that needs them finds them."""

from __future__ import annotations

from connectors.kafka.admin import TopicResult, apply_topics, create_acls, security_enabled
from deploy.local.broker import LocalBroker
from deploy.local.database import LocalDatabase
from deploy.local.state import BrokerState
from deploy.provision.access import Access, admin_for, kafka_access, secure_lines
from deploy.provision.overlap import check_no_overlap
from deploy.provision.parties import Admin, provision_network
from deploy.provision.principals import network_acls, network_principal
from deploy.settings import Settings
from schemas.errors import RefnetError
from schemas.topics import Topics, TopicSpec


class CliError(RefnetError, RuntimeError):
    """A user-facing error: printed without a traceback, exit code 2."""


def broker_for(
    settings: Settings, *, brokers: int | None = None, secure: bool | None = None
) -> LocalBroker:
    """The embedded Kafka of ``REFNET_DATA_DIR``: as asked, else as its data dir was made."""
    data_dir = settings.data_dir / "kafka"
    made = LocalBroker(data_dir, cache_dir=settings.cache_dir).layout()
    return LocalBroker(
        data_dir,
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        host=settings.kafka_host,
        port=settings.kafka_port,
        heap=settings.kafka_heap,
        brokers=brokers or (made.brokers if made else 1),
        secure=secure if secure is not None else bool(made and made.secure),
    )


def database_for(settings: Settings) -> LocalDatabase:
    return LocalDatabase(settings.data_dir)


def topics_for(settings: Settings) -> Topics:
    return Topics(
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )


def catalog_for(settings: Settings) -> list[TopicSpec]:
    """What ``refnet topics apply`` declares: the network's topics and the tables' changelogs."""
    try:
        return topics_for(settings).apply_catalog(settings.app_id)
    except ValueError as exc:
        raise CliError(f"REFNET_APP_ID: {exc}") from None


def resolve_kafka(settings: Settings, *, admin: bool = False) -> Access:
    """Where and how to reach Kafka: for the workers, or (``admin``) for admin calls.

    REFNET_KAFKA_BOOTSTRAP, else the credentials file's bootstrap.servers, else the
    embedded broker if it runs."""
    return kafka_access(settings, broker_for(settings), admin=admin)


def resolve_database(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    url = database_for(settings).url()
    if url is None:
        raise CliError(
            "no PostgreSQL: run 'refnet dev up' for the embedded one, "
            "or set REFNET_DATABASE_URL=postgresql://..."
        )
    return url


def kafka_lines(
    settings: Settings, broker: LocalBroker, state: BrokerState
) -> list[tuple[str, str]]:
    """The REFNET_* lines of a running embedded Kafka: its address and, when secure, the
    network's own principal (made here the first time) and the operator's file."""
    lines = [("REFNET_KAFKA_BOOTSTRAP", state.bootstrap)]
    if len(state.all_nodes) >= 3:
        lines.append(("REFNET_REPLICATION_FACTOR", "3"))
    if not state.secure:
        return lines
    admin = Admin(state.bootstrap, broker.auth(state), settings.data_dir)
    topics = topics_for(settings)
    path = provision_network(admin, topics, settings.app_id, network_principal(topics))
    return secure_lines(settings, state.bootstrap, path, broker.operator_path) + lines[1:]


def apply_network(settings: Settings, admin: Admin) -> tuple[list[TopicResult], int | None]:
    """The network's topics and, on a broker that enforces ACLs, its principal's rules
    (how many; None when the broker enforces none)."""
    secured = security_enabled(admin.bootstrap, auth=admin.auth)
    if secured:  # before any topic or rule is made
        check_no_overlap(admin.bootstrap, admin.auth, topics_for(settings), settings.app_id)
    results = apply_topics(admin.bootstrap, catalog_for(settings), auth=admin.auth)
    if not secured:
        return results, None
    if admin.network_user is None:
        raise CliError(
            "this broker enforces ACLs: set REFNET_KAFKA_SASL_USERNAME (or "
            "REFNET_KAFKA_CREDENTIALS) to the network's principal, so that it is granted "
            "the network's topics (the topics were applied)"
        )
    acls = network_acls(topics_for(settings), settings.app_id, admin.network_user)
    create_acls(admin.bootstrap, acls, auth=admin.auth)
    return results, len(acls)


def admin_of(settings: Settings) -> Admin:
    """The admin calls' access, and the network's principal to grant party topics to."""
    return admin_for(settings, broker_for(settings))
