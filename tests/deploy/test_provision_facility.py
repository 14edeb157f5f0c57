"""A facility (a hospital, an ED) is provisioned like the other parties: its two topics,
exactly its ACLs, the network's rules on its topics, and a gateway token."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from connectors.gateway.tokens import PartyRef, TokenStore, issue_token
from connectors.kafka.admin import Acl, apply_topics, list_topics
from connectors.kafka.auth import PLAINTEXT
from deploy.cli import build_parser, main
from deploy.provision import (
    Admin,
    deprovision_party,
    network_principal,
    party_principal,
    provision_party,
)
from deploy.provision.files import provisioned_parties
from deploy.provision.principals import (
    PARTY_KINDS,
    network_party_acls,
    party_acls,
    party_topics,
)
from schemas.topics import Topics
from tests.conftest import SecureKafka
from tests.secure_clients import consume, fresh_group, kafka_config, produce

T = Topics(prefix="sdoh")


def test_a_facility_writes_its_submissions_and_reads_its_updates_only() -> None:
    assert "facility" in PARTY_KINDS
    assert party_topics(T, "facility", "st-agnes") == {
        "read": ["sdoh.facility.st-agnes.updates.v1"],
        "write": ["sdoh.facility.st-agnes.submissions.v1"],
    }
    user = "User:sdoh.facility.st-agnes"
    assert party_principal(T, "facility", "st-agnes") == "sdoh.facility.st-agnes"
    assert set(party_acls(T, "facility", "st-agnes")) == {
        Acl(user, "topic", "sdoh.facility.st-agnes.updates.v1", "READ"),
        Acl(user, "topic", "sdoh.facility.st-agnes.updates.v1", "DESCRIBE"),
        Acl(user, "topic", "sdoh.facility.st-agnes.submissions.v1", "WRITE"),
        Acl(user, "topic", "sdoh.facility.st-agnes.submissions.v1", "DESCRIBE"),
        Acl(user, "group", "sdoh.facility.st-agnes.", "READ", "prefixed"),
        Acl(user, "group", "sdoh.facility.st-agnes.", "DESCRIBE", "prefixed"),
        Acl(user, "transactional_id", "sdoh.facility.st-agnes.", "WRITE", "prefixed"),
        Acl(user, "transactional_id", "sdoh.facility.st-agnes.", "DESCRIBE", "prefixed"),
    }


def test_the_network_reads_a_facilitys_submissions_and_writes_its_updates() -> None:
    rules = {(a.name, a.operation) for a in network_party_acls(T, "facility", "st-agnes", "net")}
    assert rules == {
        ("sdoh.facility.st-agnes.submissions.v1", "READ"),
        ("sdoh.facility.st-agnes.submissions.v1", "DESCRIBE"),
        ("sdoh.facility.st-agnes.updates.v1", "READ"),
        ("sdoh.facility.st-agnes.updates.v1", "WRITE"),
        ("sdoh.facility.st-agnes.updates.v1", "DESCRIBE"),
    }


def test_the_cli_takes_facility() -> None:
    args = build_parser().parse_args(["provision", "facility", "st-agnes"])
    assert (args.party, args.id) == ("facility", "st-agnes")
    args = build_parser().parse_args(["deprovision", "facility", "st-agnes"])
    assert args.party == "facility"


@pytest.mark.integration
def test_on_a_plain_broker_a_facility_gets_its_topics_and_a_gateway_token(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = Topics(prefix=f"f{uuid.uuid4().hex[:8]}", partitions=1)
    admin = Admin(kafka_bootstrap, PLAINTEXT, tmp_path)
    done = provision_party(admin, topics, "facility", "st-agnes")
    names = {spec.name for spec in topics.facility_catalog("st-agnes")}
    assert names <= set(list_topics(kafka_bootstrap))
    assert done.api_token and done.api_token_file is not None
    assert json.loads(done.api_token_file.read_text())["party"] == "facility"
    store = TokenStore(tmp_path)
    assert store.lookup(done.api_token) == PartyRef("facility", "st-agnes")
    assert PartyRef("facility", "st-agnes") in store.parties()
    again = provision_party(admin, topics, "facility", "st-agnes")
    assert again.api_token == done.api_token  # provisioning again keeps the token
    gone = deprovision_party(admin, topics, "facility", "st-agnes")
    assert set(gone.topics_deleted) == names
    assert store.lookup(done.api_token) is None


@pytest.mark.integration
def test_on_a_secured_broker_a_facility_writes_its_own_topic_and_reads_no_clinics(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    t = Topics(prefix=f"s{uuid.uuid4().hex[:8]}", partitions=1)
    apply_topics(secure_kafka.bootstrap, t.network_catalog(), auth=secure_kafka.operator)
    admin = secure_kafka.admin(tmp_path, network_user=network_principal(t))
    facility = provision_party(admin, t, "facility", "st-agnes")
    other = provision_party(admin, t, "facility", "mercy")
    clinic = provision_party(admin, t, "clinic", "clinic-1")
    assert facility.secured and facility.credentials is not None and facility.api_token
    assert other.credentials is not None and clinic.credentials is not None
    document = json.loads(facility.credentials.read_text())
    assert document["writes"] == [t.facility_submissions("st-agnes")]
    assert document["reads"] == [t.facility_updates("st-agnes")]
    config = kafka_config(facility.credentials)
    group = fresh_group(f"{party_principal(t, 'facility', 'st-agnes')}.")
    own = produce(config, t.facility_submissions("st-agnes"), [("mrn-1", b'{"x": 1}')])
    assert own.delivered == 1, own.errors
    assert consume(config, t.facility_updates("st-agnes"), group=group, timeout=5).errors == []
    # nobody else's: another facility's submissions, a clinic's updates or submissions
    assert produce(config, t.facility_submissions("mercy"), [("mrn-1", b"{}")]).denied
    assert consume(config, t.clinic_updates("clinic-1"), group=group, timeout=15).denied
    assert produce(config, t.clinic_submissions("clinic-1"), [("pt-1", b"{}")]).denied
    # and the clinic cannot read the facility's submissions
    clinic_group = fresh_group(f"{party_principal(t, 'clinic', 'clinic-1')}.")
    assert consume(
        kafka_config(clinic.credentials),
        t.facility_submissions("st-agnes"),
        group=clinic_group,
        timeout=15,
    ).denied


def test_provision_list_names_every_provisioned_party_facilities_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    issue_token(tmp_path, "facility", "st-agnes")
    issue_token(tmp_path, "clinic", "mott-haven")
    credentials = tmp_path / "credentials" / "admin-importer.json"
    credentials.parent.mkdir()
    credentials.write_text("{}")
    (tmp_path / "credentials" / "network.json").write_text("{}")
    assert provisioned_parties(tmp_path) == [
        ("admin", "importer", credentials),
        ("clinic", "mott-haven", None),
        ("facility", "st-agnes", None),
    ]
    monkeypatch.setenv("REFNET_DATA_DIR", str(tmp_path))
    assert main(["provision", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["admin", "importer"],
        ["clinic", "mott-haven"],
        ["facility", "st-agnes"],
    ]
    assert main(["provision", "facility"]) == 2  # a kind without an id
