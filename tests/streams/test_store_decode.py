"""The bulk loader decodes a fetch's rows as Faust would, in one pass that shares keys."""

from __future__ import annotations

import json
from typing import Any

import faust
import pytest
from faust.exceptions import ValueDecodeError

from streams.runtime import store


def _store() -> Any:
    app = faust.App("decode-test", broker="kafka://127.0.0.1:1")
    return app.Table("rows", partitions=1, store=store.URL).data


def _rows(n: int) -> list[bytes]:
    return [
        json.dumps({"referral_id": f"r-{i}", "offer": {"respond_by": "2026-11-27"}}).encode()
        for i in range(n)
    ]


def _first_key(row: dict[str, Any]) -> str:
    return next(iter(row))


def test_rows_decoded_together_share_their_key_strings() -> None:
    values = _store()._loads_values(_rows(3))
    assert values == [json.loads(raw) for raw in _rows(3)]
    first, second, third = (_first_key(v) for v in values)
    assert first is second is third  # one "referral_id" string for the whole fetch
    assert _first_key(values[0]["offer"]) is _first_key(values[2]["offer"])


def test_one_by_one_each_row_has_its_own_keys() -> None:
    # what the loader did before, and still does when the fetch is not one array
    one, two = (_first_key(json.loads(raw)) for raw in _rows(2))
    assert one == two and one is not two


@pytest.mark.parametrize(
    "odd",
    [b"5", b'"text"', b"[1, 2]", b'{"a": 1}, {"b": 2}', b"null"],
)
def test_values_that_are_not_one_object_each_are_decoded_as_faust_decodes_them(
    odd: bytes,
) -> None:
    data = _store()
    raws = [*_rows(2), odd]
    if odd == b'{"a": 1}, {"b": 2}':
        with pytest.raises(ValueDecodeError):  # not one JSON document: the load fails
            data._loads_values(raws)
        return
    assert data._loads_values(raws) == [*(json.loads(r) for r in _rows(2)), json.loads(odd)]


def test_a_row_that_is_not_json_fails_the_load_as_before() -> None:
    with pytest.raises(ValueDecodeError):
        _store()._loads_values([*_rows(2), b'{"cut": '])
