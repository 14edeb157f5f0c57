"""`refnet gateway` against the real broker: bad input answers 4xx OperationOutcomes, and
schemathesis, driven by the published OpenAPI description, finds no 5xx (bounded)."""

from __future__ import annotations

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
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from connectors.gateway.app import GatewayConfig, create_app
from connectors.kafka.admin import apply_topics
from connectors.kafka.auth import PLAINTEXT
from deploy.provision import Admin, provision_party
from schemas.topics import Topics
from tests.connectors.gateway.conftest import gateway_database_url  # noqa: F401

pytestmark = pytest.mark.integration

CLINIC, ORG = "api-clinic", "api-org"


@dataclass
class Running:
    url: str
    tokens: dict[str, str]
    log: Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def running(
    kafka_bootstrap: str,
    gateway_database_url: str,  # noqa: F811 - the fixture
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Running]:
    data_dir = tmp_path_factory.mktemp("gateway-api")
    topics = Topics(prefix=f"g{uuid.uuid4().hex[:8]}", partitions=1)
    apply_topics(kafka_bootstrap, topics.network_catalog())
    admin = Admin(kafka_bootstrap, PLAINTEXT, data_dir)
    tokens = {}
    for kind, party in (("clinic", CLINIC), ("org", ORG)):
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
        deadline = time.monotonic() + 30
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


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _is_outcome(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome", response.text
    assert response.headers["content-type"].startswith("application/fhir+json")


PATIENT = {"resourceType": "Patient", "id": "p", "name": [{"given": ["Ana"]}]}


def test_bad_input_answers_4xx_with_an_operation_outcome(running: Running) -> None:
    clinic, org = _bearer(running.tokens[CLINIC]), _bearer(running.tokens[ORG])
    with httpx.Client(base_url=running.url, timeout=20) as client:
        _is_outcome(client.get("/fhir/Task"), 401)
        _is_outcome(client.get("/fhir/Task", headers=_bearer("rnt_wrong")), 401)
        _is_outcome(client.get("/fhir/Task", headers={"Authorization": "Basic eDp5"}), 401)
        post = "/fhir/QuestionnaireResponse"
        _is_outcome(client.post(post, content=b"{not json", headers=clinic), 400)
        _is_outcome(client.post(post, json=[1, 2], headers=clinic), 400)
        _is_outcome(client.post(post, json={"resourceType": "Patient"}, headers=clinic), 400)
        _is_outcome(
            client.post(post, json={"resourceType": "QuestionnaireResponse"}, headers=org), 403
        )
        no_patient = {"resourceType": "QuestionnaireResponse", "status": "completed"}
        _is_outcome(client.post(post, json=no_patient, headers=clinic), 422)
        wrong_shapes: list[dict[str, Any]] = [
            {**no_patient, "contained": "x", "subject": {"reference": "#p"}},
            {**no_patient, "contained": [PATIENT], "subject": {"reference": "#p"}, "item": 7},
            {
                **no_patient,
                "contained": [{**PATIENT, "name": "Ana"}],
                "subject": {"reference": "#p"},
            },
            {**no_patient, "contained": [PATIENT], "subject": "#p"},
            {
                **no_patient,
                "contained": [PATIENT],
                "subject": {"reference": "#p"},
                "questionnaire": "urn:unknown",
                "item": [{"linkId": "/x", "answer": [{"valueString": "a"}]}],
            },
        ]
        for body in wrong_shapes:
            _is_outcome(client.post(post, json=body, headers=clinic), 422)
        _is_outcome(client.post(post, content=b"{" + b" " * 1_100_000 + b"}", headers=clinic), 413)
        _is_outcome(client.post(post, content=b"[" * 50_000 + b"]" * 50_000, headers=clinic), 400)
        head = json.dumps({**no_patient, "contained": [PATIENT], "subject": {"reference": "#p"}})

        def nested(groups: int) -> bytes:
            deep = '{"linkId": "/g", "item": [' * groups + '{"linkId": "/88122-7"}' + "]}" * groups
            return (head[:-1] + ', "item": [' + deep + "]}").encode()

        for groups in (40, 450):  # 82 and 902 levels
            too_deep = client.post(post, content=nested(groups), headers=clinic)
            _is_outcome(too_deep, 400)
            assert "the body nests deeper than 64 levels" in too_deep.text
        # ten levels of groups is within the limit (whatever the mapping makes of it)
        assert "deeper" not in client.post(post, content=nested(10), headers=clinic).text
        for not_json in (head[:-1] + ', "x": NaN}', head[:-1] + ', "x": "\\ud800"}'):
            refused = client.post(post, content=not_json.encode(), headers=clinic)
            _is_outcome(refused, 400)
            assert "the body is not JSON" in refused.text
        sr = {
            "resourceType": "ServiceRequest",
            "contained": [PATIENT],
            "subject": {"reference": "#p"},
        }
        _is_outcome(client.post("/fhir/ServiceRequest", json=sr, headers=clinic), 422)
        _is_outcome(
            client.post(
                "/fhir", json={"resourceType": "Bundle", "type": "searchset"}, headers=clinic
            ),
            422,
        )
        _is_outcome(
            client.post(
                "/fhir",
                json={
                    "resourceType": "Bundle",
                    "type": "transaction",
                    "entry": [{"resource": PATIENT}],
                },
                headers=clinic,
            ),
            422,
        )
        _is_outcome(client.get("/fhir/Task/nope", headers=org), 404)
        _is_outcome(client.get("/fhir/Task/nope", headers=clinic), 404)
        _is_outcome(client.patch("/fhir/Task/nope", json=[], headers=org), 404)
        _is_outcome(client.patch("/fhir/Task/nope", json={"status": "accepted"}, headers=org), 400)
        _is_outcome(client.patch("/fhir/Task/nope", json=[], headers=clinic), 403)
        _is_outcome(
            client.put(
                "/fhir/Task/nope", json={"resourceType": "Task", "id": "other"}, headers=org
            ),
            400,
        )
        _is_outcome(
            client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=org), 422
        )
        _is_outcome(
            client.post("/webhooks", json={"url": "https://x.example/"}, headers=clinic), 403
        )
        _is_outcome(
            client.put(
                "/fhir/HealthcareService/svc",
                json={"resourceType": "HealthcareService"},
                headers=org,
            ),
            422,
        )
        _is_outcome(
            client.post(
                "/fhir/Subscription",
                json={"resourceType": "Subscription", "criteria": "Task?"},
                headers=org,
            ),
            422,
        )
        _is_outcome(client.delete("/fhir/Subscription/none", headers=org), 404)
        # another party's search value shows nothing rather than something
        other = client.get("/fhir/Task", params={"owner": "Organization/someone-else"}, headers=org)
        assert other.status_code == 200 and other.json()["total"] == 0
        # a screening without consent is taken, and the answer says nothing will be disclosed
        qr = json.loads(
            (
                Path(__file__).resolve().parents[1]
                / "fixtures"
                / "fhir"
                / "SDOHCC-QuestionnaireResponseHungerVitalSignExample.json"
            ).read_text()
        )
        qr.update(contained=[PATIENT], subject={"reference": "#p"})
        taken = client.post(post, json=qr, headers=clinic)
        assert taken.status_code == 201, taken.text
        assert [i["severity"] for i in taken.json()["issue"]] == ["information", "warning"]
        # capacity reads back as a HealthcareService with the capacity extension
        service = {
            "resourceType": "HealthcareService",
            "extension": [
                {
                    "url": "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
                    "SDOHCC-ExtensionHealthcareServiceCapacityStatus",
                    "extension": [{"url": "available", "valueUnsignedInt": 4}],
                }
            ],
        }
        assert (
            client.put("/fhir/HealthcareService/svc-1", json=service, headers=org).status_code
            == 200
        )
        services = client.get("/fhir/HealthcareService", headers=org).json()
        capacity = services["entry"][0]["resource"]["extension"][0]["extension"][0]
        assert capacity == {"url": "available", "valueUnsignedInt": 4}
        assert client.get("/fhir/metadata").json()["resourceType"] == "CapabilityStatement"
        assert client.get("/openapi.json").json()["paths"]["/fhir/Task/{task_id}"]["patch"]
    log = running.log.read_text()
    assert "Ana" not in log and running.tokens[ORG] not in log
    assert "Traceback" not in log


# ---------------------------------------------------------------- schemathesis
_SCHEMA = create_app(
    # building the app touches no file: the data dir need not exist
    GatewayConfig(bootstrap="127.0.0.1:9", topics=Topics("openapi"), data_dir=Path("/nonexistent"))
).openapi()
schema = schemathesis.openapi.from_dict(_SCHEMA)
_CLINIC_ONLY = {"/fhir/QuestionnaireResponse", "/fhir/ServiceRequest", "/fhir"}


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_schemathesis_finds_no_server_error(case: Any, running: Running) -> None:
    party = CLINIC if case.path in _CLINIC_ONLY else ORG
    case.call_and_validate(
        base_url=running.url,
        headers=_bearer(running.tokens[party]),
        checks=[not_a_server_error],
        timeout=20,
    )
