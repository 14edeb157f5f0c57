"""Two networks on one cluster: a prefix or app id that extends another network's (so that
one's prefixed ACLs would reach the other's topics or groups) is refused before anything is
made; a distinct one is provisioned."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.kafka.admin import Acl, delete_acls, delete_scram, describe_acls
from deploy.provision import provision_network
from deploy.provision.overlap import NetworkNames, networks_on, overlap
from deploy.provision.principals import ProvisionError, network_acls, network_principal
from schemas.topics import Topics
from tests.conftest import SecureKafka


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (("refnet", "refnet"), ("refnet-east", "refnet-east")),
        (("sdoh", "refnet"), ("sdoh.network.b", "b")),
        (("sdoh", "refnet"), ("sdoh.org.ab", "ab")),
        (("sdoh", "refnet"), ("east", "refnet-east")),
        (("sdoh", "sdoh"), ("sdoh-x", "x")),
        (("sdoh", "refnet"), ("refnet-", "east")),
    ],
)
def test_overlapping_choices_overlap(ours: tuple[str, str], theirs: tuple[str, str]) -> None:
    assert overlap(NetworkNames(*ours), NetworkNames(*theirs))
    assert overlap(NetworkNames(*theirs), NetworkNames(*ours))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (("refnet", "refnet"), ("refnetx", "refnetx")),
        (("sdoh", "refnet"), ("sdoh2", "refnet2")),
        (("a.b", "app-a"), ("a.c", "app-c")),
    ],
)
def test_distinct_choices_do_not(ours: tuple[str, str], theirs: tuple[str, str]) -> None:
    assert not overlap(NetworkNames(*ours), NetworkNames(*theirs))


def test_networks_are_read_from_their_rules() -> None:
    acls = network_acls(Topics(prefix="sdoh"), "refnet", "sdoh.network")
    acls += [Acl("User:sdoh.org.ab", "group", "sdoh.org.ab.", "READ", "prefixed")]
    assert networks_on(acls) == [NetworkNames("sdoh", "refnet")]


@pytest.fixture
def made(secure_kafka: SecureKafka) -> Iterator[list[str]]:
    """Principals a test made on the shared secured broker, removed afterwards."""
    users: list[str] = []
    yield users
    for user in users:
        delete_acls(secure_kafka.bootstrap, principal=f"User:{user}", auth=secure_kafka.operator)
        delete_scram(secure_kafka.bootstrap, user, auth=secure_kafka.operator)


def _network(
    secure_kafka: SecureKafka, tmp_path: Path, prefix: str, app_id: str, made: list[str]
) -> Path:
    topics = Topics(prefix=prefix, partitions=1)
    user = network_principal(topics)
    made.append(user)
    admin = secure_kafka.admin(tmp_path / prefix, network_user=user)
    return provision_network(admin, topics, app_id, user)


@pytest.mark.integration
def test_on_a_secured_broker_an_overlapping_network_is_refused(
    secure_kafka: SecureKafka, tmp_path: Path, made: list[str]
) -> None:
    base = f"o{uuid.uuid4().hex[:8]}"
    assert _network(secure_kafka, tmp_path, base, f"{base}-app", made).exists()
    refused = [
        (f"{base}.org.ab", f"{base}x-app"),  # the first network's party `ab` names it
        (f"{base}.network.b", f"{base}y-app"),  # inside the first's internal topics
        (f"{base}z", f"{base}-app-east"),  # an app id that extends the first's
        (f"{base}-app-x", f"{base}w"),  # a prefix inside the first's app id topics
    ]
    for prefix, app_id in refused:
        with pytest.raises(ProvisionError, match="overlaps another"):
            _network(secure_kafka, tmp_path, prefix, app_id, made)
        user = network_principal(Topics(prefix=prefix))
        assert (
            describe_acls(secure_kafka.bootstrap, f"User:{user}", auth=secure_kafka.operator) == []
        )
    # the same network again, and a distinct one beside it, are provisioned
    assert _network(secure_kafka, tmp_path, base, f"{base}-app", made).exists()
    assert _network(secure_kafka, tmp_path, f"{base}v", f"{base}v-app", made).exists()
