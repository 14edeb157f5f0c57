"""`refnet topics apply` and `refnet provision` against the real broker."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import uuid

import pytest
from confluent_kafka.admin import ConfigResource

from connectors.kafka.admin import (
    Outcome,
    PartitionChangeRefused,
    admin_client,
    apply_topics,
    check_partitions,
    list_topics,
    partition_problems,
)
from schemas.topics import Topics

integration = pytest.mark.integration


@integration
def test_apply_creates_the_catalog_then_reports_it_unchanged(
    kafka_bootstrap: str, topics: Topics
) -> None:
    first = apply_topics(kafka_bootstrap, topics.network_catalog())
    assert {r.outcome for r in first} == {Outcome.CREATED}
    second = apply_topics(kafka_bootstrap, topics.network_catalog())
    assert {r.outcome for r in second} == {Outcome.UNCHANGED}
    listed = list_topics(kafka_bootstrap)
    for spec in topics.network_catalog():
        assert listed[spec.name] == spec.partitions


@integration
def test_directory_topic_is_compacted(kafka_bootstrap: str, topics: Topics) -> None:
    apply_topics(kafka_bootstrap, topics.network_catalog())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.directory)
    admin = admin_client(kafka_bootstrap)  # keep the handle alive until the answer arrives
    config = admin.describe_configs([resource])[resource].result(timeout=15)
    assert config["cleanup.policy"].value == "compact"


@integration
def test_apply_repairs_config_drift_and_grows_partitions(
    kafka_bootstrap: str, topics: Topics
) -> None:
    apply_topics(kafka_bootstrap, topics.network_catalog())
    wider = Topics(prefix=topics.prefix, partitions=topics.partitions + 2)
    drifted = [
        spec
        if spec.name != wider.deadletter
        else type(spec)(
            spec.name,
            spec.kind,
            spec.partitions,
            spec.replication_factor,
            {**spec.config, "retention.ms": "1234567"},
        )
        for spec in wider.network_catalog()
        if not spec.fixed_partitions
    ]
    results = {r.name: r for r in apply_topics(kafka_bootstrap, drifted)}
    assert results[wider.deadletter].outcome == Outcome.UPDATED
    assert "retention.ms=1234567" in results[wider.deadletter].detail
    assert results[wider.directory].detail == f"partitions -> {topics.partitions + 2}"
    listed = list_topics(kafka_bootstrap)
    for spec in drifted:
        assert listed[spec.name] == spec.partitions
        # every topic grew with the setting, except the view's snapshots (one partition)
        assert spec.partitions == (1 if spec.name == wider.network_view else topics.partitions + 2)
    assert listed[wider.network_patients] == topics.partitions  # not in the call: untouched


def _refnet(
    *args: str, bootstrap: str, prefix: str = "sdoh", **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REFNET_KAFKA_BOOTSTRAP": bootstrap, "REFNET_TOPIC_PREFIX": prefix}
    # provision writes the party's API token under the data dir: never the user's own
    env.setdefault("REFNET_DATA_DIR", tempfile.mkdtemp(prefix="refnet-admin-test-"))
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@integration
def test_provision_org_creates_its_referrals_and_updates_topics(kafka_bootstrap: str) -> None:
    done = _refnet("provision", "org", "bronx-pantry", bootstrap=kafka_bootstrap)
    assert done.returncode == 0, done.stderr
    listed = list_topics(kafka_bootstrap)
    assert "sdoh.org.bronx-pantry.referrals.v1" in listed
    assert "sdoh.org.bronx-pantry.updates.v1" in listed


@integration
def test_provision_clinic_creates_its_submissions_and_updates_topics(
    kafka_bootstrap: str, topics: Topics
) -> None:
    done = _refnet(
        "provision", "clinic", "mott-haven", bootstrap=kafka_bootstrap, prefix=topics.prefix
    )
    assert done.returncode == 0, done.stderr
    listed = list_topics(kafka_bootstrap)
    assert topics.clinic_submissions("mott-haven") in listed
    assert topics.clinic_updates("mott-haven") in listed


@pytest.mark.parametrize("bad", ["Bronx_Pantry", "-pantry", "a", "x" * 64, "bronx.pantry"])
@integration
def test_provision_rejects_an_id_that_breaks_the_pattern(kafka_bootstrap: str, bad: str) -> None:
    done = _refnet("provision", "org", "--", bad, bootstrap=kafka_bootstrap)
    assert done.returncode == 2
    assert "invalid party id" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------ fixed partitions
def _app_id() -> str:
    """Changelog names carry the app id, not the prefix: unique per test."""
    return f"app-{uuid.uuid4().hex[:10]}"


def _compaction(bootstrap: str, name: str) -> str:
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    admin = admin_client(bootstrap)
    return str(
        admin.describe_configs([resource])[resource].result(timeout=15)["cleanup.policy"].value
    )


@integration
def test_apply_creates_the_changelogs_compacted_with_the_catalog_count(
    kafka_bootstrap: str, topics: Topics
) -> None:
    app_id = _app_id()
    results = apply_topics(kafka_bootstrap, topics.apply_catalog(app_id))
    assert {r.outcome for r in results} == {Outcome.CREATED}
    listed = list_topics(kafka_bootstrap)
    for name in (f"{app_id}-patients-changelog", f"{app_id}-referrals-changelog"):
        assert listed[name] == topics.partitions == 3
        assert _compaction(kafka_bootstrap, name) == "compact"
    assert check_partitions(kafka_bootstrap, topics.state_catalog(app_id)) == []


@integration
def test_apply_refuses_to_change_the_state_topics_partitions_and_changes_nothing(
    kafka_bootstrap: str, topics: Topics
) -> None:
    app_id = _app_id()
    apply_topics(kafka_bootstrap, topics.apply_catalog(app_id))
    before = list_topics(kafka_bootstrap)
    wider = Topics(prefix=topics.prefix, partitions=6)
    with pytest.raises(PartitionChangeRefused) as refused:
        apply_topics(kafka_bootstrap, wider.apply_catalog(app_id))
    message = str(refused.value)
    for spec in wider.state_catalog(app_id):
        assert f"{spec.name} has 3 partitions; the catalog asks for 6" in message
    assert "keep REFNET_PARTITIONS=3" in message
    assert "stop every worker" in message and "refnet topics apply" in message
    after = list_topics(kafka_bootstrap)
    for spec in wider.apply_catalog(app_id):  # the growable topics did not grow either
        assert (
            after[spec.name] == before[spec.name] == (1 if spec.name == wider.network_view else 3)
        )
    # fewer partitions is a change too
    with pytest.raises(PartitionChangeRefused, match="has 3 partitions; the catalog asks for 2"):
        apply_topics(
            kafka_bootstrap, Topics(prefix=topics.prefix, partitions=2).apply_catalog(app_id)
        )


@integration
def test_check_partitions_reports_state_topics_that_differ_from_the_specs_or_each_other(
    kafka_bootstrap: str, topics: Topics
) -> None:
    app_id = _app_id()
    state = topics.state_catalog(app_id)
    assert check_partitions(kafka_bootstrap, state) == []  # nothing exists yet: no problem
    # a changelog Faust made on its own, with another count than the command topics
    [changelog] = [spec for spec in state if spec.name == f"{app_id}-patients-changelog"]
    patients_changelog = dataclasses.replace(changelog, partitions=2, fixed_partitions=False)
    apply_topics(kafka_bootstrap, [*topics.network_catalog(), patients_changelog])
    problems = check_partitions(kafka_bootstrap, state)
    assert f"{app_id}-patients-changelog has 2 partitions; the catalog asks for 3" in problems[0]
    assert "partition counts differ" in problems[-1]
    assert f"{app_id}-patients-changelog=2" in problems[-1]
    assert len(problems) == 2
    wider = Topics(prefix=topics.prefix, partitions=6).state_catalog(app_id)
    existing = len(state) - 2  # every state topic but the referrals' and linkage's changelogs
    assert len(check_partitions(kafka_bootstrap, wider)) == existing + 1  # and the split


def test_partition_problems_without_a_broker() -> None:
    t = Topics(prefix="p1", partitions=3)
    state = t.state_catalog("a1")
    assert partition_problems(state, {}) == []
    assert partition_problems(state, {s.name: 3 for s in state}) == []
    grown = {s.name: 3 for s in state} | {t.network_patients: 6}
    assert partition_problems(state, grown)[0] == (
        "p1.network.patients.v1 has 6 partitions; the catalog asks for 3 (REFNET_PARTITIONS)"
    )
    # a topic that is not fixed may differ
    assert partition_problems(t.network_catalog(), {t.directory: 12}) == []
    # specs that disagree among themselves
    mixed = [state[0], dataclasses.replace(state[1], partitions=4)]
    assert "asks for different partition counts" in partition_problems(mixed, {})[0]


@integration
def test_refnet_topics_apply_refuses_a_new_partition_count_with_exit_code_2(
    kafka_bootstrap: str, topics: Topics
) -> None:
    app_id = _app_id()
    first = _refnet(
        "topics",
        "apply",
        bootstrap=kafka_bootstrap,
        prefix=topics.prefix,
        REFNET_PARTITIONS="3",
        REFNET_APP_ID=app_id,
    )
    assert first.returncode == 0, first.stderr
    assert f"created   {app_id}-referrals-changelog" in first.stdout
    second = _refnet(
        "topics",
        "apply",
        bootstrap=kafka_bootstrap,
        prefix=topics.prefix,
        REFNET_PARTITIONS="6",
        REFNET_APP_ID=app_id,
    )
    assert second.returncode == 2
    assert "Traceback" not in second.stderr
    assert f"{topics.network_referrals} has 3 partitions; the catalog asks for 6" in second.stderr
    assert f"delete the {len(topics.state_catalog(app_id))} state topics" in second.stderr
    listed = list_topics(kafka_bootstrap)
    assert listed[topics.directory] == listed[f"{app_id}-patients-changelog"] == 3
    third = _refnet(
        "topics",
        "apply",
        bootstrap=kafka_bootstrap,
        prefix=topics.prefix,
        REFNET_PARTITIONS="3",
        REFNET_APP_ID=app_id,
    )
    assert third.returncode == 0, third.stderr
    assert set(line.split()[0] for line in third.stdout.splitlines()) == {"unchanged"}
