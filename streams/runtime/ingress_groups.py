"""The ingress's two consumer groups, and the party topics each reads.

``{app_id}-ingress`` reads every clinic's and every facility's submissions (a few
topics); ``{app_id}-ingress-updates`` every organization's updates (one topic per
organization). With one group for all of them, every fetch named every
organization's topic and a screening waited behind it (aiokafka has no
incremental fetch sessions), and, as two members of one group, every rebalance a
new organization's topic caused stopped the submissions for seconds
(docs/directory.md). Until the updates' group existed, ``{app_id}-ingress`` read
the organizations' updates: the new group takes its committed offsets over
(:mod:`streams.runtime.positions`).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.topics import Topics


def submissions_pattern(topics: Topics) -> str:
    """Every clinic's and every facility's submissions topic."""
    clinic = topics.clinic_submissions_pattern.strip("^$")
    facility = topics.facility_submissions_pattern.strip("^$")
    return f"^(?:{clinic}|{facility})$"


@dataclass(frozen=True)
class IngressGroup:
    """One ingress loop: its name (the supervisor's and the logs'), its consumer
    group, the topics it reads, and the group whose committed offsets a partition
    without one of its own starts from (:mod:`streams.runtime.positions`)."""

    name: str
    group_id: str
    pattern: str
    previous: str | None = None
    #: the longest the broker holds one of its empty fetches (data ends it at once)
    fetch_wait_ms: int = 500


#: The updates' empty fetches: each names every organization's partition and its
#: answer is decoded in Python (at 5,000 organizations, tens of milliseconds that
#: hold the interpreter): held by the broker for 5 s instead of half a second, as an
#: update arriving ends the wait at once.
UPDATES_FETCH_WAIT_MS = 5_000


def ingress_groups(app_id: str, topics: Topics) -> tuple[IngressGroup, IngressGroup]:
    """The submissions' group (``{app_id}-ingress``, a few topics) and the
    organizations' updates' (``{app_id}-ingress-updates``, one topic per
    organization), which read them in ``{app_id}-ingress`` before it existed and
    so takes its offsets over."""
    submissions = IngressGroup("ingress", f"{app_id}-ingress", submissions_pattern(topics))
    updates = IngressGroup(
        "ingress-updates",
        f"{app_id}-ingress-updates",
        topics.org_updates_pattern,
        previous=submissions.group_id,
        fetch_wait_ms=UPDATES_FETCH_WAIT_MS,
    )
    return submissions, updates


__all__ = ["UPDATES_FETCH_WAIT_MS", "IngressGroup", "ingress_groups", "submissions_pattern"]
