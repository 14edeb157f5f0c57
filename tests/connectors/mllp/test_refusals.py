"""What the listener refuses before anything reaches the broker (no broker needed):
the facility directory's cache, the framing's bounds, refusals and their metrics."""

from __future__ import annotations

import asyncio

import pytest
from hl7.mllp import InvalidBlockError
from prometheus_client import REGISTRY

from connectors.mllp import FacilityDirectory, ListenerConfig, MllpListener
from connectors.mllp.framing import FrameReader
from schemas.topics import Topics
from tests.connectors.hl7.adt_messages import adt
from tests.connectors.mllp.running import msa

TOPICS = Topics(prefix="unit")


class Untouched:
    """A publisher for paths that must never publish."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        raise AssertionError("a refused message was published")


class Lister:
    def __init__(self, *facilities: str) -> None:
        self.names = {TOPICS.facility_submissions(f) for f in facilities}
        self.calls = 0

    async def __call__(self) -> set[str]:
        self.calls += 1
        return set(self.names)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_topic_list_is_cached_and_unknown_names_refresh_it_at_most_once_a_second() -> (
    None
):
    lister = Lister("known-one")
    directory = FacilityDirectory(TOPICS, lister, ttl=60, min_refresh=1.0)
    assert await directory.known("known-one")
    assert await directory.known("known-one")
    assert lister.calls == 1
    for _ in range(20):
        assert not await directory.known("unknown-one")
    assert lister.calls == 1  # a flood of unknown names costs the broker nothing more
    lister.names.add(TOPICS.facility_submissions("unknown-one"))
    await asyncio.sleep(1.05)
    assert await directory.known("unknown-one")
    assert lister.calls == 2


async def test_concurrent_refreshes_are_one() -> None:
    lister = Lister("a-facility")
    directory = FacilityDirectory(TOPICS, lister, ttl=60)
    results = await asyncio.gather(*(directory.known("a-facility") for _ in range(10)))
    assert all(results) and lister.calls == 1


async def test_refusals_are_answered_and_counted_without_publishing() -> None:
    listener = MllpListener(
        ListenerConfig(topics=TOPICS),
        Untouched(),
        FacilityDirectory(TOPICS, Lister("mercy-dallas")),
    )
    before = sample("refnet_mllp_refusals_total", rule="unknown-facility")
    reply = await listener.answer(adt(facility="elsewhere"))
    assert msa(reply)[0] == "AR"
    assert sample("refnet_mllp_refusals_total", rule="unknown-facility") == before + 1

    before = sample("refnet_mllp_messages_total", type="other", ack="AR")
    assert msa(await listener.answer(adt("R01", message_type="ORU")))[0] == "AR"
    assert sample("refnet_mllp_messages_total", type="other", ack="AR") == before + 1

    assert msa(await listener.answer(b"\x00\xff not hl7"))[0] == "AR"
    # MSH-4 that cannot be a facility id, in any case
    assert msa(await listener.answer(adt(facility="Mercy Dallas")))[0] == "AR"


async def test_msh_4_is_read_without_case() -> None:
    published: list[str] = []

    class Recorder:
        async def publish(self, topic: str, key: bytes, value: bytes) -> None:
            published.append(topic)

    listener = MllpListener(
        ListenerConfig(topics=TOPICS), Recorder(), FacilityDirectory(TOPICS, Lister("mercy-dallas"))
    )
    assert msa(await listener.answer(adt(facility="MERCY-DALLAS")))[0] == "AA"
    assert published == [TOPICS.facility_submissions("mercy-dallas")]


async def test_mutual_tls_requires_the_certificates_cn_to_be_msh_4() -> None:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.verify_mode = ssl.CERT_REQUIRED
    listener = MllpListener(
        ListenerConfig(topics=TOPICS, tls=context),
        Untouched(),
        FacilityDirectory(TOPICS, Lister("mercy-dallas")),
    )
    reply = await listener.answer(adt(facility="mercy-dallas"), common_name="another-facility")
    assert msa(reply)[0] == "AR"
    assert "CN" in msa(reply)[2]


def feed(reader: FrameReader, *chunks: bytes) -> None:
    for chunk in chunks:
        reader.feed_data(chunk)


async def test_the_reader_frames_and_tolerates_line_ends_between_frames() -> None:
    reader = FrameReader(limit=1024)
    feed(reader, b"\x0bMSH|one\x1c\r\r\n", b"\x0bMSH|two\x1c\r")
    assert await reader.readblock() == b"MSH|one"
    assert await reader.readblock() == b"MSH|two"


async def test_the_reader_refuses_data_outside_a_frame_at_once() -> None:
    reader = FrameReader(limit=1024)
    feed(reader, b"GET / HTTP/1.1\r\n")
    with pytest.raises(InvalidBlockError):
        await asyncio.wait_for(reader.readblock(), 1)
    after_a_frame = FrameReader(limit=1024)
    feed(after_a_frame, b"\x0bMSH|one\x1c\rGARBAGE")
    assert await after_a_frame.readblock() == b"MSH|one"
    with pytest.raises(InvalidBlockError):
        await asyncio.wait_for(after_a_frame.readblock(), 1)


async def test_the_reader_keeps_the_head_of_an_oversized_frame_and_not_the_rest() -> None:
    reader = FrameReader(limit=1024)
    feed(reader, b"\x0bMSH|^~\\&|a|b|c|d|2026||ADT^A01|BIG|P|2.5\r" + b"x" * 1500)
    with pytest.raises(ValueError):
        await asyncio.wait_for(reader.readblock(), 1)
    assert reader.overrun_head.startswith(b"\x0bMSH|")
    assert len(reader.overrun_head) <= 4096
    reader.discard_input()
    feed(reader, b"y" * 5000)
    assert not reader.ended.is_set()
    reader.feed_eof()
    assert reader.ended.is_set()


def test_connections_are_bounded_in_all_and_per_address() -> None:
    config = ListenerConfig(topics=TOPICS, max_connections=3, max_connections_per_peer=2)
    listener = MllpListener(config, Untouched(), FacilityDirectory(TOPICS, Lister()))
    assert listener._admit("10.0.0.1") is None
    assert listener._admit("10.0.0.1") is None
    assert listener._admit("10.0.0.1") == "refused-peer"
    assert listener._admit("10.0.0.2") is None
    assert listener._admit("10.0.0.3") == "refused-total"
    listener._release("10.0.0.1")
    assert listener._admit("10.0.0.3") is None
