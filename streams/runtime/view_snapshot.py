"""Snapshots of the network view's record, so that a start does not read a year of events.

The view counts each organization's answers and time-outs, and each service's
offers and reservations, from ``sdoh.referrals.events.v1`` (kept a year). The
worker that owns partition 0 of the referral commands writes that record, with
the event-log positions it reflects, to ``{prefix}.network.view.v1`` once the
view is ready, every ``REFNET_VIEW_SNAPSHOT_INTERVAL`` seconds while the log
moves, and as it stops. A starting worker reads the newest snapshot, then only
the events after its positions: start-up costs the snapshot plus what happened
since, whatever the log's age.

On the topic (compacted, one partition):

* ``part/{i}``: the i-th slice (at most :data:`PART_BYTES`) of the document,
  JSON compressed with zlib;
* ``manifest``: written once every part is acknowledged. It names the event log,
  its partition count and positions, and each part's offset and size, with the
  SHA-256 of the compressed document.

A reader takes the newest manifest near the topic's end and reads the parts at
the offsets it names. A snapshot that does not check out (a part compacted away
or overwritten by another writer, a checksum, an unknown format, positions past
the event log's ends because the log was recreated) is logged, counted in
``refnet_view_snapshots_rejected_total{reason}``, and the view reads the whole
log instead: a snapshot can only ever save time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

FORMAT: Final = 1
#: compressed bytes per part record (well under Kafka's 1 MB default)
PART_BYTES: Final = 512 * 1024
#: a document that inflates past this is refused (no zip bomb reaches memory)
MAX_DOCUMENT_BYTES: Final = 64 * 1024 * 1024
#: the newest offers kept for de-duplication (in flight when the snapshot was taken)
RECENT_OFFERS: Final = 10_000
MANIFEST_KEY: Final = b"manifest"
#: empty polls in a row after which a range is taken as read (a compacted tail)
MAX_IDLE_POLLS: Final = 10


def part_key(index: int) -> bytes:
    return f"part/{index}".encode()


class PartRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    offset: int = Field(ge=0)
    size: int = Field(ge=0, le=PART_BYTES)


class Manifest(BaseModel):
    """What a snapshot is made of, and which events it reflects."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: int
    snapshot_id: str = Field(max_length=64)
    written_at: datetime
    event_log: str = Field(max_length=255)
    #: partition count of the event log when the snapshot was taken
    partitions: int = Field(ge=1, le=10_000)
    #: the next offset to read in each partition of the event log ("0": 1234)
    positions: dict[int, int]
    parts: list[PartRef] = Field(max_length=MAX_DOCUMENT_BYTES // PART_BYTES)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    document_bytes: int = Field(ge=0, le=MAX_DOCUMENT_BYTES)


class Document(BaseModel):
    """The view's record (see :meth:`streams.runtime.view.NetworkState.record_snapshot`)."""

    model_config = ConfigDict(extra="forbid")
    on_time: dict[str, int]
    timed_out: dict[str, int]
    offers: dict[str, int]
    #: service_id -> [offers since the figure in force, that figure's time (None: no figure)]
    reserved: dict[str, tuple[int, datetime | None]]
    #: the newest (referral_id, attempt) counted, oldest first
    counted: list[tuple[str, int]]
    #: every offer holding a place (pending or accepted): [referral_id, attempt,
    #: service_id, offered at], so that a later end of the offer frees its place
    holding: list[tuple[str, int, str, datetime]] = Field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    manifest: Manifest
    document: Document


class Rejected(Exception):
    """A snapshot that cannot be used; ``reason`` is one of a fixed few (a metric label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(document: Mapping[str, Any]) -> tuple[list[bytes], str, int]:
    """The document as compressed parts, the SHA-256 of their concatenation, its raw size."""
    raw = json.dumps(document, separators=(",", ":"), default=_json_default).encode()
    data = zlib.compress(raw, 6)
    parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)] or [b""]
    return parts, hashlib.sha256(data).hexdigest(), len(raw)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def decode(manifest: Manifest, parts: list[bytes]) -> Document:
    data = b"".join(parts)
    if hashlib.sha256(data).hexdigest() != manifest.sha256:
        raise Rejected("checksum", "the parts do not match the manifest's SHA-256")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, MAX_DOCUMENT_BYTES + 1)
    except zlib.error:
        raise Rejected("format", "the document is not zlib data") from None
    if len(raw) > MAX_DOCUMENT_BYTES or inflater.unconsumed_tail:
        raise Rejected("format", f"the document inflates past {MAX_DOCUMENT_BYTES} bytes")
    try:
        return Document.model_validate_json(raw)
    except ValidationError as exc:
        raise Rejected(
            "format", f"the document is not a view record ({exc.error_count()} errors)"
        ) from None


def manifest_bytes(
    *,
    event_log: str,
    partitions: int,
    positions: Mapping[int, int],
    offsets: list[int],
    parts: list[bytes],
    sha256: str,
    document_bytes: int,
    written_at: datetime | None = None,
) -> bytes:
    manifest = Manifest(
        format=FORMAT,
        snapshot_id=uuid.uuid4().hex,
        written_at=written_at or datetime.now(UTC),
        event_log=event_log,
        partitions=partitions,
        positions=dict(positions),
        parts=[PartRef(offset=o, size=len(p)) for o, p in zip(offsets, parts, strict=True)],
        sha256=sha256,
        document_bytes=document_bytes,
    )
    return manifest.model_dump_json().encode()


async def read_latest(consumer: AIOKafkaConsumer, tp: TopicPartition) -> Snapshot | None:
    """The newest snapshot on ``tp`` (assigned to ``consumer`` alone), or None if there is none.

    Raises :class:`Rejected` for a snapshot that is there but cannot be used.
    """
    begin = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    if end <= begin:
        return None
    found: tuple[int, bytes | None] | None = None
    window = 16
    while True:
        start = max(begin, end - window)
        records = await _read_range(consumer, tp, start, end)
        for offset, key, value in records:
            if key == MANIFEST_KEY:
                found = (offset, value)
        if found is not None or start == begin:
            break
        window *= 16
    if found is None:
        return None
    offset, value = found
    if value is None:
        return None
    try:
        manifest = Manifest.model_validate_json(value)
    except ValidationError:
        raise Rejected("format", f"the manifest at offset {offset} is unreadable") from None
    if manifest.format != FORMAT:
        raise Rejected("format", f"format {manifest.format} (this worker reads {FORMAT})")
    if not manifest.parts:
        raise Rejected("format", "the manifest names no parts")
    wanted = {ref.offset: i for i, ref in enumerate(manifest.parts)}
    if any(o >= offset for o in wanted):
        raise Rejected("format", "a part lies after its manifest")
    parts: list[bytes | None] = [None] * len(manifest.parts)
    for part_offset, key, part in await _read_range(consumer, tp, min(wanted), max(wanted) + 1):
        index = wanted.get(part_offset)
        if index is not None and key == part_key(index) and part is not None:
            parts[index] = part
    for index, (ref, part) in enumerate(zip(manifest.parts, parts, strict=True)):
        if part is None or len(part) != ref.size:
            raise Rejected("missing-part", f"part {index} is no longer at offset {ref.offset}")
    return Snapshot(manifest, decode(manifest, [p for p in parts if p is not None]))


async def _read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Records of ``tp`` from ``start`` up to ``end`` (compacted gaps skipped)."""
    consumer.seek(tp, start)
    out: list[tuple[int, bytes | None, bytes | None]] = []
    idle = 0
    while await consumer.position(tp) < end and idle < MAX_IDLE_POLLS:
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
        records = batch.get(tp, [])
        idle = 0 if records else idle + 1
        out.extend((r.offset, r.key, r.value) for r in records if r.offset < end)
    return out


__all__ = [
    "FORMAT",
    "Document",
    "Manifest",
    "Rejected",
    "Snapshot",
    "decode",
    "encode",
    "manifest_bytes",
    "part_key",
    "read_latest",
]
