"""Miss and false-match rates of the linkage keys on a generated population.

Generates a population as clinics in the Bronx and Manhattan would know it
(given and family names drawn with a realistic skew from lists composed here
plus a long tail of generated names, compound Hispanic family names, birth
dates over 0-95 years, ZIP codes of the two boroughs, phones, twins), then
hospital records of some of these people with the variations hospitals really
send (typos, nicknames, a compound name given in part, a name change, a move,
a new or missing phone, day and month swapped...), and hospital records of
people no clinic ever saw. Every record's keys are looked up in the index of
the clinics' keys, as the network does.

Prints, per variation and for a realistic mix of them, the miss rate (a person
both saw not matched to themself) and the false-match rate (a record matched to
someone else), for the key set :func:`streams.decisions.linkage.linkage_keys`
ships, for the first version (two keys) and for candidate keys it does not ship.

    python -m benchmarks.linkage --people 100000 --seed 7
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import re
import sys
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.linkage_names import (
    FAMILY_NAMES,
    FEMALE_NAMES,
    HISPANIC_FAMILY_NAMES,
    MALE_NAMES,
    NICKNAMES_IN_USE,
    ZIP_CODES,
    tail_name,
    zipf,
)
from streams.decisions.linkage import (
    FUZZY_RULES,
    RULES,
    STRICT_RULES,
    Demographics,
    Rule,
    given_forms,
    keys_of,
    normalise,
    strongest,
)

SECRET: Final = b"benchmark-network-secret-32bytes"
TODAY: Final = date(2026, 12, 1)
#: Share of family (given) names from the lists, the rest from the generated tail.
FAMILY_FROM_LIST: Final = 0.65
GIVEN_FROM_LIST: Final = 0.70
#: Share of people with a Hispanic family name given as two (García-López).
COMPOUND: Final = 0.08
#: Share of births that are twins' (US: about 3% of people are twins).
TWINS: Final = 0.015
#: Share of clinic records without a phone.
CLINIC_NO_PHONE: Final = 0.12
#: The realistic mix of hospital records (assumed rates, not measured ones).
MIX: Final[dict[str, float]] = {
    "exact": 0.50, "formatting": 0.10, "missing phone": 0.10, "new phone": 0.07,
    "moved": 0.06, "moved and new phone": 0.03, "nickname": 0.04, "given typo": 0.02,
    "family typo": 0.02, "name change": 0.02, "compound in part": 0.02, "suffix": 0.005,
    "day/month swapped": 0.005,
}  # fmt: skip


@dataclass(frozen=True)
class Person:
    id: int
    given: str
    family: str
    female: bool
    birth_date: date
    postal_code: str
    phone: str | None
    twin_of: int | None = None


# ---------------------------------------------------------------- the population
class Population:
    def __init__(self, rng: random.Random, zips: int = len(ZIP_CODES)) -> None:
        self.rng = rng
        self.female = zipf(FEMALE_NAMES)
        self.male = zipf(MALE_NAMES)
        self.family = zipf(FAMILY_NAMES)
        self.hispanic = zipf(HISPANIC_FAMILY_NAMES)
        self.zips = list(ZIP_CODES[:zips])
        ages = range(96)
        self.ages = list(ages)
        self.age_weights = [1.0 if a < 60 else max(0.1, 1.0 - (a - 60) / 38) for a in ages]

    def _pick(self, table: tuple[list[str], list[float]]) -> str:
        return self.rng.choices(table[0], cum_weights=table[1])[0]

    def given(self, female: bool) -> str:
        if self.rng.random() < GIVEN_FROM_LIST:
            return self._pick(self.female if female else self.male)
        return tail_name(self.rng, syllables=self.rng.choice((2, 2, 3)))

    def family_name(self) -> str:
        if self.rng.random() < 0.3:  # the Bronx: a third of family names Hispanic
            first = self._pick(self.hispanic)
            if self.rng.random() < COMPOUND / 0.3:
                return f"{first}-{self._pick(self.hispanic)}"
            return first
        if self.rng.random() < FAMILY_FROM_LIST:
            return self._pick(self.family)
        return tail_name(self.rng, syllables=self.rng.choice((2, 3, 3)))

    def birth_date(self) -> date:
        age = self.rng.choices(self.ages, weights=self.age_weights)[0]
        return TODAY - timedelta(days=365 * age + self.rng.randrange(365))

    def other_zip(self, p: Person) -> str:
        return self.rng.choice([z for z in self.zips if z != p.postal_code])

    def phone(self) -> str:
        area = self.rng.choice(("718", "347", "929", "212", "646", "917"))
        return f"+1 {area} {self.rng.randrange(200, 1000)}-{self.rng.randrange(10000):04d}"

    def person(self, pid: int) -> Person:
        female = self.rng.random() < 0.5
        phone = None if self.rng.random() < CLINIC_NO_PHONE else self.phone()
        return Person(
            pid,
            self.given(female),
            self.family_name(),
            female,
            self.birth_date(),
            self.rng.choice(self.zips),
            phone,
        )

    def people(self, count: int, first_id: int = 0) -> list[Person]:
        out: list[Person] = []
        while len(out) < count:
            person = self.person(first_id + len(out))
            out.append(person)
            if self.rng.random() < TWINS and len(out) < count:
                female = person.female if self.rng.random() < 0.5 else not person.female
                given = self.given(female)
                while set(given_forms(given)) & set(given_forms(person.given)):
                    given = self.given(female)
                twin = replace(person, id=first_id + len(out), given=given, female=female)
                out.append(replace(twin, twin_of=person.id))
        return out


# ---------------------------------------------------------------- variations
def _typo(rng: random.Random, name: str) -> str:
    """One edit: a letter replaced, dropped, doubled or swapped with the next."""
    letters = list(name)
    i = rng.randrange(1, len(letters)) if len(letters) > 1 else 0
    kind = rng.choice(("replace", "drop", "double", "swap"))
    if kind == "replace":
        letters[i] = rng.choice("abcdefghijklmnoprstuvwy")
    elif kind == "drop" and len(letters) > 2:
        del letters[i]
    elif kind == "swap" and i + 1 < len(letters):
        letters[i], letters[i + 1] = letters[i + 1], letters[i]
    else:
        letters.insert(i, letters[i])
    typed = "".join(letters)
    return typed if typed.lower() != name.lower() else typed + "e"


def _formatting(rng: random.Random, p: Person) -> Person:
    def strip(text: str) -> str:
        return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()

    family = rng.choice((p.family.upper(), strip(p.family), p.family.replace("-", " ")))
    phone = p.phone and re.sub(r"\D", "", p.phone)[-10:]
    return replace(p, given=p.given.upper(), family=family, phone=phone)


def _swap(p: Person) -> Person | None:
    d = p.birth_date
    if d.day > 12 or d.day == d.month:
        return None
    return replace(p, birth_date=date(d.year, d.day, d.month))


Variation = Callable[[random.Random, Population, Person], Person | None]

VARIATIONS: Final[dict[str, Variation]] = {
    "exact": lambda r, g, p: p,
    "formatting": lambda r, g, p: _formatting(r, p),
    "missing phone": lambda r, g, p: replace(p, phone=None),
    "new phone": lambda r, g, p: replace(p, phone=g.phone()),
    "moved": lambda r, g, p: replace(p, postal_code=g.other_zip(p)),
    "moved and new phone": lambda r, g, p: replace(p, phone=g.phone(), postal_code=g.other_zip(p)),
    "nickname": lambda r, g, p: (
        replace(p, given=r.choice(NICKNAMES_IN_USE[p.given]))
        if p.given in NICKNAMES_IN_USE
        else None
    ),
    "given typo": lambda r, g, p: replace(p, given=_typo(r, p.given)),
    "family typo": lambda r, g, p: replace(p, family=_typo(r, p.family)),
    "name change": lambda r, g, p: (
        replace(p, family=g.family_name()) if (TODAY - p.birth_date).days > 20 * 365 else None
    ),
    "compound in part": lambda r, g, p: (
        replace(p, family=p.family.split("-")[0]) if "-" in p.family else None
    ),
    "suffix": lambda r, g, p: replace(p, family=f"{p.family} Jr."),
    "day/month swapped": lambda r, g, p: _swap(p),
}  # fmt: skip


# ---------------------------------------------------------------- key sets
def first_version(p: Person) -> tuple[str, ...]:
    """The first version's two keys (letters only, no suffixes, nicknames or swaps)."""

    def name(text: str) -> str:
        folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        return re.sub(r"[^a-z]", "", folded.lower())

    def key(*parts: str) -> str:
        return hmac.digest(SECRET, "\x1f".join(parts).encode(), hashlib.sha256).hex()[:32]

    given, family, born = name(p.given), name(p.family), p.birth_date.isoformat()
    postal = re.sub(r"\D", "", p.postal_code)[:5]
    tel = re.sub(r"\D", "", p.phone or "")
    keys = [key("v1-zip", family, given, born, postal)] if postal else []
    if len(tel) >= 10:
        keys.append(key("v1-tel", family, given, born, tel[-10:]))
    return tuple(keys)


