"""What a referral's deadline asks for once it is due: purge, time out or expire.

The worker's timer pops due deadlines of the partitions it owns and sends the
command chosen here to the referral's owner. The choice is pure: the stored
record, the limits and the time are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.decisions.commands import Command, ExpireReferral, OfferTimeout, PurgeReferral
from streams.decisions.limits import Limits
from streams.decisions.referrals import ReferralRecord


@dataclass(frozen=True)
class NotYet:
    """The record's next deadline lies after ``now``: put it back for ``due``."""

    due: datetime


def timer_command(record: ReferralRecord, limits: Limits, now: datetime) -> Command | NotYet | None:
    """The command ``record``'s deadline calls for at ``now``.

    ``None`` when the record has no deadline left, :class:`NotYet` when its next
    one is still to come. A closed referral is purged, an offer not answered in
    time is timed out, and any other referral has gone without an update too long
    and expires. Command ids name the referral and its attempt or step, so a
    deadline popped twice sends the same command twice, applied once.
    """
    when = record.next_due(limits)
    if when is None:
        return None
    if when > now:
        return NotYet(when)
    referral_id = record.referral_id
    if record.state.terminal:
        return PurgeReferral(command_id=f"purge:{referral_id}", referral_id=referral_id)
    if record.pending_deadline() is not None:
        return OfferTimeout(
            command_id=f"timeout:{referral_id}:{record.attempt}",
            referral_id=referral_id,
            attempt=record.attempt,
        )
    return ExpireReferral(
        command_id=f"expire:{referral_id}:{record.step}", referral_id=referral_id, step=record.step
    )


__all__ = ["NotYet", "timer_command"]
