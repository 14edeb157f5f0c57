"""Networks that share a cluster must not reach into each other through prefixed ACLs.

A network's prefixed rules cover every resource whose name starts with one of its
*roots*: ``{prefix}.`` (its topics, its parties' principals and groups) and
``{app_id}-`` (Faust's topics and groups); its agents' group ``{app_id}`` is a
literal name. When one
network's root starts with another's (prefix ``refnet`` and ``refnet-east``'s app
id ``refnet-east``; prefix ``sdoh`` and ``sdoh.network.b``; party ``sdoh.org.ab``
and the network ``sdoh.org.ab``), one of them is granted the other's topics or
groups. :func:`check_no_overlap` reads the networks already on the cluster (from
their principals' prefixed rules on ``{prefix}.network.`` and ``{app_id}-``) and
refuses such a choice before any rule is made. A network re-applying its own
prefix and app id is not an overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.kafka.admin import Acl, describe_acls
from connectors.kafka.auth import KafkaAuth
from deploy.provision.principals import ProvisionError
from schemas.topics import Topics

NETWORK_SUFFIX = ".network."


@dataclass(frozen=True)
class NetworkNames:
    """The names a network's prefixed rules are rooted at."""

    prefix: str
    app_id: str | None

    def roots(self) -> list[str]:
        """The names of its prefixed rules."""
        return [f"{self.prefix}.", *([f"{self.app_id}-"] if self.app_id is not None else [])]

    def literals(self) -> list[str]:
        """The names of its literal rules that are not under a root (its agents' group)."""
        return [self.app_id] if self.app_id is not None else []

    def describe(self) -> str:
        app = f", app id {self.app_id!r}" if self.app_id is not None else ""
        return f"prefix {self.prefix!r}{app}"


def networks_on(acls: list[Acl]) -> list[NetworkNames]:
    """The networks whose rules are in ``acls``: each principal with a prefixed topic rule
    on ``{prefix}.network.``, with its prefixed topic rule on ``{app_id}-`` if any."""
    prefixed = [a for a in acls if a.resource == "topic" and a.pattern == "prefixed"]
    found = set()
    for acl in prefixed:
        if not acl.name.endswith(NETWORK_SUFFIX):
            continue
        prefix = acl.name.removesuffix(NETWORK_SUFFIX)
        apps = {
            a.name.removesuffix("-")
            for a in prefixed
            if a.principal == acl.principal and a.name.endswith("-")
        }
        found |= {NetworkNames(prefix, app) for app in apps} or {NetworkNames(prefix, None)}
    return sorted(found, key=lambda n: (n.prefix, n.app_id or ""))


def overlap(ours: NetworkNames, theirs: NetworkNames) -> bool:
    """True when a prefixed rule of one network could match a name of the other: a root
    that starts with the other's, or one of the other's literal names."""
    roots = any(a.startswith(b) or b.startswith(a) for a in ours.roots() for b in theirs.roots())
    return (
        roots
        or any(name.startswith(root) for root in ours.roots() for name in theirs.literals())
        or any(name.startswith(root) for root in theirs.roots() for name in ours.literals())
    )


def check_no_overlap(bootstrap: str, auth: KafkaAuth, topics: Topics, app_id: str) -> None:
    """Refuse (ProvisionError) a prefix and app id that overlap another network's on the
    cluster; nothing is changed either way."""
    ours = NetworkNames(topics.prefix, app_id)
    for theirs in networks_on(describe_acls(bootstrap, auth=auth)):
        if theirs.prefix == ours.prefix and theirs.app_id in (app_id, None):
            continue  # this network, applied again
        if overlap(ours, theirs):
            raise ProvisionError(
                f"this network ({ours.describe()}) overlaps another on this cluster "
                f"({theirs.describe()}): one's prefixed ACLs would reach the other's topics or "
                "groups. Choose a REFNET_TOPIC_PREFIX and REFNET_APP_ID that neither start "
                "with nor extend the other's"
            )


__all__ = ["NetworkNames", "check_no_overlap", "networks_on", "overlap"]
