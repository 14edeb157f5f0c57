"""The demo at work: the simulated parties over Kafka.

:class:`Simulation` is the asyncio shell around the parties of :mod:`deploy.demo`:
clinics submit screenings at ``--rate``, organizations answer the offers on their
topics after their (compressed) delays, and the :class:`~deploy.demo.tally.Tally`
reads the network's event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from connectors.kafka.auth import KafkaAuth
from connectors.kafka.clients import consumer as kafka_consumer
from connectors.kafka.clients import producer as kafka_producer
from deploy.demo.clinics import Clinics
from deploy.demo.config import DemoConfig
from deploy.demo.hospital import (
    DELAY,
    EMERGENCY,
    VISITS,
    Hospital,
    Visit,
    arrival,
    discharge,
    send,
    stay_of,
)
from deploy.demo.organizations import Action, Organizations
from deploy.demo.tally import Tally
from schemas.codes import TaskStatus
from schemas.errors import RefnetError
from schemas.events import (
    EncounterAlerted,
    ReferralOffered,
    ReferralStateChanged,
    ReferralWithdrawn,
    ScreeningScored,
    from_bytes,
    to_bytes,
)
from schemas.topics import TopicKind, Topics

if TYPE_CHECKING:
    from deploy.provision.parties import Admin
    from deploy.provision.principals import PartyKind


#: Clinics screen during this share of --duration; the rest lets referrals progress.
SCREENING_SHARE: Final = 0.75
#: Longest a hospital stay lasts in the demo, in seconds (3 days at the default speed: 18 s).
MAX_STAY: Final = 20.0
#: How long the worker may take to answer its first screening.
STARTUP_TIMEOUT: Final = 180.0


class DemoError(RefnetError, RuntimeError):
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
    #: the ``refnet mllp`` listener the hospital sends ADT to, where, and its log
    listener: subprocess.Popen[bytes] | None = None
    listener_port: int | None = None
    listener_log: Path | None = None
    work_dir: Path | None = None
    topics: Topics | None = None
    app_id: str = ""


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
        self.clinic_ids = [clinic.id for clinic in config.clinics]
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
        self.hospital = Hospital(
            seed,
            visits=int(config.hospital.get("visits", VISITS)),
            emergency=config.hospital.get("emergency", EMERGENCY),
        )
        #: the clinics' patients (as screening.submitted carries them), for the hospital
        self.patients: dict[str, dict[str, Any]] = {}
        self.listener_down = False

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    async def run_until(self, stop: asyncio.Event, on_tick: Callable[[], None]) -> None:
        from aiokafka import TopicPartition

        assert self.run.bootstrap is not None
        self.producer = kafka_producer(self.run.bootstrap, self.auth)
        consumer = kafka_consumer(
            self.run.bootstrap,
            auth=self.auth,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await self.producer.start()
        await consumer.start()
        try:
            names = [self.topics.referral_events, self.topics.screenings]
            names += [self.topics.org_referrals(org) for org in self.org_names]
            names += [self.topics.clinic_updates(clinic) for clinic in self.clinic_ids]
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
                self._check_listener()
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

    def _check_listener(self) -> None:
        """A listener that exited is said once; the demo goes on (its ADT go unanswered)."""
        proc = self.run.listener
        if proc is not None and proc.poll() is not None and not self.listener_down:
            self.listener_down = True
            self.tally.recent.append(
                f"hospital: the MLLP listener exited ({proc.returncode}); "
                f"log {self.run.listener_log}"
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
        self.patients[screening.event.patient.id] = screening.event.patient.model_dump(mode="json")
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
            if event.to_status is TaskStatus.ACCEPTED:
                self._hospital_sees(event.patient_id)
        elif isinstance(event, EncounterAlerted):
            parsed = self.topics.parse(topic)
            if parsed is not None:
                self.tally.alerted("clinic" if parsed[0] is TopicKind.CLINIC_UPDATES else "org")
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

    # ------------------------------------------------------------ the hospital
    def _hospital_sees(self, patient_id: str) -> None:
        patient = self.patients.get(patient_id)
        if patient is None or not self.hospital.wants(patient_id) or self.run.listener_port is None:
            return
        visit = self.hospital.visit(patient)
        self._spawn(self._visit(visit, self.rng.uniform(*DELAY)))

    async def _visit(self, visit: Visit, delay: float) -> None:
        """The hospital sends the visit's ADT over MLLP: its arrival a few seconds after
        the acceptance, its discharge after the stay (compressed by --speed)."""
        await asyncio.sleep(delay)
        kind = "ED visit" if visit.emergency else "admission"
        await self._adt(arrival(visit, datetime.now(UTC)), kind, visit.variation)
        await asyncio.sleep(min(stay_of(visit).total_seconds() / self.options.speed, MAX_STAY))
        await self._adt(discharge(visit, datetime.now(UTC)), "discharge", visit.variation)

    async def _adt(self, message: Any, kind: str, variation: str) -> None:
        assert self.run.listener_port is not None
        within = 0.0 if self.listener_down else 10.0
        codes = await send("127.0.0.1", self.run.listener_port, [message], connect_within=within)
        self.tally.adt_answered(codes)
        self.tally.recent.append(f"hospital: {kind} sent ({variation}); ACK {codes[0]}")
        del self.tally.recent[:-8]
