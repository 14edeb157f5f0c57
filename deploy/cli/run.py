"""``refnet worker`` (one network worker) and ``refnet run`` (everything on one machine)."""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import Subparsers, env_line, print_env
from deploy.environment import (
    admin_of,
    apply_network,
    broker_for,
    database_for,
    kafka_lines,
    resolve_database,
    resolve_kafka,
    topics_for,
)
from deploy.provision.parties import provision_party
from deploy.provision.principals import PartyKind
from deploy.settings import Settings


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
    admin = admin_of(settings)
    print_env(lines or [("REFNET_KAFKA_BOOTSTRAP", worker.bootstrap)])
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


def register(sub: Subparsers) -> None:
    sub.add_parser("worker", help="run one network worker (Faust)").set_defaults(func=cmd_worker)
    run = sub.add_parser(
        "run", help="run the network: embedded broker and database, topics, a worker"
    )
    run.add_argument("--clinic", action="append", help="also provision this clinic (repeatable)")
    run.add_argument("--org", action="append", help="also provision this organization (repeatable)")
    run.set_defaults(func=cmd_run)
