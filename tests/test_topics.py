from __future__ import annotations

import re

import pytest

from schemas.topics import InvalidPartyId, TopicKind, Topics


def test_names_follow_the_contract() -> None:
    t = Topics()
    assert t.clinic_submissions("mott-haven") == "sdoh.clinic.mott-haven.submissions.v1"
    assert t.clinic_updates("mott-haven") == "sdoh.clinic.mott-haven.updates.v1"
    assert t.org_referrals("bronx-pantry") == "sdoh.org.bronx-pantry.referrals.v1"
    assert t.org_updates("bronx-pantry") == "sdoh.org.bronx-pantry.updates.v1"
    assert t.directory == "sdoh.directory.v1"
    assert t.screenings == "sdoh.screenings.v1"
    assert t.referral_events == "sdoh.referrals.events.v1"
    assert t.deadletter == "sdoh.deadletter.v1"


def test_parse_recovers_kind_and_party() -> None:
    t = Topics(prefix="test")
    assert t.parse("test.org.bronx-pantry.updates.v1") == (TopicKind.ORG_UPDATES, "bronx-pantry")
    assert t.parse("test.clinic.c1.submissions.v1") == (TopicKind.CLINIC_SUBMISSIONS, "c1")
    assert t.parse("test.directory.v1") == (TopicKind.DIRECTORY, None)
    assert t.parse("sdoh.directory.v1") is None
    assert t.parse("test.org.Bad_Id.updates.v1") is None
    assert t.parse("test.org.x1.unknown.v1") is None


def test_patterns_match_party_topics_only() -> None:
    t = Topics(prefix="sdoh")
    sub = re.compile(t.clinic_submissions_pattern)
    assert sub.match("sdoh.clinic.mott-haven.submissions.v1")
    assert not sub.match("sdoh.clinic.mott-haven.updates.v1")
    assert not sub.match("sdohx.clinic.a1.submissions.v1")
    upd = re.compile(t.org_updates_pattern)
    assert upd.match("sdoh.org.bronx-pantry.updates.v1")
    assert not upd.match("sdoh.org.bronx-pantry.referrals.v1")


@pytest.mark.parametrize("bad", ["Bronx", "-x", "a", "x" * 64, "a.b", "a_b", ""])
def test_invalid_party_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidPartyId):
        Topics().org_referrals(bad)


def test_catalog_directory_is_compacted_and_others_delete() -> None:
    specs = {s.kind: s for s in Topics().network_catalog()}
    assert specs[TopicKind.DIRECTORY].config["cleanup.policy"] == "compact"
    assert specs[TopicKind.DEADLETTER].config["cleanup.policy"] == "delete"


def test_state_catalog_holds_the_command_topics_and_the_changelogs_all_fixed() -> None:
    t = Topics(prefix="sdoh", partitions=4, replication_factor=3)
    specs = {s.name: s for s in t.state_catalog("refnet")}
    assert set(specs) == {
        "sdoh.network.patients.v1",
        "sdoh.network.referrals.v1",
        "sdoh.network.linkage.v1",
        "refnet-patients-changelog",
        "refnet-referrals-changelog",
        "refnet-linkage-changelog",
    }
    assert all(s.fixed_partitions for s in specs.values())
    assert {(s.partitions, s.replication_factor) for s in specs.values()} == {(4, 3)}


def test_changelogs_are_compacted_and_named_by_the_app_id() -> None:
    specs = Topics(prefix="x1", partitions=3).changelog_catalog("my-app")
    assert [s.name for s in specs] == [
        "my-app-patients-changelog",
        "my-app-referrals-changelog",
        "my-app-linkage-changelog",
    ]
    assert [s.kind for s in specs] == [
        TopicKind.PATIENTS_CHANGELOG,
        TopicKind.REFERRALS_CHANGELOG,
        TopicKind.LINKAGE_CHANGELOG,
    ]
    for spec in specs:
        assert spec.config["cleanup.policy"] == "compact"
        assert spec.partitions == 3
        assert spec.fixed_partitions


def test_only_the_state_topics_have_fixed_partitions() -> None:
    t = Topics()
    fixed = {s.name for s in t.apply_catalog("refnet") if s.fixed_partitions}
    assert fixed == {s.name for s in t.state_catalog("refnet")}
    assert {s.name for s in t.clinic_catalog("c1") + t.org_catalog("o1") if s.fixed_partitions} == (
        set()
    )


def test_apply_catalog_is_the_network_catalog_and_the_changelogs() -> None:
    t = Topics()
    assert t.apply_catalog("a1") == t.network_catalog() + t.changelog_catalog("a1")
    assert len(t.network_catalog()) == 9  # unchanged by the changelogs


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 201])
def test_an_app_id_that_cannot_name_a_topic_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid app id"):
        Topics().changelog_catalog(bad)
