"""Rows reach their changelogs as the bytes Faust's own serializer makes, so that
Faust's recovery and the bulk loader (streams.runtime.store) read them back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import pytest

from streams.runtime.faust_app import TableRows


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    return faust.App("rows-test", broker="kafka://localhost:1", store="memory://", datadir=tmp_path)


ROWS: list[tuple[str, dict[str, Any] | None]] = [
    ("clinic-a:pt-1", {"referrals": ["r1"], "open": {"food": "r1"}, "outbox": []}),
    ('clinic-é:"quoted"', {"name": "Zoë ✓", "n": [1, 2.5, None, True, False], "nested": {}}),
    (
        "ref-1",
        {
            "outbox": [
                {
                    "command_id": "c1",
                    "messages": [
                        {"topic": "t", "key": "k", "value": '{"a":"\\u00e9"}', "label": "x"}
                    ],
                }
            ]
        },
    ),
    ("gone", None),
]


@pytest.mark.parametrize(("key", "row"), ROWS)
def test_a_row_is_encoded_as_faust_encodes_it(app: faust.App, key: str, row: Any) -> None:
    table = app.Table("patients")
    rows = TableRows(app, table)
    topic, key_bytes, value_bytes = rows.changelog(key, row)
    serializers = app.serializers
    assert topic == table.changelog_topic.get_topic_name()
    assert key_bytes == serializers.dumps_key(None, key, serializer=table.key_serializer)
    expected = None if row is None else serializers.dumps_value(None, row, serializer="json")
    assert value_bytes == expected
    if row is not None:
        assert serializers.loads_value(None, value_bytes, serializer="json") == row


def test_a_row_beyond_plain_json_goes_through_faust(app: faust.App) -> None:
    table = app.Table("referrals")
    rows = TableRows(app, table)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    _, _, value_bytes = rows.changelog("r", {"at": at})
    assert value_bytes == app.serializers.dumps_value(None, {"at": at}, serializer="json")
