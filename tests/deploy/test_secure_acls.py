"""On a secured broker each party reaches its own topics and nothing else.

The broker runs in secure mode (SASL_SSL, SCRAM-SHA-512, the StandardAuthorizer,
``allow.everyone.if.no.acl.found=false``); parties are provisioned as
``refnet provision`` does and connect with their credentials file as it is.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from connectors.kafka.admin import apply_topics, describe_acls, list_topics
from connectors.kafka.auth import PLAINTEXT
from deploy.provision import (
    Admin,
    ProvisionError,
    credentials_path,
    deprovision_party,
    network_principal,
    party_principal,
    provision_party,
)
from schemas.topics import Topics
from tests.conftest import SecureKafka
from tests.network import builders as b
from tests.secure_clients import consume, fresh_group, kafka_config, produce

pytestmark = pytest.mark.integration


@pytest.fixture
def secure_topics(secure_kafka: SecureKafka) -> Topics:
    topics = Topics(prefix=f"s{uuid.uuid4().hex[:8]}", partitions=3)
    apply_topics(secure_kafka.bootstrap, topics.network_catalog(), auth=secure_kafka.operator)
    return topics


def _provision(secure_kafka: SecureKafka, topics: Topics, data_dir: Path) -> dict[str, Path]:
    admin = secure_kafka.admin(data_dir, network_user=network_principal(topics))
    files = {}
    for kind, party in (
        ("org", "org-a"),
        ("org", "org-b"),
        ("clinic", "clinic-1"),
        ("clinic", "clinic-2"),
        ("admin", "importer"),
    ):
        done = provision_party(admin, topics, kind, party)  # type: ignore[arg-type]
        assert done.secured and done.credentials is not None
        files[party] = done.credentials
    return files


def test_each_party_reaches_its_own_topics_and_is_denied_every_other(
    secure_kafka: SecureKafka, secure_topics: Topics, tmp_path: Path
) -> None:
    t = secure_topics
    files = _provision(secure_kafka, t, tmp_path)
    org_a, org_b = kafka_config(files["org-a"]), kafka_config(files["org-b"])
    clinic_1 = kafka_config(files["clinic-1"])
    importer = kafka_config(files["importer"])
    a_group = fresh_group(f"{party_principal(t, 'org', 'org-a')}.")
    c_group = fresh_group(f"{party_principal(t, 'clinic', 'clinic-1')}.")
    i_group = fresh_group(f"{party_principal(t, 'admin', 'importer')}.")
    status = b.status("ref-1", "accepted")

    # what each may do works
    assert produce(org_a, t.org_updates("org-a"), [("ref-1", status)]).delivered == 1
    assert produce(
        clinic_1, t.clinic_submissions("clinic-1"), [("pt-1", b.requested("ref-1"))]
    ).delivered
    assert produce(importer, t.directory, [("svc-a", b.service("svc-a", "org-a"))]).delivered == 1
    operator = {
        "bootstrap.servers": secure_kafka.bootstrap,
        **secure_kafka.operator.librdkafka(),
    }
    assert produce(operator, t.org_referrals("org-a"), [("ref-1", b"{}")]).delivered == 1
    own = consume(org_a, t.org_referrals("org-a"), group=a_group, count=1)
    assert (own.errors, len(own.values)) == ([], 1)
    assert consume(clinic_1, t.clinic_updates("clinic-1"), group=c_group, timeout=3).errors == []

    # and nothing else
    attempts = {
        "org A reads org B's referrals": consume(
            org_a, t.org_referrals("org-b"), group=a_group, timeout=10
        ),
        "org A writes org B's updates": produce(org_a, t.org_updates("org-b"), [("r", status)]),
        "org A writes its own referrals topic (the network's)": produce(
            org_a, t.org_referrals("org-a"), [("r", b"{}")]
        ),
        "org A reads its referrals in a group not its own": consume(
            org_a, t.org_referrals("org-a"), group=fresh_group("intake-"), timeout=10
        ),
        "org A writes the directory": produce(org_a, t.directory, [("s", b"{}")]),
        "org A reads a clinic's updates": consume(
            org_a, t.clinic_updates("clinic-1"), group=a_group, timeout=10
        ),
        "clinic 1 reads clinic 2's updates": consume(
            clinic_1, t.clinic_updates("clinic-2"), group=c_group, timeout=10
        ),
        "clinic 1 writes clinic 2's submissions": produce(
            clinic_1, t.clinic_submissions("clinic-2"), [("p", b"{}")]
        ),
        "clinic 1 reads its own submissions": consume(
            clinic_1, t.clinic_submissions("clinic-1"), group=c_group, timeout=10
        ),
        "clinic 1 writes the event log": produce(clinic_1, t.referral_events, [("r", b"{}")]),
        "org B reads the event log": consume(
            org_b,
            t.referral_events,
            group=fresh_group(f"{party_principal(t, 'org', 'org-b')}."),
            timeout=10,
        ),
        "the directory admin reads org A's referrals": consume(
            importer, t.org_referrals("org-a"), group=i_group, timeout=10
        ),
    }
    allowed = {what: o for what, o in attempts.items() if not o.denied or o.delivered or o.values}
    print(f"\nattempts denied: {len(attempts) - len(allowed)} of {len(attempts)}")  # noqa: T201
    assert not allowed, {
        what: (o.errors, o.delivered, len(o.values)) for what, o in allowed.items()
    }


def test_a_client_without_valid_credentials_reads_and_writes_nothing(
    secure_kafka: SecureKafka, secure_topics: Topics, tmp_path: Path
) -> None:
    t = secure_topics
    files = _provision(secure_kafka, t, tmp_path)
    org_a = kafka_config(files["org-a"])
    operator = {"bootstrap.servers": secure_kafka.bootstrap, **secure_kafka.operator.librdkafka()}
    assert produce(operator, t.org_referrals("org-a"), [("ref-1", b"{}")]).delivered == 1
    group = f"{party_principal(t, 'org', 'org-a')}.x"
    strangers = {
        "no TLS, no SASL": {"bootstrap.servers": secure_kafka.bootstrap},
        "TLS, no SASL": {
            "bootstrap.servers": secure_kafka.bootstrap,
            "security.protocol": "ssl",
            "ssl.ca.location": str(secure_kafka.ca),
        },
        "a wrong password": {**org_a, "sasl.password": "guessed"},
        "an unknown user": {**org_a, "sasl.username": "mallory"},
    }
    denied = 0
    for what, config in strangers.items():
        wrote = produce(config, t.org_updates("org-a"), [("r", b"{}")], timeout=3)
        read = consume(config, t.org_referrals("org-a"), group=group, timeout=3)
        assert (wrote.delivered, read.values) == (0, []), what
        denied += 2
    print(f"\nunauthenticated attempts denied: {denied} of {denied}")  # noqa: T201


def test_a_credentials_file_is_private_complete_and_kept_across_runs(
    secure_kafka: SecureKafka, secure_topics: Topics, tmp_path: Path
) -> None:
    admin = secure_kafka.admin(tmp_path, network_user=network_principal(secure_topics))
    first = provision_party(admin, secure_topics, "org", "bronx-pantry")
    path = credentials_path(tmp_path, "org", "bronx-pantry")
    assert first.credentials == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["kafka"]["security.protocol"] == "sasl_ssl"
    assert document["kafka"]["ssl.ca.location"] == str(secure_kafka.ca)
    assert document["reads"] == [secure_topics.org_referrals("bronx-pantry")]
    assert document["writes"] == [secure_topics.org_updates("bronx-pantry")]
    again = provision_party(admin, secure_topics, "org", "bronx-pantry")
    assert json.loads(path.read_text())["kafka"] == document["kafka"]  # same password
    assert [r.outcome for r in again.topics] == ["unchanged", "unchanged"]
    principal = f"User:{party_principal(secure_topics, 'org', 'bronx-pantry')}"
    rules = describe_acls(secure_kafka.bootstrap, principal, auth=secure_kafka.operator)
    assert {(a.resource, a.name, a.operation) for a in rules} == {
        ("topic", secure_topics.org_referrals("bronx-pantry"), "READ"),
        ("topic", secure_topics.org_referrals("bronx-pantry"), "DESCRIBE"),
        ("topic", secure_topics.org_updates("bronx-pantry"), "WRITE"),
        ("topic", secure_topics.org_updates("bronx-pantry"), "DESCRIBE"),
        ("group", f"{principal[5:]}.", "READ"),
        ("group", f"{principal[5:]}.", "DESCRIBE"),
        ("transactional_id", f"{principal[5:]}.", "WRITE"),
        ("transactional_id", f"{principal[5:]}.", "DESCRIBE"),
    }


def test_deprovision_revokes_the_credentials_the_acls_and_the_topics(
    secure_kafka: SecureKafka, secure_topics: Topics, tmp_path: Path
) -> None:
    t = secure_topics
    admin = secure_kafka.admin(tmp_path, network_user=network_principal(t))
    done = provision_party(admin, t, "org", "org-gone")
    assert done.credentials is not None
    config = kafka_config(done.credentials)
    assert produce(config, t.org_updates("org-gone"), [("r", b"{}")]).delivered == 1
    gone = deprovision_party(admin, t, "org", "org-gone")
    assert gone.credentials_removed
    assert gone.acls_deleted >= 10  # its own and the network's on its topics
    assert sorted(gone.topics_deleted) == sorted(
        [t.org_referrals("org-gone"), t.org_updates("org-gone")]
    )
    assert not done.credentials.exists()
    names = list_topics(secure_kafka.bootstrap, auth=secure_kafka.operator)
    assert t.org_updates("org-gone") not in names
    assert (
        describe_acls(secure_kafka.bootstrap, f"User:{done.principal}", auth=secure_kafka.operator)
        == []
    )
    after = produce(config, t.org_updates("org-gone"), [("r", b"{}")], timeout=3)
    assert after.delivered == 0 and "_AUTHENTICATION" in after.errors


def test_a_plain_broker_gets_topics_only(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = Topics(prefix=f"p{uuid.uuid4().hex[:8]}", partitions=3)
    admin = Admin(kafka_bootstrap, PLAINTEXT, tmp_path)
    done = provision_party(admin, topics, "clinic", "mott-haven")
    assert not done.secured and done.credentials is None
    assert [r.name for r in done.topics] == [
        topics.clinic_submissions("mott-haven"),
        topics.clinic_updates("mott-haven"),
    ]
    assert not (tmp_path / "credentials").exists()
    with pytest.raises(ProvisionError, match="enforces no ACLs"):
        provision_party(admin, topics, "admin", "importer")


def test_exact_rules_can_be_deleted_one_by_one(secure_kafka: SecureKafka) -> None:
    """delete_acls(acls=...) takes the rules it created (DeleteAcls wants filters)."""
    from connectors.kafka.admin import Acl, create_acls, delete_acls, describe_acls

    principal = f"User:acl-probe-{uuid.uuid4().hex[:6]}"
    rule = Acl(principal, "topic", f"probe-{uuid.uuid4().hex[:6]}", "READ")
    create_acls(secure_kafka.bootstrap, [rule], auth=secure_kafka.operator)
    assert rule in describe_acls(secure_kafka.bootstrap, principal, auth=secure_kafka.operator)
    assert delete_acls(secure_kafka.bootstrap, [rule], auth=secure_kafka.operator) == 1
    assert describe_acls(secure_kafka.bootstrap, principal, auth=secure_kafka.operator) == []
