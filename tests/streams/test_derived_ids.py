"""The network's derived ids stay what they were: uuid5 in its namespace, so that a
replay after an upgrade repeats the ids consumers already deduplicate by."""

from __future__ import annotations

from uuid import UUID, uuid5

import pytest

from streams.decisions.commands import NETWORK_NAMESPACE, derived_id


@pytest.mark.parametrize(
    "parts",
    [
        (UUID("00000000-0000-4000-8000-000000000001"), "scored"),
        ("deadletter", "sdoh.clinic.a.submissions.v1", 3, 1234, "schema"),
        ("é ✓ \x1f", None, 0, 2.5),
        (),
    ],
)
def test_a_derived_id_is_the_uuid5_of_its_parts(parts: tuple[object, ...]) -> None:
    expected = uuid5(NETWORK_NAMESPACE, "\x1f".join(str(p) for p in parts))
    found = derived_id(*parts)
    assert found == expected
    assert found.version == 5
    assert str(found) == str(expected)


def test_a_known_id_is_unchanged() -> None:
    # pinned: the id of a scored screening derived from a known event id
    assert derived_id("a", "b") == uuid5(
        uuid5(UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8"), "https://refnet.invalid/network/v1"),
        "a\x1fb",
    )