def names_only(d: Demographics) -> Iterator[tuple[str, ...]]:
    """Candidate: family, given and birth date alone (no place)."""
    for family in d.families:
        for given in d.givens:
            yield ("c-names", family, given, d.birth_date.isoformat())


#: Every rule measured, by name (the first version's keys are made apart).
ALL_RULES: Final[dict[str, Rule]] = {
    **{rule.__name__: rule for rule in RULES},
    "names_only": names_only,
}
STRICT: Final = tuple(rule.__name__ for rule in STRICT_RULES)
FUZZY: Final = tuple(rule.__name__ for rule in FUZZY_RULES)


@dataclass(frozen=True)
class KeySet:
    """Rules whose keys match (strict ones preferred, as the network does, when
    ``prefer_strict``)."""

    strict: tuple[str, ...]
    fuzzy: tuple[str, ...] = ()
    prefer_strict: bool = True


KEY_SETS: Final[dict[str, KeySet]] = {
    "shipped": KeySet(STRICT, FUZZY),
    "shipped, any key": KeySet(STRICT, FUZZY, prefer_strict=False),
    "first version": KeySet(("first_version",)),
    "shipped + names only": KeySet(STRICT, (*FUZZY, "names_only")),
}

#: A person's keys by rule.
Keys = dict[str, tuple[str, ...]]


