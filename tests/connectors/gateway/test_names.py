"""Organizations' names from the directory: a bounded map, References' ``display``, and the
gateway's one reader following the directory topic on the real broker."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from connectors.gateway.connections import InboxReader
from connectors.gateway.names import REFUSED_EVENTS, OrgNames, name_references
from connectors.kafka.admin import apply_topics
from connectors.kafka.auth import PLAINTEXT
from connectors.kafka.clients import producer
from schemas.events import to_bytes
from schemas.topics import TopicKind, Topics
from tests.network import builders as b


def _named(service_id: str, org_id: str, org_name: str | None) -> bytes:
    service = b.service(service_id, org_id).model_copy(update={"org_name": org_name})
    return to_bytes(service)


def test_the_latest_name_of_an_organization_wins_and_other_records_change_nothing() -> None:
    names = OrgNames()
    names.apply(_named("svc-1", "bronx-pantry", "Bronx Pantry"))
    names.apply(_named("svc-2", "bronx-pantry", "Bronx Community Pantry"))
    names.apply(_named("svc-3", "harlem-meals", None))  # no name: not named
    names.apply(None)  # a tombstone (its key is a service's)
    names.apply(json.dumps({"event_type": "capacity.reported"}).encode())
    assert names.get("bronx-pantry") == "Bronx Community Pantry"
    assert names.get("harlem-meals") is None
    assert len(names) == 1


def test_the_map_keeps_at_most_its_capacity_dropping_the_least_recently_named() -> None:
    names = OrgNames(capacity=3)
    for i in range(5):
        names.set(f"org-{i}", f"Org {i}")
    names.set("org-2", "Org Two")  # named again: the most recent
    names.set("org-5", "Org 5")
    assert len(names) == 3
    assert [names.get(f"org-{i}") for i in range(6)] == [
        None,
        None,
        "Org Two",
        None,
        "Org 4",
        "Org 5",
    ]


def test_a_record_that_does_not_parse_is_counted_and_logged_without_its_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    names = OrgNames()
    before = REFUSED_EVENTS._value.get()
    bad = json.loads(_named("svc-1", "bronx-pantry", "Bronx Pantry"))
    bad["org_name"] = "Colin Abbas " * 100  # too long for a Name
    with caplog.at_level(logging.WARNING, logger="refnet.gateway.names"):
        names.apply(json.dumps(bad).encode())
        names.apply(b"{not json")
    assert REFUSED_EVENTS._value.get() == before + 2
    assert names.get("bronx-pantry") is None
    assert "Colin" not in caplog.text and len(caplog.records) == 2


def test_organization_references_get_the_name_as_display_where_known() -> None:
    names = OrgNames()
    names.set("bronx-pantry", "Bronx Pantry")
    names.set("refnet", "Not The Network")
    task: dict[str, Any] = {
        "owner": {"reference": "Organization/bronx-pantry"},
        "requester": {"reference": "Organization/refnet"},
        "note": [{"authorReference": {"reference": "Organization/bronx-pantry", "display": "x"}}],
    }
    sr = {
        "performer": [
            {"reference": "Organization/bronx-pantry"},
            {"reference": "Organization/other"},
        ]
    }
    named_task, named_sr = name_references((task, sr), names)
    assert named_task["owner"] == {
        "reference": "Organization/bronx-pantry",
        "display": "Bronx Pantry",
    }
    assert named_task["requester"] == {"reference": "Organization/refnet"}  # the network's own
    assert named_task["note"][0]["authorReference"]["display"] == "x"  # never replaced
    assert named_sr["performer"] == [
        {"reference": "Organization/bronx-pantry", "display": "Bronx Pantry"},
        {"reference": "Organization/other"},
    ]


@pytest.mark.integration
async def test_the_gateway_reader_follows_the_directory_with_no_party_provisioned(
    kafka_bootstrap: str, topics: Topics
) -> None:
    await asyncio.to_thread(
        apply_topics, kafka_bootstrap, [topics.spec(topics.directory, TopicKind.DIRECTORY)]
    )
    client = producer(kafka_bootstrap)
    await client.start()
    try:
        await client.send_and_wait(
            topics.directory, _named("svc-1", "bronx-pantry", "Bronx Pantry"), key=b"svc-1"
        )
    finally:
        await client.stop()
    names = OrgNames()
    reader = InboxReader(kafka_bootstrap, PLAINTEXT, directory=topics.directory, names=names)
    reader.start()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while names.get("bronx-pantry") is None:
            assert asyncio.get_running_loop().time() < deadline, "the name was never read"
            await asyncio.sleep(0.1)
        assert names.get("bronx-pantry") == "Bronx Pantry"
        # a later record renames it: the reader keeps following
        client = producer(kafka_bootstrap)
        await client.start()
        try:
            renamed = _named("svc-1", "bronx-pantry", "Bronx Community Pantry")
            await client.send_and_wait(topics.directory, renamed, key=b"svc-1")
        finally:
            await client.stop()
        while names.get("bronx-pantry") != "Bronx Community Pantry":
            assert asyncio.get_running_loop().time() < deadline + 30, "the rename was never read"
            await asyncio.sleep(0.1)
    finally:
        await reader.stop()
