"""The ``refnet`` command line: the edge where settings are read and output printed."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from deploy.local.broker import BrokerError, LocalBroker
from deploy.local.database import DatabaseError, LocalDatabase
from deploy.settings import Settings, SettingsError, describe
from schemas.topics import InvalidPartyId, Topics, TopicSpec


class CliError(RuntimeError):
    """A user-facing error: printed without a traceback, exit code 2."""


def broker_for(settings: Settings) -> LocalBroker:
    return LocalBroker(
        settings.data_dir / "kafka",
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        host=settings.kafka_host,
        port=settings.kafka_port,
        heap=settings.kafka_heap,
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
    """REFNET_KAFKA_BOOTSTRAP, else the embedded broker if it runs."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    state = broker_for(settings).state()
    if state is None:
        raise CliError(
            "no Kafka broker: run 'refnet dev up' for the embedded one, "
            "or set REFNET_KAFKA_BOOTSTRAP=host:port"
        )
    return state.bootstrap


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
    else:
        print("# starting the embedded Kafka broker...", file=sys.stderr, flush=True)
        state = broker_for(settings).start(timeout=args.timeout)
        lines.append(env_line("REFNET_KAFKA_BOOTSTRAP", state.bootstrap))
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
        print(env_line("REFNET_KAFKA_BOOTSTRAP", state.bootstrap))
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


# ---------------------------------------------------------------------- topics
def cmd_topics_apply(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.kafka_admin import apply_topics

    for result in apply_topics(resolve_bootstrap(settings), catalog_for(settings)):
        detail = f" ({result.detail})" if result.detail else ""
        print(f"{result.outcome:<9} {result.name}{detail}")
    return 0


def cmd_topics_list(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.kafka_admin import list_topics

    for name, partitions in sorted(list_topics(resolve_bootstrap(settings)).items()):
        print(f"{name}\t{partitions}")
    return 0


def cmd_provision(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.kafka_admin import apply_topics

    topics = topics_for(settings)
    specs = (
        topics.clinic_catalog(args.id) if args.party == "clinic" else topics.org_catalog(args.id)
    )
    for result in apply_topics(resolve_bootstrap(settings), specs):
        print(f"{result.outcome:<9} {result.name}")
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
    return run_worker(settings, resolve_bootstrap(settings))


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Everything on one machine: embedded services (unless external), topics, a worker."""
    from connectors.kafka_admin import apply_topics
    from deploy.worker import run_worker

    if not settings.kafka_bootstrap:
        print("# starting the embedded Kafka broker...", file=sys.stderr, flush=True)
        state = broker_for(settings).start()
        settings = settings.with_overrides(kafka_bootstrap=state.bootstrap)
    if not settings.database_url:
        print("# starting the embedded PostgreSQL...", file=sys.stderr, flush=True)
        settings = settings.with_overrides(database_url=database_for(settings).start())
    bootstrap = resolve_bootstrap(settings)
    print(env_line("REFNET_KAFKA_BOOTSTRAP", bootstrap))
    print(env_line("REFNET_DATABASE_URL", resolve_database(settings)), flush=True)
    for result in apply_topics(bootstrap, catalog_for(settings)):
        print(f"# topic {result.outcome}: {result.name}", file=sys.stderr)
    for party, ids in (("clinic", args.clinic), ("org", args.org)):
        for party_id in ids or []:
            topics = topics_for(settings)
            specs = (
                topics.clinic_catalog(party_id)
                if party == "clinic"
                else topics.org_catalog(party_id)
            )
            apply_topics(bootstrap, specs)
            print(f"# provisioned {party} {party_id}", file=sys.stderr)
    print(
        "# worker starting; Ctrl-C stops it ('refnet dev down' stops the broker and database)",
        file=sys.stderr,
        flush=True,
    )
    return run_worker(settings, bootstrap)


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

    provision = sub.add_parser("provision", help="create a party's topics")
    provision.add_argument("party", choices=["clinic", "org"])
    provision.add_argument("id", help="clinic_id or org_id: [a-z0-9][a-z0-9-]{1,62}")
    provision.set_defaults(func=cmd_provision)

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

    from deploy import report

    report.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        return int(args.func(settings, args))
    except (CliError, SettingsError, BrokerError, DatabaseError, InvalidPartyId) as exc:
        print(f"refnet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from connectors.kafka_admin import AdminError

        if isinstance(exc, AdminError):
            print(f"refnet: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
