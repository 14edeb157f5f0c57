"""``refnet dev up|down|status``: the embedded Kafka broker and PostgreSQL."""

from __future__ import annotations

import argparse
import sys

from deploy.cli.common import Subparsers, env_line, print_env
from deploy.environment import CliError, broker_for, database_for, kafka_lines
from deploy.settings import Settings


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
        print_env(kafka_lines(settings, broker, state))
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


def register(sub: Subparsers) -> None:
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
