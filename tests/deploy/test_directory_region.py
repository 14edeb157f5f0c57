"""A region of thousands of organizations: generated, imported in batches, resumed.

Integration tests run against the real embedded broker (``kafka_bootstrap``);
each test deletes the topics it made, so the session's broker stays light.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka.admin import AdminError, BatchLimits, delete_topics, list_topics
from connectors.kafka.auth import PLAINTEXT
from deploy.directory import ImportOptions, read_directory, run_import
from deploy.directory.generate import generate, sample_postal_codes, write
from deploy.directory.importer import load
from deploy.directory.progress import Progress, Summary
from deploy.provision import Admin
from deploy.settings import Settings
from schemas.topics import Topics


# ---------------------------------------------------------------- the generator
def test_the_generator_writes_a_directory_the_importer_maps_entirely(tmp_path: Path) -> None:
    path = tmp_path / "region.json"
    write(path, 300, seed=7)
    conversion = load(ImportOptions(paths=(path,)))
    assert len(conversion.services) == 300
    assert len(conversion.organizations) == 300  # one service each, distinct organizations
    assert conversion.unmapped == [] and conversion.warnings == []
    region = set(sample_postal_codes())
    for service in conversion.services:
        assert service.event.categories
        assert set(service.event.postal_codes) <= region
    categories = {c for s in conversion.services for c in s.event.categories}
    assert {"food-insecurity", "housing-instability", "utility-insecurity"} <= categories


def test_the_same_seed_gives_the_same_directory_and_another_seed_another() -> None:
    assert generate(50, seed=3) == generate(50, seed=3)
    assert generate(50, seed=3) != generate(50, seed=4)


# ---------------------------------------------------------------- the summary
def test_the_summary_says_what_was_created_already_there_failed_and_not_reached() -> None:
    summary = Summary()
    summary["topics"].created, summary["topics"].present, summary["topics"].left = 4, 2, 3
    assert not summary.complete
    out = io.StringIO()
    summary.error = "creating topic x: refused"
    summary.print(out)
    text = out.getvalue()
    assert re.search(r"topics\s+4\s+2\s+0\s+3", text)
    assert "stopped: creating topic x: refused" in text and "run the same import again" in text
    assert Summary().complete


def test_progress_shows_a_bar_per_phase() -> None:
    stream = io.StringIO()
    with Progress(stream=stream) as progress:
        progress.phase("topics", 10)
        progress.advance("topics", 10)
        progress.phase("services", 4)
    text = stream.getvalue()
    assert "topics" in text and "10/10" in text and "0/4" in text


# ---------------------------------------------------------------- on the broker
def _import(bootstrap: str, topics: Topics, path: Path, **options: Any) -> tuple[int, str]:
    settings = Settings.from_env(
        {"REFNET_TOPIC_PREFIX": topics.prefix, "REFNET_PARTITIONS": str(topics.partitions)}
    )
    admin = Admin(bootstrap, PLAINTEXT, settings.data_dir)
    out = io.StringIO()
    status = run_import(settings, admin, ImportOptions(paths=(path,), **options), out)
    return status, out.getvalue()


def _row(out: str, phase: str) -> tuple[int, ...]:
    found = re.search(rf"^{phase}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert found, out
    return tuple(int(n) for n in found.groups())


def _cleanup(bootstrap: str, topics: Topics) -> None:
    mine = [name for name in list_topics(bootstrap) if name.startswith(f"{topics.prefix}.")]
    delete_topics(bootstrap, mine)


@pytest.mark.integration
def test_an_import_stopped_midway_is_finished_by_the_next_run(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker refuses the third batch of topics: what was created stays, nothing
    is published, and the same import run again creates the rest and publishes."""
    from connectors.kafka.admin import topics as admin_topics

    path = tmp_path / "region.json"
    write(path, 150, seed=2)
    limits = BatchLimits(topics=50)
    real = admin_topics._create
    calls: list[int] = []

    def refuse_the_third(admin: Any, missing: Any, timeout: float) -> None:
        calls.append(len(missing))
        if len(calls) == 3:
            raise AdminError("creating topic x: injected refusal")
        real(admin, missing, timeout)

    try:
        monkeypatch.setattr(admin_topics, "_create", refuse_the_third)
        status, out = _import(kafka_bootstrap, topics, path, limits=limits)
        assert status == 2, out
        assert "stopped: creating topic x: injected refusal" in out
        assert _row(out, "topics") == (100, 0, 50, 151)  # the refused batch: 50 topics
        created, present, failed, left = _row(out, "organizations")
        assert (created, present) == (49, 0) and failed in (25, 26) and failed + left == 101
        assert _row(out, "services") == (0, 0, 0, 150)
        assert read_directory(kafka_bootstrap, topics.directory) == {}
        monkeypatch.setattr(admin_topics, "_create", real)

        status, out = _import(kafka_bootstrap, topics, path, limits=limits)
        assert status == 0, out
        assert _row(out, "topics") == (201, 100, 0, 0)
        assert _row(out, "services") == (150, 0, 0, 0)
        organizations = _row(out, "organizations")
        assert organizations[0] + organizations[1] == 150 and organizations[1] >= 49

        status, out = _import(kafka_bootstrap, topics, path, limits=limits)
        assert (_row(out, "topics")[0], _row(out, "services")[0]) == (0, 0)
    finally:
        _cleanup(kafka_bootstrap, topics)


