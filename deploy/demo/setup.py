"""Setting the demo up: its services, database, topics, parties, directory and worker.

Time is compressed by ``--speed``: services' response SLAs, the worker's default
SLA and idle expiry, and the organizations' delays are divided by it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import TypeAdapter

from connectors.kafka.admin import apply_topics
from deploy.demo.config import SAMPLE_REGION, DemoConfig
from deploy.demo.display import Output
from deploy.demo.hospital import FACILITY_ID
from deploy.demo.simulation import DemoOptions, Run, Simulation
from deploy.directory.importer import ImportOptions, load, provision
from deploy.directory.kafka import publish
from deploy.directory.plan import plan
from deploy.environment import (
    apply_network,
    broker_for,
    database_for,
    kafka_lines,
    resolve_kafka,
)
from deploy.launcher import start_worker
from deploy.launcher import worker_env as launcher_env
from deploy.provision.access import Access, admin_for
from deploy.provision.parties import Admin, provision_party
from deploy.settings import Settings

#: The worker's default response SLA and idle expiry, before compression.
NETWORK_DEFAULT_SLA: Final = timedelta(hours=24)
NETWORK_IDLE_EXPIRY: Final = timedelta(days=30)
#: Shortest response window after compression (the worker checks deadlines every 0.1 s).
MIN_WINDOW: Final = timedelta(milliseconds=500)
#: The database of the demo's ledger, recreated on the same server by each run.
DEMO_DATABASE: Final = "refnet_demo"
_DURATION: Final[TypeAdapter[timedelta]] = TypeAdapter(timedelta)


def scaled(value: timedelta, speed: float) -> timedelta:
    """A network duration compressed by ``speed``, never under :data:`MIN_WINDOW`."""
    shrunk = timedelta(seconds=round(value.total_seconds() / speed, 3))
    return max(shrunk, MIN_WINDOW)


def _iso(value: timedelta) -> str:
    return str(_DURATION.dump_python(value, mode="json"))


# ---------------------------------------------------------------- setup
def start_services(settings: Settings, run: Run, output: Output) -> str:
    """The broker and the database, as ``refnet run`` starts them (or the configured ones)."""
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
    demo = {
        "REFNET_KAFKA_BOOTSTRAP": run.worker_bootstrap or run.bootstrap or "",
        "REFNET_TOPIC_PREFIX": run.topics.prefix,
        "REFNET_PARTITIONS": str(run.topics.partitions),
        "REFNET_REPLICATION_FACTOR": str(run.topics.replication_factor),
        "REFNET_APP_ID": run.app_id,
        "REFNET_DATA_DIR": str(run.work_dir),
        "REFNET_CACHE_DIR": str(settings.cache_dir),
        "REFNET_TIMER_INTERVAL": "0.1",
        "REFNET_PATTERN_REFRESH": "1",
        "REFNET_DEFAULT_RESPONSE_SLA": _iso(scaled(NETWORK_DEFAULT_SLA, speed)),
        "REFNET_REFERRAL_IDLE_EXPIRY": _iso(scaled(NETWORK_IDLE_EXPIRY, speed)),
        "REFNET_LOG_LEVEL": "info",
    }
    if database_url is not None:
        demo["REFNET_DATABASE_URL"] = database_url
    if run.worker_credentials is not None:  # the secure embedded Kafka's network principal
        demo["REFNET_KAFKA_CREDENTIALS"] = str(run.worker_credentials)
    return launcher_env(
        demo,
        inherit_refnet=True,
        drop=("REFNET_METRICS_PORT", "REFNET_FAILPOINT", "REFNET_DATABASE_URL"),
    )


def free_port() -> int:
    """A TCP port free on this machine now (the listener binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_listener(env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    """``refnet mllp --port PORT`` (the hospital's door), with the worker's settings."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "deploy.cli", "mllp", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kafka_for(settings: Settings, demo_settings: Settings) -> tuple[Admin, Access]:
    """The admin calls' access and the worker's, as ``refnet run`` makes them.

    On a secure embedded Kafka, the network's principal is made for the user's
    settings (never the demo's: its credentials file is the network's own), and
    :func:`deploy.environment.apply_network` grants it the demo's topics.
    """
    broker = broker_for(settings)
    state = broker.state()
    if not settings.kafka_bootstrap and state is not None and state.secure:
        kafka_lines(settings, broker, state)
    return admin_for(demo_settings, broker_for(demo_settings)), resolve_kafka(demo_settings)


async def prepare(
    demo_settings: Settings,
    run: Run,
    admin: Admin,
    config: DemoConfig,
    options: DemoOptions,
    seed: int,
    database_url: str,
    output: Output,
) -> Simulation:
    """Topics, clinics, the sample region's organizations and directory, a ledger, a worker."""
    assert run.topics is not None and run.work_dir is not None
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
    run.worker_log = run.work_dir / "worker.log"
    run.worker = start_worker(worker_env(demo_settings, run, ledger, options.speed), run.worker_log)
    output.say(
        f"worker started (pid {run.worker.pid if run.worker else '?'}, log "
        f"{run.worker_log}); seed {seed}"
    )
    await asyncio.to_thread(
        apply_topics, admin.bootstrap, topics.facility_catalog(FACILITY_ID), auth=admin.auth
    )
    run.listener_port = free_port()
    run.listener_log = run.work_dir / "mllp.log"
    env = worker_env(demo_settings, run, ledger, options.speed)
    run.listener = start_listener(env, run.listener_log, run.listener_port)
    output.say(
        f"hospital {FACILITY_ID}: its topics, and an MLLP listener on port {run.listener_port} "
        f"(pid {run.listener.pid}, log {run.listener_log})"
    )
    return Simulation(run, admin.auth, config, options, seed, conversion, org_names)
