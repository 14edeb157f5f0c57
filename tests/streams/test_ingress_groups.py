"""The ingress's two consumer groups read disjoint kinds of party topics, without a broker."""

from __future__ import annotations

import re

from streams.runtime.ingress import is_party_topic
from streams.runtime.ingress_groups import ingress_groups
from tests.streams.fixtures import CLINIC, TOPICS

ORG = "bronx-pantry"
FACILITY = "lincoln-ed"


def _reads(pattern: str, topic: str) -> bool:
    return re.fullmatch(pattern, topic) is not None


def test_two_groups_one_for_submissions_one_for_organizations_updates() -> None:
    submissions, updates = ingress_groups("refnet", TOPICS)
    assert (submissions.group_id, updates.group_id) == ("refnet-ingress", "refnet-ingress-updates")
    assert submissions.name != updates.name  # two loops under the supervisor

    for topic in (TOPICS.clinic_submissions(CLINIC), TOPICS.facility_submissions(FACILITY)):
        assert _reads(submissions.pattern, topic)
        assert not _reads(updates.pattern, topic)
    org = TOPICS.org_updates(ORG)
    assert _reads(updates.pattern, org)
    assert not _reads(submissions.pattern, org)


def test_together_they_read_every_party_topic_and_nothing_else() -> None:
    groups = ingress_groups("refnet", TOPICS)
    candidates = [
        TOPICS.clinic_submissions(CLINIC),
        TOPICS.facility_submissions(FACILITY),
        TOPICS.org_updates(ORG),
        TOPICS.clinic_updates(CLINIC),
        TOPICS.org_referrals(ORG),
        TOPICS.facility_updates(FACILITY),
        TOPICS.network_patients,
        TOPICS.deadletter,
    ]
    for topic in candidates:
        readers = [group.name for group in groups if _reads(group.pattern, topic)]
        assert len(readers) == (1 if is_party_topic(TOPICS, topic) else 0), topic


def test_the_updates_group_takes_over_the_old_groups_offsets_and_not_the_reverse() -> None:
    submissions, updates = ingress_groups("refnet", TOPICS)
    # before the updates' group existed, "{app_id}-ingress" read the organizations' updates
    assert updates.previous == submissions.group_id
    assert submissions.previous is None
