"""The ``refnet`` command line: the edge where settings are read and output printed."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.local.broker import BrokerError, BrokerState, LocalBroker
from deploy.local.database import DatabaseError, LocalDatabase
from deploy.provision import Access, Admin, ProvisionError, kafka_access
from deploy.settings import Settings, SettingsError, describe
from schemas.topics import InvalidPartyId, Topics, TopicSpec

if TYPE_CHECKING:
    from connectors.kafka.admin import TopicResult


class CliError(RuntimeError):
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


def env_line(name: str, value: str) -> str:
    """``export NAME=value``, quoted for a POSIX shell: ``eval "$(refnet dev up)"`` then
    hands the variables to every later command (``refnet topics apply``, ``refnet worker``)."""
    return f"export {name}={shlex.quote(value)}"


def resolve_bootstrap(settings: Settings) -> str:
    """REFNET_KAFKA_BOOTSTRAP, else REFNET_KAFKA_CREDENTIALS' bootstrap.servers, else the
    embedded broker if it runs."""
    return resolve_kafka(settings).bootstrap


def resolve_kafka(settings: Settings, *, admin: bool = False) -> Access:
    """Where and how to reach Kafka: for the workers, or (``admin``) for admin calls."""
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


# ---------------------------------------------------------------------- dev
def cmd_dev_up(settings: Settings, args: argparse.Namespace) -> int:
    lines = []
    if settings.kafka_bootstrap:
        lines.append(env_line("REFNET_KAFKA_BOOTSTRAP", settings.kafka_bootstrap))
        print(
            f"# using the Kafka at {settings.kafka_bootstrap} (REFNET_KAFKA_BOOTSTRAP)",
            file=sys.stderr,
        )
        if args.secure or args.brokers != 1:
            raise CliError("--secure and --brokers are for the embedded Kafka")
    else:
        what = "broker" if args.brokers == 1 else f"cluster ({args.brokers} brokers)"
        mode = " in secure mode" if args.secure else ""
        print(f"# starting the embedded Kafka {what}{mode}...", file=sys.stderr, flush=True)
        broker = broker_for(settings, brokers=args.brokers, secure=args.secure)
        state = broker.start(timeout=args.timeout)
        lines += [env_line(k, v) for k, v in kafka_lines(settings, broker, state)]
    if settings.database_url:
        lines.append(env_line("REFNET_DATABASE_URL", settings.database_url))
    elif not args.no_database:
        print("# starting the embedded PostgreSQL...", file=sys.stderr, flush=True)
        lines.append(env_line("REFNET_DATABASE_URL", database_for(settings).start()))
    print("\n".join(lines))
    print(f"# state in {settings.data_dir}; stop with 'refnet dev down'", file=sys.stderr)
    return 0


def cmd_dev_down(settings: Settings, args: argparse.Namespace) -> int:
    stopped_broker = broker_for(settings).stop()
    stopped_db = database_for(settings).stop()
    print(f"kafka: {'stopped' if stopped_broker else 'was not running'}")
    print(f"postgresql: {'stopped' if stopped_db else 'was not running'}")
    return 0


def cmd_dev_status(settings: Settings, args: argparse.Namespace) -> int:
    broker = broker_for(settings)
    database = database_for(settings)
    state = broker.state()
    url = database.url()
    if state is not None:
        for name, value in kafka_lines(settings, broker, state):
            print(env_line(name, value))
    else:
        recorded = broker.recorded()
        why = (
            f" (pid {recorded.pid} recorded, nothing answers on {recorded.bootstrap})"
            if recorded is not None
            else ""
        )
        print(f"# kafka: not running{why}", file=sys.stderr)
    if url is not None:
        print(env_line("REFNET_DATABASE_URL", url))
    else:
        print("# postgresql: not running", file=sys.stderr)
    return 0 if state is not None and url is not None else 3


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
    from deploy.provision import Admin, network_principal, provision_network, secure_lines

    admin = Admin(state.bootstrap, broker.auth(state), settings.data_dir)
    topics = topics_for(settings)
    path = provision_network(admin, topics, settings.app_id, network_principal(topics))
    return secure_lines(settings, state.bootstrap, path, broker.operator_path) + lines[1:]


# ---------------------------------------------------------------------- topics
def apply_network(settings: Settings, admin: Admin) -> tuple[list[TopicResult], int | None]:
    """The network's topics and, on a broker that enforces ACLs, its principal's rules
    (how many; None when the broker enforces none)."""
    from connectors.kafka.admin import apply_topics, create_acls, security_enabled
    from deploy.provision import network_acls

    results = apply_topics(admin.bootstrap, catalog_for(settings), auth=admin.auth)
    if not security_enabled(admin.bootstrap, auth=admin.auth):
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


def cmd_topics_apply(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.provision import admin_for

    admin = admin_for(settings, broker_for(settings))
    results, granted = apply_network(settings, admin)
    for result in results:
        detail = f" ({result.detail})" if result.detail else ""
        print(f"{result.outcome:<9} {result.name}{detail}")
    if granted is not None:
        print(f"{'acls':<9} User:{admin.network_user} ({granted} rules)")
    return 0


def cmd_topics_list(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.kafka.admin import list_topics

    access = resolve_kafka(settings, admin=True)
    for name, partitions in sorted(list_topics(access.bootstrap, auth=access.auth).items()):
        print(f"{name}\t{partitions}")
    return 0


# ---------------------------------------------------------------------- network
def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from deploy.worker import run_worker

    if not settings.database_url:
        url = database_for(settings).url()  # the embedded one, if it runs
        if url is not None:
            settings = settings.with_overrides(database_url=url)
        else:
            print("# no PostgreSQL: the ledger is not written", file=sys.stderr)
    access = resolve_kafka(settings)
    if access.credentials is not None:  # the secure embedded Kafka's network principal
        settings = settings.with_overrides(kafka_credentials=access.credentials)
    return run_worker(settings, access.bootstrap)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Everything on one machine: embedded services (unless external), topics, a worker."""
    from deploy.provision import PartyKind, admin_for, provision_party
    from deploy.worker import run_worker

    lines: list[tuple[str, str]] = []
    if not settings.kafka_bootstrap:
        print("# starting the embedded Kafka broker...", file=sys.stderr, flush=True)
        broker = broker_for(settings)
        lines = kafka_lines(settings, broker, broker.start())
    if not settings.database_url:
        print("# starting the embedded PostgreSQL...", file=sys.stderr, flush=True)
        settings = settings.with_overrides(database_url=database_for(settings).start())
    worker = resolve_kafka(settings)
    admin = admin_for(settings, broker_for(settings))
    for name, value in lines or [("REFNET_KAFKA_BOOTSTRAP", worker.bootstrap)]:
        print(env_line(name, value))
    print(env_line("REFNET_DATABASE_URL", resolve_database(settings)), flush=True)
    results, granted = apply_network(settings, admin)
    for result in results:
        print(f"# topic {result.outcome}: {result.name}", file=sys.stderr)
    if granted is not None:
        print(f"# {granted} ACLs for User:{admin.network_user}", file=sys.stderr)
    parties: tuple[tuple[PartyKind, list[str] | None], ...] = (
        ("clinic", args.clinic),
        ("org", args.org),
    )
    for party, ids in parties:
        for party_id in ids or []:
            done = provision_party(admin, topics_for(settings), party, party_id)
            where = f": {done.credentials}" if done.credentials else ""
            print(f"# provisioned {party} {party_id}{where}", file=sys.stderr)
    print(
        "# worker starting; Ctrl-C stops it ('refnet dev down' stops the broker and database)",
        file=sys.stderr,
        flush=True,
    )
    if worker.credentials is not None:
        settings = settings.with_overrides(kafka_credentials=worker.credentials)
    return run_worker(settings, worker.bootstrap)


