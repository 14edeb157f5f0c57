"""The topic catalog: every topic of the wire contract v1, in one place.

Names follow docs/contract.md. The prefix (``sdoh`` by default) comes from settings;
everything here takes it as an argument so that tests can run side by side on
one broker with unique prefixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from schemas.codes import PARTY_ID_RE
from schemas.errors import RefnetError

DEFAULT_PREFIX: Final = "sdoh"
PREFIX_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
#: What Kafka allows in a topic name (an app id becomes part of the changelogs' names).
APP_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,200}$")

#: Partitions of a per-party topic and of the network's own topics. Referral-keyed
#: topics share the same count so that a referral's events co-partition.
DEFAULT_PARTITIONS: Final = 6


class TopicKind(StrEnum):
    CLINIC_SUBMISSIONS = "clinic-submissions"
    CLINIC_UPDATES = "clinic-updates"
    ORG_REFERRALS = "org-referrals"
    ORG_UPDATES = "org-updates"
    FACILITY_SUBMISSIONS = "facility-submissions"
    FACILITY_UPDATES = "facility-updates"
    DIRECTORY = "directory"
    SCREENINGS = "screenings"
    REFERRAL_EVENTS = "referral-events"
    DEADLETTER = "deadletter"
    # internal: the network's own re-keyed command streams (not part of the contract)
    NETWORK_PATIENTS = "network-patients"
    NETWORK_REFERRALS = "network-referrals"
    NETWORK_CAPACITY = "network-capacity"
    NETWORK_VIEW = "network-view"
    NETWORK_LINKAGE = "network-linkage"
    # internal: Faust's changelog topics of the worker's three tables
    PATIENTS_CHANGELOG = "patients-changelog"
    REFERRALS_CHANGELOG = "referrals-changelog"
    LINKAGE_CHANGELOG = "linkage-changelog"


class InvalidPartyId(RefnetError, ValueError):
    """A clinic_id or org_id that breaks the contract's pattern."""

    def __init__(self, party_id: str) -> None:
        super().__init__(
            f"invalid party id {party_id!r}: it must match [a-z0-9][a-z0-9-]{{1,62}} "
            "(lowercase letters, digits and '-', 2 to 63 characters, not starting with '-')"
        )
        self.party_id = party_id


def check_party_id(party_id: str) -> str:
    """Return ``party_id`` unchanged, or raise :class:`InvalidPartyId`."""
    if not PARTY_ID_RE.fullmatch(party_id):
        raise InvalidPartyId(party_id)
    return party_id


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"invalid topic prefix {prefix!r}: use lowercase letters, digits, '_.-'")
    return prefix


