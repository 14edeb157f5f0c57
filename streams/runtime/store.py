"""A table's memory store that loads its changelog itself, in bulk.

Faust's recovery reads a changelog one message at a time through its consumer
thread, its conductor and a queue, and waits on each with a task of its own:
about 120 µs per record here, two minutes for a million referrals. This store
reads the changelog partitions newly assigned to its worker with a plain
consumer, many records per fetch, and decodes them straight into the table.
It then reports the offset it reached as its *persisted offset*, so Faust's
recovery starts there and reads only what was written meanwhile.

The result is what Faust's own recovery would build: every record is applied
in offset order, a tombstone deletes its key, and the keys of each partition
are remembered so that Faust drops them when the partition goes to another
worker. Partitions kept across a rebalance are not read again (Faust's
recovery goes on from where it was). If loading fails, the store forgets what
it loaded of those partitions and Faust reads them from the beginning; the
failure is logged and counted.

Partitions a worker keeps across a rebalance hold in memory everything it
wrote to them: the store reports the last offset of its own writes the broker
acknowledged (:meth:`ChangelogLoader.written`) as their persisted offset, so
that Faust's recovery reads only what others wrote after it, if anything,
instead of the worker's own writes again from where its last recovery began.
(Re-reading them once left a worker's recovery waiting for two minutes on
kept partitions it was never sent.)
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from faust import stores
from faust.stores import memory
from faust.types import TP
from faust.utils import json as _faust_json

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.observability.observer import NULL, WorkerObserver

log = logging.getLogger(__name__)

#: records fetched per call while loading
LOAD_BATCH = 5_000
#: a load that makes no progress for this long fails (and Faust reads instead)
LOAD_STALL_SECONDS = 60.0
#: the URL scheme of this store in Faust's registry
SCHEME = "refnet-memory"
#: what a table names as its ``store`` (an empty ``scheme://`` is false to yarl, and
#: Faust would fall back to the app's store)
URL = f"{SCHEME}://tables"


class ChangelogLoader:
    """Reads changelog partitions from the broker with a consumer of its own; the
    store reports its loads to ``observer``."""

    def __init__(
        self, bootstrap: str, *, auth: KafkaAuth = PLAINTEXT, observer: WorkerObserver = NULL
    ) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.observer = observer
        #: the last offset of this worker's own changelog writes the broker
        #: acknowledged, per changelog partition
        self._written: dict[TP, int] = {}

    def wrote(self, topic: str, partition: int, offset: int) -> None:
        """The broker acknowledged a write of this worker at ``offset``."""
        tp = TP(topic, partition)
        if offset > self._written.get(tp, -1):
            self._written[tp] = offset

    def written(self, tp: TP) -> int | None:
        """The last acknowledged offset of this worker's own writes to ``tp``."""
        return self._written.get(tp)

    def forget_written(self, keep: set[TP], topic: str) -> None:
        """Forget the writes to partitions of ``topic`` outside ``keep`` (they left
        this worker: a later assignment reads them whole)."""
        for tp in [tp for tp in self._written if tp.topic == topic and tp not in keep]:
            del self._written[tp]

    async def read(self, tps: list[TopicPartition], apply: Any) -> dict[TopicPartition, int]:
        """Call ``apply(partition, records)`` for every batch of records of ``tps``
        up to the end they had when reading began, in offset order per partition.
        Returns the last offset read of each partition that had records."""
        consumer = clients.consumer(
            self.bootstrap,
            auth=self.auth,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            todo = {tp for tp in tps if ends[tp] > starts[tp]}
            last: dict[TopicPartition, int] = {}
            if not todo:
                return last
            consumer.assign(sorted(todo))
            for tp in todo:
                consumer.seek(tp, starts[tp])
            progress_at = time.monotonic()
            while todo:
                batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=LOAD_BATCH)
                if batches:
                    progress_at = time.monotonic()
                elif time.monotonic() - progress_at > LOAD_STALL_SECONDS:
                    raise TimeoutError(f"no changelog records for {LOAD_STALL_SECONDS:.0f} s")
                for tp, records in batches.items():
                    end = ends[tp]
                    wanted = [r for r in records if r.offset < end]
                    if wanted:
                        apply(tp.partition, wanted)
                        last[tp] = wanted[-1].offset
                for tp in list(todo):
                    if tp in batches and last.get(tp, -1) >= ends[tp] - 1:
                        todo.discard(tp)
                    elif await consumer.position(tp) >= ends[tp]:
                        todo.discard(tp)  # the rest was compacted away or aborted
                if todo:
                    consumer.pause(*(tp for tp in consumer.assignment() if tp not in todo))
            return last
        finally:
            await consumer.stop()


