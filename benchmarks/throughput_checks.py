"""What the throughput benchmark reads back: the clinic's updates, and its checks.

Each referral must be offered exactly once, and no (referral, service) pair twice;
nothing may land in the dead letters.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from connectors.kafka.clients import consumer
from deploy.bench.kafka import BackgroundReader
from schemas.topics import Topics

CLINIC = "bench-clinic"


@dataclass(frozen=True)
class Update:
    referral_id: str
    screening_id: str | None
    status: str
    business_status: str | None
    service_id: str | None
    attempt: int
    event_id: str
    timestamp_ms: int


class UpdatesReader(BackgroundReader):
    """Reads the clinic's updates topic from the beginning in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, topic)
        self.updates: list[Update] = []
        self.first: dict[str, Update] = {}

    def received(self, batch: dict[Any, list[Any]]) -> None:
        for records in batch.values():
            for r in records:
                v = json.loads(r.value)
                if v.get("event_type") != "referral.updated":
                    continue  # the clinic's answers (screening.answered, ...) say no status
                u = Update(
                    referral_id=v["referral_id"],
                    screening_id=v.get("screening_id"),
                    status=v["status"],
                    business_status=v.get("business_status"),
                    service_id=v.get("service_id"),
                    attempt=v.get("attempt", 0),
                    event_id=v["event_id"],
                    timestamp_ms=r.timestamp,
                )
                self.updates.append(u)
                self.first.setdefault(u.referral_id, u)

    def ours(self, expected: set[str]) -> list[Update]:
        """The updates of the ``expected`` referrals, in the order they came."""
        return [u for u in self.updates if u.referral_id in expected]


async def drain(bootstrap: str, names: list[str], partitions: int) -> list[dict[str, Any]]:
    """Every message now on ``names``, read from the beginning to the current ends."""
    reader = consumer(bootstrap, group_id=None)
    await reader.start()
    try:
        tps = [TopicPartition(n, p) for n in names for p in range(partitions)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        values: list[dict[str, Any]] = []
        while [tp for tp in tps if await reader.position(tp) < ends[tp]]:
            batch = await reader.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                values.extend(json.loads(r.value) for r in records if r.value is not None)
        return values
    finally:
        await reader.stop()


def check_updates(
    reader: UpdatesReader, ours: list[Update], expected: set[str], warm_ref: str
) -> list[str]:
    """What the clinic's updates say (``ours``: those of the expected referrals): each
    referral offered (or unmatched) once."""
    firsts = {rid: reader.first[rid] for rid in expected if rid in reader.first}
    problems: list[str] = []
    missing = expected - firsts.keys()
    if missing:
        problems.append(f"{len(missing)} referrals never updated, e.g. {sorted(missing)[:3]}")
    stray = {u.referral_id for u in reader.updates} - expected - {warm_ref}
    if stray:
        problems.append(f"{len(stray)} unexpected referral ids, e.g. {sorted(stray)[:3]}")
    first_offers = Counter(
        u.referral_id for u in ours if u.business_status == "offered" and u.attempt == 1
    )
    unmatched = {u.referral_id for u in ours if u.business_status == "unmatched"}
    twice = {r: n for r, n in first_offers.items() if n > 1}
    if twice:
        problems.append(f"{len(twice)} referrals got >1 first offer update: {list(twice)[:3]}")
    neither = expected - first_offers.keys() - unmatched - missing
    if neither:
        problems.append(f"{len(neither)} referrals neither offered nor unmatched")
    both = first_offers.keys() & unmatched
    if both:
        problems.append(f"{len(both)} referrals both offered and unmatched")
    repeated_ids = sum(n - 1 for n in Counter(u.event_id for u in ours).values() if n > 1)
    if repeated_ids:
        problems.append(f"{repeated_ids} referral.updated delivered more than once (same id)")
    return problems


#: the suffix a screening's referral id may carry to land in its patient's partition
_PLACED = re.compile(r"~[0-9]+$")


def clinic_referral_id(network_id: str) -> str | None:
    """The clinic's id of one of CLINIC's referrals, from the network's id organizations
    see: without the clinic's scope and the placement suffix
    (``streams.decisions.commands.placed_referral_id``)."""
    scope = f"{CLINIC}:"
    if not network_id.startswith(scope):
        return None
    return _PLACED.sub("", network_id[len(scope) :])


async def check_topics(
    bootstrap: str, topics: Topics, orgs: list[str], ours: list[Update], expected: set[str]
) -> list[str]:
    """What the organizations' topics and the dead letters say: no offer twice."""
    problems: list[str] = []
    org_msgs = await drain(bootstrap, [topics.org_referrals(o) for o in orgs], topics.partitions)
    # organizations see the network's id, scoped by the clinic (and placed)
    offered = [
        (clinic_referral_id(msg["referral_id"]), msg["service_id"])
        for msg in org_msgs
        if msg.get("event_type") == "referral.offered"
        and clinic_referral_id(msg["referral_id"]) in expected
    ]
    pairs = Counter(offered)
    dup_pairs = {p: n for p, n in pairs.items() if n > 1}
    if dup_pairs:
        problems.append(
            f"{len(dup_pairs)} (referral, service) offered twice: {list(dup_pairs)[:3]}"
        )
    per_referral: defaultdict[str, set[str]] = defaultdict(set)
    for rid, sid in offered:
        per_referral[rid].add(sid)
    multi = [r for r, s in per_referral.items() if len(s) > 1]
    if multi:
        problems.append(f"{len(multi)} referrals offered to more than one service")
    update_pairs = {(u.referral_id, u.service_id) for u in ours if u.business_status == "offered"}
    if update_pairs != set(pairs):
        problems.append(
            f"offers to organizations ({len(pairs)}) and offered updates to the clinic "
            f"({len(update_pairs)}) differ"
        )
    dead = await drain(bootstrap, [topics.deadletter], topics.partitions)
    if dead:
        problems.append(f"{len(dead)} dead letters, e.g. {dead[0].get('error')}")
    print(
        f"checked: {len(ours)} referral.updated, {len(offered)} referral.offered to "
        f"{len(orgs)} organizations, {len(dead)} dead letters"
    )
    return problems
