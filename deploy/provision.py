"""Parties and their identities: ``refnet provision`` and ``refnet deprovision``.

On any broker, provisioning a clinic or an organization creates its two topics.
On a secured broker (one with an authorizer: ``refnet dev up --secure``, or a
managed cluster) it also creates the party's SCRAM-SHA-512 credentials and
exactly the ACLs the contract gives it, grants the network's principal what it
needs on the party's topics, and writes the party's client configuration to
``{REFNET_DATA_DIR}/credentials/{clinic|org|admin}-{ID}.json`` (mode 0600).

Principals are named after the topics they speak for: ``{prefix}.clinic.{id}``,
``{prefix}.org.{id}``, ``{prefix}.admin.{id}`` (directory admins) and
``{prefix}.network`` (the workers), so several networks (prefixes) can share a
cluster. A party's consumer groups must start with its principal's name and a
dot (``sdoh.org.bronx-pantry.``): party ids never hold a dot, so no party's
prefix covers another's groups.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connectors.files import write_private_json
from connectors.kafka.admin import (
    CLUSTER,
    Acl,
    TopicResult,
    apply_topics,
    create_acls,
    delete_acls,
    delete_scram,
    delete_topic_acls,
    delete_topics,
    security_enabled,
    upsert_scram,
)
from connectors.kafka.auth import KafkaAuth
from schemas.topics import Topics, TopicSpec, check_party_id

PartyKind = Literal["clinic", "org", "admin"]
PARTY_KINDS: tuple[PartyKind, ...] = ("clinic", "org", "admin")
SCRAM_MECHANISM = "SCRAM-SHA-512"


class ProvisionError(RuntimeError):
    """A party cannot be provisioned as asked; the message says why."""


# ---------------------------------------------------------------------- names
def party_principal(topics: Topics, kind: PartyKind, party_id: str) -> str:
    """The SCRAM username of a party: ``{prefix}.{kind}.{id}``."""
    return f"{topics.prefix}.{kind}.{check_party_id(party_id)}"


def network_principal(topics: Topics) -> str:
    """The default SCRAM username of the network's workers: ``{prefix}.network``."""
    return f"{topics.prefix}.network"


def credentials_path(data_dir: Path, kind: PartyKind | Literal["network"], party_id: str) -> Path:
    name = "network.json" if kind == "network" else f"{kind}-{party_id}.json"
    return data_dir / "credentials" / name


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
    else:
        check_party_id(party_id)
        read, write = [topics.directory], [topics.directory]
    return {"read": read, "write": write}


def party_acls(topics: Topics, kind: PartyKind, party_id: str) -> list[Acl]:
    """Exactly what a party may do: read its inbox, write its outbox, use its own groups.

    A clinic writes its submissions and reads its updates; an organization reads
    its referrals and writes its updates; a directory admin writes (and reads)
    the directory. Consumer groups: those named ``{principal}.*``.
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
    return sorted(set(acls))


def network_party_acls(topics: Topics, kind: PartyKind, party_id: str, user: str) -> list[Acl]:
    """What the network's principal needs on one party's topics (none for an admin)."""
    if kind == "clinic":
        return _topic(user, topics.clinic_submissions(party_id), "READ", "DESCRIBE") + _topic(
            user, topics.clinic_updates(party_id), "WRITE", "DESCRIBE"
        )
    if kind == "org":
        return _topic(user, topics.org_updates(party_id), "READ", "DESCRIBE") + _topic(
            user, topics.org_referrals(party_id), "WRITE", "DESCRIBE"
        )
    return []


def network_acls(topics: Topics, app_id: str, user: str) -> list[Acl]:
    """Exactly what the workers need besides the parties' topics.

    * its internal topics (``{prefix}.network.*``) and Faust's (``{app_id}-*``:
      the tables' changelogs, the assignor's leader topic): read, write, and
      create (Faust declares them at start; ``refnet topics apply`` made them);
    * the directory: read; screenings, the event log and dead letters: write,
      and read (the network view and the ledger read them back);
    * its consumer groups: ``{app_id}`` (agents) and ``{app_id}-*`` (ingress,
      ledger);
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