@pytest.mark.integration
def test_an_import_interrupted_says_how_far_it_got_and_the_next_run_finishes_it(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (KeyboardInterrupt) during the second batch of topics: exit 130."""
    from connectors.kafka.admin import topics as admin_topics

    path = tmp_path / "region.json"
    write(path, 60, seed=4)
    limits = BatchLimits(topics=50)
    real = admin_topics._create
    calls: list[int] = []

    def interrupt_the_second(admin: Any, missing: Any, timeout: float) -> None:
        calls.append(len(missing))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(admin, missing, timeout)

    try:
        monkeypatch.setattr(admin_topics, "_create", interrupt_the_second)
        status, out = _import(kafka_bootstrap, topics, path, limits=limits)
        assert status == 130, out
        assert "stopped: interrupted" in out
        assert _row(out, "topics") == (50, 0, 0, 71)
        assert _row(out, "services") == (0, 0, 0, 60)
        monkeypatch.setattr(admin_topics, "_create", real)
        status, out = _import(kafka_bootstrap, topics, path, limits=limits)
        assert status == 0, out
        assert _row(out, "topics") == (71, 50, 0, 0)
        assert _row(out, "services") == (60, 0, 0, 0)
    finally:
        _cleanup(kafka_bootstrap, topics)


@pytest.mark.integration
def test_an_import_killed_inside_its_transaction_does_not_hold_up_the_next(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """A transaction left open (the importer killed before it committed) would make
    the next run's read of the directory wait for the broker's transaction timeout:
    the next run aborts it first, and publishes everything."""
    from confluent_kafka import Producer

    path = tmp_path / "region.json"
    write(path, 5, seed=3)
    conversion = load(ImportOptions(paths=(path,)))
    transactional_id = f"refnet-directory-import.{topics.prefix}.hsds"
    try:
        assert _import(kafka_bootstrap, topics, path)[0] == 0
        abandoned = Producer(
            {"bootstrap.servers": kafka_bootstrap, "transactional.id": transactional_id}
        )
        abandoned.init_transactions(30)
        abandoned.begin_transaction()
        event = conversion.services[0].event.model_copy(update={"name": "half-written"})
        abandoned.produce(topics.directory, key=event.service_id.encode(), value=b"{}")
        abandoned.flush(30)  # written, never committed: as if the process were killed now
        status, out = _import(kafka_bootstrap, topics, path)
        assert status == 0, out
        assert _row(out, "services") == (0, 5, 0, 0)
        assert len(read_directory(kafka_bootstrap, topics.directory, timeout=10)) == 5
    finally:
        _cleanup(kafka_bootstrap, topics)


@pytest.fixture
def region_broker(base_settings: Settings, tmp_path: Path) -> Any:
    """A broker of the test's own, thrown away after it: 7,200 partitions would keep
    the session's broker busy deleting them, and slow every test after. (With
    ``REFNET_KAFKA_BOOTSTRAP`` set, that broker, and the test deletes its topics.)"""
    if base_settings.kafka_bootstrap:
        yield base_settings.kafka_bootstrap, True
        return
    from deploy.local.broker import LocalBroker

    broker = LocalBroker(
        tmp_path / "kafka",
        cache_dir=base_settings.cache_dir,
        version=base_settings.kafka_version,
        port=0,
        heap=base_settings.kafka_heap,
    )
    state = broker.start(tie_to_parent=True)
    try:
        yield state.bootstrap, False
    finally:
        broker.stop()


@pytest.mark.integration
def test_twelve_hundred_organizations_import_in_batches_and_again_change_nothing(
    region_broker: tuple[str, bool], topics: Topics, tmp_path: Path
) -> None:
    """2,400 topics of 3 partitions are 14,400 metadata records: past the 10,000 the
    controller takes in one request."""
    kafka_bootstrap, shared = region_broker
    path = tmp_path / "region.json"
    write(path, 1_200, seed=1)
    try:
        status, out = _import(kafka_bootstrap, topics, path)
        assert status == 0, out
        assert _row(out, "organizations") == (1_200, 0, 0, 0)
        assert _row(out, "topics") == (2_401, 0, 0, 0)
        assert _row(out, "services") == (1_200, 0, 0, 0)
        assert len(read_directory(kafka_bootstrap, topics.directory)) == 1_200
        names = list_topics(kafka_bootstrap)
        assert sum(1 for n in names if n.startswith(f"{topics.prefix}.org.")) == 2_400

        status, again = _import(kafka_bootstrap, topics, path)
        assert status == 0, again
        assert _row(again, "organizations") == (0, 1_200, 0, 0)
        assert _row(again, "topics") == (0, 2_401, 0, 0)
        assert _row(again, "services") == (0, 1_200, 0, 0)
        assert "imported: 0 published (0 new, 0 changed), 1200 unchanged" in again
    finally:
        if shared:
            _cleanup(kafka_bootstrap, topics)


@pytest.mark.integration
def test_on_a_secured_broker_each_organization_gets_its_identity_once(
    secure_kafka: Any, tmp_path: Path
) -> None:
    """Credentials, ACLs and topics per organization; a second run creates nothing."""
    from connectors.kafka.admin import describe_acls
    from deploy.provision import network_principal

    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}", partitions=1)
    path = tmp_path / "region.json"
    write(path, 3, seed=5)
    settings = Settings.from_env(
        {"REFNET_TOPIC_PREFIX": topics.prefix, "REFNET_DATA_DIR": str(tmp_path / "data")}
    )
    admin = secure_kafka.admin(settings.data_dir, network_user=network_principal(topics))

    def run() -> str:
        out = io.StringIO()
        status = run_import(settings, admin, ImportOptions(paths=(path,)), out)
        assert status == 0, out.getvalue()
        return out.getvalue()

    first = run()
    assert _row(first, "organizations") == (3, 0, 0, 0)
    assert _row(first, "topics") == (7, 0, 0, 0)
    assert len(list((settings.data_dir / "credentials").glob("org-*.json"))) == 3
    principals = {acl.principal for acl in describe_acls(secure_kafka.bootstrap, auth=admin.auth)}
    assert sum(1 for p in principals if p.startswith(f"User:{topics.prefix}.org.")) == 3
    again = run()
    assert _row(again, "organizations") == (0, 3, 0, 0)
    assert _row(again, "services") == (0, 3, 0, 0)
