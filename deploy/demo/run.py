"""``refnet demo``: the whole network working, on one machine, in about a minute.

It starts the embedded Kafka broker and PostgreSQL as ``refnet run`` does (or
uses REFNET_KAFKA_BOOTSTRAP / REFNET_DATABASE_URL), creates the network's topics
under a prefix of its own (``demo<hex>``, so it never touches a real
directory), imports the bundled Dallas sample region with
``refnet directory import``'s code, provisions four clinics, runs a real
``refnet worker`` process and plays every clinic and organization with time
compressed by ``--speed`` (:mod:`deploy.demo.setup`).

On the way out (the end of ``--duration``, or Ctrl-C) it stops the worker,
deletes the demo's topics and consumer groups, stops the broker and the
database if it started them (``--keep`` leaves them and the topics), and prints
the summary; ``--json`` prints it as exactly one JSON object on stdout
(:mod:`deploy.demo.teardown`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import signal
import sys
from typing import Any

from connectors.kafka.admin import AdminError
from connectors.kafka.auth import PLAINTEXT
from deploy.demo.config import DemoConfig
from deploy.demo.display import Output, print_summary, render
from deploy.demo.setup import kafka_for, prepare, start_services
from deploy.demo.simulation import DemoError, DemoOptions, Run, Simulation
from deploy.demo.tally import Tally
from deploy.demo.teardown import cleanup
from deploy.settings import Settings
from schemas.errors import RefnetError
from schemas.topics import Topics

#: The signals that stop the demo (as its end would).
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(Exception):
    """Ctrl-C during the setup."""


async def run_demo(settings: Settings, options: DemoOptions) -> int:
    output = Output(options.json)
    # aiokafka logs the broker's transient answers about brand-new topics (not the
    # leader yet) as errors, and retries: noise in a demo's terminal.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in SIGNALS:
        loop.add_signal_handler(number, stop.set)
    seed = options.seed if options.seed is not None else secrets.randbelow(10**6)
    run = _new_run(settings)
    progress = _Progress(options, output)
    failure: str | None = None
    try:
        config = DemoConfig.load()
        demo_settings, database_url = await _connect(settings, run, output)
        if stop.is_set():
            raise _Stopped
        assert run.admin is not None
        sim = await prepare(
            demo_settings, run, run.admin, config, options, seed, database_url, output
        )
        progress.start(sim)
        await sim.run_until(stop, progress.tick)
    except _Stopped:
        pass
    except DemoError as exc:
        failure = str(exc)
    except Exception as exc:
        if not isinstance(exc, _expected_errors()):
            raise
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        progress.stop()
        auth = run.admin.auth if run.admin is not None else PLAINTEXT
        cleanup(settings, run, auth, options, output, failed=failure is not None)
        for number in SIGNALS:
            loop.remove_signal_handler(number)
    interrupted = stop.is_set()
    tally = progress.sim.tally if progress.sim is not None else Tally()
    print_summary(tally, options, seed, output, interrupted=interrupted)
    if failure is not None:
        print(f"refnet demo: {failure}", file=sys.stderr)
        return 1
    return 130 if interrupted else 0


def _new_run(settings: Settings) -> Run:
    """A run with a token of its own: its app id and topics' prefix."""
    run = Run(token=secrets.token_hex(3))
    run.app_id = f"refnet-demo{run.token}"
    run.topics = Topics(
        prefix=f"demo{run.token}", partitions=3, replication_factor=settings.replication_factor
    )
    return run


async def _connect(settings: Settings, run: Run, output: Output) -> tuple[Settings, str]:
    """Start (or find) the broker and database; the demo's settings and the database's URL.

    The run learns where it, and its worker, reach Kafka, and its own work directory.
    """
    assert run.topics is not None
    database_url = await asyncio.to_thread(start_services, settings, run, output)
    demo_settings = settings.with_overrides(
        topic_prefix=run.topics.prefix, app_id=run.app_id, partitions=run.topics.partitions
    )
    admin, worker_access = await asyncio.to_thread(kafka_for, settings, demo_settings)
    run.work_dir = settings.data_dir / "demo" / run.token
    run.work_dir.mkdir(parents=True, exist_ok=True)
    # the demo's parties' credentials (a secure broker) live in its own directory,
    # never beside the real parties' files
    run.admin = dataclasses.replace(admin, data_dir=run.work_dir)
    run.bootstrap = run.admin.bootstrap
    run.worker_bootstrap = worker_access.bootstrap
    run.worker_credentials = worker_access.credentials
    return demo_settings, database_url


class _Progress:
    """The live panel on a terminal; with ``--json``, a line on stderr every 5 s."""

    def __init__(self, options: DemoOptions, output: Output) -> None:
        self.options = options
        self.output = output
        self.sim: Simulation | None = None
        self.live: Any = None
        self.last_line = 0.0

    def start(self, sim: Simulation) -> None:
        self.sim = sim
        if not self.options.json:
            from rich.live import Live

            self.live = Live(
                render(sim, self.options, "starting"),
                console=self.output.console,
                refresh_per_second=4,
                transient=False,
            )
            self.live.start()

    def tick(self) -> None:
        sim = self.sim
        running = sim is not None and sim.started_at is not None
        if self.live is not None:
            phase = "running" if running else "waiting for the worker to answer"
            self.live.update(render(sim, self.options, phase))
        elif sim is not None and running and sim.elapsed() - self.last_line >= 5:
            self.last_line = sim.elapsed()
            s = sim.tally.summary()
            self.output.say(
                f"{sim.elapsed():.0f} s: {s['screenings']} screenings, {s['offers']} "
                f"offers, {s['accepted']} accepted, {s['completed']} completed"
            )

    def stop(self) -> None:
        if self.live is not None:
            self.live.update(render(self.sim, self.options, "stopping"))
            self.live.stop()
            if not self.output.console.is_terminal:
                self.output.console.print()


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Failures the demo reports in a line (a broker that cannot start, Kafka refusing...)."""
    from aiokafka.errors import KafkaError

    return (RefnetError, AdminError, KafkaError, OSError)