# ---------------------------------------------------------------------- schemas
def cmd_schemas_export(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.jsonschema import export

    directory = Path(args.dir) if args.dir else None
    for path in export(directory) if directory else export():
        print(path)
    return 0


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    for name, default, text in describe():
        print(f"{name}\t{default}\t{text}")
    return 0


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refnet",
        description="refnet: closed-loop social-needs referrals over Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="the embedded Kafka broker and PostgreSQL")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    up = dev_sub.add_parser("up", help="start them; print REFNET_* lines to export")
    up.add_argument("--no-database", action="store_true", help="start only the broker")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the broker")
    up.add_argument(
        "--secure",
        action="store_true",
        help="SASL_SSL (SCRAM-SHA-512 over TLS, a local CA) and ACLs; print the network's login",
    )
    up.add_argument(
        "--brokers",
        type=int,
        choices=[1, 3],
        default=1,
        help="KRaft brokers on this machine (3: replication factor 3, min.insync.replicas 2)",
    )
    up.set_defaults(func=cmd_dev_up)
    dev_sub.add_parser("down", help="stop them").set_defaults(func=cmd_dev_down)
    dev_sub.add_parser("status", help="print their addresses").set_defaults(func=cmd_dev_status)

    topics = sub.add_parser("topics", help="the topic catalog")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    topics_sub.add_parser("apply", help="create or update the network's topics").set_defaults(
        func=cmd_topics_apply
    )
    topics_sub.add_parser("list", help="list topics and partitions").set_defaults(
        func=cmd_topics_list
    )

    from deploy import provision

    provision.register(sub)

    schemas = sub.add_parser("schemas", help="the published JSON Schemas")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schemas_sub.add_parser("export", help="write one JSON Schema per event")
    export.add_argument("--dir", help="output directory (default: schemas/json in the package)")
    export.set_defaults(func=cmd_schemas_export)

    sub.add_parser("worker", help="run one network worker (Faust)").set_defaults(func=cmd_worker)
    run = sub.add_parser(
        "run", help="run the network: embedded broker and database, topics, a worker"
    )
    run.add_argument("--clinic", action="append", help="also provision this clinic (repeatable)")
    run.add_argument("--org", action="append", help="also provision this organization (repeatable)")
    run.set_defaults(func=cmd_run)

    sub.add_parser("settings", help="list every REFNET_* setting").set_defaults(func=cmd_settings)

    from deploy import bench

    bench.register(sub)

    from deploy import demo, directory

    directory.register(sub)
    demo.register(sub)

    from deploy import report

    report.register(sub)

    from deploy import gateway

    gateway.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        return int(args.func(settings, args))
    except (
        CliError,
        SettingsError,
        BrokerError,
        DatabaseError,
        InvalidPartyId,
        ProvisionError,
    ) as exc:
        print(f"refnet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from connectors.kafka.admin import AdminError

        if isinstance(exc, AdminError):
            print(f"refnet: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
