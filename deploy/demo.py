"""``refnet demo``: the whole network working, on one machine, in about a minute.

It starts the embedded Kafka broker and PostgreSQL as ``refnet run`` does (or
uses REFNET_KAFKA_BOOTSTRAP / REFNET_DATABASE_URL), creates the network's topics
under a prefix of its own (``demo<hex>``, so it never touches a real
directory), imports the bundled Dallas sample region with
``refnet directory import``'s code, provisions four clinics, runs a real
``refnet worker`` process and plays every clinic and organization
(:mod:`deploy.demo_parties`) with time compressed by ``--speed``: services'
response SLAs, the worker's default SLA and idle expiry, and the
organizations' delays are divided by it.

On the way out (the end of ``--duration``, or Ctrl-C) it stops the worker,
deletes the demo's topics and consumer groups, stops the broker and the
database if it started them (``--keep`` leaves them and the topics), and prints
the summary; ``--json`` prints it as exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import TypeAdapter

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from deploy.demo_live import (
    DemoError,
    DemoOptions,
    Output,
    Run,
    Simulation,
    print_summary,
    render,
)
from deploy.demo_parties import SAMPLE_REGION, DemoConfig, Tally
from deploy.settings import Settings
from schemas.topics import Topics

if TYPE_CHECKING:
    from deploy.provision import Access, Admin

#: The worker's default response SLA and idle expiry, before compression.
NETWORK_DEFAULT_SLA: Final = timedelta(hours=24)
NETWORK_IDLE_EXPIRY: Final = timedelta(days=30)
#: Shortest response window after compression (the worker checks deadlines every 0.1 s).
MIN_WINDOW: Final = timedelta(milliseconds=500)
#: The database of the demo's ledger, recreated on the same server by each run.
DEMO_DATABASE: Final = "refnet_demo"
_DURATION: Final[TypeAdapter[timedelta]] = TypeAdapter(timedelta)


class _Stopped(Exception):
    """Ctrl-C during the setup."""


def scaled(value: timedelta, speed: float) -> timedelta:
    """A network duration compressed by ``speed``, never under :data:`MIN_WINDOW`."""
    shrunk = timedelta(seconds=round(value.total_seconds() / speed, 3))
    return max(shrunk, MIN_WINDOW)


def _iso(value: timedelta) -> str:
    return str(_DURATION.dump_python(value, mode="json"))


# ---------------------------------------------------------------- setup
def start_services(settings: Settings, run: Run, output: Output) -> str:
    """The broker and the database, as ``refnet run`` starts them (or the configured ones)."""
    from deploy.cli import broker_for, database_for

    if settings.kafka_bootstrap:
        output.say(f"using the Kafka at {settings.kafka_bootstrap} (REFNET_KAFKA_BOOTSTRAP)")
    else:
        broker = broker_for(settings)
        run.started_broker = broker.state() is None
        if run.started_broker:
            output.say(
                "starting the embedded Kafka broker (the first time, Maven fetches Kafka "
                f"{settings.kafka_version}: a minute or two)"
            )
        broker.start()
    if settings.database_url:
        url = settings.database_url
        output.say("using the PostgreSQL of REFNET_DATABASE_URL")
    else:
        database = database_for(settings)
        run.started_database = database.url() is None
        if run.started_database:
            output.say("starting the embedded PostgreSQL")
        url = database.start()
    return url


async def demo_database(url: str, output: Output) -> str | None:
    """A database of the demo's own on the same server (recreated), for the worker's ledger."""
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=15)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {DEMO_DATABASE} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {DEMO_DATABASE}")
        finally:
            await conn.close()
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        output.say(f"no database of its own ({type(exc).__name__}): the demo's ledger is not kept")
        return None
    return urlunsplit(urlsplit(url)._replace(path=f"/{DEMO_DATABASE}"))


def load_region(speed: float) -> tuple[Any, dict[str, str]]:
    """The sample region, mapped by the importer, with response SLAs compressed."""
    from deploy.directory import ImportOptions, load

    conversion = load(ImportOptions(paths=(SAMPLE_REGION,)))
    services = []
    for service in conversion.services:
        sla = service.event.response_sla
        if sla is not None:
            event = service.event.model_copy(update={"response_sla": scaled(sla, speed)})
            service = dataclasses.replace(service, event=event)
        services.append(service)
    conversion.services = services
    return conversion, dict(conversion.organizations)


def worker_env(
    settings: Settings, run: Run, database_url: str | None, speed: float
) -> dict[str, str]:
    """The worker's environment: the user's settings, the demo's topics and compressed time."""
    assert run.topics is not None and run.work_dir is not None
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REFNET_METRICS_PORT", "REFNET_FAILPOINT", "REFNET_DATABASE_URL")
    }
    env.update(
        REFNET_KAFKA_BOOTSTRAP=run.worker_bootstrap or run.bootstrap or "",
        REFNET_TOPIC_PREFIX=run.topics.prefix,
        REFNET_PARTITIONS=str(run.topics.partitions),
        REFNET_REPLICATION_FACTOR=str(run.topics.replication_factor),
        REFNET_APP_ID=run.app_id,
        REFNET_DATA_DIR=str(run.work_dir),
        REFNET_CACHE_DIR=str(settings.cache_dir),
        REFNET_TIMER_INTERVAL="0.1",
        REFNET_PATTERN_REFRESH="1",
        REFNET_DEFAULT_RESPONSE_SLA=_iso(scaled(NETWORK_DEFAULT_SLA, speed)),
        REFNET_REFERRAL_IDLE_EXPIRY=_iso(scaled(NETWORK_IDLE_EXPIRY, speed)),
        REFNET_LOG_LEVEL="info",
    )
    if database_url is not None:
        env["REFNET_DATABASE_URL"] = database_url
    if run.worker_credentials is not None:  # the secure embedded Kafka's network principal
        env["REFNET_KAFKA_CREDENTIALS"] = str(run.worker_credentials)
    return env


