"""Topics on the broker: made to match their specs idempotently, listed, deleted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)

from connectors.kafka.admin.batches import DEFAULT_LIMITS, BatchLimits, chunks, topic_batches
from connectors.kafka.admin.client import (
    CHANGE_TIMEOUT,
    QUERY_TIMEOUT,
    AdminError,
    admin_client,
    existing_topics,
    outcomes,
    settle,
    wait_until_done,
)
from connectors.kafka.admin.partitions import refuse_partition_change
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.retry import Backoff
from schemas.topics import TopicSpec

#: How long a request the controller throttled (its mutation quota) waits to be tried again.
THROTTLED: Backoff = Backoff(first=0.5, cap=10.0)


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class BatchFailed(AdminError):
    """The broker refused (or did not confirm) a batch of new topics; the batches
    before it are done. ``names``: the refused batch's topics."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


@dataclass(frozen=True)
class TopicResult:
    name: str
    outcome: Outcome
    detail: str = ""


def apply_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    timeout: float = CHANGE_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
    limits: BatchLimits = DEFAULT_LIMITS,
    progress: Callable[[list[TopicResult]], None] | None = None,
) -> list[TopicResult]:
    """Make every topic exist with at least its partitions and exactly its config.

    A topic with ``fixed_partitions`` must keep its count: when one exists with
    another count than its spec's (or the state topics disagree), nothing at all
    is changed and :class:`~connectors.kafka.admin.partitions.PartitionChangeRefused`
    says how to migrate.

    Requests are cut into batches within ``limits`` (the broker refuses too large
    ones); ``progress`` hears each batch's results once the broker has applied
    it. A failure raises :class:`AdminError` after the batches before it are
    done: running again finishes the rest.
    """
    specs = list(specs)
    admin = admin_client(bootstrap, auth)
    existing = existing_topics(admin, bootstrap, timeout)
    counts = {name: len(t.partitions) for name, t in existing.items()}
    refuse_partition_change(specs, counts, bootstrap)

    def done(batch: list[TopicResult]) -> None:
        results.update((r.name, r) for r in batch)
        if progress is not None:
            progress(batch)

    results: dict[str, TopicResult] = {}
    present = [s for s in specs if s.name in existing]
    for batch in chunks(present, limits.topics):
        done(_update(admin, list(batch), counts, timeout, limits))
    for missing in topic_batches((s for s in specs if s.name not in existing), limits):
        try:
            _create(admin, missing, timeout)
        except AdminError as exc:
            raise BatchFailed(str(exc), [s.name for s in missing]) from exc
        done([TopicResult(s.name, Outcome.CREATED) for s in missing])
    return [results[s.name] for s in specs]


def _update(
    admin: AdminClient,
    present: list[TopicSpec],
    counts: Mapping[str, int],
    timeout: float,
    limits: BatchLimits,
) -> list[TopicResult]:
    """Grow and repair existing topics; each one's outcome."""
    grown: set[str] = set()
    for batch in topic_batches(present, limits):
        grown |= _grow(admin, batch, counts, timeout)
    drift = _config_drift(admin, present, timeout)
    if drift:
        _set_config(admin, drift, timeout)
    results = []
    for spec in present:
        changes = []
        if spec.name in grown:
            changes.append(f"partitions -> {spec.partitions}")
        if spec.name in drift:
            changes.append(", ".join(f"{k}={v}" for k, v in sorted(drift[spec.name].items())))
        outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
        results.append(TopicResult(spec.name, outcome, "; ".join(changes)))
    return results


def _create(admin: AdminClient, missing: list[TopicSpec], timeout: float) -> None:
    """Create the topics (one that exists by now is no error) and wait until they are seen.

    Topics the controller throttled (a mutation quota) are asked for again after
    a backoff, until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    left = missing
    attempt = 0
    while left:
        new = [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=s.replication_factor,
                config=s.config,
            )
            for s in left
        ]
        futures = admin.create_topics(new, operation_timeout=timeout)
        throttled = []
        for name, error in outcomes(futures, "creating topic", timeout).items():
            if error is None or "TOPIC_ALREADY_EXISTS" in str(error):
                continue
            if "THROTTLING_QUOTA_EXCEEDED" in str(error) and time.monotonic() < deadline:
                throttled.append(name)
                continue
            raise AdminError(f"creating topic {name}: {error}")
        left = [s for s in left if s.name in throttled]
        if left:
            attempt += 1
            time.sleep(THROTTLED.delay(attempt))
    _wait_visible(admin, {s.name: s.partitions for s in missing}, timeout)


def _grow(
    admin: AdminClient, present: list[TopicSpec], counts: Mapping[str, int], timeout: float
) -> set[str]:
    """Add partitions to the topics that have fewer than their spec, and wait until the
    new partitions are seen (as :func:`_create` does); return the grown topics' names."""
    grow = [NewPartitions(s.name, s.partitions) for s in present if counts[s.name] < s.partitions]
    if grow:
        futures = admin.create_partitions(grow, operation_timeout=timeout)
        for name, error in outcomes(futures, "adding partitions to", timeout).items():
            if error is not None:
                raise AdminError(f"adding partitions to {name}: {error}")
        _wait_visible(admin, {p.topic: p.new_total_count for p in grow}, timeout)
    return {p.topic for p in grow}