# ---------------------------------------------------------------------- files
def _existing_password(path: Path, username: str) -> str | None:
    """The password in an earlier credentials file of the same principal (kept on re-runs)."""
    try:
        kafka = json.loads(path.read_text())["kafka"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if kafka.get("sasl.username") == username and isinstance(kafka.get("sasl.password"), str):
        return str(kafka["sasl.password"])
    return None


def client_config(bootstrap: str, username: str, password: str, ca: str | None) -> dict[str, str]:
    """The librdkafka keys of a credentials file, usable as they are by any client."""
    auth = KafkaAuth(
        security_protocol="SASL_SSL",
        sasl_mechanism=SCRAM_MECHANISM,
        username=username,
        password=password,
        ca_location=ca,
    )
    return {"bootstrap.servers": bootstrap, **auth.librdkafka()}


def api_token_path(data_dir: Path, kind: PartyKind, party_id: str) -> Path:
    """Where a party's gateway API token is written on a plain broker (no credentials file)."""
    return data_dir / "gateway" / "api-tokens" / f"{kind}-{party_id}.json"


def _api_token(data_dir: Path, kind: PartyKind, party_id: str, path: Path) -> str:
    """The party's gateway token: the one in ``path`` if still current, else a new one.

    Only its SHA-256 is kept by the gateway (connectors.gateway.tokens).
    """
    from connectors.gateway.tokens import holds_token, issue_token

    assert kind in ("clinic", "org")
    try:
        earlier = json.loads(path.read_text()).get("api_token")
    except (OSError, ValueError, AttributeError):
        earlier = None
    if isinstance(earlier, str) and holds_token(data_dir, kind, party_id, earlier):
        return earlier
    return issue_token(data_dir, kind, party_id)


# ---------------------------------------------------------------------- actions
@dataclass
class Provisioned:
    """What provisioning did."""

    topics: list[TopicResult]
    secured: bool
    principal: str | None = None
    credentials: Path | None = None
    acls: list[Acl] = field(default_factory=list)
    #: the party's gateway API token (clinics and organizations), and the file holding it
    api_token: str | None = None
    api_token_file: Path | None = None


@dataclass(frozen=True)
class Admin:
    """Where and as whom the admin calls go, and where credentials files are written."""

    bootstrap: str
    auth: KafkaAuth
    data_dir: Path
    #: the network's principal (needed on a secured broker to grant it the party's topics)
    network_user: str | None = None

    @property
    def ca(self) -> str | None:
        return self.auth.ca_location


def provision_party(admin: Admin, topics: Topics, kind: PartyKind, party_id: str) -> Provisioned:
    """Create a party's topics; on a secured broker also its identity, ACLs and file."""
    check_party_id(party_id)
    specs: list[TopicSpec] = []
    if kind == "clinic":
        specs = topics.clinic_catalog(party_id)
    elif kind == "org":
        specs = topics.org_catalog(party_id)
    secured = security_enabled(admin.bootstrap, auth=admin.auth)
    if secured and kind != "admin" and not admin.network_user:
        raise ProvisionError(
            "this broker enforces ACLs, and the network's principal must be granted the "
            "party's topics: set REFNET_KAFKA_SASL_USERNAME (or REFNET_KAFKA_CREDENTIALS) as "
            "for the workers, and REFNET_KAFKA_ADMIN_CREDENTIALS for these admin calls"
        )
    results = apply_topics(admin.bootstrap, specs, auth=admin.auth) if specs else []
    if not secured:
        if kind == "admin":
            raise ProvisionError(
                "this broker enforces no ACLs (plain mode): anyone may write the directory, "
                "so there is no directory-admin identity to create"
            )
        token_file = api_token_path(admin.data_dir, kind, party_id)
        token = _api_token(admin.data_dir, kind, party_id, token_file)
        write_private_json(token_file, {"party": kind, "id": party_id, "api_token": token})
        return Provisioned(results, secured=False, api_token=token, api_token_file=token_file)
    user = party_principal(topics, kind, party_id)
    path = credentials_path(admin.data_dir, kind, party_id)
    api_token = _api_token(admin.data_dir, kind, party_id, path) if kind != "admin" else None
    password = _existing_password(path, user) or secrets.token_urlsafe(24)
    upsert_scram(admin.bootstrap, user, password, auth=admin.auth)
    acls = party_acls(topics, kind, party_id)
    if admin.network_user:
        acls += network_party_acls(topics, kind, party_id, admin.network_user)
    create_acls(admin.bootstrap, acls, auth=admin.auth)
    access = party_topics(topics, kind, party_id)
    write_private_json(
        path,
        {
            "party": kind,
            "id": party_id,
            "principal": f"User:{user}",
            "reads": access["read"],
            "writes": access["write"],
            "consumer_group_prefix": f"{user}.",
            "kafka": client_config(admin.bootstrap, user, password, admin.ca),
            **({"api_token": api_token} if api_token else {}),
        },
    )
    return Provisioned(
        results,
        secured=True,
        principal=user,
        credentials=path,
        acls=acls,
        api_token=api_token,
        api_token_file=path if api_token else None,
    )


@dataclass
class Deprovisioned:
    credentials_removed: bool
    acls_deleted: int
    topics_deleted: list[str]
    file_removed: Path | None


def deprovision_party(
    admin: Admin, topics: Topics, kind: PartyKind, party_id: str, *, keep_topics: bool = False
) -> Deprovisioned:
    """Revoke a party's credentials and every ACL of it or on its topics; delete its topics.

    Deleting the topics is what tells the network the party is gone: an
    organization without a referrals topic is offered nothing more, and the
    workers drop (and count) what they still had to send it.
    """
    check_party_id(party_id)
    user = party_principal(topics, kind, party_id)
    secured = security_enabled(admin.bootstrap, auth=admin.auth)
    removed = False
    deleted = 0
    access = party_topics(topics, kind, party_id)
    own = sorted({*access["read"], *access["write"]})
    if secured:
        removed = delete_scram(admin.bootstrap, user, auth=admin.auth)
        deleted = delete_acls(admin.bootstrap, principal=f"User:{user}", auth=admin.auth)
        if kind != "admin":  # the network's rules on the party's topics go too
            deleted += delete_topic_acls(admin.bootstrap, own, auth=admin.auth)
    gone = []
    if not keep_topics and kind != "admin":
        gone = delete_topics(admin.bootstrap, own, auth=admin.auth)
    path = credentials_path(admin.data_dir, kind, party_id)
    existed = path.exists()
    path.unlink(missing_ok=True)
    if kind != "admin":
        from connectors.gateway.tokens import revoke_token

        revoke_token(admin.data_dir, kind, party_id)
        api_token_path(admin.data_dir, kind, party_id).unlink(missing_ok=True)
    return Deprovisioned(removed, deleted, gone, path if existed else None)


def provision_network(admin: Admin, topics: Topics, app_id: str, user: str) -> Path:
    """The network's own identity on a secured broker: SCRAM credentials, ACLs, a file."""
    path = credentials_path(admin.data_dir, "network", "")
    password = _existing_password(path, user) or secrets.token_urlsafe(24)
    upsert_scram(admin.bootstrap, user, password, auth=admin.auth)
    create_acls(admin.bootstrap, network_acls(topics, app_id, user), auth=admin.auth)
    write_private_json(
        path,
        {
            "party": "network",
            "principal": f"User:{user}",
            "app_id": app_id,
            "kafka": client_config(admin.bootstrap, user, password, admin.ca),
        },
    )
    return path


# ---------------------------------------------------------------------- access
@dataclass(frozen=True)
class Access:
    """Where a client connects and how; ``credentials``: the file it came from, if any."""

    bootstrap: str
    auth: KafkaAuth
    credentials: Path | None = None


def _file_bootstrap(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return KafkaAuth.from_file(path)[0]
    except ValueError as exc:
        raise ProvisionError(str(exc)) from None


def kafka_access(settings: Any, broker: Any, *, admin: bool) -> Access:
    """How the CLI reaches Kafka, for the workers (``admin`` False) or for admin calls.

    The bootstrap servers: ``REFNET_KAFKA_BOOTSTRAP``, else the credentials
    file's ``bootstrap.servers`` (``REFNET_KAFKA_ADMIN_CREDENTIALS`` for admin
    calls, then ``REFNET_KAFKA_CREDENTIALS``), else the embedded Kafka if it
    runs. Authentication: the settings; but when they say nothing (PLAINTEXT)
    and the embedded Kafka is secure, its own files: the operator's for admin
    calls, the network's (``refnet dev up --secure`` made it) for workers.
    """
    auth = settings.kafka_admin_auth() if admin else settings.kafka_auth()
    bootstrap = settings.kafka_bootstrap
    if not bootstrap and admin:
        bootstrap = _file_bootstrap(settings.kafka_admin_credentials)
    if not bootstrap:
        bootstrap = _file_bootstrap(settings.kafka_credentials)
    if bootstrap:
        return Access(bootstrap, auth)
    state = broker.state()
    if state is None:
        raise ProvisionError(
            "no Kafka broker: run 'refnet dev up' for the embedded one, "
            "or set REFNET_KAFKA_BOOTSTRAP=host:port"
        )
    if not state.secure or auth.security_protocol != "PLAINTEXT":
        return Access(state.bootstrap, auth)
    if admin:
        return Access(state.bootstrap, broker.auth(state), broker.operator_path)
    path = credentials_path(settings.data_dir, "network", "")
    try:
        return Access(state.bootstrap, KafkaAuth.from_file(path)[1], path)
    except ValueError:
        raise ProvisionError(
            f"the embedded Kafka is secure and the network's credentials ({path}) cannot be "
            "read: run 'refnet dev up --secure' again, or set REFNET_KAFKA_CREDENTIALS"
        ) from None


def admin_for(settings: Any, broker: Any) -> Admin:
    """The admin calls' access, and the network's principal to grant party topics to."""
    access = kafka_access(settings, broker, admin=True)
    worker = settings.kafka_auth()
    network_user = worker.username if worker.sasl else None
    if network_user is None:
        path = credentials_path(settings.data_dir, "network", "")
        if path.exists() and access.credentials == broker.operator_path:
            network_user = KafkaAuth.from_file(path)[1].username
    return Admin(access.bootstrap, access.auth, settings.data_dir, network_user)


def secure_lines(
    settings: Any, bootstrap: str, network_file: Path, operator_file: Path
) -> list[tuple[str, str]]:
    """The ``REFNET_*`` settings of the network's principal, as ``refnet dev up --secure``
    prints them (with the operator's file for the admin calls)."""
    auth = KafkaAuth.from_file(network_file)[1]
    return [
        ("REFNET_KAFKA_BOOTSTRAP", bootstrap),
        ("REFNET_KAFKA_SECURITY_PROTOCOL", auth.security_protocol),
        ("REFNET_KAFKA_SASL_USERNAME", auth.username or ""),
        ("REFNET_KAFKA_SASL_PASSWORD", auth.password or ""),
        ("REFNET_KAFKA_SSL_CA", auth.ca_location or ""),
        ("REFNET_KAFKA_ADMIN_CREDENTIALS", str(operator_file)),
    ]


# ---------------------------------------------------------------------- CLI
def _admin(settings: Any) -> Admin:
    from deploy.cli import broker_for

    return admin_for(settings, broker_for(settings))


def cmd_provision(settings: Any, args: argparse.Namespace) -> int:
    from deploy.cli import topics_for

    admin = _admin(settings)
    done = provision_party(admin, topics_for(settings), args.party, args.id)
    for result in done.topics:
        print(f"{result.outcome:<9} {result.name}")
    if done.api_token_file is not None:
        print(f"# gateway API token (api_token) in {done.api_token_file}", file=sys.stderr)
    if not done.secured:
        print("# this broker enforces no ACLs (plain mode): no credentials made", file=sys.stderr)
        return 0
    print(f"# principal User:{done.principal}: {len(done.acls)} ACLs", file=sys.stderr)
    print(done.credentials)
    return 0


def cmd_deprovision(settings: Any, args: argparse.Namespace) -> int:
    from deploy.cli import topics_for

    admin = _admin(settings)
    done = deprovision_party(
        admin, topics_for(settings), args.party, args.id, keep_topics=args.keep_topics
    )
    print(f"credentials {'revoked' if done.credentials_removed else 'none on the broker'}")
    print(f"acls        {done.acls_deleted} deleted")
    for name in done.topics_deleted:
        print(f"deleted     {name}")
    if done.file_removed is not None:
        print(f"removed     {done.file_removed}")
    return 0


def register(sub: Any) -> None:
    """Add ``provision`` and ``deprovision`` to the ``refnet`` parser."""
    ids = "clinic_id, org_id or directory admin id: [a-z0-9][a-z0-9-]{1,62}"
    provision = sub.add_parser(
        "provision",
        help="create a party's topics (and, on a secured broker, its credentials and ACLs)",
    )
    provision.add_argument("party", choices=PARTY_KINDS)
    provision.add_argument("id", help=ids)
    provision.set_defaults(func=cmd_provision)
    deprovision = sub.add_parser(
        "deprovision", help="revoke a party's credentials and ACLs and delete its topics"
    )
    deprovision.add_argument("party", choices=PARTY_KINDS)
    deprovision.add_argument("id", help=ids)
    deprovision.add_argument(
        "--keep-topics", action="store_true", help="revoke access only; keep the party's topics"
    )
    deprovision.set_defaults(func=cmd_deprovision)


__all__ = [
    "PARTY_KINDS",
    "Admin",
    "ProvisionError",
    "api_token_path",
    "credentials_path",
    "deprovision_party",
    "network_acls",
    "network_party_acls",
    "network_principal",
    "party_acls",
    "party_principal",
    "provision_network",
    "provision_party",
    "register",
]
