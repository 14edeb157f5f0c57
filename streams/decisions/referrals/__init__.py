"""The referral owner: offers, re-routes, times out and closes each referral.

Pure: :func:`decide` takes a referral's record, one command and what the
network knows (directory, organizations' record, load) and returns the new
record and the messages to send. Every state change goes through the state
machine in :mod:`streams.decisions.lifecycle`; every change the clinic should know of
becomes a ``referral.updated`` to the clinic and a ``referral.state-changed`` on
the event log. Output event ids derive from (referral, step), so a replayed
command repeats the same ids and an applied command id is never applied twice.

One module per concern: :mod:`.record` (the record, who holds it, when its
timers are due), :mod:`.context` (what the owner consults and decides),
:mod:`.owner` (:func:`decide`, :func:`fail`), the commands' effects in
:mod:`.clinic`, :mod:`.organizations` and :mod:`.expiry`, offering in
:mod:`.routing`, and what each change tells the parties in :mod:`.report`.
"""

from __future__ import annotations

from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.owner import decide, fail
from streams.decisions.referrals.record import (
    Offer,
    ReferralRecord,
    holder,
    holder_of_stored,
    next_due_of_stored,
)

__all__ = [
    "Context",
    "Offer",
    "ReferralDecision",
    "ReferralRecord",
    "decide",
    "fail",
    "holder",
    "holder_of_stored",
    "next_due_of_stored",
]
