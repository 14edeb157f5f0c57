"""ACLs on the broker: the ALLOW rules that give each party its topics and groups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from connectors.kafka.admin.batches import DEFAULT_LIMITS, BatchLimits, chunks
from connectors.kafka.admin.client import (
    CHANGE_TIMEOUT,
    QUERY_TIMEOUT,
    AdminError,
    admin_client,
    settle,
    wait_until_done,
)
from connectors.kafka.auth import PLAINTEXT, KafkaAuth

ResourceKind = Literal["topic", "group", "cluster", "transactional_id"]
_RESOURCE = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "cluster": ResourceType.BROKER,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
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
        return _filter(*self._fields())

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


def _filter(*fields: Any) -> Any:
    """An ``AclBindingFilter``; a None field means "any", which its stubs refuse."""
    make: Any = AclBindingFilter
    return make(*fields)


def _acl_filter(principal: str | None) -> Any:
    """A filter matching every ACL (of ``principal``, if given)."""
    return _filter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        principal,
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def security_enabled(
    bootstrap: str, *, timeout: float = QUERY_TIMEOUT, auth: KafkaAuth = PLAINTEXT
) -> bool:
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
    timeout: float = QUERY_TIMEOUT,
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


#: Above this many principals, waiting for ACLs describes them all in one request.
_ONE_QUERY_ABOVE = 8


def create_acls(
    bootstrap: str,
    acls: Iterable[Acl],
    *,
    timeout: float = CHANGE_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
    limits: BatchLimits = DEFAULT_LIMITS,
) -> None:
    """Create every rule (an existing one is no error) and wait until the broker applies them.

    ACLs travel through the KRaft metadata log; the broker answering
    DescribeAcls from its own copy shows them once it enforces them. At most
    ``limits.acls`` bindings go in one request (each is a metadata record).
    """
    wanted = sorted(set(acls))
    if not wanted:
        return
    admin = admin_client(bootstrap, auth)
    for batch in chunks(wanted, limits.acls):
        futures = admin.create_acls([acl.binding() for acl in batch], request_timeout=timeout)
        settle(futures, "creating ACL", timeout)
    principals = sorted({acl.principal for acl in wanted})

    def missing() -> list[str]:
        if len(principals) > _ONE_QUERY_ABOVE:
            have = set(describe_acls(bootstrap, auth=auth))
        else:
            have = {acl for p in principals for acl in describe_acls(bootstrap, p, auth=auth)}
        return [acl.describe() for acl in wanted if acl not in have]

    wait_until_done(missing, "ACLs not in force", timeout, every=0.1)


def delete_acls(
    bootstrap: str,
    acls: Iterable[Acl] = (),
    *,
    principal: str | None = None,
    timeout: float = CHANGE_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
) -> int:
    """Delete these exact rules, and every rule of ``principal`` if given; return how many."""
    filters = [acl.binding_filter() for acl in set(acls)]
    if principal is not None:
        filters.append(_acl_filter(principal))
    return _delete(bootstrap, filters, timeout, auth)


def delete_topic_acls(
    bootstrap: str,
    names: Iterable[str],
    *,
    timeout: float = CHANGE_TIMEOUT,
    auth: KafkaAuth = PLAINTEXT,
) -> int:
    """Delete every ACL on these literal topics, whoever it is for; return how many."""
    filters = [
        _filter(
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
    return _delete(bootstrap, filters, timeout, auth)


def _delete(bootstrap: str, filters: list[Any], timeout: float, auth: KafkaAuth) -> int:
    """Delete the ACLs matching any of ``filters``; return how many there were."""
    if not filters:
        return 0
    admin = admin_client(bootstrap, auth)
    futures = admin.delete_acls(filters, request_timeout=timeout)
    return sum(len(deleted) for deleted in settle(futures, "deleting ACLs", timeout))


__all__ = [
    "CLUSTER",
    "Acl",
    "ResourceKind",
    "create_acls",
    "delete_acls",
    "delete_topic_acls",
    "describe_acls",
    "security_enabled",
]