class Store(memory.Store[Any, Any]):
    """Faust's memory store, with newly assigned partitions loaded in bulk."""

    def __post_init__(self) -> None:
        super().__post_init__()
        #: changelog partitions this worker was active for after the last rebalance
        self._active: set[TP] = set()
        #: offset reached by the last load, per changelog partition (Faust starts there)
        self._loaded: dict[TP, int] = {}

    def note_key(self, key: Any, partition: int) -> None:
        """A row the agent wrote: it belongs to ``partition`` (and leaves with it)."""
        self._key_partition[key] = partition

    def forget_key(self, key: Any) -> None:
        self._key_partition.pop(key, None)

    def persisted_offset(self, tp: TP) -> int | None:
        return self._loaded.get(tp)

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        self._loaded = {}
        loader: ChangelogLoader | None = getattr(self.app, "changelog_loader", None)
        topic = self.table.changelog_topic.get_topic_name()
        active = {tp for tp in self.app.assignor.assigned_actives() if tp.topic == topic}
        fresh = active - self._active
        kept = active & self._active
        self._active = active
        if loader is None:
            return
        loader.forget_written(active, topic)
        for tp in kept:
            offset = loader.written(tp)
            if offset is not None:
                self._loaded[tp] = offset
        if fresh:
            await self._load(loader, fresh)

    async def _load(self, loader: ChangelogLoader, fresh: set[TP]) -> None:
        partitions = {tp.partition for tp in fresh}
        self._forget(partitions)  # anything kept of them is stale: read whole again
        name = self.table.name
        started = time.monotonic()
        counts = {"records": 0}
        data = self.data
        key_partition = self._key_partition
        loads_key = self._loads_key
        loads_values = self._loads_values

        def apply(partition: int, records: list[Any]) -> None:
            counts["records"] += len(records)
            values = iter(loads_values([r.value for r in records if r.value is not None]))
            for record in records:
                key = loads_key(record.key)
                if record.value is None:
                    data.pop(key, None)
                    key_partition.pop(key, None)
                else:
                    data[key] = next(values)
                    key_partition[key] = partition

        wanted = [TopicPartition(tp.topic, tp.partition) for tp in sorted(fresh)]
        log.info("table %s: loading changelog partitions %s", name, sorted(partitions))
        # The cyclic collector would walk the whole growing table again and again
        # (a million rows are tens of millions of objects), holding the GIL for
        # seconds: the consumer thread's heartbeats starve and the worker is
        # dropped from its group. Rows are acyclic JSON documents, freed by
        # reference counting, so they are loaded with it off; then one young
        # collection frees whatever cyclic garbage the rest of the worker made
        # meanwhile (everything allocated since sits in the youngest generation),
        # and the survivors are frozen: later collections skip them.
        collecting = gc.isenabled()
        gc.disable()
        try:
            last = await loader.read(wanted, apply)
        except Exception as exc:  # noqa: BLE001 - Faust's own recovery reads them instead
            loader.observer.changelog_load_failed(name)
            log.error(
                "table %s: loading the changelog failed (%s); Faust's recovery reads "
                "partitions %s from the beginning",
                name,
                type(exc).__name__,
                sorted(partitions),
            )
            self._forget(partitions)
            return
        finally:
            gc.collect(0)
            gc.freeze()
            if collecting:
                gc.enable()
        self._loaded.update({TP(tp.topic, tp.partition): offset for tp, offset in last.items()})
        seconds = time.monotonic() - started
        loader.observer.changelog_loaded(name, counts["records"])
        log.info(
            "table %s: loaded %d changelog records of partitions %s in %.1f s (%d rows)",
            name,
            counts["records"],
            sorted(partitions),
            seconds,
            sum(1 for p in key_partition.values() if p in partitions),
        )

    def _forget(self, partitions: set[int]) -> None:
        stale = [k for k, p in self._key_partition.items() if p in partitions]
        for key in stale:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)

    def _loads_key(self, raw: bytes | None) -> Any:
        # decoded as Faust's recovery decodes a changelog event, then applies it
        table: Any = self.table
        key = self.app.serializers.loads_key(table.key_type, raw, serializer=self.key_serializer)
        return table._to_key(key)

    def _loads_values(self, raws: list[bytes]) -> list[Any]:
        """Many values as Faust decodes each, in one pass when they are JSON.

        Python's JSON decoder makes each object key once per call: decoded one by
        one, a million rows held tens of millions of copies of the same few dozen
        key strings (about 2 KiB a referral). Decoded as one array, each batch
        shares them. A batch that is not one valid array is decoded row by row.
        """
        table: Any = self.table
        plain = table.value_type is None and self.value_serializer == "json"
        if plain and raws and getattr(_faust_json, "orjson", None) is None:
            try:
                decoded = _faust_json.loads("[" + ",".join(r.decode() for r in raws) + "]")
            except ValueError:
                pass
            else:
                if len(decoded) == len(raws) and all(isinstance(v, dict) for v in decoded):
                    return [table._to_value(v) for v in decoded]
        return [self._loads_value(raw) for raw in raws]

    def _loads_value(self, raw: bytes) -> Any:
        table: Any = self.table
        value = self.app.serializers.loads_value(
            table.value_type, raw, serializer=self.value_serializer
        )
        return table._to_value(value)


stores.STORES.aliases.setdefault(SCHEME, f"{__name__}:Store")
