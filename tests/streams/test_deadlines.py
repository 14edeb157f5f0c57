"""The offer-deadline index: ordering, replacement, partitions, and a model check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streams.decisions.deadlines import DeadlineIndex, DueDeadline

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_pop_due_returns_due_deadlines_in_due_order() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-c", at(30))
    index.set(1, "ref-a", at(10))
    index.set(0, "ref-b", at(20))
    assert index.pop_due(at(30)) == [
        DueDeadline(1, "ref-a", at(10)),
        DueDeadline(0, "ref-b", at(20)),
        DueDeadline(0, "ref-c", at(30)),
    ]
    assert len(index) == 0


def test_pop_due_only_returns_items_due_at_or_before_now() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-early", at(5))
    index.set(0, "ref-now", at(10))
    index.set(0, "ref-later", at(11))
    assert [d.referral_id for d in index.pop_due(at(10))] == ["ref-early", "ref-now"]
    assert index.pop_due(at(10)) == []
    assert index.next_due() == at(11)
    assert len(index) == 1


def test_equal_due_times_pop_in_referral_id_order() -> None:
    index = DeadlineIndex()
    for rid in ["ref-b", "ref-c", "ref-a"]:
        index.set(0, rid, at(1))
    assert [d.referral_id for d in index.pop_due(at(1))] == ["ref-a", "ref-b", "ref-c"]


def test_setting_again_replaces_the_earlier_deadline() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-1", at(10))
    index.set(0, "ref-1", at(60))
    assert len(index) == 1
    assert index.due_of("ref-1") == at(60)
    assert index.pop_due(at(30)) == []
    assert index.next_due() == at(60)
    assert index.pop_due(at(60)) == [DueDeadline(0, "ref-1", at(60))]


def test_replacing_with_an_earlier_deadline_makes_it_due_sooner() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-1", at(60))
    index.set(0, "ref-1", at(10))
    assert index.pop_due(at(10)) == [DueDeadline(0, "ref-1", at(10))]
    assert index.pop_due(at(60)) == []


def test_setting_in_another_partition_moves_the_referral() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-1", at(10))
    index.set(3, "ref-1", at(10))
    assert index.partition_of("ref-1") == 3
    assert index.partitions() == {3}
    index.drop_partitions([0])
    assert index.pop_due(at(10)) == [DueDeadline(3, "ref-1", at(10))]


def test_discard_forgets_the_deadline_and_unknown_ids_are_ignored() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-1", at(10))
    index.set(0, "ref-2", at(20))
    index.discard("ref-1")
    index.discard("ref-never-set")
    assert "ref-1" not in index
    assert index.next_due() == at(20)
    assert index.pop_due(at(60)) == [DueDeadline(0, "ref-2", at(20))]


def test_drop_partitions_forgets_only_those_partitions() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-0", at(1))
    index.set(1, "ref-1", at(2))
    index.set(2, "ref-2", at(3))
    index.drop_partitions([0, 2, 7])
    assert len(index) == 1
    assert index.partitions() == {1}
    assert index.next_due() == at(2)
    assert index.pop_due(at(60)) == [DueDeadline(1, "ref-1", at(2))]


def test_load_partition_rebuilds_a_partition_from_the_table_on_assignment() -> None:
    index = DeadlineIndex()
    index.set(4, "ref-stale", at(1))
    index.set(5, "ref-other", at(2))
    index.load_partition(4, [("ref-a", at(3)), ("ref-b", at(4))])
    assert sorted(index) == [
        DueDeadline(4, "ref-a", at(3)),
        DueDeadline(4, "ref-b", at(4)),
        DueDeadline(5, "ref-other", at(2)),
    ]


def test_a_popped_referral_can_be_set_again() -> None:
    index = DeadlineIndex()
    index.set(0, "ref-1", at(10))
    assert len(index.pop_due(at(10))) == 1
    index.set(0, "ref-1", at(10))
    assert index.pop_due(at(10)) == [DueDeadline(0, "ref-1", at(10))]


def test_next_due_is_none_when_empty_and_skips_stale_entries() -> None:
    index = DeadlineIndex()
    assert index.next_due() is None
    index.set(0, "ref-1", at(1))
    index.set(0, "ref-2", at(2))
    index.discard("ref-1")
    assert index.next_due() == at(2)
    index.discard("ref-2")
    assert index.next_due() is None


def test_deadlines_in_different_offsets_compare_as_instants() -> None:
    index = DeadlineIndex()
    new_york = timezone(timedelta(hours=-5))
    index.set(0, "ref-ny", datetime(2026, 11, 24, 9, 0, tzinfo=new_york))  # 14:00 UTC
    index.set(0, "ref-utc", datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    assert [d.referral_id for d in index.pop_due(datetime(2026, 11, 24, 14, 0, tzinfo=UTC))] == [
        "ref-utc",
        "ref-ny",
    ]


def test_naive_datetimes_are_refused() -> None:
    index = DeadlineIndex()
    with pytest.raises(ValueError, match="timezone-aware"):
        index.set(0, "ref-1", datetime(2026, 11, 24, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        index.pop_due(datetime(2026, 11, 24, 9, 0))


def test_repeated_rescheduling_keeps_the_heap_proportional_to_live_deadlines() -> None:
    """Lazy deletion leaves stale heap entries; compaction must bound them."""
    index = DeadlineIndex()
    for rid in range(10):
        index.set(0, f"ref-{rid}", at(rid))
    for round_ in range(1, 2001):
        index.set(0, f"ref-{round_ % 10}", at(round_))
    assert len(index) == 10
    assert index.heap_size <= 2 * 1024 + 2
    # and the live deadlines are still the latest ones
    assert sorted(d.due for d in index) == [at(m) for m in range(1991, 2001)]


def test_pop_due_touches_only_due_entries() -> None:
    """A tick with nothing due must not walk the open referrals."""
    index = DeadlineIndex()
    for rid in range(5000):
        index.set(rid % 6, f"ref-{rid}", at(1000 + rid))
    heap_before = index.heap_size
    assert index.pop_due(at(999)) == []
    assert index.heap_size == heap_before
    assert len(index.pop_due(at(1002))) == 3
    assert index.heap_size == heap_before - 3


# ------------------------------------------------------------- model-based check

REFERRALS = st.sampled_from([f"ref-{i}" for i in range(8)])
PARTITIONS = st.integers(min_value=0, max_value=3)
MINUTES = st.integers(min_value=0, max_value=50)


class DeadlineIndexVersusNaiveList(RuleBasedStateMachine):
    """The index behaves like a plain list of (partition, referral, due) scanned in full."""

    def __init__(self) -> None:
        super().__init__()
        # compact_min=0 compacts as soon as stale entries outnumber live ones,
        # so the model check covers the compaction path too.
        self.index = DeadlineIndex(compact_min=0)
        self.model: list[DueDeadline] = []

    def _model_remove(self, referral_id: str) -> None:
        self.model = [d for d in self.model if d.referral_id != referral_id]

    @rule(partition=PARTITIONS, referral_id=REFERRALS, minutes=MINUTES)
    def set_deadline(self, partition: int, referral_id: str, minutes: int) -> None:
        self.index.set(partition, referral_id, at(minutes))
        self._model_remove(referral_id)
        self.model.append(DueDeadline(partition, referral_id, at(minutes)))

    @rule(entries=st.lists(st.tuples(PARTITIONS, REFERRALS, MINUTES), max_size=6))
    def set_many(self, entries: list[tuple[int, str, int]]) -> None:
        self.index.set_many((p, r, at(m)) for p, r, m in entries)
        for partition, referral_id, minutes in entries:
            self._model_remove(referral_id)
            self.model.append(DueDeadline(partition, referral_id, at(minutes)))

    @rule(referral_id=REFERRALS)
    def discard(self, referral_id: str) -> None:
        self.index.discard(referral_id)
        self._model_remove(referral_id)

    @rule(partitions=st.sets(PARTITIONS, max_size=2))
    def drop_partitions(self, partitions: set[int]) -> None:
        self.index.drop_partitions(partitions)
        self.model = [d for d in self.model if d.partition not in partitions]

    @rule(minutes=MINUTES)
    def pop_due(self, minutes: int) -> None:
        now = at(minutes)
        expected = sorted(
            (d for d in self.model if d.due <= now), key=lambda d: (d.due, d.referral_id)
        )
        self.model = [d for d in self.model if d.due > now]
        assert self.index.pop_due(now) == expected

    @invariant()
    def same_contents(self) -> None:
        assert len(self.index) == len(self.model)
        assert sorted(self.index) == sorted(self.model)
        assert self.index.next_due() == min((d.due for d in self.model), default=None)
        assert self.index.partitions() == {d.partition for d in self.model}


DeadlineIndexVersusNaiveList.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
test_deadline_index_matches_a_naive_list = DeadlineIndexVersusNaiveList.TestCase
