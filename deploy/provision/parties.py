"""Provisioning and deprovisioning a party, and the network's own identity.

On any broker, provisioning a clinic, an organization or a facility creates its
two topics.
On a secured broker (one with an authorizer: ``refnet dev up --secure``, or a
managed cluster) it also creates the party's SCRAM-SHA-512 credentials and
exactly the ACLs the contract gives it, grants the network's principal what it
needs on the party's topics, and writes the party's client configuration to
``{REFNET_DATA_DIR}/credentials/{clinic|org|facility|admin}-{ID}.json`` (mode 0600).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from connectors.files import write_private_json
from connectors.kafka.admin import (
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
from deploy.provision.files import (
    api_token_path,
    client_config,
    credentials_path,
    current_api_token,
    existing_password,
)
from deploy.provision.overlap import check_no_overlap
from deploy.provision.principals import (
    PartyKind,
    ProvisionError,
    network_acls,
    network_party_acls,
    party_acls,
    party_principal,
    party_topics,
)
from schemas.topics import Topics, TopicSpec, check_party_id


@dataclass
class Provisioned:
    """What provisioning did."""

    topics: list[TopicResult]
    secured: bool
    principal: str | None = None
    credentials: Path | None = None
    acls: list[Acl] = field(default_factory=list)
    #: the party's gateway API token (clinics, organizations, facilities), and the file holding it
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
    elif kind == "facility":
        specs = topics.facility_catalog(party_id)
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
        token = current_api_token(admin.data_dir, kind, party_id, token_file)
        write_private_json(token_file, {"party": kind, "id": party_id, "api_token": token})
        return Provisioned(results, secured=False, api_token=token, api_token_file=token_file)
    user = party_principal(topics, kind, party_id)
    path = credentials_path(admin.data_dir, kind, party_id)
    api_token = current_api_token(admin.data_dir, kind, party_id, path) if kind != "admin" else None
    password = existing_password(path, user) or secrets.token_urlsafe(24)
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
    check_no_overlap(admin.bootstrap, admin.auth, topics, app_id)  # before anything is made
    path = credentials_path(admin.data_dir, "network", "")
    password = existing_password(path, user) or secrets.token_urlsafe(24)
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
