"""Topics, SCRAM credentials and ACLs on the broker, each applied idempotently.

Uses confluent-kafka's AdminClient: unlike aiokafka's admin client it has the
ACL and SCRAM calls that per-party credentials need (``refnet provision``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)


class AdminError(RuntimeError):
    """The broker refused or did not answer an admin request."""


class PartitionChangeRefused(AdminError):
    """Applying the catalog would change the partition count of a fixed-partition topic.

    Nothing was changed. ``problems`` are the lines of :func:`check_partitions`.
    """

    def __init__(
        self,
        problems: list[str],
        specs: Iterable[TopicSpec],
        bootstrap: str,
        current: int | None = None,
    ) -> None:
        self.problems = problems
        super().__init__(
            "refusing to change the partition count of the network's state topics:\n"
            + "\n".join(f"  {line}" for line in problems)
            + "\n"
            + partition_advice(specs, bootstrap, current)
        )


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class TopicResult:
    name: str
    outcome: Outcome
    detail: str = ""


def admin_client(bootstrap: str, auth: KafkaAuth = PLAINTEXT) -> AdminClient:
    quiet = logging.getLogger("refnet.admin.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": quiet}
    config.update(auth.librdkafka())
    return AdminClient(config)


def _wait(futures: Mapping[str, Any], what: str, timeout: float) -> dict[str, Exception | None]:
    results: dict[str, Exception | None] = {}
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
            results[name] = None
        except KafkaException as exc:
            results[name] = exc
        except Exception as exc:
            raise AdminError(f"{what} {name}: {exc}") from exc
    return results


def partition_problems(specs: Iterable[TopicSpec], counts: Mapping[str, int]) -> list[str]:
    """What is wrong with the fixed-partition topics among ``specs``, given ``counts``.

    ``counts`` maps the existing topics to their partition counts; a topic not in it
    does not exist yet, and is no problem (it is created with its spec's count).
    """
    fixed = [s for s in specs if s.fixed_partitions]
    problems = [
        f"{s.name} has {counts[s.name]} partitions; the catalog asks for {s.partitions} "
        "(REFNET_PARTITIONS)"
        for s in fixed
        if s.name in counts and counts[s.name] != s.partitions
    ]
    existing = {s.name: counts[s.name] for s in fixed if s.name in counts}
    if len(set(existing.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in existing.items())
        problems.append(f"the state topics' partition counts differ: {listed}")
    if len({s.partitions for s in fixed}) > 1:
        listed = ", ".join(f"{s.name}={s.partitions}" for s in fixed)
        problems.append(f"the catalog asks for different partition counts: {listed}")
    return problems


def partition_advice(
    specs: Iterable[TopicSpec], bootstrap: str = "HOST:PORT", current: int | None = None
) -> str:
    """How to get out of a partition mismatch of the fixed-partition topics among ``specs``.

    ``current``: the count the existing state topics share, if they share one.
    """
    names = [s.name for s in specs if s.fixed_partitions]
    keep = (
        f"keep REFNET_PARTITIONS={current} (their current count)"
        if current is not None
        else "keep REFNET_PARTITIONS at their current count"
    )
    return (
        "Nothing was changed. A patient's or referral's state lives in the partition its key "
        "hashes to, so these topics keep their partition count for life, and all of them must "
        f"have the same one. Either {keep}, or "
        "migrate: stop every worker, let open referrals drain (or accept losing the network's "
        f"in-flight state), delete the {len(names)} state topics ({', '.join(names)}; e.g. "
        f"kafka-topics.sh --bootstrap-server {bootstrap} --delete --topic NAME), then run "
        "'refnet topics apply' again."
    )


def check_partitions(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    timeout: float = 15.0,
    auth: KafkaAuth = PLAINTEXT,
) -> list[str]:
    """Problems of the existing fixed-partition topics among ``specs``; empty when all is well.

    Each problem is one human-readable line: a topic whose partition count differs
    from its spec, existing state topics whose counts differ from each other, or
    specs that ask for different counts. Topics that do not exist yet are no
    problem. A worker checks ``Topics.state_catalog(app_id)`` before it starts.
    """
    specs = list(specs)
    admin = admin_client(bootstrap, auth)
    try:
        topics = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise AdminError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    return partition_problems(specs, {name: len(t.partitions) for name, t in topics.items()})


def apply_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    timeout: float = 30.0,
    auth: KafkaAuth = PLAINTEXT,
) -> list[TopicResult]:
    """Make every topic exist with at least its partitions and exactly its config.

    A topic with ``fixed_partitions`` must keep its count: when one exists with
    another count than its spec's (or the state topics disagree), nothing at all
    is changed and :class:`PartitionChangeRefused` says how to migrate.
    """
    specs = list(specs)
    admin = admin_client(bootstrap, auth)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise AdminError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    problems = partition_problems(specs, {name: len(t.partitions) for name, t in existing.items()})
    if problems:
        shared = {
            len(existing[s.name].partitions)
            for s in specs
            if s.fixed_partitions and s.name in existing
        }
        current = shared.pop() if len(shared) == 1 else None
        raise PartitionChangeRefused(problems, specs, bootstrap, current)

    results: dict[str, TopicResult] = {}
    missing = [s for s in specs if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    config=s.config,
                )
                for s in missing
            ],
            operation_timeout=timeout,
        )
        for name, error in _wait(futures, "creating topic", timeout).items():
            if error is not None and "TOPIC_ALREADY_EXISTS" not in str(error):
                raise AdminError(f"creating topic {name}: {error}")
            results[name] = TopicResult(name, Outcome.CREATED)
        _wait_visible(admin, {s.name: s.partitions for s in missing}, timeout)

    present = [s for s in specs if s.name in existing]
    if present:
        grow = {
            s.name: NewPartitions(s.name, s.partitions)
            for s in present
            if len(existing[s.name].partitions) < s.partitions
        }
        if grow:
            futs = admin.create_partitions(list(grow.values()), operation_timeout=timeout)
            for name, error in _wait(futs, "adding partitions to", timeout).items():
                if error is not None:
                    raise AdminError(f"adding partitions to {name}: {error}")
        resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in present]
        described = admin.describe_configs(resources, request_timeout=timeout)
        drift: dict[str, dict[str, str]] = {}
        for spec, resource in zip(present, resources, strict=True):
            try:
                current = described[resource].result(timeout=timeout)
            except KafkaException as exc:
                raise AdminError(f"describing topic {spec.name}: {exc}") from exc
            wrong = {
                k: v for k, v in spec.config.items() if k not in current or current[k].value != v
            }
            if wrong:
                drift[spec.name] = wrong
        if drift:
            alter = []
            for name, wrong in drift.items():
                res = ConfigResource(
                    ConfigResource.Type.TOPIC,
                    name,
                    incremental_configs=[
                        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                        for k, v in wrong.items()
                    ],
                )
                alter.append(res)
            futs2 = admin.incremental_alter_configs(alter)
            for res, fut in futs2.items():
                try:
                    fut.result(timeout=timeout)
                except KafkaException as exc:
                    raise AdminError(f"updating config of {res.name}: {exc}") from exc
        for spec in present:
            changes = []
            if spec.name in grow:
                changes.append(f"partitions -> {spec.partitions}")
            if spec.name in drift:
                changes.append(", ".join(f"{k}={v}" for k, v in sorted(drift[spec.name].items())))
            outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
            results[spec.name] = TopicResult(spec.name, outcome, "; ".join(changes))
    return [results[s.name] for s in specs]


def _wait_visible(admin: AdminClient, wanted: Mapping[str, int], timeout: float) -> None:
    """Return once every topic is in the metadata with a leader for each partition.

    CreateTopics returns before the new topics reach every metadata cache; a
    caller that describes or produces right after would see them missing.
    """
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(timeout=timeout)
        pending = [
            name
            for name, count in wanted.items()
            if name not in meta.topics
            or len(meta.topics[name].partitions) < count
            or any(p.leader < 0 for p in meta.topics[name].partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AdminError(f"topics not visible after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.05)


def list_topics(
    bootstrap: str,
    *,
    timeout: float = 15.0,
    auth: KafkaAuth = PLAINTEXT,
    admin: AdminClient | None = None,
) -> dict[str, int]:
    """Topic name -> partition count, internal topics excluded. A caller that asks
    often passes its own long-lived ``admin``: a new client per call costs a
    connection and librdkafka's threads each time."""
    if admin is None:
        admin = admin_client(bootstrap, auth)
    try:
        meta = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise AdminError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    return {name: len(t.partitions) for name, t in meta.topics.items() if not name.startswith("__")}


def delete_topics(
    bootstrap: str, names: Iterable[str], *, timeout: float = 30.0, auth: KafkaAuth = PLAINTEXT
) -> list[str]:
    """Delete the topics among ``names`` that exist; return the deleted ones' names."""
    admin = admin_client(bootstrap, auth)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise AdminError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    doomed = [name for name in names if name in existing]
    if not doomed:
        return []
    futures = admin.delete_topics(doomed, operation_timeout=timeout)
    for name, error in _wait(futures, "deleting topic", timeout).items():
        if error is not None and "UNKNOWN_TOPIC" not in str(error):
            raise AdminError(f"deleting topic {name}: {error}")
    return doomed


# ---------------------------------------------------------------------- ACLs
ResourceKind = Literal["topic", "group", "cluster"]
_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "cluster": ResourceType.BROKER,
}
_KIND = {v: k for k, v in _RESOURCE.items()}
#: The name of the cluster resource in an ACL.
CLUSTER = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW rule: ``principal`` may ``operation`` on a resource (any host)."""

    principal: str
    resource: ResourceKind
    name: str
    operation: str
    #: ``literal``: the resource named ``name``; ``prefixed``: every one starting with it
    pattern: Literal["literal", "prefixed"] = "literal"

    def _fields(self) -> tuple[Any, ...]:
        return (
            _RESOURCE[self.resource],
            self.name,
            ResourcePatternType[self.pattern.upper()],
            self.principal,
            "*",
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )

    def binding(self) -> Any:
        return AclBinding(*self._fields())

    def binding_filter(self) -> Any:
        """A filter matching exactly this rule (what DeleteAcls takes)."""
        make: Any = AclBindingFilter
        return make(*self._fields())

    def describe(self) -> str:
        where = f"{self.resource} {self.name}{'*' if self.pattern == 'prefixed' else ''}"
        return f"{self.principal} {self.operation} {where}"

    @classmethod
    def from_binding(cls, binding: Any) -> Acl | None:
        kind: ResourceKind | None = _KIND.get(binding.restype)  # type: ignore[assignment]
        if kind is None or binding.permission_type != AclPermissionType.ALLOW:
            return None
        pattern = binding.resource_pattern_type.name.lower()
        if pattern not in ("literal", "prefixed"):
            return None
        return cls(binding.principal, kind, binding.name, binding.operation.name, pattern)


def _acl_filter(principal: str | None) -> Any:
    """A filter matching every ACL (of ``principal``, if given)."""
    make: Any = AclBindingFilter  # its stubs refuse None, which means "any"
    return make(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        principal,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def security_enabled(bootstrap: str, *, timeout: float = 15.0, auth: KafkaAuth = PLAINTEXT) -> bool:
    """True when the cluster enforces ACLs (it has an authorizer).

    Asked by deleting the ACLs of a principal that never has any: a cluster
    without an authorizer answers SECURITY_DISABLED (DescribeAcls would answer
    with an empty list), one with an authorizer deletes nothing.
    """
    admin = admin_client(bootstrap, auth)
    futures = admin.delete_acls([_acl_filter("User:refnet-probe.none")], request_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args and getattr(exc.args[0], "name", lambda: "")() == "SECURITY_DISABLED":
                return False
            raise AdminError(f"cannot ask {bootstrap} about its ACLs: {exc}") from exc
    return True


def describe_acls(
    bootstrap: str,
    principal: str | None = None,
    *,
    timeout: float = 15.0,
    auth: KafkaAuth = PLAINTEXT,
) -> list[Acl]:
    """Every ALLOW rule (of ``principal``, if given), sorted."""
    admin = admin_client(bootstrap, auth)
    query = _acl_filter(principal)
    try:
        bindings = admin.describe_acls(query, request_timeout=timeout).result(timeout=timeout)
    except KafkaException as exc:
        raise AdminError(f"describing ACLs: {exc}") from exc
    return sorted(acl for acl in map(Acl.from_binding, bindings) if acl is not None)


def create_acls(
    bootstrap: str,
    acls: Iterable[Acl],
    *,
    timeout: float = 30.0,
    auth: KafkaAuth = PLAINTEXT,
) -> None:
    """Create every rule (an existing one is no error) and wait until the broker applies them.

    ACLs travel through the KRaft metadata log; the broker answering
    DescribeAcls from its own copy shows them once it enforces them.
    """
    wanted = sorted(set(acls))
    if not wanted:
        return
    admin = admin_client(bootstrap, auth)
    futures = admin.create_acls([acl.binding() for acl in wanted], request_timeout=timeout)
    for binding, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            raise AdminError(f"creating ACL {binding}: {exc}") from exc
    principals = {acl.principal for acl in wanted}
    deadline = time.monotonic() + timeout
    while True:
        have = {
            acl
            for principal in principals
            for acl in describe_acls(bootstrap, principal, auth=auth)
        }
        if have.issuperset(wanted):
            return
        if time.monotonic() > deadline:
            missing = ", ".join(acl.describe() for acl in wanted if acl not in have)
            raise AdminError(f"ACLs not in force after {timeout:.0f}s: {missing}")
        time.sleep(0.1)


def delete_acls(
    bootstrap: str,
    acls: Iterable[Acl] = (),
    *,
    principal: str | None = None,
    timeout: float = 30.0,
    auth: KafkaAuth = PLAINTEXT,
) -> int:
    """Delete these exact rules, and every rule of ``principal`` if given; return how many."""
    filters = [acl.binding_filter() for acl in set(acls)]
    if principal is not None:
        filters.append(_acl_filter(principal))
    if not filters:
        return 0
    admin = admin_client(bootstrap, auth)
    futures = admin.delete_acls(filters, request_timeout=timeout)
    deleted = 0
    for binding, future in futures.items():
        try:
            deleted += len(future.result(timeout=timeout))
        except KafkaException as exc:
            raise AdminError(f"deleting ACLs {binding}: {exc}") from exc
    return deleted


def delete_topic_acls(
    bootstrap: str, names: Iterable[str], *, timeout: float = 30.0, auth: KafkaAuth = PLAINTEXT
) -> int:
    """Delete every ACL on these literal topics, whoever it is for; return how many."""
    make: Any = AclBindingFilter  # its stubs refuse None, which means "any"
    filters = [
        make(
            ResourceType.TOPIC,
            name,
            ResourcePatternType.LITERAL,
            None,
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        for name in names
    ]
    if not filters:
        return 0
    admin = admin_client(bootstrap, auth)
    deleted = 0
    for binding, future in admin.delete_acls(filters, request_timeout=timeout).items():
        try:
            deleted += len(future.result(timeout=timeout))
        except KafkaException as exc:
            raise AdminError(f"deleting ACLs {binding}: {exc}") from exc
    return deleted


# ---------------------------------------------------------------------- SCRAM
#: PBKDF2 iterations of a stored SCRAM credential (Kafka's minimum is 4096).
SCRAM_ITERATIONS = 8192


def upsert_scram(
    bootstrap: str,
    username: str,
    password: str,
    *,
    timeout: float = 30.0,
    auth: KafkaAuth = PLAINTEXT,
) -> None:
    """Create or replace ``username``'s SCRAM-SHA-512 credential."""
    admin = admin_client(bootstrap, auth)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    change = UserScramCredentialUpsertion(username, info, password.encode())
    futures = admin.alter_user_scram_credentials([change], request_timeout=timeout)
    for user, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            raise AdminError(f"setting the SCRAM credential of {user}: {exc}") from exc


def delete_scram(
    bootstrap: str, username: str, *, timeout: float = 30.0, auth: KafkaAuth = PLAINTEXT
) -> bool:
    """Remove ``username``'s SCRAM-SHA-512 credential; False when it had none."""
    admin = admin_client(bootstrap, auth)
    change = UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)
    futures = admin.alter_user_scram_credentials([change], request_timeout=timeout)
    for user, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if "RESOURCE_NOT_FOUND" in str(exc):
                return False
            raise AdminError(f"deleting the SCRAM credential of {user}: {exc}") from exc
    return True