def _config_drift(
    admin: AdminClient, present: list[TopicSpec], timeout: float
) -> dict[str, dict[str, str]]:
    """Topic name -> the entries of its spec's config that the topic lacks or differs in."""
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in present]
    described = admin.describe_configs(resources, request_timeout=timeout)
    configs = settle(
        {r: described[r] for r in resources}, "describing topic", timeout, name=lambda r: r.name
    )  # one request per call: apply_topics hands at most limits.topics of them
    drift: dict[str, dict[str, str]] = {}
    for spec, current in zip(present, configs, strict=True):
        wrong = {k: v for k, v in spec.config.items() if k not in current or current[k].value != v}
        if wrong:
            drift[spec.name] = wrong
    return drift


def _set_config(admin: AdminClient, drift: Mapping[str, Mapping[str, str]], timeout: float) -> None:
    """Set the drifted config entries of each topic to their spec's values."""
    alter = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in wrong.items()
            ],
        )
        for name, wrong in drift.items()
    ]
    futures = admin.incremental_alter_configs(alter)
    settle(futures, "updating config of", timeout, name=lambda res: res.name)


def _wait_visible(admin: AdminClient, wanted: Mapping[str, int], timeout: float) -> None:
    """Return once every topic is in the metadata with a leader for each partition.

    CreateTopics returns before the new topics reach every metadata cache; a
    caller that describes or produces right after would see them missing. Only
    ``wanted`` is described (a batch), not the whole cluster: on a broker with
    thousands of topics, asking for all of them after each batch would make a
    region's import grow with the square of its size.
    """
    from confluent_kafka import KafkaException, TopicCollection

    def pending() -> list[str]:
        futures = admin.describe_topics(TopicCollection(list(wanted)), request_timeout=timeout)
        left = []
        for name, future in futures.items():
            try:
                described = future.result(timeout=timeout)
            except KafkaException:
                left.append(name)  # not in this broker's metadata yet
                continue
            parts = described.partitions
            if len(parts) < wanted[name] or any(p.leader is None for p in parts):
                left.append(name)
        return left

    wait_until_done(pending, "topics not visible", timeout, every=0.05)


def list_topics(
    bootstrap: str,
    *,
    timeout: float = QUERY_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
    admin: AdminClient | None = None,
) -> dict[str, int]:
    """Topic name -> partition count, internal topics excluded. A caller that asks
    often passes its own long-lived ``admin``: a new client per call costs a
    connection and librdkafka's threads each time."""
    if admin is None:
        admin = admin_client(bootstrap, auth)
    topics = existing_topics(admin, bootstrap, timeout)
    return {name: len(t.partitions) for name, t in topics.items() if not name.startswith("__")}


def delete_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    timeout: float = CHANGE_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
    limits: BatchLimits = DEFAULT_LIMITS,
) -> list[str]:
    """Delete the topics among ``names`` that exist (``limits.topics`` a request); return
    the deleted ones' names."""
    admin = admin_client(bootstrap, auth)
    existing = existing_topics(admin, bootstrap, timeout)
    doomed = [name for name in names if name in existing]
    if not doomed:
        return []
    for batch in chunks(doomed, limits.topics):
        futures = admin.delete_topics(list(batch), operation_timeout=timeout)
        for name, error in outcomes(futures, "deleting topic", timeout).items():
            if error is not None and "UNKNOWN_TOPIC" not in str(error):
                raise AdminError(f"deleting topic {name}: {error}")
    return doomed


__all__ = ["BatchFailed", "Outcome", "TopicResult", "apply_topics", "delete_topics", "list_topics"]
