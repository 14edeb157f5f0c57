"""The one place the worker reads the time: a clock passed to whatever needs one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: returns the current time (timezone-aware, UTC)
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(UTC)


__all__ = ["Clock", "system_clock"]
