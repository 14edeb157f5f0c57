"""The ledger writes to and reads from the real PostgreSQL, and no row stops it."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

import connectors.ledger.sink as ledger_module
from connectors.ledger.rows import row_of, storable_text
from connectors.ledger.sink import RETRY, Ledger, LedgerSink
from connectors.ledger.write import Batch, Written
from schemas.codes import BusinessStatus, Category, Party, TaskStatus
from schemas.events import MAX_TIMESTAMP, MIN_TIMESTAMP, ReferralStateChanged, to_bytes
from tests.kafka_topics import create_topic

integration = pytest.mark.integration
SECRET = "SECRET-PATIENT-VALUE"


def _row(referral_id: str, status: str, minutes: int) -> dict[str, object]:
    return {
        "event_id": uuid.uuid4(),
        "referral_id": referral_id,
        "event_type": "referral.state-changed",
        "occurred_at": datetime(2026, 11, 24, 9, tzinfo=UTC) + timedelta(minutes=minutes),
        "clinic_id": "bronx-clinic",
        "org_id": "bronx-pantry",
        "status": status,
        "business_status": None,
        "payload": {"status": status},
    }


def changed(referral_id: str, **fields: Any) -> ReferralStateChanged:
    """A validated referral.state-changed event."""
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": datetime(2026, 11, 24, 9, tzinfo=UTC),
        "referral_id": referral_id,
        "patient_id": "pt-8c21",
        "clinic_id": "bronx-clinic",
        "category": Category.FOOD_INSECURITY,
        "to_status": TaskStatus.REQUESTED,
        "business_status": BusinessStatus.OFFERED,
        "org_id": "bronx-pantry",
        "attempt": 1,
        "actor": Party.NETWORK,
    } | fields
    return ReferralStateChanged(**values)


def slipped(referral_id: str, **fields: Any) -> ReferralStateChanged:
    """The same event unvalidated: what a bug or an older version could let through."""
    valid = dict(changed("ref-valid"))
    return ReferralStateChanged.model_construct(**(valid | {"referral_id": referral_id} | fields))


def new_referral_id() -> str:
    return f"ref-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    connected = await Ledger.connect(database_url)
    try:
        yield connected
    finally:
        await connected.close()


# ---------------------------------------------------------------- history
@integration
async def test_ledger_records_history_in_order_and_ignores_replayed_events(
    ledger: Ledger,
) -> None:
    referral_id = new_referral_id()
    rows = [_row(referral_id, "requested", 0), _row(referral_id, "accepted", 5)]
    assert await ledger.record(rows) == 2
    # a replay of the same events has no second effect
    assert await ledger.record(rows) == 0
    history = await ledger.history(referral_id)
    assert [h.status for h in history] == ["requested", "accepted"]
    assert history[1].payload == {"status": "accepted"}
    assert history[0].occurred_at == datetime(2026, 11, 24, 9, tzinfo=UTC)


@integration
async def test_ledger_migration_is_idempotent(database_url: str) -> None:
    first = await Ledger.connect(database_url)
    await first.close()
    second = await Ledger.connect(database_url)
    try:
        await second.migrate()
        assert await second.count() >= 0
    finally:
        await second.close()


# ---------------------------------------------------------------- what slipped through
@integration
async def test_nul_in_text_and_in_the_payload_is_stored_as_a_replacement_character(
    ledger: Ledger,
) -> None:
    referral_id = new_referral_id()
    event = slipped(
        f"{referral_id}\x00x",
        reason="no\x00capacity",
        outcome="\x00",
        org_id="bronx\x00pantry",
    )

    assert await ledger.record([row_of(event)]) == 1

    [stored] = await ledger.history(f"{referral_id}\ufffdx")
    assert stored.org_id == "bronx\ufffdpantry"
    assert stored.payload["reason"] == "no\ufffdcapacity"
    assert stored.payload["outcome"] == "\ufffd"
    assert stored.payload["referral_id"] == f"{referral_id}\ufffdx"


@integration
async def test_nul_in_a_payload_key_and_lone_surrogates_are_made_storable(
    ledger: Ledger,
) -> None:
    referral_id = new_referral_id()
    row = _row(referral_id, "requested", 0) | {
        "clinic_id": "clinic\ud800",
        "payload": {"a\x00b": ["x\udfffy", {"k": "\x00"}]},
    }

    assert await ledger.record([row]) == 1

    [stored] = await ledger.history(referral_id)
    assert stored.clinic_id == "clinic\ufffd"
    assert stored.payload == {"a\ufffdb": ["x\ufffdy", {"k": "\ufffd"}]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("\x00", "\ufffd"),
        ("a\x00b\x00", "a\ufffdb\ufffd"),
        ("\ud800\udc00", "\ufffd\ufffd"),  # a surrogate pair in a str is two lone halves
        ("tab\tnew\nline\x1b", "tab\tnew\nline\x1b"),
        ("\U0001f600", "\U0001f600"),
    ],
)
def test_storable_text_replaces_only_what_postgresql_refuses(text: str, expected: str) -> None:
    assert storable_text(text) == expected


EDGE_TIMESTAMPS = [
    MIN_TIMESTAMP,
    MIN_TIMESTAMP.astimezone(timezone(timedelta(hours=14))),
    MAX_TIMESTAMP - timedelta(microseconds=1),
    (MAX_TIMESTAMP - timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-14))),
    datetime(2026, 11, 24, 9, 15, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=45))),
]


@integration
@pytest.mark.parametrize("occurred_at", EDGE_TIMESTAMPS, ids=str)
async def test_the_first_and_last_timestamps_the_wire_accepts_are_stored_exactly(
    ledger: Ledger, occurred_at: datetime
) -> None:
    referral_id = new_referral_id()
    event = ReferralStateChanged.model_validate(
        dict(changed(referral_id)) | {"occurred_at": occurred_at.isoformat()}
    )

    assert await ledger.record([row_of(event)]) == 1

    [stored] = await ledger.history(referral_id)
    assert stored.occurred_at == occurred_at
    assert stored.payload["occurred_at"] == occurred_at.isoformat().replace("+00:00", "Z")


OVERFLOWING_TIMESTAMPS = [
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
]


@integration
@pytest.mark.parametrize("occurred_at", OVERFLOWING_TIMESTAMPS, ids=str)
async def test_a_timestamp_that_overflows_in_utc_skips_its_row_only(
    ledger: Ledger, occurred_at: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    referral_id = new_referral_id()
    bad = slipped(referral_id, occurred_at=occurred_at, reason=SECRET)
    good = changed(referral_id)

    written = await ledger.write([row_of(bad), row_of(good)])

    assert written == Written(inserted=1, skipped=1)
    assert [h.event_id for h in await ledger.history(referral_id)] == [good.event_id]
    assert f"skipped the row of {bad.event_id} (OverflowError)" in caplog.text
    assert SECRET not in caplog.text
    assert occurred_at.isoformat() not in caplog.text


@integration
async def test_rows_postgresql_refuses_are_skipped_one_by_one_and_the_rest_written(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    referral_id = new_referral_id()
    rows = [
        _row(referral_id, "requested", 0),
        _row(referral_id, "accepted", 1) | {"referral_id": None, "payload": {"p": SECRET}},
        _row(referral_id, "in-progress", 2) | {"event_id": f"{SECRET}-not-a-uuid"},
        _row(referral_id, "on-hold", 3) | {"payload": {"p": math.nan, "q": SECRET}},
        _row(referral_id, "completed", 4) | {"occurred_at": SECRET},
        _row(referral_id, "completed", 5),
    ]

    written = await ledger.write(rows)

    assert written == Written(inserted=2, skipped=4)
    assert [h.status for h in await ledger.history(referral_id)] == ["requested", "completed"]
    assert f"skipped the row of {rows[1]['event_id']} (NotNullViolationError)" in caplog.text
    assert "skipped the row of an event with an invalid id (DataError)" in caplog.text
    assert f"skipped the row of {rows[3]['event_id']} (ValueError)" in caplog.text
    assert f"skipped the row of {rows[4]['event_id']} (DataError)" in caplog.text
    assert SECRET not in caplog.text


@integration
async def test_record_returns_the_new_rows_when_some_are_skipped(ledger: Ledger) -> None:
    referral_id = new_referral_id()
    rows = [_row(referral_id, "requested", 0), _row(referral_id, "accepted", 1)]
    rows[1]["referral_id"] = None

    assert await ledger.record(rows) == 1


async def test_an_unreachable_database_is_raised_not_skipped() -> None:
    # nothing listens on port 1: the pool's first connection is refused
    pool = await asyncpg.create_pool("postgresql://refnet@127.0.0.1:1/refnet", min_size=0)
    unreachable = Ledger(pool)
    try:
        with pytest.raises(OSError):
            await unreachable.write([_row("ref-1", "requested", 0)])
    finally:
        await unreachable.close()


# ---------------------------------------------------------------- the sink, with fakes
@dataclass
class Record:
    value: bytes | None
    topic: str = "sdoh.referrals.events.v1"
    partition: int = 0
    offset: int = 0


@dataclass
class FakeConsumer:
    """Hands out one batch, then nothing; remembers commits and what was written then."""

    batch: list[Record]
    ledger: FakeLedger
    commits: list[int] = field(default_factory=list)
    polls: int = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[Record]]:
        self.polls += 1
        return {"tp": self.batch} if self.polls == 1 else {}

    async def commit(self) -> None:
        self.commits.append(len(self.ledger.written))


@dataclass
class FakeLedger:
    """Fails with ``failures`` in turn, then writes."""

    failures: list[BaseException] = field(default_factory=list)
    skip: int = 0
    attempts: list[Sequence[Mapping[str, Any]]] = field(default_factory=list)
    written: list[Mapping[str, Any]] = field(default_factory=list)
    closed: bool = False

    async def write_batch(self, batch: Batch) -> Written:
        rows: Sequence[Mapping[str, Any]] = batch.events
        self.attempts.append(rows)
        if self.failures:
            raise self.failures.pop(0)
        self.written.extend(rows)
        return Written(inserted=len(rows) - self.skip, skipped=self.skip)

    async def open_by_category(self) -> dict[str, int]:
        return {}

    async def close(self) -> None:
        self.closed = True


class Sleeps(list[float]):
    """Stands for asyncio.sleep: remembers the delays, waits for nothing (but yields)."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


