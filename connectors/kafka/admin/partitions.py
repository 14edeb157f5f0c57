"""The partition count of the state topics, which must never change once they exist."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.kafka.admin.client import QUERY_TIMEOUT, AdminError, admin_client, existing_topics
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from schemas.topics import TopicSpec


class PartitionChangeRefused(AdminError):
    """Applying the catalog would change the partition count of a fixed-partition topic.

    Nothing was changed. ``problems`` are the lines of :func:`check_partitions`.
    """

    def __init__(
        self,
        problems: list[str],
        specs: Iterable[TopicSpec],
        bootstrap: str,
        current: int | None = None,
    ) -> None:
        self.problems = problems
        super().__init__(
            "refusing to change the partition count of the network's state topics:\n"
            + "\n".join(f"  {line}" for line in problems)
            + "\n"
            + partition_advice(specs, bootstrap, current)
        )


def partition_problems(specs: Iterable[TopicSpec], counts: Mapping[str, int]) -> list[str]:
    """What is wrong with the fixed-partition topics among ``specs``, given ``counts``.

    ``counts`` maps the existing topics to their partition counts; a topic not in it
    does not exist yet, and is no problem (it is created with its spec's count).
    """
    fixed = [s for s in specs if s.fixed_partitions]
    problems = [
        f"{s.name} has {counts[s.name]} partitions; the catalog asks for {s.partitions} "
        "(REFNET_PARTITIONS)"
        for s in fixed
        if s.name in counts and counts[s.name] != s.partitions
    ]
    existing = {s.name: counts[s.name] for s in fixed if s.name in counts}
    if len(set(existing.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in existing.items())
        problems.append(f"the state topics' partition counts differ: {listed}")
    if len({s.partitions for s in fixed}) > 1:
        listed = ", ".join(f"{s.name}={s.partitions}" for s in fixed)
        problems.append(f"the catalog asks for different partition counts: {listed}")
    return problems


def partition_advice(
    specs: Iterable[TopicSpec], bootstrap: str = "HOST:PORT", current: int | None = None
) -> str:
    """How to get out of a partition mismatch of the fixed-partition topics among ``specs``.

    ``current``: the count the existing state topics share, if they share one.
    """
    names = [s.name for s in specs if s.fixed_partitions]
    keep = (
        f"keep REFNET_PARTITIONS={current} (their current count)"
        if current is not None
        else "keep REFNET_PARTITIONS at their current count"
    )
    return (
        "Nothing was changed. A patient's or referral's state lives in the partition its key "
        "hashes to, so these topics keep their partition count for life, and all of them must "
        f"have the same one. Either {keep}, or "
        "migrate: stop every worker, let open referrals drain (or accept losing the network's "
        f"in-flight state), delete the {len(names)} state topics ({', '.join(names)}; e.g. "
        f"kafka-topics.sh --bootstrap-server {bootstrap} --delete --topic NAME), then run "
        "'refnet topics apply' again."
    )


def refuse_partition_change(
    specs: list[TopicSpec], counts: Mapping[str, int], bootstrap: str
) -> None:
    """Raise :class:`PartitionChangeRefused` when :func:`partition_problems` finds any."""
    problems = partition_problems(specs, counts)
    if problems:
        shared = {counts[s.name] for s in specs if s.fixed_partitions and s.name in counts}
        current = shared.pop() if len(shared) == 1 else None
        raise PartitionChangeRefused(problems, specs, bootstrap, current)


def check_partitions(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    timeout: float = QUERY_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
) -> list[str]:
    """Problems of the existing fixed-partition topics among ``specs``; empty when all is well.

    Each problem is one human-readable line: a topic whose partition count differs
    from its spec, existing state topics whose counts differ from each other, or
    specs that ask for different counts. Topics that do not exist yet are no
    problem. A worker checks ``Topics.state_catalog(app_id)`` before it starts.
    """
    specs = list(specs)
    topics = existing_topics(admin_client(bootstrap, auth), bootstrap, timeout)
    return partition_problems(specs, {name: len(t.partitions) for name, t in topics.items()})


__all__ = [
    "PartitionChangeRefused",
    "check_partitions",
    "partition_advice",
    "partition_problems",
    "refuse_partition_change",
]
