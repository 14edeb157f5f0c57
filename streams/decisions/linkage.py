"""The privacy-preserving linkage key: who an encounter's patient is, without
keeping who they are.

A hospital's MRN is not a clinic's patient id. The network links the two by
keys computed at the edge from normalised demographics, each an HMAC-SHA256
keyed by a network secret that parties never see. A clinic's patient and a
facility's patient match when any of their keys is equal. Only keys are kept;
raw demographics never reach a table, a topic of the network's own, or a log.

Normalisation (:func:`normalise`): Unicode folded to ASCII (NFKD, accents
dropped, ß as ss...), case, apostrophes and periods dropped, spaces and hyphens
between the parts of a compound name ignored (``García-López`` is ``Garcia
Lopez`` is ``GARCIALOPEZ``) and each part also read alone (``Garcia``),
generational suffixes (Jr, Sr, II, III, IV) dropped, the given name's first
part kept (and its parts joined: ``Mary Ann`` is ``mary`` and ``maryann``), a
common nickname also read as its formal name (Bob is also Robert), the postal
code cut to its first 5 digits and the phone to its last 10.

Each key needs the birth date and the given name (or its initial), all but one
the family name, and each the postal code or the phone, so that a patient who
moved or changed numbers still matches on the other. The strict rules
(:data:`STRICT_RULES`) take the names as given; the fuzzy ones
(:data:`FUZZY_RULES`) forgive a typo, and so also match twins whose names sound
or begin alike: where an encounter matches more than one patient,
:func:`strongest` keeps those matched on a strict key. The rules and the miss
and false-match rates they give on a generated population are in
``docs/linkage.md`` (``python -m benchmarks.linkage``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final, TypeVar

#: Bytes of network secret a key needs at least.
MIN_SECRET_BYTES: Final = 16
#: Hex characters of a key (128 bits of the HMAC).
KEY_CHARS: Final = 32

T = TypeVar("T")

_DROPPED = re.compile("['\u2019`.]")
_SEPARATOR = re.compile(r"[^a-z]+")
_NOT_DIGIT = re.compile(r"[^0-9]")
#: Generational suffixes, dropped wherever they stand in a name of more than one part.
SUFFIXES: Final = frozenset({"jr", "sr", "ii", "iii", "iv"})

#: Particles of a compound family name, never read as a family name alone.
PARTICLES: Final = frozenset(
    {"de", "del", "della", "la", "las", "los", "da", "das", "do", "dos", "di", "du",
     "van", "von", "der", "den", "ten", "ter", "st", "y"}
)  # fmt: skip
#: Forms a name is read as, at most (a name of many parts makes no more keys).
MAX_FORMS: Final = 3

#: Common US nicknames and the formal given names they stand for (a few are
#: ambiguous: Alex is Alexander or Alexandra). Keys are made for the name as
#: given and for each formal name, so that Bob matches Robert.
NICKNAMES: Final[dict[str, tuple[str, ...]]] = {
    "abby": ("abigail",), "al": ("albert", "alfred"), "alex": ("alexander", "alexandra"),
    "andy": ("andrew",), "angie": ("angela",), "barb": ("barbara",), "becky": ("rebecca",),
    "ben": ("benjamin",), "beth": ("elizabeth",), "betty": ("elizabeth",),
    "bill": ("william",), "billy": ("william",), "bob": ("robert",), "bobby": ("robert",),
    "cathy": ("catherine",), "charlie": ("charles",), "chris": ("christopher", "christina"),
    "chuck": ("charles",), "cindy": ("cynthia",), "dan": ("daniel",), "danny": ("daniel",),
    "dave": ("david",), "debbie": ("deborah",), "dick": ("richard",), "don": ("donald",),
    "ed": ("edward",), "eddie": ("edward",), "fred": ("frederick",), "greg": ("gregory",),
    "hank": ("henry",), "jack": ("john",), "jake": ("jacob",), "jeff": ("jeffrey",),
    "jen": ("jennifer",), "jenny": ("jennifer",), "jerry": ("gerald",), "jim": ("james",),
    "jimmy": ("james",), "joe": ("joseph",), "joey": ("joseph",), "johnny": ("john",),
    "jon": ("jonathan",), "josh": ("joshua",), "kate": ("katherine",), "kathy": ("kathleen",),
    "katie": ("katherine",), "ken": ("kenneth",), "kenny": ("kenneth",), "kim": ("kimberly",),
    "larry": ("lawrence",), "liz": ("elizabeth",), "maggie": ("margaret",),
    "matt": ("matthew",), "meg": ("margaret",), "mike": ("michael",), "mikey": ("michael",),
    "mandy": ("amanda",), "nate": ("nathan", "nathaniel"), "nick": ("nicholas",),
    "pam": ("pamela",), "pat": ("patrick", "patricia"), "patty": ("patricia",),
    "peggy": ("margaret",), "pete": ("peter",), "phil": ("phillip",), "ray": ("raymond",),
    "rick": ("richard",), "rob": ("robert",), "ron": ("ronald",), "sam": ("samuel", "samantha"),
    "sandy": ("sandra",), "steve": ("steven", "stephen"), "sue": ("susan",),
    "susie": ("susan",), "ted": ("theodore", "edward"), "terry": ("terrence", "teresa"),
    "tim": ("timothy",), "tom": ("thomas",), "tommy": ("thomas",), "tony": ("anthony",),
    "vicky": ("victoria",), "will": ("william",), "zach": ("zachary",),
    "pepe": ("jose",), "paco": ("francisco",), "pancho": ("francisco",), "lupe": ("guadalupe",),
    "chuy": ("jesus",), "memo": ("guillermo",), "lalo": ("eduardo",), "nacho": ("ignacio",),
    "beto": ("alberto", "roberto"), "toni": ("antonia",), "nico": ("nicolas",),
}  # fmt: skip


@dataclass(frozen=True)
class Demographics:
    """A patient's demographics, normalised (never kept: keys are made of it and it is dropped).

    ``families``: the family name's forms (all its parts joined, and the first
    two parts of a compound name alone, so that ``Garcia`` matches ``Garcia-Lopez``);
    ``givens``: the given name's forms (its first part, the parts joined, the
    formal names of a nickname).
    """

    families: tuple[str, ...]
    givens: tuple[str, ...]
    birth_date: date
    postal_code: str
    phone: str


#: Latin letters NFKD does not decompose into a base letter and an accent.
_LETTERS: Final = str.maketrans(
    {"ß": "ss", "ẞ": "ss", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d",
     "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "þ": "th", "Þ": "th", "\u0131": "i"}
)  # fmt: skip


def _fold(text: str | None) -> str:
    if not text:
        return ""
    folded = (
        unicodedata.normalize("NFKD", text.translate(_LETTERS))
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    return _DROPPED.sub("", folded.lower())


def name_parts(text: str | None) -> list[str]:
    """A name's parts, folded to ASCII lower case, without generational suffixes."""
    parts = [p for p in _SEPARATOR.split(_fold(text)) if p]
    kept = [p for p in parts if p not in SUFFIXES]
    return kept or parts


