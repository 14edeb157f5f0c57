"""The MLLP listener on the real broker: ACKs, events, senders that misbehave."""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from uuid import uuid4

import hl7
import pytest
from hl7.mllp import open_hl7_connection

from connectors.hl7 import event_id
from connectors.mllp import ListenerConfig
from schemas.events import EncounterNotified, from_bytes
from schemas.topics import Topics
from tests.connectors.hl7.adt_messages import adt
from tests.connectors.mllp.running import (
    END,
    START,
    listening,
    msa,
    provision,
    read_topic,
    send_raw,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def facility(kafka_bootstrap: str, topics: Topics, unique: str) -> str:
    name = f"mercy-{unique}"
    provision(kafka_bootstrap, topics, name)
    return name


async def test_an_a01_from_python_hl7s_client_and_one_from_a_raw_socket(
    kafka_bootstrap: str, topics: Topics, facility: str
) -> None:
    async with listening(kafka_bootstrap, ListenerConfig(topics=topics)) as running:
        reader, writer = await open_hl7_connection(running.host, running.port)
        try:
            writer.writemessage(hl7.parse(adt("A01", facility=facility, control_id="C-1").decode()))
            await writer.drain()
            answer = await asyncio.wait_for(reader.readmessage(), 30)
        finally:
            writer.close()
        assert (answer["MSA.F1"], answer["MSA.F2"]) == ("AA", "C-1")
        raw = await send_raw(running, adt("A04", facility=facility, control_id="C-2"))
        assert msa(raw)[:2] == ("AA", "C-2")
        again = await send_raw(running, adt("A04", facility=facility, control_id="C-2"))
        assert msa(again)[:2] == ("AA", "C-2")

    records = await read_topic(kafka_bootstrap, topics.facility_submissions(facility), 3)
    events = [from_bytes(r.value) for r in records]
    assert all(isinstance(e, EncounterNotified) for e in events)
    ids = [e.event_id for e in events]
    assert ids.count(event_id(facility, "C-1")) == 1
    # the re-sent message is the same event (the network de-duplicates by event id)
    assert ids.count(event_id(facility, "C-2")) == 2
    assert len(ids) == 3
    assert {r.key for r in records} == {b"MRN-0042"}
    assert json.loads(records[0].value)["patient"]["family_name"] == "Rivera"


async def test_an_unknown_facility_and_an_unsupported_type_are_rejected(
    kafka_bootstrap: str, topics: Topics, facility: str
) -> None:
    async with listening(kafka_bootstrap, ListenerConfig(topics=topics)) as running:
        unknown = await send_raw(running, adt(facility=f"nowhere-{uuid4().hex[:6]}"))
        assert msa(unknown)[0] == "AR"
        assert "MSH-4" in msa(unknown)[2]
        oru = await send_raw(running, adt("R01", message_type="ORU", facility=facility))
        assert msa(oru)[0] == "AR"
        assert "unsupported message type" in msa(oru)[2]
        garbage_hl7 = await send_raw(running, b"MSH|this is not a header")
        assert msa(garbage_hl7)[0] == "AR"
        no_birth = await send_raw(
            running, adt(facility=facility, pid="PID|1||MRN-1||Rivera^Ana", control_id="C-5")
        )
        assert msa(no_birth) == ("AE", "C-5", "PID-7 birth date is missing")
    assert await read_topic(kafka_bootstrap, topics.facility_submissions(facility), 1, 3) == []


async def test_a_facility_provisioned_after_the_start_is_found(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    late = f"late-{unique}"
    async with listening(kafka_bootstrap, ListenerConfig(topics=topics)) as running:
        assert msa(await send_raw(running, adt(facility=late)))[0] == "AR"
        provision(kafka_bootstrap, topics, late)
        await asyncio.sleep(1.2)  # unknown names refresh the cached list at most once a second
        assert msa(await send_raw(running, adt(facility=late)))[0] == "AA"


async def test_hostile_connections_never_hold_up_another_facility(
    kafka_bootstrap: str, topics: Topics, facility: str, unique: str
) -> None:
    other = f"other-{unique}"
    provision(kafka_bootstrap, topics, other)
    config = ListenerConfig(topics=topics, read_timeout=20)
    async with listening(kafka_bootstrap, config) as running:
        # garbage without MLLP framing: that connection is closed
        g_reader, g_writer = await asyncio.open_connection(running.host, running.port)
        g_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await g_writer.drain()
        assert await asyncio.wait_for(g_reader.read(), 10) == b""

        # a slow sender: one byte a second of a valid message
        s_reader, s_writer = await asyncio.open_connection(running.host, running.port)
        slow_payload = START + adt(facility=facility) + END

        async def trickle() -> None:
            for byte in slow_payload:
                s_writer.write(bytes([byte]))
                await s_writer.drain()
                await asyncio.sleep(1)

        slow = asyncio.create_task(trickle())

        # a 10 MB frame: AR (echoing MSH-10), then the connection is closed
        b_reader, b_writer = await asyncio.open_connection(running.host, running.port)
        big = adt(facility=facility, control_id="BIG-1") + b"NTE|1||" + b"x" * (10 * 1024 * 1024)

        async def flood() -> None:
            b_writer.write(START + big + END)
            with suppress(ConnectionError):
                await b_writer.drain()

        flooding = asyncio.create_task(flood())
        await asyncio.sleep(0.2)

        reply = await send_raw(running, adt(facility=other, control_id="OTHER-1"))
        assert msa(reply)[:2] == ("AA", "OTHER-1")
        assert not slow.done()  # the slow sender is still sending

        big_reply = await asyncio.wait_for(b_reader.readuntil(END), 30)
        assert msa(big_reply[1:-2])[:3] == ("AR", "BIG-1", "the message is larger than the limit")
        assert await asyncio.wait_for(b_reader.read(), 30) == b""
        await flooding

        # the slow sender's connection is closed at the read timeout, with no ACK
        assert await asyncio.wait_for(s_reader.read(), 40) == b""
        slow.cancel()
        for writer in (g_writer, s_writer, b_writer):
            writer.close()
        # and the listener still answers
        assert msa(await send_raw(running, adt(facility=other)))[0] == "AA"


async def test_connections_are_bounded_per_peer(
    kafka_bootstrap: str, topics: Topics, facility: str
) -> None:
    config = ListenerConfig(topics=topics, max_connections_per_peer=2)
    async with listening(kafka_bootstrap, config) as running:
        held = [await asyncio.open_connection(running.host, running.port) for _ in range(2)]
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection(running.host, running.port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # refused: closed at once
        writer.close()
        held_reader, held_writer = held[0]
        held_writer.write(START + adt(facility=facility) + END)
        reply = await asyncio.wait_for(held_reader.readuntil(END), 30)
        assert msa(reply[1:-2])[0] == "AA"
        for _, w in held:
            w.close()
        await asyncio.sleep(0.2)
        assert msa(await send_raw(running, adt(facility=facility)))[0] == "AA"


async def test_a_connection_that_sends_nothing_is_closed(
    kafka_bootstrap: str, topics: Topics
) -> None:
    async with listening(kafka_bootstrap, ListenerConfig(topics=topics, read_timeout=1)) as running:
        reader, writer = await asyncio.open_connection(running.host, running.port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()


async def test_a_message_the_broker_cannot_store_gets_an_application_error(
    kafka_bootstrap: str, topics: Topics, unique: str
) -> None:
    # the facility is known but its topic is not on the broker: the publish times out,
    # and the sender is told to send the message again
    from connectors.mllp import FacilityDirectory, KafkaPublisher, MllpListener

    ghost = f"ghost-{unique}"
    publisher = KafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:

        async def listed() -> set[str]:
            return {topics.facility_submissions(ghost)}

        listener = MllpListener(
            ListenerConfig(topics=topics, publish_timeout=1.0),
            publisher,
            FacilityDirectory(topics, listed),
        )
        reply = await listener.answer(adt(facility=ghost, control_id="G-1"))
    finally:
        await publisher.stop()
    code, control_id, text = msa(reply)
    assert (code, control_id) == ("AE", "G-1")
    assert "send it again" in text or "resend" in text
