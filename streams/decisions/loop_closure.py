"""Loop closure: the one definition every figure of it uses (the status page, ``refnet
report``, the demo's summary, the metrics).

**Loop closure** is the share of the referrals offered to an organization whose
organization reported the outcome: the referral ``completed``, or ``failed`` as reported
by its organization. A referral that never reached an organization (unmatched, consent
required, cancelled before an offer) is not in it: the loop it measures is the one
between a clinic and a community organization.
"""

from __future__ import annotations


def closes_loop(to_status: str, business_status: str | None, actor: str | None) -> bool:
    """Whether a step to ``to_status`` closes the referral's loop with an outcome (an
    organization that cancels a referral it holds fails it)."""
    return to_status == "completed" or (
        to_status in ("failed", "cancelled") and business_status is None and actor == "organization"
    )


def loop_closure_rate(closed: int, offered: int) -> float | None:
    """``closed`` (referrals offered to an organization whose organization reported the
    outcome) over ``offered`` (referrals offered to an organization); None without any."""
    return round(closed / offered, 4) if offered else None


__all__ = ["closes_loop", "loop_closure_rate"]
