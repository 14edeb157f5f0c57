"""The demo at work: the simulated parties over Kafka, and what the terminal shows.

:class:`Simulation` is the asyncio shell around :mod:`deploy.demo_parties`:
clinics submit screenings at ``--rate``, organizations answer the offers on their
topics after their (compressed) delays, and the :class:`~deploy.demo_parties.Tally`
reads the network's event log. :func:`render` draws the live panel (rich) and
:func:`print_summary` the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from connectors.kafka.auth import KafkaAuth
from deploy.demo_parties import Action, Clinics, DemoConfig, Organizations, Tally
from schemas.events import (
    ReferralOffered,
    ReferralStateChanged,
    ReferralWithdrawn,
    ScreeningScored,
    from_bytes,
    to_bytes,
)
from schemas.topics import Topics

if TYPE_CHECKING:
    from deploy.provision import Admin, PartyKind

#: Clinics screen during this share of --duration; the rest lets referrals progress.
SCREENING_SHARE: Final = 0.75
#: How long the worker may take to answer its first screening.
STARTUP_TIMEOUT: Final = 180.0


class DemoError(RuntimeError):
    """The demo could not run (the message says why)."""


@dataclass(frozen=True)
class DemoOptions:
    duration: float = 45.0
    rate: float = 2.0
    seed: int | None = None
    speed: float = 14400.0
    json: bool = False
    keep: bool = False


@dataclass
class Run:
    """What this run started, so that it can stop exactly that."""

    token: str
    started_broker: bool = False
    started_database: bool = False
    #: where the demo's own clients (admin calls, simulated parties) reach Kafka
    bootstrap: str | None = None
    #: the admin calls' access (its data_dir: the demo's own, for credentials files)
    admin: Admin | None = None
    #: parties provisioned: (kind, id)
    parties: list[tuple[PartyKind, str]] = field(default_factory=list)
    #: where the worker reaches Kafka, and its credentials file on a secure broker
    worker_bootstrap: str | None = None
    worker_credentials: Path | None = None
    worker: subprocess.Popen[bytes] | None = None
    worker_log: Path | None = None
    work_dir: Path | None = None
    topics: Topics | None = None
    app_id: str = ""


# ---------------------------------------------------------------- output
class Output:
    """Progress for people: rich on a terminal (stdout), plain lines on stderr with --json."""

    def __init__(self, as_json: bool) -> None:
        from rich.console import Console

        self.as_json = as_json
        self.console = Console(stderr=as_json, highlight=False)

    def say(self, text: str) -> None:
        if self.as_json:
            print(f"# {text}", file=sys.stderr, flush=True)
        else:
            self.console.print(f"[dim]·[/dim] {text}")


# ---------------------------------------------------------------- the parties at work
class Simulation:
    """Clinics submit, organizations answer, the tally reads the event log."""

    def __init__(
        self,
        run: Run,
        auth: KafkaAuth,
        config: DemoConfig,
        options: DemoOptions,
        seed: int,
        conversion: Any,
        org_names: dict[str, str],
    ) -> None:
        assert run.topics is not None
        self.run = run
        self.topics = run.topics
        self.auth = auth
        self.options = options
        self.org_names = org_names
        # ids follow from the seed, so that the organizations decide alike on every run
        self.clinics = Clinics(config, seed, token=f"s{seed}", today=datetime.now(UTC).date())
        services = [s.event for s in conversion.services]
        self.orgs = Organizations(services, org_names, config, seed=seed, speed=options.speed)
        self.report_every = (
            float(config.organizations["capacity_report_hours"]) * 3600 / options.speed
        )
        self.tally = Tally()
        self.withdrawn: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.network_up = asyncio.Event()
        self.started_at: float | None = None
        self.rng = random.Random(f"{seed}:arrivals")

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    async def run_until(self, stop: asyncio.Event, on_tick: Callable[[], None]) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

        kafka = self.auth.aiokafka()
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.run.bootstrap, acks="all", enable_idempotence=True, **kafka
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.run.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **kafka,
        )
        await self.producer.start()
        await consumer.start()
        try:
            names = [self.topics.referral_events, self.topics.screenings]
            names += [self.topics.org_referrals(org) for org in self.org_names]
            partitions = [  # the demo created them all with this count
                TopicPartition(name, p) for name in names for p in range(self.topics.partitions)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._spawn(self._read(consumer))
            await self._submit_one()
            await self._wait_for_network(stop, on_tick)
            self._spawn(self._screen(stop))
            self._spawn(self._report_capacity())
            while not stop.is_set() and self.elapsed() < self.options.duration:
                self._check_worker()
                on_tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.25)
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await consumer.stop()
            await self.producer.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _check_worker(self) -> None:
        proc = self.run.worker
        if proc is not None and proc.poll() is not None:
            raise DemoError(
                f"the worker exited with status {proc.returncode}; its log: {self.run.worker_log}"
            )

    async def _wait_for_network(self, stop: asyncio.Event, on_tick: Callable[[], None]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.network_up.is_set():
            if stop.is_set():
                return
            self._check_worker()
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the worker did not answer within {STARTUP_TIMEOUT:.0f} s; its "
                    f"log: {self.run.worker_log}"
                )
            on_tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.network_up.wait(), timeout=0.25)
        self.started_at = time.monotonic()

    async def _submit_one(self) -> None:
        screening = self.clinics.next(datetime.now(UTC))
        topic = self.topics.clinic_submissions(screening.clinic_id)
        await self.producer.send_and_wait(
            topic, to_bytes(screening.event), key=screening.event.patient.id.encode()
        )
        self.tally.screenings += 1
        if screening.narrowed_later is not None:
            later = screening.narrowed_later
            self._spawn(
                self._send_later(self.rng.uniform(1.0, 3.0), topic, later.patient_id, later)
            )

    async def _screen(self, stop: asyncio.Event) -> None:
        until = self.options.duration * SCREENING_SHARE
        while not stop.is_set() and self.elapsed() < until:
            await asyncio.sleep(self.rng.expovariate(self.options.rate))
            if self.elapsed() < until:
                await self._submit_one()

    async def _send_later(self, delay: float, topic: str, key: str, event: Any) -> None:
        await asyncio.sleep(delay)
        event = event.model_copy(update={"occurred_at": datetime.now(UTC)})
        await self.producer.send_and_wait(topic, to_bytes(event), key=key.encode())

    async def _act(self, action: Action) -> None:
        await asyncio.sleep(action.after)
        key = action.key
        event = action.event
        status = getattr(event, "status", None)
        if status is not None and key in self.withdrawn:
            return  # the network withdrew it: the organization stops work
        topic = self.topics.org_updates(action.topic_org)
        await self._send_later(0.0, topic, key, event)
        if status is not None and status.value in ("completed", "failed"):
            self.orgs.release(key)

    async def _report_capacity(self) -> None:
        while True:
            await asyncio.sleep(self.report_every)
            for action in self.orgs.capacity_reports():
                self._spawn(self._act(action))

    async def _read(self, consumer: Any) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        self._dispatch(record.topic, record.value)

    def _dispatch(self, topic: str, value: bytes) -> None:
        try:
            event = from_bytes(value)
        except ValueError:
            return
        if isinstance(event, ReferralStateChanged):
            self.tally.state_changed(event, org_names=self.org_names)
        elif isinstance(event, ScreeningScored):
            self.tally.scored_screening(len(event.needs))
            self.network_up.set()
        elif isinstance(event, ReferralOffered):
            parsed = self.topics.parse(topic)
            org_id = parsed[1] if parsed else None
            if org_id is not None:
                for action in self.orgs.on_offer(org_id, event):
                    self._spawn(self._act(action))
        elif isinstance(event, ReferralWithdrawn):
            self.withdrawn.add(event.referral_id)
            self.orgs.release(event.referral_id)


# ---------------------------------------------------------------- display
def render(sim: Simulation | None, options: DemoOptions, phase: str) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    hours_per_second = options.speed / 3600
    if sim is None or sim.started_at is None:
        title = f"refnet demo · {phase}"
        return Panel(title, border_style="cyan")
    tally = sim.tally
    summary = tally.summary()
    counts = Table.grid(padding=(0, 2))
    counts.add_column(justify="left")
    counts.add_column(justify="right")
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(tally.rejected.items()))
    rows = [
        ("screenings", str(summary["screenings"])),
        ("needs", str(summary["needs"])),
        ("offers", str(summary["offers"])),
        ("accepted", str(summary["accepted"])),
        ("rejected", f"{summary['rejected']}" + (f" ({rejected})" if rejected else "")),
        ("timeouts", str(summary["timeouts"])),
        ("completed", str(summary["completed"])),
        ("unmatched", str(sum(tally.unmatched.values()))),
        ("consent required", str(tally.consent_required)),
        ("loop closure", f"{summary['loop_closure_rate']:.0%}"),
        ("median time to accept", _accept_text(summary["median_time_to_accept_s"], options.speed)),
    ]
    for name, value in rows:
        counts.add_row(name, value)
    by_category = Table(box=None, padding=(0, 1), show_edge=False)
    by_category.add_column("category", no_wrap=True)
    for _, head in CATEGORY_COLUMNS:
        by_category.add_column(head, justify="right")
    for category, counter in sorted(tally.by_category.items()):
        by_category.add_row(category, *(str(counter[k]) for k, _ in CATEGORY_COLUMNS))
    recent = "\n".join(tally.recent[-6:]) or "..."
    title = (
        f"refnet demo · Dallas sample region · {hours_per_second:g} h of network time per "
        f"second · {min(sim.elapsed(), options.duration):.0f} s of {options.duration:.0f} · "
        f"{phase}"
    )
    return Panel(
        Group(counts, "", by_category, "", f"[dim]{recent}[/dim]"),
        title=title,
        border_style="cyan",
    )


#: Columns of the live table by category: the tally's key, and the heading.
CATEGORY_COLUMNS: Final = (
    ("offered", "offers"),
    ("accepted", "acc."),
    ("rejected", "rej."),
    ("timeouts", "t/o"),
    ("completed", "done"),
    ("unmatched", "unm."),
)
#: How the summary's keys read in the terminal.
SUMMARY_LABELS: Final = {
    "loop_closure_rate": "loop-closure rate",
    "median_time_to_accept_s": "median time to accept",
}


def _accept_text(seconds: float | None, speed: float) -> str:
    if seconds is None:
        return "-"
    network = timedelta(seconds=seconds * speed)
    return f"{seconds:.1f} s (≈ {network.total_seconds() / 3600:.1f} h of network time)"


def print_summary(
    tally: Tally, options: DemoOptions, seed: int, output: Output, *, interrupted: bool
) -> None:
    summary = tally.summary()
    if options.json:
        print(json.dumps(summary), flush=True)
        return
    from rich.table import Table

    table = Table(
        title="refnet demo: summary" + (" (interrupted)" if interrupted else ""),
        show_header=False,
        title_justify="left",
    )
    table.add_column("what")
    table.add_column("", justify="right")
    for key, value in summary.items():
        if key == "unmatched":
            shown = ", ".join(f"{k} {v}" for k, v in value.items()) or "0"
        elif key == "loop_closure_rate":
            shown = f"{value:.0%}"
        elif key == "median_time_to_accept_s":
            shown = _accept_text(value, options.speed)
        else:
            shown = str(value)
        table.add_row(SUMMARY_LABELS.get(key, key), shown)
    output.console.print(table)
    output.console.print(
        f"[dim]seed {seed} · loop closure: the share of referrals offered to an organization "
        "whose organization reported the outcome (completed or failed) before the end; "
        "time to accept counts from the referral's first offer[/dim]"
    )


__all__ = [
    "CATEGORY_COLUMNS",
    "DemoError",
    "DemoOptions",
    "Output",
    "Run",
    "Simulation",
    "print_summary",
    "render",
]