def _unique(forms: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for f in forms if f))


def family_forms(text: str | None) -> tuple[str, ...]:
    """The family name joined (``garcialopez``), then the first two parts of a
    compound name alone (never a particle: ``de la Cruz`` is ``delacruz`` and
    ``cruz``; ``García y López`` is ``garcialopez``, ``garcia``, ``lopez``)."""
    parts = name_parts(text)
    if len(parts) > 2:
        parts = [p for p in parts if p != "y"] or parts
    if not parts:
        return ()
    alone = [p for p in parts if p not in PARTICLES][:2] if len(parts) > 1 else []
    return _unique(["".join(parts), *alone])[:MAX_FORMS]


def given_forms(text: str | None) -> tuple[str, ...]:
    """The given name's first part, its parts joined, and a nickname's formal
    names (at most :data:`MAX_FORMS` in all)."""
    parts = name_parts(text)
    if not parts:
        return ()
    first = parts[0]
    return _unique([first, "".join(parts), *NICKNAMES.get(first, ())])[:MAX_FORMS]


def _digits(text: str | None) -> str:
    """The ASCII digits of ``text``, full-width and other compatibility digits folded."""
    return _NOT_DIGIT.sub("", unicodedata.normalize("NFKC", text or ""))


def postal5(code: str | None) -> str:
    """The postal code's first 5 digits (a ZIP+4 is its ZIP), or empty."""
    digits = _digits(code)
    return digits[:5] if len(digits) >= 5 else ""


