"""The one retry policy: exponential backoff from a first delay to a cap."""

from __future__ import annotations

import pytest

from connectors.retry import Backoff


def test_the_first_wait_is_the_first_delay() -> None:
    assert Backoff(0.5, 30.0).delay(1) == 0.5
    assert Backoff(0.5, 30.0).delay(0) == 0.5


def test_each_failure_doubles_the_wait_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 30.0)
    assert [backoff.delay(n) for n in range(1, 10)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
        30.0,
    ]


def test_another_factor_grows_the_wait_by_it() -> None:
    assert [Backoff(1.0, 100.0, factor=3.0).delay(n) for n in (1, 2, 3, 4, 5)] == [
        1.0,
        3.0,
        9.0,
        27.0,
        81.0,
    ]


def test_a_factor_of_one_waits_the_same_every_time() -> None:
    assert {Backoff(2.0, 2.0, factor=1.0).delay(n) for n in range(1, 50)} == {2.0}


def test_a_very_late_attempt_waits_the_cap_without_overflowing() -> None:
    assert Backoff(0.5, 30.0).delay(10_000) == 30.0


def test_the_defaults() -> None:
    assert Backoff() == Backoff(first=0.5, cap=30.0, factor=2.0)


@pytest.mark.parametrize(
    ("first", "cap", "factor"),
    [(0.0, 1.0, 2.0), (-1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (0.5, 30.0, 0.5)],
)
def test_what_is_no_backoff_is_refused(first: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError, match="not a backoff"):
        Backoff(first, cap, factor)
