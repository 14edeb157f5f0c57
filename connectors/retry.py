"""One retry policy: exponential backoff, doubling from a first delay to a cap.

Every loop that waits before trying again (a supervised task, a webhook
delivery, the ledger's batch, a timer's command, a client reconnecting) asks a
:class:`Backoff` for its delay instead of computing its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays of ``first * factor ** (attempt - 1)`` seconds, capped at ``cap``."""

    first: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.first <= 0 or self.cap < self.first or self.factor < 1:
            raise ValueError(f"not a backoff: {self!r}")

    def delay(self, attempt: int) -> float:
        """The wait before try ``attempt + 1``, after ``attempt`` failures (1 for the first)."""
        if attempt <= 1:
            return self.first
        # Past the cap the exponent no longer matters: stop growing it.
        exponent = min(attempt - 1, 64)
        return float(min(self.cap, self.first * self.factor**exponent))


__all__ = ["Backoff"]
