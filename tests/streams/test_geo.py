"""Postal-code centroids and distances (real ZIP codes from the ``zipcodes`` data set)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decisions.geo import centroid, distance_km, haversine_km, normalize_postal_code

BRONX_10451 = (40.8222, -73.9217)


def test_centroid_of_a_bronx_zip_code_is_its_published_point() -> None:
    assert centroid("10451") == pytest.approx(BRONX_10451)


@pytest.mark.parametrize("code", ["10451-1234", "10451 1234", "104511234", " 10451 ", "10451\n"])
def test_zip_plus_four_and_blanks_resolve_to_the_five_digit_centroid(code: str) -> None:
    assert centroid(code) == centroid("10451")


@pytest.mark.parametrize(
    "code",
    [
        "",
        "   ",
        "00000",
        "1045",
        "104510",
        "abcde",
        "SW1A 1AA",
        "\uff11\uff10\uff14\uff15\uff11",  # full-width digits: the Rust core panics on these
        "10451-12",
        "-10451",
    ],
)
def test_unknown_or_malformed_codes_have_no_centroid(code: str) -> None:
    assert centroid(code) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_centroid_never_raises(code: str) -> None:
    result = centroid(code)
    assert result is None or (-90 <= result[0] <= 90 and -180 <= result[1] <= 180)


def test_neighbouring_bronx_zip_codes_are_a_few_km_apart() -> None:
    a, b = centroid("10451"), centroid("10456")
    assert a is not None and b is not None
    assert 0.5 < haversine_km(a, b) < 5


def test_bronx_to_los_angeles_is_continental_distance() -> None:
    a, b = centroid("10451"), centroid("90012")
    assert a is not None and b is not None
    assert 3900 < haversine_km(a, b) < 4000


def test_haversine_of_a_point_to_itself_is_zero_and_symmetric() -> None:
    a, b = (40.0, -73.0), (34.0, -118.0)
    assert haversine_km(a, a) == 0
    assert haversine_km(a, b) == pytest.approx(haversine_km(b, a))


def test_haversine_of_antipodes_is_half_the_circumference() -> None:
    assert haversine_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(math.pi * 6371.0088)


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert haversine_km((40.0, -73.0), (41.0, -73.0)) == pytest.approx(111.2, abs=0.1)


def test_distance_from_an_unknown_code_is_none() -> None:
    assert distance_km("00000", BRONX_10451) is None
    d = distance_km("10451", BRONX_10451)
    assert d is not None and d < 0.01


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("10451", "10451"),
        (" 10451-1234 ", "10451"),
        ("104511234", "10451"),
        ("sw1a 1aa", "SW1A 1AA"),
    ],
)
def test_normalized_postal_codes_compare_zip_plus_four_with_zip(raw: str, normalized: str) -> None:
    assert normalize_postal_code(raw) == normalized
