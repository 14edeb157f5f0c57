"""From a directory's taxonomy terms to Gravity SDOH categories: the editable mapping.

HSDS mandates no taxonomy. Directories classify services with Open Eligibility
(openly licensed) or the 211/AIRS taxonomy (licensed: its codes may be matched,
its term list may not be shipped), and sometimes with nothing. A
:class:`Mapping` is read from a TOML file (``deploy/data/taxonomy-map.toml`` by
default, documented there) with three tables:

- ``open_eligibility``: term name -> categories (case, blanks and ``&``/``and``
  ignored);
- ``airs_prefixes``: code prefix -> categories (the longest matching prefix
  wins; only codes shaped like AIRS codes, ``BD-1800.2000``, are tried);
- ``keywords``: word or phrase -> categories, matched as whole words in a
  service's own text, and used only when none of its terms maps.

A term whose code (or name) is itself a Gravity category code maps to that
category whatever the file says.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from schemas.codes import Category
from schemas.errors import RefnetError

#: Codes shaped like the 211/AIRS taxonomy's: one or two capitals, then levels.
AIRS_CODE_RE: Final = re.compile(r"^[A-Z]{1,2}(?:-[0-9][0-9.\-]*)?(?:\*.*)?$")
#: The attribute that carries a service's response SLA (see connectors.openreferral.importer).
RESPONSE_SLA_CODE: Final = "refnet:response_sla"
_TABLES: Final = ("open_eligibility", "airs_prefixes", "keywords")


class MappingError(RefnetError, ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Term:
    """An HSDS taxonomy term, as far as mapping needs it."""

    id: str | None
    code: str | None
    name: str | None
    taxonomy: str | None
    where: str = ""

    def describe(self) -> str:
        """``"Food Pantry" [BD-1800.2000] (AIRS)`` for reports."""
        parts = [f'"{self.name}"' if self.name else "(no name)"]
        if self.code:
            parts.append(f"[{self.code}]")
        if self.taxonomy:
            parts.append(f"({self.taxonomy})")
        return " ".join(parts)

    def is_response_sla(self) -> bool:
        code = (self.code or "").strip().casefold()
        taxonomy = (self.taxonomy or "").strip().casefold()
        return code == RESPONSE_SLA_CODE or (taxonomy == "refnet" and code == "response_sla")


def _normal_name(text: str) -> str:
    text = text.casefold().replace("&", " and ")
    return " ".join(re.findall(r"[^\W_]+", text))


@dataclass(frozen=True)
class Mapping:
    """Taxonomy terms and keywords to Gravity categories (see the module docstring)."""

    source: str
    open_eligibility: dict[str, tuple[Category, ...]]
    airs_prefixes: tuple[tuple[str, tuple[Category, ...]], ...]
    keywords: tuple[tuple[re.Pattern[str], str, tuple[Category, ...]], ...]

    @classmethod
    def load(cls, path: Path) -> Mapping:
        """Read and check a mapping file; :class:`MappingError` names what is wrong."""
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MappingError(f"{path}: cannot be read ({exc.strerror})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MappingError(f"{path}: not valid TOML ({exc})") from None
        unknown = sorted(set(document) - set(_TABLES))
        if unknown:
            raise MappingError(
                f"{path}: unknown table(s) {', '.join(unknown)} (known: {', '.join(_TABLES)})"
            )
        tables = {}
        for table in _TABLES:
            entries = document.get(table, {})
            if not isinstance(entries, dict):
                raise MappingError(f"{path}: [{table}] must be a table")
            tables[table] = {
                str(key): _categories(path, table, str(key), value)
                for key, value in entries.items()
            }
        prefixes = sorted(
            ((key.strip().upper(), cats) for key, cats in tables["airs_prefixes"].items()),
            key=lambda item: -len(item[0]),
        )
        keywords = tuple(
            (re.compile(rf"(?<!\w){re.escape(key.strip().casefold())}(?!\w)"), key, cats)
            for key, cats in tables["keywords"].items()
            if key.strip()
        )
        return cls(
            source=str(path),
            open_eligibility={
                _normal_name(key): cats for key, cats in tables["open_eligibility"].items()
            },
            airs_prefixes=tuple(prefixes),
            keywords=keywords,
        )

    def for_term(self, term: Term) -> tuple[tuple[Category, ...], str] | None:
        """The categories one term maps to, and how (for the report); None when none."""
        for value in (term.code, term.name):
            if value is not None and value.strip().casefold() in _CATEGORY_CODES:
                return (Category(value.strip().casefold()),), f"gravity {value.strip()}"
        code = (term.code or "").strip().upper()
        if code and AIRS_CODE_RE.fullmatch(code):
            for prefix, categories in self.airs_prefixes:
                if code.startswith(prefix):
                    return categories, f"airs {code} ({prefix})"
        if term.name:
            named = self.open_eligibility.get(_normal_name(term.name))
            if named is not None:
                return named, f'open-eligibility "{term.name}"'
        return None

    def for_text(self, text: str) -> tuple[set[Category], list[str]]:
        """Categories of the keywords found in ``text`` (whole words, case ignored)."""
        folded = text.casefold()
        found: set[Category] = set()
        how = []
        for pattern, keyword, categories in self.keywords:
            if pattern.search(folded):
                found.update(categories)
                how.append(f'keyword "{keyword}"')
        return found, how


_CATEGORY_CODES: Final = frozenset(c.value for c in Category)


def _categories(path: Path, table: str, key: str, value: object) -> tuple[Category, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise MappingError(f"{path}: [{table}] {key!r}: expected a list of category codes")
    found = []
    for item in values:
        if not isinstance(item, str) or item not in _CATEGORY_CODES:
            raise MappingError(
                f"{path}: [{table}] {key!r}: {item!r} is not a Gravity SDOH category code "
                "(see schemas/codes.py Category, e.g. food-insecurity)"
            )
        found.append(Category(item))
    return tuple(dict.fromkeys(found))


__all__ = ["AIRS_CODE_RE", "RESPONSE_SLA_CODE", "Mapping", "MappingError", "Term"]