def start_worker(run: Run, env: dict[str, str]) -> None:
    assert run.work_dir is not None
    run.worker_log = run.work_dir / "worker.log"
    with run.worker_log.open("ab") as log:
        run.worker = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(run: Run, timeout: float = 15.0) -> None:
    """SIGTERM the worker's process group, then SIGKILL what is left; wait for it."""
    proc = run.worker
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # anything it started
        os.killpg(proc.pid, signal.SIGKILL)


def delete_demo_topics(run: Run, auth: KafkaAuth) -> int:
    """Delete the demo's topics and consumer groups; return how many topics went."""
    from connectors.kafka.admin import admin_client

    if run.bootstrap is None or run.topics is None:
        return 0
    admin = admin_client(run.bootstrap, auth)
    names = [
        name
        for name in admin.list_topics(timeout=15).topics
        if name.startswith(f"{run.topics.prefix}.") or name.startswith(f"{run.app_id}-")
    ]
    deleted = 0
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
                deleted += 1
    groups = [run.app_id, f"{run.app_id}-ingress", f"{run.app_id}-ledger"]
    with contextlib.suppress(Exception):
        for future in admin.delete_consumer_groups(groups, request_timeout=15).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15)
    return deleted


# ---------------------------------------------------------------- the command
async def run_demo(settings: Settings, options: DemoOptions) -> int:
    output = Output(options.json)
    # aiokafka logs the broker's transient answers about brand-new topics (not the
    # leader yet) as errors, and retries: noise in a demo's terminal.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    seed = options.seed if options.seed is not None else secrets.randbelow(10**6)
    run = Run(token=secrets.token_hex(3))
    run.app_id = f"refnet-demo{run.token}"
    run.topics = Topics(
        prefix=f"demo{run.token}", partitions=3, replication_factor=settings.replication_factor
    )
    auth = PLAINTEXT  # until the broker is known
    sim: Simulation | None = None
    failure: str | None = None
    live = None
    try:
        config = DemoConfig.load()
        database_url = await asyncio.to_thread(start_services, settings, run, output)
        demo_settings = settings.with_overrides(
            topic_prefix=run.topics.prefix, app_id=run.app_id, partitions=run.topics.partitions
        )
        admin, worker_access = await asyncio.to_thread(kafka_for, settings, demo_settings)
        run.work_dir = settings.data_dir / "demo" / run.token
        run.work_dir.mkdir(parents=True, exist_ok=True)
        # the demo's parties' credentials (a secure broker) live in its own directory,
        # never beside the real parties' files
        admin = dataclasses.replace(admin, data_dir=run.work_dir)
        run.admin = admin
        run.bootstrap, auth = admin.bootstrap, admin.auth
        run.worker_bootstrap = worker_access.bootstrap
        run.worker_credentials = worker_access.credentials
        if stop.is_set():
            raise _Stopped
        sim = await _prepare(demo_settings, run, admin, config, options, seed, database_url, output)
        if not options.json:
            from rich.live import Live

            live = Live(
                render(sim, options, "starting"),
                console=output.console,
                refresh_per_second=4,
                transient=False,
            )
            live.start()
        last_line = [0.0]

        def tick() -> None:
            phase = (
                "running"
                if sim is not None and sim.started_at is not None
                else ("waiting for the worker to answer")
            )
            if live is not None:
                live.update(render(sim, options, phase))
            elif (
                sim is not None
                and sim.started_at is not None
                and (sim.elapsed() - last_line[0] >= 5)
            ):
                last_line[0] = sim.elapsed()
                s = sim.tally.summary()
                output.say(
                    f"{sim.elapsed():.0f} s: {s['screenings']} screenings, {s['offers']} "
                    f"offers, {s['accepted']} accepted, {s['completed']} completed"
                )

        await sim.run_until(stop, tick)
    except _Stopped:
        pass
    except DemoError as exc:
        failure = str(exc)
    except Exception as exc:
        if not isinstance(exc, _expected_errors()):
            raise
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        if live is not None:
            live.update(render(sim, options, "stopping"))
            live.stop()
            if not output.console.is_terminal:
                output.console.print()
        _cleanup(settings, run, auth, options, output, failed=failure is not None)
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    interrupted = stop.is_set()
    tally = sim.tally if sim is not None else Tally()
    print_summary(tally, options, seed, output, interrupted=interrupted)
    if failure is not None:
        print(f"refnet demo: {failure}", file=sys.stderr)
        return 1
    return 130 if interrupted else 0


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures the demo reports in a line (a broker that cannot start, Kafka refusing...)."""
    from aiokafka.errors import KafkaError

    from connectors.kafka.admin import AdminError
    from deploy import cli
    from deploy.directory import DirectoryError
    from deploy.local.broker import BrokerError
    from deploy.local.database import DatabaseError
    from deploy.provision import ProvisionError

    found: list[type[BaseException]] = [AdminError, BrokerError, DatabaseError, DirectoryError]
    found += [KafkaError, OSError, ProvisionError, cli.CliError]
    # `python -m deploy.cli` runs the CLI as __main__: its CliError is another class
    main_error = getattr(sys.modules.get("__main__"), "CliError", None)
    if isinstance(main_error, type) and issubclass(main_error, BaseException):
        found.append(main_error)
    return tuple(found)


def kafka_for(settings: Settings, demo_settings: Settings) -> tuple[Admin, Access]:
    """The admin calls' access and the worker's, as ``refnet run`` makes them.

    On a secure embedded Kafka, the network's principal is made for the user's
    settings (never the demo's: its credentials file is the network's own), and
    :func:`deploy.cli.apply_network` grants it the demo's topics.
    """
    from deploy.cli import broker_for, kafka_lines, resolve_kafka
    from deploy.provision import admin_for

    broker = broker_for(settings)
    state = broker.state()
    if not settings.kafka_bootstrap and state is not None and state.secure:
        kafka_lines(settings, broker, state)
    return admin_for(demo_settings, broker_for(demo_settings)), resolve_kafka(demo_settings)


async def _prepare(
    demo_settings: Settings,
    run: Run,
    admin: Admin,
    config: DemoConfig,
    options: DemoOptions,
    seed: int,
    database_url: str,
    output: Output,
) -> Simulation:
    from deploy.cli import apply_network
    from deploy.directory import plan, provision, publish
    from deploy.provision import provision_party

    assert run.topics is not None
    topics = run.topics
    await asyncio.to_thread(apply_network, demo_settings, admin)
    for clinic in config.clinics:
        await asyncio.to_thread(provision_party, admin, topics, "clinic", clinic.id)
        run.parties.append(("clinic", clinic.id))
    output.say(
        f"topics under the prefix {topics.prefix}; {len(config.clinics)} clinics provisioned"
    )
    conversion, org_names = load_region(options.speed)
    run.parties += [("org", org_id) for org_id in sorted(org_names)]
    await asyncio.to_thread(provision, admin, topics, sorted(org_names))
    changes = plan(conversion, {}, source="demo", prune=False)
    await asyncio.to_thread(
        publish,
        admin.bootstrap,
        topics.directory,
        changes,
        source="demo",
        transactional_id=f"refnet-demo.{topics.prefix}",
        auth=admin.auth,
    )
    output.say(
        f"imported the Dallas sample region: {len(conversion.services)} services of "
        f"{len(org_names)} organizations ({len(conversion.unmapped)} could not be mapped: "
        f"{', '.join(u.name for u in conversion.unmapped) or 'none'})"
    )
    ledger = await demo_database(database_url, output)
    start_worker(run, worker_env(demo_settings, run, ledger, options.speed))
    output.say(
        f"worker started (pid {run.worker.pid if run.worker else '?'}, log "
        f"{run.worker_log}); seed {seed}"
    )
    return Simulation(run, admin.auth, config, options, seed, conversion, org_names)


def _revoke_network_rules(run: Run) -> None:
    """The rules that granted the network's principal the demo's topics and groups."""
    from confluent_kafka.admin import AclBindingFilter  # type: ignore[attr-defined]

    from connectors.kafka.admin import admin_client
    from deploy.provision import network_acls

    admin, topics = run.admin, run.topics
    if admin is None or topics is None or admin.network_user is None:
        return
    rules = network_acls(topics, run.app_id, admin.network_user)
    filters = []
    for rule in rules:
        if rule.resource == "cluster":  # idempotent writes: the real network needs that
            continue
        b = rule.binding()
        filters.append(
            AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                             b.operation, b.permission_type)
        )  # fmt: skip
    client = admin_client(admin.bootstrap, admin.auth)  # alive until the answers come
    for future in client.delete_acls(filters, request_timeout=30).values():
        future.result(timeout=30)


def _cleanup(
    settings: Settings,
    run: Run,
    auth: KafkaAuth,
    options: DemoOptions,
    output: Output,
    *,
    failed: bool,
) -> None:
    """Stop what the demo started: always the worker; the rest unless --keep.

    The worker's files (its log) stay after a failure, to be read.
    """
    from deploy.cli import broker_for, database_for

    stop_worker(run)
    if options.keep:
        output.say(
            f"kept (--keep): topics {run.topics.prefix if run.topics else ''}.*, the "
            "broker and the database ('refnet dev down' stops them)"
        )
        return
    if run.admin is not None and run.admin.auth.sasl and run.topics is not None:
        from deploy.provision import deprovision_party

        try:  # a secure broker: the demo's parties' SCRAM users and ACLs go
            for kind, party_id in run.parties:
                deprovision_party(run.admin, run.topics, kind, party_id, keep_topics=True)
            _revoke_network_rules(run)
            output.say(f"revoked the credentials of the demo's {len(run.parties)} parties")
        except Exception as exc:  # noqa: BLE001 - reported; the topics still go below
            output.say(f"could not revoke the demo's credentials ({type(exc).__name__}: {exc})")
    if run.bootstrap is not None:
        try:
            deleted = delete_demo_topics(run, auth)
            output.say(f"deleted the demo's {deleted} topics")
        except Exception as exc:  # noqa: BLE001 - best effort: the demo's prefix is unique
            output.say(f"could not delete the demo's topics ({type(exc).__name__})")
    if run.started_broker:
        broker_for(settings).stop()
        output.say("stopped the embedded Kafka broker it started")
    if run.started_database:
        database_for(settings).stop()
        output.say("stopped the embedded PostgreSQL it started")
    if run.work_dir is not None and not failed:
        shutil.rmtree(run.work_dir, ignore_errors=True)


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value <= 0:
            raise argparse.ArgumentTypeError("must be a positive number")
        return value

    return parse


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    options = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        speed=args.speed,
        json=args.json,
        keep=args.keep,
    )
    return asyncio.run(run_demo(settings, options))


def register(subparsers: Any) -> None:
    """Add ``refnet demo`` to the CLI."""
    demo = subparsers.add_parser(
        "demo",
        help="see the whole network work: a sample region, clinics and organizations simulated",
        description=(
            "Start the embedded broker and database (or use the configured ones), import the "
            "Dallas sample region, provision its clinics, run a worker and simulate every "
            "party with time compressed; show live progress and end with a summary."
        ),
    )
    demo.add_argument(
        "--duration",
        type=_positive(float),
        default=45.0,
        help="seconds of simulation once the worker answers (default: %(default)s)",
    )
    demo.add_argument(
        "--rate",
        type=_positive(float),
        default=2.0,
        help="screenings per second (default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed of the screenings and decisions (default: random)",
    )
    demo.add_argument(
        "--speed",
        type=_positive(float),
        default=14400.0,
        help="network seconds per real second (default: %(default)s, 4 hours)",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print only the summary, as one JSON object (progress on stderr)",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="leave the demo's topics, the broker and the database in place",
    )
    demo.set_defaults(func=cmd_demo)


__all__ = ["DemoError", "DemoOptions", "cmd_demo", "register", "run_demo"]
