"""`refnet topics apply` and `refnet provision` against the real broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from confluent_kafka.admin import ConfigResource

from connectors.kafka_admin import Outcome, admin_client, apply_topics, list_topics
from schemas.topics import Topics

pytestmark = pytest.mark.integration


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


def test_directory_topic_is_compacted(kafka_bootstrap: str, topics: Topics) -> None:
    apply_topics(kafka_bootstrap, topics.network_catalog())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.directory)
    admin = admin_client(kafka_bootstrap)  # keep the handle alive until the answer arrives
    config = admin.describe_configs([resource])[resource].result(timeout=15)
    assert config["cleanup.policy"].value == "compact"


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
    ]
    results = {r.name: r for r in apply_topics(kafka_bootstrap, drifted)}
    assert results[wider.deadletter].outcome == Outcome.UPDATED
    assert "retention.ms=1234567" in results[wider.deadletter].detail
    assert list_topics(kafka_bootstrap)[wider.directory] == topics.partitions + 2


def _refnet(*args: str, bootstrap: str, prefix: str = "sdoh") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REFNET_KAFKA_BOOTSTRAP": bootstrap, "REFNET_TOPIC_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_provision_org_creates_its_referrals_and_updates_topics(kafka_bootstrap: str) -> None:
    done = _refnet("provision", "org", "bronx-pantry", bootstrap=kafka_bootstrap)
    assert done.returncode == 0, done.stderr
    listed = list_topics(kafka_bootstrap)
    assert "sdoh.org.bronx-pantry.referrals.v1" in listed
    assert "sdoh.org.bronx-pantry.updates.v1" in listed


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
def test_provision_rejects_an_id_that_breaks_the_pattern(kafka_bootstrap: str, bad: str) -> None:
    done = _refnet("provision", "org", "--", bad, bootstrap=kafka_bootstrap)
    assert done.returncode == 2
    assert "invalid party id" in done.stderr
    assert "Traceback" not in done.stderr
