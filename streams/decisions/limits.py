"""The bounds the network keeps on what parties send and on its own state.

Plain values handed to the decisions; ``deploy.settings`` reads them from the
environment and documents each variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from schemas.decode import MAX_MESSAGE_BYTES
from streams.decisions.matching import DEFAULT_RESPONSE_SLA

#: Defaults (``deploy.settings`` documents each variable).
DEFAULT_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
#: NCQA HEDIS SNS-E counts an intervention within 30 days of a positive screen.
DEFAULT_IDLE_EXPIRY = timedelta(days=30)
DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Limits:
    """The bounds the network keeps on what parties send and on its own state."""

    #: A party message larger than this is dead-lettered (kind ``limit``).
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: An ``occurred_at`` further ahead of the network's clock is refused.
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    #: An accepted, in-progress or on-hold referral with no update for this long expires.
    idle_expiry: timedelta = DEFAULT_IDLE_EXPIRY
    #: Closed referrals (and then their patients) leave the tables after this long.
    retention: timedelta = DEFAULT_RETENTION
    #: Offers per referral; the next re-route ends it ``failed`` / ``unmatched``.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: respond_by of a service without its own ``response_sla``.
    default_response_sla: timedelta = DEFAULT_RESPONSE_SLA


__all__ = [
    "DEFAULT_IDLE_EXPIRY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CLOCK_SKEW",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_RETENTION",
    "Limits",
]
