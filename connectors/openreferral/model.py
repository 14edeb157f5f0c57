"""HSDS as read: organizations, services and what they carry, with where each came from.

The readers (:mod:`connectors.openreferral.json_files` and
:mod:`connectors.openreferral.tabular`) fill a :class:`Directory`;
:func:`connectors.openreferral.importer.convert` maps it to events. Every object
keeps its :class:`Loc` (a JSON path in a file, or a CSV line) so that a problem
names the file, the row and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from connectors.openreferral.taxonomy import Term
from schemas.errors import RefnetError


# ---------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """Something wrong in a file, and where: ``services.csv line 4, field status``."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class HsdsError(RefnetError, ValueError):
    """Files that cannot be imported; ``problems`` lists every reason (nothing was used)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported:\n{lines}{more}")


@dataclass(frozen=True)
class Loc:
    """Where a value sits: a JSON path in a file, or a line of a CSV file."""

    text: str
    tabular: bool = False

    def at(self, name: str) -> str:
        return f"{self.text}, field {name}" if self.tabular else f"{self.text}.{name}"

    def item(self, name: str, index: int) -> Loc:
        return Loc(f"{self.text}.{name}[{index}]")

    def child(self, name: str) -> Loc:
        return Loc(f"{self.text}.{name}")


# ---------------------------------------------------------------- HSDS, as read
@dataclass
class Attribute:
    term: Term | None
    term_id: str | None
    value: str | None
    loc: Loc


@dataclass
class Area:
    name: str | None
    extent: object
    extent_type: str | None
    loc: Loc


@dataclass
class Language:
    code: str | None
    name: str | None
    loc: Loc


@dataclass
class Place:
    """An HSDS location: coordinates, postal codes (physical addresses first), languages."""

    id: str | None
    latitude: object
    longitude: object
    loc: Loc
    physical: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    languages: list[Language] = field(default_factory=list)


@dataclass
class CapacityIn:
    available: object
    maximum: object
    unit: str | None
    updated: str | None
    loc: Loc


@dataclass
class Organization:
    id: str
    name: str
    loc: Loc
    pinned: str | None = None
    pinned_loc: Loc | None = None


@dataclass
class Service:
    id: str
    name: str
    status: str
    org_ref: str | None
    loc: Loc
    alternate_name: str | None = None
    description: str | None = None
    minimum_age: object = None
    maximum_age: object = None
    languages: list[Language] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    capacities: list[CapacityIn] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)


@dataclass
class Directory:
    """An HSDS directory as read, before it is mapped."""

    organizations: dict[str, Organization] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    terms: dict[str, Term] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: one line per file or folder read
    sources: list[str] = field(default_factory=list)

    def error(self, where: str, message: str) -> None:
        self.errors.append(Problem(where, message))

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(Problem(where, message))

    def sizes(self) -> tuple[int, int]:
        """How many organizations and services it holds."""
        return len(self.organizations), len(self.services)

    def added_since(self, sizes: tuple[int, int]) -> str:
        """``N organization(s), M service(s)``: what was added since :meth:`sizes` was ``sizes``."""
        orgs, services = (now - then for now, then in zip(self.sizes(), sizes, strict=True))
        return f"{orgs} organization(s), {services} service(s)"

    def add_organization(self, org: Organization) -> None:
        known = self.organizations.get(org.id)
        if known is None:
            self.organizations[org.id] = org
        elif known.name != org.name:
            self.warn(
                org.loc.at("name"),
                f"organization {org.id} was named differently at "
                f"{known.loc.text}; the first name is used",
            )


__all__ = [
    "Area",
    "Attribute",
    "CapacityIn",
    "Directory",
    "HsdsError",
    "Language",
    "Loc",
    "Organization",
    "Place",
    "Problem",
    "Service",
]
