"""`refnet gateway` against the real broker: per-party limits on webhooks and Subscriptions,
and no shape of input to any POST, PUT or PATCH route answers 5xx (hypothesis)."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.fhir.subscriptions import TASK_TOPIC
from connectors.kafka.admin import apply_topics
from connectors.kafka.auth import PLAINTEXT
from deploy.provision import Admin, provision_party
from schemas.topics import Topics

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fhir"
CLINIC, ORG, OTHER_ORG, FUZZ_ORG = "doors-clinic", "doors-org", "doors-org-2", "doors-fuzz"
MAX_HOOKS, MAX_SUBS = 2, 2


@dataclass
class Running:
    url: str
    tokens: dict[str, str]
    log: Path

    def bearer(self, party: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[party]}"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def running(
    kafka_bootstrap: str,
    gateway_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("gateway-doors")
    topics = Topics(prefix=f"d{uuid.uuid4().hex[:8]}", partitions=1)
    apply_topics(kafka_bootstrap, topics.network_catalog())
    admin = Admin(kafka_bootstrap, PLAINTEXT, data_dir)
    tokens = {}
    for kind, party in (("clinic", CLINIC), ("org", ORG), ("org", OTHER_ORG), ("org", FUZZ_ORG)):
        done = provision_party(admin, topics, kind, party)  # type: ignore[arg-type]
        assert done.api_token is not None
        tokens[party] = done.api_token
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env.update(
        REFNET_KAFKA_BOOTSTRAP=kafka_bootstrap,
        REFNET_TOPIC_PREFIX=topics.prefix,
        REFNET_DATA_DIR=str(data_dir),
        REFNET_GATEWAY_PORT=str(port),
        REFNET_DATABASE_URL=gateway_database_url,
        REFNET_GATEWAY_MAX_WEBHOOKS=str(MAX_HOOKS),
        REFNET_GATEWAY_MAX_SUBSCRIPTIONS=str(MAX_SUBS),
        REFNET_GATEWAY_MAX_SUBSCRIPTION_BYTES="2048",
        REFNET_LOG_LEVEL="info",
    )
    log = data_dir / "gateway.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "gateway"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                ready = httpx.get(
                    f"{url}/fhir/Task", headers={"Authorization": f"Bearer {tokens[ORG]}"}
                )
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Running(url, tokens, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _subscription(endpoint: str = "https://example.org/fhir") -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "referrals",
        "criteria": TASK_TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer abc"],
        },
    }


def _outcome(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_webhooks_and_subscriptions_are_limited_per_party(running: Running) -> None:
    org, other = running.bearer(ORG), running.bearer(OTHER_ORG)
    with httpx.Client(base_url=running.url, timeout=20) as client:
        for n in range(MAX_HOOKS):
            hook = {"url": f"https://example.org/hook/{n}"}
            assert client.post("/webhooks", json=hook, headers=org).status_code == 201
        _outcome(client.post("/webhooks", json={"url": "https://example.org/x"}, headers=org), 409)
        # another party's room is its own
        assert (
            client.post("/webhooks", json={"url": "https://e.org/"}, headers=other).status_code
            == 201
        )
        for _ in range(MAX_SUBS):
            made = client.post("/fhir/Subscription", json=_subscription(), headers=org)
            assert made.status_code == 201, made.text
        _outcome(client.post("/fhir/Subscription", json=_subscription(), headers=org), 409)
        big = _subscription()
        big["reason"] = "x" * 3000
        _outcome(client.post("/fhir/Subscription", json=big, headers=other), 413)
        # deleting one makes room again
        hook_id = client.get("/webhooks", headers=org).json()[0]["id"]
        assert client.delete(f"/webhooks/{hook_id}", headers=org).status_code == 204
        again = client.post("/webhooks", json={"url": "https://example.org/y"}, headers=org)
        assert again.status_code == 201


def test_registration_refuses_what_the_client_could_not_send(running: Running) -> None:
    org = running.bearer(OTHER_ORG)
    with httpx.Client(base_url=running.url, timeout=20) as client:
        for url in ("https://h:abc/", "https://xn--/", "https://h:99999/"):
            _outcome(client.post("/webhooks", json={"url": url}, headers=org), 422)
        for header in ("X-A: caf\u00e9", "Host: metadata", "Transfer-Encoding: chunked"):
            sub = _subscription()
            sub["channel"]["header"] = [header]
            _outcome(client.post("/fhir/Subscription", json=sub, headers=org), 422)


# ---------------------------------------------------------------- every shape of input
def _fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


PATIENT = {"resourceType": "Patient", "id": "p", "name": [{"given": ["Ana"]}]}


def _bodies() -> list[tuple[str, str, str, Any]]:
    """(party, method, path, a valid body) of every POST, PUT and PATCH route."""
    qr = _fixture("SDOHCC-QuestionnaireResponseHungerVitalSignExample.json")
    qr.update(contained=[PATIENT], subject={"reference": "#p"})
    sr = _fixture("SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample.json")
    sr.update(contained=[PATIENT], subject={"reference": "#p"})
    task = _fixture("SDOHCC-TaskReferralManagementOrderFulfillmentAcceptedExample.json")
    task["id"] = "t-1"
    capacity = {
        "resourceType": "HealthcareService",
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
                "SDOHCC-ExtensionHealthcareServiceCapacityStatus",
                "extension": [{"url": "available", "valueUnsignedInt": 4}],
            }
        ],
    }
    sub = _subscription()
    sub["channel"]["_payload"] = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
                "backport-payload-content",
                "valueCode": "id-only",
            }
        ]
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": copy.deepcopy(qr), "request": {"method": "POST", "url": "x"}}],
    }
    patch = [{"op": "replace", "path": "/status", "value": "accepted"}]
    return [
        (CLINIC, "POST", "/fhir/QuestionnaireResponse", qr),
        (CLINIC, "POST", "/fhir/ServiceRequest", sr),
        (CLINIC, "POST", "/fhir", bundle),
        (FUZZ_ORG, "PUT", "/fhir/HealthcareService/svc-1", capacity),
        (FUZZ_ORG, "PUT", "/fhir/Task/t-1", task),
        (FUZZ_ORG, "PATCH", "/fhir/Task/t-1", patch),
        (FUZZ_ORG, "POST", "/fhir/Subscription", sub),
        (FUZZ_ORG, "POST", "/webhooks", {"url": "https://example.org/hook"}),
    ]


BODIES = _bodies()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", "#p", "Patient/p", "2027-11-20", "urn:x", "\u0000", "-1"]),
)
#: values that most often break code expecting another shape
TRICKY = st.sampled_from([5, -1, 1.5, True, "x", {"a": 1}, [1], [None], [[]], None, {}, []])
VALUES = TRICKY | st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path under ``node`` (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        found.append((*here, key))
        found.extend(_paths(child, (*here, key)))
    return found


def _kind(value: Any) -> str:
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "scalar"


def _mutate(data: st.DataObject, body: Any) -> Any:
    """``body`` with one node replaced by a value of another shape, or removed."""
    body = copy.deepcopy(body)
    path = data.draw(st.sampled_from(_paths(body)))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    old = parent[path[-1]]
    if isinstance(parent, dict) and data.draw(st.integers(0, 4)) == 0:
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(VALUES.filter(lambda new: _kind(new) != _kind(old)))
    return body


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_no_shape_of_input_answers_a_server_error(running: Running, data: st.DataObject) -> None:
    party, method, path, valid = data.draw(st.sampled_from(BODIES))
    body = _mutate(data, valid)
    with httpx.Client(base_url=running.url, timeout=30) as client:
        answer = client.request(method, path, json=body, headers=running.bearer(party))
    assert answer.status_code < 500, (method, path, body, answer.text)
    if answer.status_code >= 400:
        assert answer.json()["resourceType"] == "OperationOutcome", answer.text


@pytest.mark.parametrize(
    ("party", "method", "path", "where", "value"),
    [
        (FUZZ_ORG, "PUT", "/fhir/HealthcareService/svc-1", ("extension",), 5),
        (FUZZ_ORG, "PUT", "/fhir/HealthcareService/svc-1", ("extension", 0, "extension"), 5),
        (FUZZ_ORG, "POST", "/fhir/Subscription", ("channel", "_payload", "extension"), 5),
        (FUZZ_ORG, "POST", "/fhir/Subscription", ("channel", "header"), 5),
        (CLINIC, "POST", "/fhir/QuestionnaireResponse", ("extension",), 5),
        (CLINIC, "POST", "/fhir/ServiceRequest", ("extension",), 5),
        (CLINIC, "POST", "/fhir", ("entry", 0, "resource", "extension"), 5),
    ],
)
def test_a_number_where_an_array_belongs_is_a_4xx(
    running: Running, party: str, method: str, path: str, where: tuple[Any, ...], value: Any
) -> None:
    (body,) = [b for p, m, u, b in BODIES if (p, m, u) == (party, method, path)]
    body = copy.deepcopy(body)
    node = body
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    with httpx.Client(base_url=running.url, timeout=30) as client:
        answer = client.request(method, path, json=body, headers=running.bearer(party))
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