def sink(sleeps: Sleeps) -> LedgerSink:
    return LedgerSink(
        "unused:9092", "sdoh.referrals.events.v1", "unused", group_id="g", sleep=sleeps
    )


def record_of(event: ReferralStateChanged, offset: int = 0) -> Record:
    return Record(to_bytes(event), offset=offset)


OUTAGE = [
    ConnectionRefusedError(111, "Connect call failed"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    asyncpg.exceptions.AdminShutdownError("terminating connection"),
    TimeoutError(),
    OSError("network is unreachable"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    ConnectionResetError(),
]


async def test_sink_retries_the_same_batch_with_backoff_and_commits_only_once_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleeps = Sleeps()
    fake = FakeLedger(failures=list(OUTAGE))
    events = [changed(new_referral_id(), reason=SECRET) for _ in range(3)]
    consumer = FakeConsumer([record_of(e, n) for n, e in enumerate(events)], fake)
    ledger_sink = sink(sleeps)

    await ledger_sink.step(consumer, fake)  # type: ignore[arg-type]

    assert sleeps == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert max(sleeps) == RETRY.cap
    assert len(fake.attempts) == len(OUTAGE) + 1
    assert all(attempt == fake.attempts[0] for attempt in fake.attempts)
    assert [row["event_id"] for row in fake.written] == [e.event_id for e in events]
    assert consumer.commits == [3]  # once, after the rows were written
    assert (ledger_sink.retries, ledger_sink.skipped) == (len(OUTAGE), 0)
    retries = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(retries) == len(OUTAGE)
    assert "ConnectionRefusedError" in retries[0]
    assert "CannotConnectNowError" in retries[1]
    assert SECRET not in caplog.text
    assert "starting up" not in caplog.text  # exception messages are not logged


async def test_sink_never_commits_while_the_database_is_down() -> None:
    sleeps = Sleeps()
    fake = FakeLedger(failures=[OSError()] * 1000)
    consumer = FakeConsumer([record_of(changed(new_referral_id()))], fake)
    ledger_sink = sink(sleeps)

    step = asyncio.create_task(ledger_sink.step(consumer, fake))  # type: ignore[arg-type]
    while len(fake.attempts) < 50:
        await asyncio.sleep(0)
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step

    assert consumer.commits == []
    assert fake.written == []
    assert set(sleeps[7:]) == {30}


async def test_sink_counts_rows_the_ledger_skipped_and_unreadable_records() -> None:
    sleeps = Sleeps()
    fake = FakeLedger(skip=1)
    bad_reason = json.loads(to_bytes(changed("ref-1")))
    bad_reason["reason"] = f"{SECRET}\x00"
    batch = [
        record_of(changed(new_referral_id())),
        Record(b"not json"),
        Record(None),
        Record(json.dumps(bad_reason).encode()),
        record_of(changed(new_referral_id())),
    ]
    consumer = FakeConsumer(batch, fake)
    ledger_sink = sink(sleeps)

    await ledger_sink.step(consumer, fake)  # type: ignore[arg-type]

    assert len(fake.written) == 2
    assert (ledger_sink.skipped, ledger_sink.unreadable) == (4, 3)
    assert consumer.commits == [2]
    assert sleeps == []


async def test_sink_waits_for_the_database_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = Sleeps()
    fake = FakeLedger()
    outcomes: list[BaseException | FakeLedger] = [OSError(), asyncpg.CannotConnectNowError(), fake]

    async def connect(url: str) -> FakeLedger:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    class Stop(Exception):
        pass

    class Consumer(FakeConsumer):
        stopped = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__([], fake)

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            Consumer.stopped = True

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[Record]]:
            raise Stop

    monkeypatch.setattr(ledger_module.Ledger, "connect", connect)
    monkeypatch.setattr(ledger_module.clients, "consumer", Consumer)
    ledger_sink = sink(sleeps)

    with pytest.raises(Stop):
        await ledger_sink.run()

    assert sleeps == [0.5, 1]
    assert ledger_sink.retries == 2
    assert Consumer.stopped
    assert fake.closed


async def test_a_programming_error_is_not_mistaken_for_an_outage() -> None:
    sleeps = Sleeps()
    fake = FakeLedger(failures=[AttributeError("bug")])
    consumer = FakeConsumer([record_of(changed(new_referral_id()))], fake)

    with pytest.raises(AttributeError):
        await sink(sleeps).step(consumer, fake)  # type: ignore[arg-type]

    assert consumer.commits == []
    assert sleeps == []


# ---------------------------------------------------------------- the sink, for real
@integration
async def test_sink_copies_the_topic_into_the_ledger_skipping_what_cannot_be_read(
    kafka_bootstrap: str, database_url: str, ledger: Ledger, unique: str
) -> None:
    topic = f"t{unique}.referrals.events.v1"
    await create_topic(kafka_bootstrap, topic)
    referral_id = new_referral_id()
    first, last = changed(referral_id), changed(referral_id, to_status=TaskStatus.ACCEPTED)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for value in (to_bytes(first), b"{not json", to_bytes(last)):
            await producer.send_and_wait(topic, value, key=referral_id.encode())
    finally:
        await producer.stop()
    group_id = f"ledger-{unique}"
    ledger_sink = LedgerSink(kafka_bootstrap, topic, database_url, group_id=group_id)

    await ledger_sink.start()
    try:
        for _ in range(150):
            if len(await ledger.history(referral_id)) == 2 and ledger_sink.skipped == 1:
                break
            await asyncio.sleep(0.2)
    finally:
        await ledger_sink.stop()

    assert [h.event_id for h in await ledger.history(referral_id)] == [
        first.event_id,
        last.event_id,
    ]
    assert (ledger_sink.skipped, ledger_sink.unreadable, ledger_sink.retries) == (1, 1, 0)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group_id)
    await reader.start()
    try:
        committed = await reader.committed(TopicPartition(topic, 0))
    finally:
        await reader.stop()
    assert committed == 3


