"""Parties, the principals they connect as, and exactly the ACLs the contract gives them.

Principals are named after the topics they speak for: ``{prefix}.clinic.{id}``,
``{prefix}.org.{id}``, ``{prefix}.facility.{id}`` (hospitals, EDs),
``{prefix}.admin.{id}`` (directory admins) and
``{prefix}.network`` (the workers), so several networks (prefixes) can share a
cluster. A party's consumer groups must start with its principal's name and a
dot (``sdoh.org.bronx-pantry.``): party ids never hold a dot, so no party's
prefix covers another's groups.
"""

from __future__ import annotations

from typing import Literal

from connectors.kafka.admin import CLUSTER, Acl
from schemas.errors import RefnetError
from schemas.topics import Topics, check_party_id

PartyKind = Literal["clinic", "org", "facility", "admin"]
PARTY_KINDS: tuple[PartyKind, ...] = ("clinic", "org", "facility", "admin")


class ProvisionError(RefnetError, RuntimeError):
    """A party cannot be provisioned as asked; the message says why."""


# ---------------------------------------------------------------------- names
def party_principal(topics: Topics, kind: PartyKind, party_id: str) -> str:
    """The SCRAM username of a party: ``{prefix}.{kind}.{id}``."""
    return f"{topics.prefix}.{kind}.{check_party_id(party_id)}"


def network_principal(topics: Topics) -> str:
    """The default SCRAM username of the network's workers: ``{prefix}.network``."""
    return f"{topics.prefix}.network"


# ---------------------------------------------------------------------- ACLs
def _topic(user: str, name: str, *operations: str) -> list[Acl]:
    return [Acl(f"User:{user}", "topic", name, op) for op in operations]


def party_topics(topics: Topics, kind: PartyKind, party_id: str) -> dict[str, list[str]]:
    """What a party reads and writes (the contract's topic table)."""
    if kind == "clinic":
        read = [topics.clinic_updates(party_id)]
        write = [topics.clinic_submissions(party_id)]
    elif kind == "org":
        read = [topics.org_referrals(party_id)]
        write = [topics.org_updates(party_id)]
    elif kind == "facility":
        read = [topics.facility_updates(party_id)]
        write = [topics.facility_submissions(party_id)]
    else:
        check_party_id(party_id)
        read, write = [topics.directory], [topics.directory]
    return {"read": read, "write": write}


def party_acls(topics: Topics, kind: PartyKind, party_id: str) -> list[Acl]:
    """Exactly what a party may do: read its inbox, write its outbox, use its own groups.

    A clinic writes its submissions and reads its updates; an organization reads
    its referrals and writes its updates; a facility writes its submissions
    (``encounter.notified``) and reads its updates; a directory admin writes (and reads)
    the directory. Consumer groups: those named ``{principal}.*``; transactional ids
    (the gateway publishing a Bundle as the party): those named ``{principal}.*``.
    """
    user = party_principal(topics, kind, party_id)
    access = party_topics(topics, kind, party_id)
    acls = []
    for name in access["read"]:
        acls += _topic(user, name, "READ", "DESCRIBE")
    for name in access["write"]:
        acls += _topic(user, name, "WRITE", "DESCRIBE")
    acls += [
        Acl(f"User:{user}", "group", f"{user}.", op, "prefixed") for op in ("READ", "DESCRIBE")
    ]
    if kind != "admin":  # the gateway's transactions as the party (a Bundle, all or nothing)
        acls += [
            Acl(f"User:{user}", "transactional_id", f"{user}.", op, "prefixed")
            for op in ("WRITE", "DESCRIBE")
        ]
    return sorted(set(acls))


def network_party_acls(topics: Topics, kind: PartyKind, party_id: str, user: str) -> list[Acl]:
    """What the network's principal needs on one party's topics (none for an admin).

    It reads the party's outbox and writes its inbox; it also reads the inbox back,
    for the gateway, whose one inbox reader logs in with the network's own login
    (what it writes there, nothing more)."""
    if kind == "clinic":
        return _topic(user, topics.clinic_submissions(party_id), "READ", "DESCRIBE") + _topic(
            user, topics.clinic_updates(party_id), "READ", "WRITE", "DESCRIBE"
        )
    if kind == "org":
        return _topic(user, topics.org_updates(party_id), "READ", "DESCRIBE") + _topic(
            user, topics.org_referrals(party_id), "READ", "WRITE", "DESCRIBE"
        )
    if kind == "facility":
        return _topic(user, topics.facility_submissions(party_id), "READ", "DESCRIBE") + _topic(
            user, topics.facility_updates(party_id), "READ", "WRITE", "DESCRIBE"
        )
    return []


def network_acls(topics: Topics, app_id: str, user: str) -> list[Acl]:
    """Exactly what the workers need besides the parties' topics.

    * its internal topics (``{prefix}.network.*``) and Faust's (``{app_id}-*``:
      the tables' changelogs, the assignor's leader topic): read, write, and
      create (Faust declares them at start; ``refnet topics apply`` made them);
    * the directory: read; screenings, the event log and dead letters: write,
      and read (the network view and the ledger read them back);
    * its consumer groups: ``{app_id}`` (agents) and ``{app_id}-*`` (the ingress's
      ``-ingress`` and ``-ingress-updates``, whose first start reads the offsets
      ``-ingress`` committed: DESCRIBE on that group; the ledger's ``-ledger``);
    * idempotent production on the cluster.
    """
    principal = f"User:{user}"
    acls = [
        Acl(principal, "topic", f"{topics.prefix}.network.", op, "prefixed")
        for op in ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS")
    ]
    acls += [
        Acl(principal, "topic", f"{app_id}-", op, "prefixed")
        for op in ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS")
    ]
    acls += _topic(user, topics.directory, "READ", "DESCRIBE")
    for name in (topics.screenings, topics.referral_events, topics.deadletter):
        acls += _topic(user, name, "READ", "WRITE", "DESCRIBE")
    acls += [Acl(principal, "group", app_id, op) for op in ("READ", "DESCRIBE")]
    acls += [Acl(principal, "group", f"{app_id}-", op, "prefixed") for op in ("READ", "DESCRIBE")]
    acls.append(Acl(principal, "cluster", CLUSTER, "IDEMPOTENT_WRITE"))
    return sorted(set(acls))