def phone10(phone: str | None) -> str:
    """The phone's last 10 digits (a US number without its country code), or empty."""
    digits = _digits(phone)
    return digits[-10:] if len(digits) >= 10 else ""


_SOUNDEX_CODES: Final = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


def soundex(name: str) -> str:
    """American Soundex of a normalised name (``robert`` and ``rupert`` are ``R163``).

    A vowel separates two letters of the same code (they count twice); ``h`` and
    ``w`` do not.
    """
    if not name:
        return ""
    out = [name[0].upper()]
    previous = _SOUNDEX_CODES.get(name[0], "")
    for letter in name[1:]:
        code = _SOUNDEX_CODES.get(letter, "")
        if code and code != previous:
            out.append(code)
            if len(out) == 4:
                break
        if letter not in "hw":
            previous = code
    return "".join(out).ljust(4, "0")


def normalise(
    *,
    given_name: str | None,
    family_name: str | None,
    birth_date: date | None,
    postal_code: str | None = None,
    phone: str | None = None,
) -> Demographics | None:
    """The normalised demographics, or None when too little is known to link safely
    (no given name, no family name or no birth date)."""
    families, givens = family_forms(family_name), given_forms(given_name)
    if not families or not givens or birth_date is None:
        return None
    return Demographics(families, givens, birth_date, postal5(postal_code), phone10(phone))


# ---------------------------------------------------------------- the rules
#: A rule: the parts of each key it makes from a patient's demographics (none
#: when what it needs is missing). The first part names the rule.
Rule = Callable[[Demographics], Iterator[tuple[str, ...]]]


def _places(d: Demographics) -> list[tuple[str, str]]:
    return [(tag, value) for tag, value in (("zip", d.postal_code), ("tel", d.phone)) if value]


def names_dob(d: Demographics) -> Iterator[tuple[str, ...]]:
    """Family, given, birth date, and the postal code or the phone (one key each)."""
    born = d.birth_date.isoformat()
    for tag, place in _places(d):
        for family in d.families:
            for given in d.givens:
                yield (f"v2-{tag}", family, given, born, place)


def sounds_dob(d: Demographics) -> Iterator[tuple[str, ...]]:
    """The family name's forms and the given name's first part by their Soundex
    codes, birth date, postal code or phone: one typo that keeps a name's first
    letter and sound (Jonson, Micheal) still matches."""
    born = d.birth_date.isoformat()
    given = soundex(d.givens[0])
    for tag, place in _places(d):
        for family in _unique(soundex(f) for f in d.families):
            yield (f"v2-sx-{tag}", family, given, born, place)


def initial_dob(d: Demographics) -> Iterator[tuple[str, ...]]:
    """The family name's forms, the given name's initial, birth date, postal code
    or phone: a typo in the given name after its first letter (Jenifer), or a
    nickname outside :data:`NICKNAMES` with the same initial (Manny), still matches.
    """
    born = d.birth_date.isoformat()
    for tag, place in _places(d):
        for family in d.families:
            yield (f"v2-in-{tag}", family, d.givens[0][0], born, place)


def swapped_dob(d: Demographics) -> Iterator[tuple[str, ...]]:
    """The names as given (the family name joined, the given name's first part),
    the birth date with day and month unordered, postal code or phone: a birth
    date typed day-first (4/7 for 7/4) still matches. Only for dates that can be
    read both ways."""
    day, month = d.birth_date.day, d.birth_date.month
    if day > 12 or day == month:
        return
    unordered = f"{d.birth_date.year:04d}-{min(day, month):02d}-{max(day, month):02d}"
    for tag, place in _places(d):
        yield (f"v2-dm-{tag}", d.families[0], d.givens[0], unordered, place)


def household(d: Demographics) -> Iterator[tuple[str, ...]]:
    """Given name, birth date and phone, without the family name or the postal
    code: a patient whose family name changed (marriage) or was mistyped, who
    kept their number (wherever they live now). Twins have different given
    names; a household's phone is shared by people born on other days.
    """
    if not d.phone:
        return
    for given in d.givens:
        yield ("v2-home", given, d.birth_date.isoformat(), d.phone)