def check_app_id(app_id: str) -> str:
    if not APP_ID_RE.fullmatch(app_id):
        raise ValueError(
            f"invalid app id {app_id!r}: it names topics, so use letters, digits and '._-' "
            "(1 to 200 characters)"
        )
    return app_id


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and how it is kept.

    ``fixed_partitions`` marks a topic whose partition count may never change in
    place: the network's keyed state (its two command topics and the changelogs of
    the tables they feed) is co-partitioned, and a key moved to another partition
    would lose its state.
    """

    name: str
    kind: TopicKind
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)
    fixed_partitions: bool = False


# Retention: per-party traffic is kept 30 days (a receiving organization checks at
# least once per business day, and replay for recovery needs a margin); the
# network's event log and dead letters 1 year and 90 days; the directory is
# compacted and kept forever.
_DAY_MS: Final = 24 * 3600 * 1000
_CONFIG: Final[dict[TopicKind, dict[str, str]]] = {
    TopicKind.CLINIC_SUBMISSIONS: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.CLINIC_UPDATES: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.ORG_REFERRALS: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.ORG_UPDATES: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    # encounters carry demographics: kept 7 days, long enough to replay a day's outage
    TopicKind.FACILITY_SUBMISSIONS: {"cleanup.policy": "delete", "retention.ms": str(7 * _DAY_MS)},
    TopicKind.FACILITY_UPDATES: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.DIRECTORY: {"cleanup.policy": "compact", "retention.ms": "-1"},
    TopicKind.SCREENINGS: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.REFERRAL_EVENTS: {"cleanup.policy": "delete", "retention.ms": str(365 * _DAY_MS)},
    TopicKind.DEADLETTER: {"cleanup.policy": "delete", "retention.ms": str(90 * _DAY_MS)},
    TopicKind.NETWORK_PATIENTS: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.NETWORK_REFERRALS: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.NETWORK_CAPACITY: {"cleanup.policy": "compact", "retention.ms": "-1"},
    # a few live keys rewritten every minute: small segments so that compaction
    # keeps what a starting worker reads near the end small
    TopicKind.NETWORK_VIEW: {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "segment.ms": str(3600 * 1000),
        "segment.bytes": str(16 * 1024 * 1024),
        "min.cleanable.dirty.ratio": "0.1",
        "delete.retention.ms": str(3600 * 1000),
    },
    # linkage keys and encounters without patient data: kept like the other commands
    TopicKind.NETWORK_LINKAGE: {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)},
    TopicKind.PATIENTS_CHANGELOG: {"cleanup.policy": "compact"},
    TopicKind.REFERRALS_CHANGELOG: {"cleanup.policy": "compact"},
    TopicKind.LINKAGE_CHANGELOG: {"cleanup.policy": "compact"},
}

#: Kinds whose topics keep their partition count for life (see TopicSpec).
FIXED_PARTITION_KINDS: Final = frozenset(
    {
        TopicKind.NETWORK_PATIENTS,
        TopicKind.NETWORK_REFERRALS,
        TopicKind.NETWORK_LINKAGE,
        TopicKind.PATIENTS_CHANGELOG,
        TopicKind.REFERRALS_CHANGELOG,
        TopicKind.LINKAGE_CHANGELOG,
    }
)


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under one prefix."""

    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    # ------------------------------------------------------------ network topics
    @property
    def directory(self) -> str:
        return f"{self.prefix}.directory.v1"

    @property
    def screenings(self) -> str:
        return f"{self.prefix}.screenings.v1"

    @property
    def referral_events(self) -> str:
        return f"{self.prefix}.referrals.events.v1"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter.v1"

    # ------------------------------------------------------------ internal topics
    @property
    def network_patients(self) -> str:
        """Submissions re-keyed by ``clinic_id:patient_id`` (one owner per patient)."""
        return f"{self.prefix}.network.patients.v1"

    @property
    def network_referrals(self) -> str:
        """Every command about a referral, keyed by referral_id (one owner each)."""
        return f"{self.prefix}.network.referrals.v1"

    @property
    def network_capacity(self) -> str:
        """Capacity reported by organizations, keyed by service_id (compacted)."""
        return f"{self.prefix}.network.capacity.v1"

    @property
    def network_view(self) -> str:
        """Snapshots of the network view's record (compacted, one partition; see
        :mod:`streams.runtime.view_snapshot`)."""
        return f"{self.prefix}.network.view.v1"

    @property
    def network_linkage(self) -> str:
        """Linkage commands keyed by linkage key: links to patients, and encounters
        looking for theirs (see :mod:`streams.decisions.encounters`)."""
        return f"{self.prefix}.network.linkage.v1"

    # ------------------------------------------------------------ changelog topics
    @staticmethod
    def patients_changelog(app_id: str) -> str:
        """Faust's changelog of the worker's ``patients`` table (named by the app id)."""
        return f"{check_app_id(app_id)}-patients-changelog"

    @staticmethod
    def referrals_changelog(app_id: str) -> str:
        """Faust's changelog of the worker's ``referrals`` table (named by the app id)."""
        return f"{check_app_id(app_id)}-referrals-changelog"

    @staticmethod
    def linkage_changelog(app_id: str) -> str:
        """Faust's changelog of the worker's ``linkage`` table (named by the app id)."""
        return f"{check_app_id(app_id)}-linkage-changelog"

    # ------------------------------------------------------------ party topics
    def clinic_submissions(self, clinic_id: str) -> str:
        return f"{self.prefix}.clinic.{check_party_id(clinic_id)}.submissions.v1"

    def clinic_updates(self, clinic_id: str) -> str:
        return f"{self.prefix}.clinic.{check_party_id(clinic_id)}.updates.v1"

    def org_referrals(self, org_id: str) -> str:
        return f"{self.prefix}.org.{check_party_id(org_id)}.referrals.v1"

    def org_updates(self, org_id: str) -> str:
        return f"{self.prefix}.org.{check_party_id(org_id)}.updates.v1"

    def facility_submissions(self, facility_id: str) -> str:
        """Where a facility (hospital, ED) publishes ``encounter.notified``."""
        return f"{self.prefix}.facility.{check_party_id(facility_id)}.submissions.v1"

    def facility_updates(self, facility_id: str) -> str:
        """Where a facility hears the network's answers to its messages."""
        return f"{self.prefix}.facility.{check_party_id(facility_id)}.updates.v1"

    # ------------------------------------------------------------ patterns
    @property
    def clinic_submissions_pattern(self) -> str:
        """Regex matching every clinic's submissions topic (pattern subscription)."""
        return rf"^{re.escape(self.prefix)}\.clinic\.[a-z0-9][a-z0-9-]{{1,62}}\.submissions\.v1$"

    @property
    def org_updates_pattern(self) -> str:
        """Regex matching every organization's updates topic."""
        return rf"^{re.escape(self.prefix)}\.org\.[a-z0-9][a-z0-9-]{{1,62}}\.updates\.v1$"

    @property
    def facility_submissions_pattern(self) -> str:
        """Regex matching every facility's submissions topic."""
        return rf"^{re.escape(self.prefix)}\.facility\.[a-z0-9][a-z0-9-]{{1,62}}\.submissions\.v1$"

    def parse(self, topic: str) -> tuple[TopicKind, str | None] | None:
        """Which kind of topic ``topic`` is, and the party it speaks for.

        Returns ``None`` for a topic that is not part of the catalog.
        """
        fixed = {
            self.directory: TopicKind.DIRECTORY,
            self.screenings: TopicKind.SCREENINGS,
            self.referral_events: TopicKind.REFERRAL_EVENTS,
            self.deadletter: TopicKind.DEADLETTER,
        }
        if topic in fixed:
            return fixed[topic], None
        head = f"{self.prefix}."
        if not topic.startswith(head) or not topic.endswith(".v1"):
            return None
        parts = topic[len(head) : -len(".v1")].split(".")
        if len(parts) != 3 or not PARTY_ID_RE.fullmatch(parts[1]):
            return None
        party_kind, party_id, leaf = parts
        kinds = {
            ("clinic", "submissions"): TopicKind.CLINIC_SUBMISSIONS,
            ("clinic", "updates"): TopicKind.CLINIC_UPDATES,
            ("org", "referrals"): TopicKind.ORG_REFERRALS,
            ("org", "updates"): TopicKind.ORG_UPDATES,
            ("facility", "submissions"): TopicKind.FACILITY_SUBMISSIONS,
            ("facility", "updates"): TopicKind.FACILITY_UPDATES,
        }
        kind = kinds.get((party_kind, leaf))
        return (kind, party_id) if kind is not None else None

    # ------------------------------------------------------------ catalog
    def spec(self, name: str, kind: TopicKind) -> TopicSpec:
        return TopicSpec(
            name=name,
            kind=kind,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            config=dict(_CONFIG[kind]),
            fixed_partitions=kind in FIXED_PARTITION_KINDS,
        )

    def network_catalog(self) -> list[TopicSpec]:
        """The network's own topics (``refnet topics apply``)."""
        return [
            self.spec(self.directory, TopicKind.DIRECTORY),
            self.spec(self.screenings, TopicKind.SCREENINGS),
            self.spec(self.referral_events, TopicKind.REFERRAL_EVENTS),
            self.spec(self.deadletter, TopicKind.DEADLETTER),
            self.spec(self.network_patients, TopicKind.NETWORK_PATIENTS),
            self.spec(self.network_referrals, TopicKind.NETWORK_REFERRALS),
            self.spec(self.network_capacity, TopicKind.NETWORK_CAPACITY),
            replace(self.spec(self.network_view, TopicKind.NETWORK_VIEW), partitions=1),
            self.spec(self.network_linkage, TopicKind.NETWORK_LINKAGE),
        ]

    def changelog_catalog(self, app_id: str) -> list[TopicSpec]:
        """Faust's changelog topics of the worker's tables, for app id ``app_id``.

        Created by ``refnet topics apply`` before any worker runs, so that Faust
        finds them with the catalog's partition count (compacted, like Faust's own).
        """
        return [
            self.spec(self.patients_changelog(app_id), TopicKind.PATIENTS_CHANGELOG),
            self.spec(self.referrals_changelog(app_id), TopicKind.REFERRALS_CHANGELOG),
            self.spec(self.linkage_changelog(app_id), TopicKind.LINKAGE_CHANGELOG),
        ]

    def state_catalog(self, app_id: str) -> list[TopicSpec]:
        """The network's keyed state topics: they must always have equal partition counts.

        The three command topics and their changelogs, every one ``fixed_partitions``.
        """
        return [
            self.spec(self.network_patients, TopicKind.NETWORK_PATIENTS),
            self.spec(self.network_referrals, TopicKind.NETWORK_REFERRALS),
            self.spec(self.network_linkage, TopicKind.NETWORK_LINKAGE),
            *self.changelog_catalog(app_id),
        ]

    def apply_catalog(self, app_id: str) -> list[TopicSpec]:
        """Everything ``refnet topics apply`` declares: the network catalog and the changelogs."""
        return [*self.network_catalog(), *self.changelog_catalog(app_id)]

    def clinic_catalog(self, clinic_id: str) -> list[TopicSpec]:
        return [
            self.spec(self.clinic_submissions(clinic_id), TopicKind.CLINIC_SUBMISSIONS),
            self.spec(self.clinic_updates(clinic_id), TopicKind.CLINIC_UPDATES),
        ]

    def org_catalog(self, org_id: str) -> list[TopicSpec]:
        return [
            self.spec(self.org_referrals(org_id), TopicKind.ORG_REFERRALS),
            self.spec(self.org_updates(org_id), TopicKind.ORG_UPDATES),
        ]

    def facility_catalog(self, facility_id: str) -> list[TopicSpec]:
        return [
            self.spec(self.facility_submissions(facility_id), TopicKind.FACILITY_SUBMISSIONS),
            self.spec(self.facility_updates(facility_id), TopicKind.FACILITY_UPDATES),
        ]


__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_PREFIX",
    "FIXED_PARTITION_KINDS",
    "InvalidPartyId",
    "TopicKind",
    "TopicSpec",
    "Topics",
    "check_app_id",
    "check_party_id",
    "check_prefix",
]