# ---------------------------------------------------------------- PostgreSQL stopped mid-stream
@integration
@pytest.mark.timeout(240)
async def test_postgresql_stopped_for_30_s_mid_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, unique: str
) -> None:
    """A database of the test's own is stopped for 30 s while events keep coming (some of
    them twice, as a replay would send them). The sink waits with backoff, never ends,
    and once PostgreSQL is back writes every event exactly once, with the current state
    of each referral folded from all of its events."""
    import shutil
    from pathlib import Path

    from deploy.local.database import LocalDatabase

    data_dir = Path("/tmp") / f"refnet-outage-{unique}"
    database = LocalDatabase(data_dir)
    url = await asyncio.to_thread(database.start)
    topic = f"t{unique}.referrals.events.v1"
    await create_topic(kafka_bootstrap, topic, 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    ledger_sink = LedgerSink(kafka_bootstrap, topic, url, group_id=f"ledger-{unique}")
    sent: list[ReferralStateChanged] = []

    async def send(n: int) -> None:
        for _ in range(n):
            referral_id = new_referral_id()
            offered = changed(referral_id)
            accepted = changed(
                referral_id, to_status=TaskStatus.ACCEPTED, business_status=None,
                actor=Party.ORGANIZATION,
            )  # fmt: skip
            for event in (offered, accepted, accepted):  # the acceptance twice, as replayed
                await producer.send_and_wait(topic, to_bytes(event), key=referral_id.encode())
            sent.extend((offered, accepted))

    async def stored(ledger: Ledger) -> tuple[int, int, int]:
        async with ledger.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM referral_events) AS events, "
                "(SELECT count(DISTINCT event_id) FROM referral_events) AS distinct_events, "
                "(SELECT count(*) FROM referrals WHERE status = 'accepted' AND events = 2) "
                "AS folded"
            )
        return int(row["events"]), int(row["distinct_events"]), int(row["folded"])

    try:
        await ledger_sink.start()
        await send(40)
        check = await Ledger.connect(url)
        try:
            for _ in range(100):
                if (await stored(check))[0] == 80:
                    break
                await asyncio.sleep(0.2)
            assert await stored(check) == (80, 80, 40)
        finally:
            await check.close()

        await asyncio.to_thread(database.stop)
        stopped_at = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - stopped_at < 30:
            await send(5)  # the stream goes on while PostgreSQL is down
            await asyncio.sleep(2)
        assert ledger_sink.retries > 0
        assert ledger_sink._task is not None and not ledger_sink._task.done()
        assert await asyncio.to_thread(database.start) == url

        check = await Ledger.connect(url)
        try:
            expected = len(sent)
            for _ in range(300):  # the sink's next try comes within its 30 s backoff
                if (await stored(check))[0] >= expected:
                    break
                await asyncio.sleep(0.2)
            assert await stored(check) == (expected, expected, expected // 2)
            async with check.pool.acquire() as conn:
                ids = {r[0] for r in await conn.fetch("SELECT event_id FROM referral_events")}
            assert ids == {e.event_id for e in sent}
        finally:
            await check.close()
        assert ledger_sink._task is not None and not ledger_sink._task.done()
        assert ledger_sink.skipped == 0
    finally:
        await ledger_sink.stop()
        await producer.stop()
        await asyncio.to_thread(database.stop)
        shutil.rmtree(data_dir, ignore_errors=True)