def keys_by_rule(p: Person) -> Keys:
    d = normalise(
        given_name=p.given,
        family_name=p.family,
        birth_date=p.birth_date,
        postal_code=p.postal_code,
        phone=p.phone,
    )
    out = {name: keys_of(SECRET, d, (rule,)) for name, rule in ALL_RULES.items()}
    out["first_version"] = first_version(p)
    return out


# ---------------------------------------------------------------- measuring
@dataclass
class Rates:
    records: int = 0
    missed: int = 0
    false: int = 0

    def add(self, person_id: int | None, matched: set[int]) -> None:
        self.records += 1
        if person_id is not None and person_id not in matched:
            self.missed += 1
        if matched - {person_id}:
            self.false += 1

    def text(self, seen: bool) -> str:
        if not self.records:
            return f"{'-':>7} {'-':>7}"
        miss = f"{100 * self.missed / self.records:6.2f}%" if seen else f"{'-':>7}"
        return f"{miss} {100 * self.false / self.records:6.2f}%"


def index(people: list[tuple[Person, Keys]]) -> dict[str, list[int]]:
    """Every clinic patient's keys (each rule's keys differ: its name is in them)."""
    found: dict[str, list[int]] = defaultdict(list)
    for person, keys in people:
        for group in keys.values():
            for key in group:
                found[key].append(person.id)
    return found


def matches(found: dict[str, list[int]], keys: Keys, key_set: KeySet) -> set[int]:
    """The clinic patients a record is for: :func:`strongest` over the keys shared
    (strict keys preferred), or every patient sharing any key."""
    strict = [key for rule in key_set.strict for key in keys[rule]]
    every = strict + [key for rule in key_set.fuzzy for key in keys[rule]]
    matched: dict[int, set[str]] = defaultdict(set)
    for key in every:
        for pid in found.get(key, ()):
            matched[pid].add(key)
    if key_set.prefer_strict:
        return strongest(matched, strict)
    return set(matched)


#: A hospital record's person (None: no clinic saw them) and its keys.
Row = tuple[int | None, Keys]


def records(
    rng: random.Random, population: Population, people: list[Person], per_variation: int
) -> dict[str, list[tuple[int | None, Person]]]:
    """Hospital records, by variation: (the person's id, the record)."""
    out: dict[str, list[tuple[int | None, Person]]] = {}
    for name, vary in VARIATIONS.items():
        rows: list[tuple[int | None, Person]] = []
        while len(rows) < per_variation:
            person = rng.choice(people)
            record = vary(rng, population, person)
            if record is not None:
                rows.append((person.id, record))
        out[name] = rows
    twins = [p for p in people if p.twin_of is not None]
    out["twin"] = [(p.id, p) for p in rng.sample(twins, min(per_variation, len(twins)))]
    never = population.people(per_variation, first_id=len(people))
    out["never seen by a clinic"] = [(None, p) for p in never]
    return out


def mix(rng: random.Random, rows: dict[str, list[Row]], count: int) -> list[Row]:
    names = list(MIX)
    picks = rng.choices(names, weights=[MIX[n] for n in names], k=count)
    return [rng.choice(rows[name]) for name in picks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", type=int, default=2000, help="hospital records a variation")
    parser.add_argument(
        "--zips", type=int, default=len(ZIP_CODES), help="ZIP codes the people share"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    population = Population(rng, zips=args.zips)
    people = population.people(args.people)
    rows = records(rng, population, people, args.records)
    clinic = [(p, keys_by_rule(p)) for p in people]
    found = index(clinic)
    keyed = {name: [(pid, keys_by_rule(p)) for pid, p in group] for name, group in rows.items()}
    keyed["overall (mix)"] = mix(rng, keyed, 10 * args.records)
    twins = sum(p.twin_of is not None for p in people)
    print(
        f"{len(people)} clinic patients ({twins} twins' second) in {args.zips} ZIP codes, "
        f"{args.records} hospital records a variation, {10 * args.records} in the mix; "
        f"seed {args.seed}"
    )
    print(f"{'miss / false match':<24}" + "".join(f" | {name:^15}" for name in KEY_SETS))
    for variation, group in keyed.items():
        cells = []
        for key_set in KEY_SETS.values():
            rates = Rates()
            for person_id, keys in group:
                rates.add(person_id, matches(found, keys, key_set))
            cells.append(rates.text(variation != "never seen by a clinic"))
        print(f"{variation:<24}" + "".join(f" | {cell}" for cell in cells))
    shipped = sum(len(k[r]) for _, k in clinic for r in STRICT + FUZZY) / len(clinic)
    print(
        f"shipped keys a patient: {shipped:.1f} on average; {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
