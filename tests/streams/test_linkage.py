"""The linkage key: normalisation rules, the keys each rule makes, and properties."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decisions.linkage import (
    FUZZY_RULES,
    KEY_CHARS,
    MAX_KEYS,
    RULES,
    STRICT_RULES,
    family_forms,
    given_forms,
    household,
    initial_dob,
    linkage_keys,
    names_dob,
    phone10,
    postal5,
    soundex,
    sounds_dob,
    strongest,
    swapped_dob,
)

SECRET = b"a-network-secret-of-32-bytes-...."
OTHER_SECRET = b"another-network-secret-of-32-b..."
BORN = date(1984, 7, 4)


def keys(**changes: object) -> set[str]:
    person: dict[str, object] = {
        "given_name": "Maria",
        "family_name": "García-López",
        "birth_date": BORN,
        "postal_code": "10451",
        "phone": "+1 718 555 0101",
    }
    person.update(changes)
    return set(linkage_keys(secret=SECRET, **person))  # type: ignore[arg-type]


def strict_keys(**changes: object) -> set[str]:
    person: dict[str, object] = {
        "given_name": "Maria",
        "family_name": "García-López",
        "birth_date": BORN,
        "postal_code": "10451",
        "phone": "+1 718 555 0101",
    }
    person.update(changes)
    return set(linkage_keys(secret=SECRET, rules=STRICT_RULES, **person))  # type: ignore[arg-type]


# ---------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    ("text", "forms"),
    [
        ("García-López", ("garcialopez", "garcia", "lopez")),
        ("Garcia Lopez", ("garcialopez", "garcia", "lopez")),
        ("GARCIA LOPEZ", ("garcialopez", "garcia", "lopez")),
        ("O'Brien", ("obrien",)),
        ("de la Cruz", ("delacruz", "cruz")),  # a particle is never a family name alone
        ("García y López", ("garcialopez", "garcia", "lopez")),
        ("Ruiz Diaz Vega Soto", ("ruizdiazvegasoto", "ruiz", "diaz")),
        ("Smith Jr.", ("smith",)),
        ("Smith, III", ("smith",)),
        ("sr", ("sr",)),  # a name that is only a suffix stays a name
        ("Nguyễn", ("nguyen",)),
        ("Strauß", ("strauss",)),
        ("\uff33\uff4d\uff49\uff54\uff48", ("smith",)),  # full-width letters fold (NFKD)
        ("  ", ()),
        ("-'.", ()),
    ],
)
def test_family_names_fold_accents_case_punctuation_compounds_and_suffixes(
    text: str, forms: tuple[str, ...]
) -> None:
    assert family_forms(text) == forms


@pytest.mark.parametrize(
    ("text", "forms"),
    [
        ("José", ("jose",)),
        ("Bob", ("bob", "robert")),
        ("BOBBY", ("bobby", "robert")),
        ("Alex", ("alex", "alexander", "alexandra")),
        ("Mary Ann", ("mary", "maryann")),
        ("Mary-Ann", ("mary", "maryann")),
        ("Robert Jr", ("robert",)),
        (None, ()),
    ],
)
def test_given_names_keep_their_first_part_and_a_nicknames_formal_names(
    text: str | None, forms: tuple[str, ...]
) -> None:
    assert given_forms(text) == forms


@pytest.mark.parametrize(
    ("code", "five"),
    [("10451", "10451"), ("10451-1234", "10451"), (" 10451 ", "10451"),
     ("\uff11\uff10\uff14\uff15\uff11", "10451"), ("1045", ""), ("", ""), (None, "")],
)  # fmt: skip
def test_postal_codes_are_cut_to_five_digits(code: str | None, five: str) -> None:
    assert postal5(code) == five


@pytest.mark.parametrize(
    ("phone", "ten"),
    [("+1 (718) 555-0101", "7185550101"), ("718.555.0101", "7185550101"),
     ("17185550101", "7185550101"), ("555-0101", ""), (None, "")],
)  # fmt: skip
def test_phones_are_cut_to_their_last_ten_digits(phone: str | None, ten: str) -> None:
    assert phone10(phone) == ten


@pytest.mark.parametrize(
    ("name", "code"),
    [("robert", "R163"), ("rupert", "R163"), ("ashcraft", "A261"), ("tymczak", "T522"),
     ("pfister", "P236"), ("lee", "L000"), ("jonson", "J525"), ("johnson", "J525")],
)  # fmt: skip
def test_soundex_is_american_soundex(name: str, code: str) -> None:
    assert soundex(name) == code


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["Al", "Bob", "Alex", "de", "Cruz", "Jr", "Lee"]), max_size=40))
def test_a_name_of_many_parts_makes_no_more_than_max_keys(parts: list[str]) -> None:
    name = " ".join(parts)
    made = keys(given_name=name or "Al", family_name=name or "Lee", birth_date=date(1984, 4, 7))
    assert len(made) <= MAX_KEYS


def test_too_little_to_link_gives_no_keys() -> None:
    assert keys(given_name="") == set()
    assert keys(family_name=None) == set()
    assert keys(birth_date=None) == set()
    assert keys(postal_code=None, phone=None) == set()  # no place: no key


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        linkage_keys(secret=b"short", given_name="A", family_name="B", birth_date=BORN)


# ---------------------------------------------------------------- what matches
def test_spelling_of_a_compound_name_accents_case_and_phone_format_do_not_matter() -> None:
    assert keys() == keys(family_name="GARCIA LOPEZ", given_name="MARÍA", phone="7185550101")


def test_a_compound_family_name_given_in_part_matches_on_a_strict_key() -> None:
    assert strict_keys() & strict_keys(family_name="Garcia")
    assert strict_keys() & strict_keys(family_name="López")


def test_a_suffix_does_not_matter() -> None:
    assert keys(family_name="García-López Jr.") == keys()


def test_a_nickname_matches_its_formal_name_on_a_strict_key() -> None:
    assert strict_keys(given_name="Robert") & strict_keys(given_name="Bob")


def test_a_moved_patient_matches_on_the_phone_and_a_new_number_on_the_postal_code() -> None:
    assert strict_keys() & strict_keys(postal_code="10027")
    assert strict_keys() & strict_keys(phone="+1 212 555 0199")
    assert strict_keys() & strict_keys(phone=None)
    assert not keys() & keys(postal_code="10027", phone="+1 212 555 0199")


def test_day_and_month_swapped_match_on_a_strict_key() -> None:
    assert strict_keys() & strict_keys(birth_date=date(1984, 4, 7))
    assert not keys() & keys(birth_date=date(1984, 7, 5))


def test_a_name_change_with_the_same_number_matches_wherever_they_live() -> None:
    assert strict_keys() & strict_keys(family_name="Rivera")
    assert strict_keys() & strict_keys(family_name="Rivera", postal_code="10027")
    assert not keys() & keys(family_name="Rivera", phone=None)
    assert not keys() & keys(family_name="Rivera", given_name="Rosa")


def test_a_typo_that_sounds_alike_matches_on_the_soundex_key_only() -> None:
    clinic = {"family_name": "Lopez", "phone": None}
    typo = {"family_name": "Lopes", "phone": None}
    assert not strict_keys(**clinic) & strict_keys(**typo)
    sounds = {"rules": (sounds_dob,)}
    assert set(linkage_keys(secret=SECRET, given_name="Maria", birth_date=BORN,
                            postal_code="10451", **clinic, **sounds)) & set(  # type: ignore[arg-type]
        linkage_keys(secret=SECRET, given_name="Maria", birth_date=BORN,
                     postal_code="10451", **typo, **sounds))  # type: ignore[arg-type]  # fmt: skip


def test_a_typo_after_the_given_names_initial_matches_on_the_initial_key_only() -> None:
    def made(given_name: str, rules: tuple[object, ...]) -> set[str]:
        return set(linkage_keys(secret=SECRET, given_name=given_name, family_name="Lopez",
                                birth_date=BORN, postal_code="10451",
                                rules=rules))  # type: ignore[arg-type]  # fmt: skip

    others = tuple(r for r in RULES if r is not initial_dob)
    assert soundex("mxria") != soundex("maria")
    assert not made("Maria", others) & made("Mxria", others)
    assert made("Maria", (initial_dob,)) & made("Mxria", (initial_dob,))


def test_twins_share_no_strict_key_and_the_strict_match_wins() -> None:
    mary, marie, michael = (strict_keys(given_name=n) for n in ("Mary", "Marie", "Michael"))
    assert not mary & marie and not mary & michael
    record_all, record_strict = keys(given_name="Mary"), strict_keys(given_name="Mary")
    stored = {name: keys(given_name=name) for name in ("Mary", "Marie", "Michael")}
    matched = {name: record_all & stored_keys for name, stored_keys in stored.items()}
    assert all(matched.values())  # every twin shares a fuzzy key with the record
    assert strongest(matched, record_strict) == {"Mary"}


def test_strongest_keeps_every_fuzzy_match_when_none_is_strict() -> None:
    matched = {"a": {"k1"}, "b": {"k2"}, "c": set()}
    assert strongest(matched, {"k9"}) == {"a", "b"}
    assert strongest({}, {"k9"}) == set()


@pytest.mark.parametrize("rule", [names_dob, sounds_dob, initial_dob, swapped_dob, household])
def test_each_rule_names_its_keys_apart(rule: object) -> None:
    def made(rules: tuple[object, ...]) -> set[str]:
        return set(linkage_keys(secret=SECRET, given_name="Maria", family_name="Lopez",
                                birth_date=date(1984, 4, 7), postal_code="10451",
                                phone="7185550101", rules=rules))  # type: ignore[arg-type]  # fmt: skip

    alone = made((rule,))
    assert alone
    assert not alone & made(tuple(r for r in RULES if r is not rule))


def test_the_rules_shipped_are_the_strict_then_the_fuzzy_ones() -> None:
    assert (*STRICT_RULES, *FUZZY_RULES) == RULES
    assert sounds_dob in FUZZY_RULES and initial_dob in FUZZY_RULES


# ---------------------------------------------------------------- properties
names = st.text(st.characters(codec="utf-8", categories=("L", "Zs", "Pd")), min_size=1, max_size=30)
people = st.fixed_dictionaries(
    {
        "given_name": names,
        "family_name": names,
        "birth_date": st.dates(date(1900, 1, 1), date(2026, 12, 31)),
        "postal_code": st.from_regex(r"[0-9]{5}", fullmatch=True),
        "phone": st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(people, min_size=2, max_size=6), st.randoms(use_true_random=False))
def test_keys_do_not_depend_on_the_order_of_calls(
    population: list[dict[str, object]], rng: object
) -> None:
    first = [linkage_keys(secret=SECRET, **p) for p in population]  # type: ignore[arg-type]
    order = list(range(len(population)))
    rng.shuffle(order)  # type: ignore[attr-defined]
    again = {i: linkage_keys(secret=SECRET, **population[i]) for i in order}  # type: ignore[arg-type]
    assert [again[i] for i in range(len(population))] == first


@settings(max_examples=60, deadline=None)
@given(people)
def test_different_secrets_give_disjoint_keys(person: dict[str, object]) -> None:
    mine = set(linkage_keys(secret=SECRET, **person))  # type: ignore[arg-type]
    theirs = set(linkage_keys(secret=OTHER_SECRET, **person))  # type: ignore[arg-type]
    assert not mine & theirs


@settings(max_examples=100, deadline=None)
@given(people)
def test_no_key_contains_the_input_text(person: dict[str, object]) -> None:
    found = linkage_keys(secret=SECRET, **person)  # type: ignore[arg-type]
    born = person["birth_date"]
    assert isinstance(born, date)
    texts = [str(person["phone"])[-10:], born.isoformat(), born.strftime("%Y%m%d")]
    forms = (*family_forms(str(person["family_name"])), *given_forms(str(person["given_name"])))
    texts += [f for f in forms if re.search("[g-z]", f)]  # a hex key holds no other letter
    for key in found:
        assert re.fullmatch(f"[0-9a-f]{{{KEY_CHARS}}}", key)  # nothing but an HMAC's hex
        for text in texts:
            assert text not in key