#: Rules on the names as given (after normalisation): two different people
#: share one of these keys only if they share names, birth date and place.
STRICT_RULES: Final[tuple[Rule, ...]] = (names_dob, swapped_dob, household)
#: Rules that forgive a typo: twins with names that sound alike (Mary and Marie)
#: or begin alike (Mary and Michael) share one, so a strict match is preferred
#: (:func:`strongest`).
FUZZY_RULES: Final[tuple[Rule, ...]] = (sounds_dob, initial_dob)
#: The rules :func:`linkage_keys` applies (measured in ``docs/linkage.md``).
RULES: Final[tuple[Rule, ...]] = (*STRICT_RULES, *FUZZY_RULES)
#: Keys one patient has at most: names (3 x 3 forms) x 2 places, 2 swapped, 3
#: household, 3 x 2 Soundex, 3 x 2 initial. About 8 for most.
MAX_KEYS: Final = MAX_FORMS * MAX_FORMS * 2 + 2 + MAX_FORMS + MAX_FORMS * 2 * 2


@functools.lru_cache(maxsize=8)
def _keyed(secret: bytes) -> hmac.HMAC:
    """The HMAC keyed by ``secret``, copied for each key (keying it costs as much again)."""
    return hmac.new(secret, digestmod=hashlib.sha256)


def _key(secret: bytes, parts: tuple[str, ...]) -> str:
    mac = _keyed(secret).copy()
    mac.update("\x1f".join(parts).encode("ascii"))
    return mac.hexdigest()[:KEY_CHARS]


def keys_of(
    secret: bytes, demographics: Demographics | None, rules: tuple[Rule, ...] = RULES
) -> tuple[str, ...]:
    """The keys ``rules`` make of normalised demographics (in a stable order, no repeats)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the linkage secret must be at least {MIN_SECRET_BYTES} bytes")
    if demographics is None:
        return ()
    return _unique(_key(secret, parts) for rule in rules for parts in rule(demographics))


def strongest(matched: Mapping[T, Collection[str]], strict: Collection[str]) -> set[T]:
    """The patients an encounter is for, among those whose keys matched it.

    ``matched``: each patient whose stored keys share one with the encounter's,
    with the keys shared; ``strict``: the encounter's keys of the strict rules
    (``linkage_keys(..., rules=STRICT_RULES)``). When some patients match on a
    strict key, only they do: a twin whose name merely sounds like the
    patient's is not alerted. Otherwise every patient matched (on a fuzzy key).
    """
    strict_set = set(strict)
    exact = {patient for patient, keys in matched.items() if strict_set.intersection(keys)}
    return exact or {patient for patient, keys in matched.items() if keys}


def linkage_keys(
    *,
    secret: bytes,
    given_name: str | None,
    family_name: str | None,
    birth_date: date | None,
    postal_code: str | None = None,
    phone: str | None = None,
    rules: tuple[Rule, ...] = RULES,
) -> tuple[str, ...]:
    """The patient's linkage keys (empty when too little is known to link safely).

    Every key needs the birth date and the given name; all but the household
    key the family name; each adds the postal code or the phone (see
    :data:`RULES`). Two patients match when any of their keys is equal; where
    an encounter matches more than one patient, :func:`strongest` keeps those
    matched on a strict key. No key is made without a postal code or a phone.
    """
    demographics = normalise(
        given_name=given_name,
        family_name=family_name,
        birth_date=birth_date,
        postal_code=postal_code,
        phone=phone,
    )
    return keys_of(secret, demographics, rules)


__all__ = [
    "FUZZY_RULES",
    "KEY_CHARS",
    "MAX_FORMS",
    "MAX_KEYS",
    "MIN_SECRET_BYTES",
    "NICKNAMES",
    "PARTICLES",
    "RULES",
    "STRICT_RULES",
    "SUFFIXES",
    "Demographics",
    "Rule",
    "family_forms",
    "given_forms",
    "household",
    "initial_dob",
    "keys_of",
    "linkage_keys",
    "name_parts",
    "names_dob",
    "normalise",
    "phone10",
    "postal5",
    "soundex",
    "sounds_dob",
    "strongest",
    "swapped_dob",
]
