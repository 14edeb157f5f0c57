"""The gateway on the real broker with a real worker: FHIR in, Gravity Tasks out, webhooks.

`refnet gateway` runs as its own process (as in production), on the parties'
tokens made by `provision_party`; receivers are small HTTP servers in the test.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.gateway.notifier import verify
from connectors.kafka.auth import PLAINTEXT
from deploy.provision import Admin, deprovision_party, provision_party
from schemas.codes import SDOH_CATEGORY_SYSTEM
from schemas.events import ConsentUpdated
from tests.network import builders as b
from tests.network.conftest import Network
from tests.network.test_secure_flows import SecureNetwork, secure_network  # noqa: F401

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
CLINIC = "mott-haven"
PANTRY = "bronx-pantry"
OTHER = "harlem-meals"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """`refnet gateway` as a subprocess over the network's broker, topics and data dir."""

    def __init__(self, network: Network, retry_base: float = 0.3) -> None:
        self.network = network
        self.retry_base = retry_base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = network.data_dir / "gateway.log"

    def start(self) -> None:
        env = self.network.env()
        env.update(
            REFNET_GATEWAY_PORT=str(self.port),
            REFNET_HTTP_HOST="127.0.0.1",
            REFNET_GATEWAY_DEV_HTTP_WEBHOOKS="true",
            REFNET_GATEWAY_ALLOW_PRIVATE_WEBHOOKS="true",
            REFNET_GATEWAY_WEBHOOK_RETRY_BASE=str(self.retry_base),
            REFNET_DATABASE_URL=self.network.gateway_database(),
            # a loaded test machine may take the network more than the default 2 s to answer
            REFNET_GATEWAY_CONFIRM_WAIT="15",
        )
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "gateway"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def up(self, timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                assert self.proc is not None and self.proc.poll() is None, self.log()
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, self.log()
                await asyncio.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


class Receiver:
    """An HTTP endpoint that records each POST and fails the first ``fail_first``."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[tuple[dict[str, str], bytes, int]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        status = 500 if len(self.calls) < self.fail_first else 204
        self.calls.append(({k.lower(): v for k, v in request.headers.items()}, body, status))
        return Response(status_code=status)

    @property
    def delivered(self) -> list[tuple[dict[str, str], bytes, int]]:
        return [c for c in self.calls if c[2] == 204]

    @property
    def notifications(self) -> list[tuple[dict[str, str], bytes, int]]:
        """The calls other than a Subscription's handshake."""
        return [c for c in self.calls if b'"valueCode":"handshake"' not in c[1].replace(b" ", b"")]

    async def __aenter__(self) -> Receiver:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


async def eventually(check: Any, *, timeout: float = 60, what: str = "") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def provision(network: Network, clinics: list[str], orgs: list[str]) -> dict[str, str]:
    """Topics and gateway tokens, as `refnet provision` makes them on a plain broker."""
    admin = Admin(network.bootstrap, PLAINTEXT, network.data_dir)
    tokens = {}
    for kind, ids in (("clinic", clinics), ("org", orgs)):
        for party in ids:
            done = provision_party(admin, network.topics, kind, party)  # type: ignore[arg-type]
            assert done.api_token and done.api_token_file is not None
            assert json.loads(done.api_token_file.read_text())["api_token"] == done.api_token
            tokens[party] = done.api_token
    return tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def patient(pid: str = "pat-53234") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "pat",
        "identifier": [{"system": "urn:mrn", "value": pid}],
        "name": [{"family": "Abbas", "given": ["Colin"]}],
        "telecom": [{"system": "phone", "value": "+17185550100"}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}}],
        "address": [{"postalCode": "10451"}],
        "birthDate": "1980-02-03",
    }


def consent(categories: list[str] | None = None) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "permit"}
    if categories:
        provision["code"] = [
            {"coding": [{"system": SDOH_CATEGORY_SYSTEM, "code": c}]} for c in categories
        ]
    return {
        "resourceType": "Consent",
        "id": "consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL"}
                ]
            }
        ],
        "patient": {"reference": "#pat"},
        "provision": provision,
    }


def hunger_vital_sign() -> dict[str, Any]:
    """The IG's Hunger Vital Sign example, with its Patient and a Consent contained."""
    qr = json.loads(
        (FIXTURES / "SDOHCC-QuestionnaireResponseHungerVitalSignExample.json").read_text()
    )
    qr = copy.deepcopy(qr)
    qr["contained"] = [patient(), consent()]
    qr["subject"] = {"reference": "#pat"}
    return qr


@pytest.fixture
async def gateway(network: Network) -> AsyncIterator[GatewayProcess]:
    # retries 1 s, 2 s, 4 s after the first attempt: the restart below falls between them
    process = GatewayProcess(network, retry_base=1.0)
    try:
        yield process
    finally:
        process.stop()


async def test_a_clinic_screening_becomes_an_offer_the_organization_accepts_over_fhir(
    network: Network, gateway: GatewayProcess
) -> None:
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY, OTHER])
    await network.publish(t.directory, "svc-food", b.service("svc-food", PANTRY))
    network.start_worker()
    gateway.start()
    await gateway.up()
    async with (
        Receiver(fail_first=3) as hook_receiver,
        Receiver() as sub_receiver,
        httpx.AsyncClient(base_url=gateway.url, timeout=20) as client,
    ):
        # the organization registers a webhook; the clinic subscribes to its Tasks
        made = await client.post(
            "/webhooks", json={"url": hook_receiver.url}, headers=auth(tokens[PANTRY])
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        assert secret.startswith("whsec_")
        subscription = {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "follow referrals",
            "criteria": "urn:refnet:SubscriptionTopic:referral-task",
            "channel": {
                "type": "rest-hook",
                "endpoint": sub_receiver.url,
                "payload": "application/fhir+json",
                "_payload": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                            "valueCode": "id-only",
                        }
                    ]
                },
            },
        }
        sub = await client.post(
            "/fhir/Subscription", json=subscription, headers=auth(tokens[CLINIC])
        )
        assert sub.status_code == 201, sub.text
        assert sub.json()["status"] == "requested"  # until it answers the handshake

        # the clinic posts the IG's Hunger Vital Sign
        posted = await client.post(
            "/fhir/QuestionnaireResponse", json=hunger_vital_sign(), headers=auth(tokens[CLINIC])
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["resourceType"] == "OperationOutcome"

        # the organization reads it as a Gravity Task (light pattern), the ServiceRequest included
        async def offered() -> dict[str, Any] | None:
            found = await client.get(
                "/fhir/Task",
                params={
                    "owner": f"Organization/{PANTRY}",
                    "status": "requested",
                    "_include": "Task:focus",
                },
                headers=auth(tokens[PANTRY]),
            )
            assert found.status_code == 200, found.text
            body = found.json()
            return body if body["total"] == 1 else None

        bundle = await eventually(offered, what="the offer as a Task")
        task = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match")
        focus = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include")
        assert task["status"] == "requested"
        assert task["owner"] == {"reference": f"Organization/{PANTRY}"}
        assert task["focus"] == {"reference": f"ServiceRequest/{focus['id']}"}
        assert task["meta"]["profile"][0].endswith("SDOHCC-TaskForReferralManagement")
        assert task["restriction"]["period"]["end"]
        codes = [c["coding"][0]["code"] for c in focus["category"]]
        assert "food-insecurity" in codes
        assert "birthDate" not in json.dumps(bundle) and "Abbas" not in json.dumps(bundle)
        task_id = task["id"]

        # the webhook receiver fails three times; the gateway restarts in between
        await eventually(lambda: _async(len(hook_receiver.calls) >= 1), what="a first attempt")
        gateway.stop()
        assert not hook_receiver.delivered, "the restart must fall while the delivery is pending"
        gateway.start()
        await gateway.up()
        await eventually(lambda: _async(hook_receiver.delivered), timeout=30, what="a delivery")
        # the receiver answers before the gateway records the delivery: wait for the record
        delivered = 'refnet_webhook_deliveries_total{kind="webhook",outcome="delivered"} '

        async def recorded() -> str | None:
            scraped = (await client.get("/metrics")).text
            return scraped if delivered in scraped else None

        scraped = await eventually(recorded, timeout=15, what="the delivery recorded")
        assert delivered + "1.0" in scraped

        # another organization can neither read nor change it
        other = auth(tokens[OTHER])
        assert (await client.get(f"/fhir/Task/{task_id}", headers=other)).status_code == 404
        patch = [{"op": "replace", "path": "/status", "value": "accepted"}]
        denied = await client.patch(f"/fhir/Task/{task_id}", json=patch, headers=other)
        assert denied.status_code == 404
        assert denied.json()["resourceType"] == "OperationOutcome"
        listed = await client.get("/fhir/Task", headers=other)
        assert listed.json()["total"] == 0
        # ...and a clinic cannot act as an organization
        assert (
            await client.patch(f"/fhir/Task/{task_id}", json=patch, headers=auth(tokens[CLINIC]))
        ).status_code in (403, 404)

        # the organization accepts with PATCH
        accepted = await client.patch(
            f"/fhir/Task/{task_id}",
            json=patch,
            headers={**auth(tokens[PANTRY]), "Content-Type": "application/json-patch+json"},
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        assert (await client.get(f"/fhir/Task/{task_id}", headers=auth(tokens[PANTRY]))).json()[
            "status"
        ] == "accepted"
        bad = await client.patch(
            f"/fhir/Task/{task_id}",
            json=[{"op": "replace", "path": "/status", "value": "rejected"}],
            headers=auth(tokens[PANTRY]),
        )
        assert bad.status_code == 422 and "reason" in bad.text

        # the clinic's Task reads accepted
        async def clinic_accepted() -> dict[str, Any] | None:
            found = await client.get(
                "/fhir/Task",
                params={"requester": f"Organization/{CLINIC}"},
                headers=auth(tokens[CLINIC]),
            )
            tasks = [e["resource"] for e in found.json().get("entry", [])]
            return tasks[0] if tasks and tasks[0]["status"] == "accepted" else None

        clinic_task = await eventually(clinic_accepted, what="the clinic's Task accepted")
        assert clinic_task["requester"] == {"reference": f"Organization/{CLINIC}"}
        read = await client.get(f"/fhir/Task/{clinic_task['id']}", headers=auth(tokens[CLINIC]))
        assert read.status_code == 200 and read.json()["status"] == "accepted"
        assert (
            await client.get(f"/fhir/Task/{clinic_task['id']}", headers=auth(tokens[PANTRY]))
        ).status_code == 404

        # the organization starts the work with PUT (the whole Task), and the clinic sees it
        current = (await client.get(f"/fhir/Task/{task_id}", headers=auth(tokens[PANTRY]))).json()
        started = await client.put(
            f"/fhir/Task/{task_id}",
            json={**current, "status": "in-progress", "note": [{"text": "first visit booked"}]},
            headers=auth(tokens[PANTRY]),
        )
        assert started.status_code == 200, started.text
        # the network's record: its status (the organization's own note is not carried)
        assert started.json()["status"] == "in-progress" and "note" not in started.json()

        async def clinic_in_progress() -> bool:
            read = await client.get(f"/fhir/Task/{clinic_task['id']}", headers=auth(tokens[CLINIC]))
            return bool(read.json()["status"] == "in-progress")

        await eventually(clinic_in_progress, what="the clinic's Task in progress")
        # the in-progress notification is out before the restart: a restart that falls in
        # the middle of a delivery sends it again (the same number), as a crash would
        await eventually(lambda: _async(len(sub_receiver.notifications) >= 3), what="3 sent")
        await asyncio.sleep(0.5)

        # exactly one delivery of the offer, validly signed, even across a restart
        gateway.stop()
        gateway.start()
        await gateway.up()
        await asyncio.sleep(2)
        assert len(hook_receiver.calls) == 4, [c[2] for c in hook_receiver.calls]
        assert len(hook_receiver.delivered) == 1
        headers, body, _ = hook_receiver.delivered[0]
        assert verify(secret, headers, body)
        assert not verify(secret, headers, body + b" ")
        delivered = json.loads(body)
        assert delivered["type"] == "referral.offered"
        assert delivered["data"]["category"] == "food-insecurity"
        assert {h["webhook-id"] for h, _, _ in hook_receiver.calls} == {headers["webhook-id"]}

        # the clinic's subscription was notified, id-only, of its Task's changes
        await eventually(lambda: _async(len(sub_receiver.notifications) >= 2), what="notifications")
        note = json.loads(sub_receiver.notifications[0][1])
        assert note["type"] == "history"
        focus_urls = {e["fullUrl"] for e in note["entry"][1:]}
        assert focus_urls == {f"{gateway.url}/fhir/Task/{clinic_task['id']}"}
        assert all("resource" not in e for e in note["entry"][1:])
        # requested, accepted, in-progress: once each, numbered in order, across two restarts
        await eventually(
            lambda: _async(len(sub_receiver.notifications) >= 3), what="3 notifications"
        )
        numbers = [
            next(
                p["valueString"]
                for p in json.loads(body)["entry"][0]["resource"]["parameter"]
                if p["name"] == "events-since-subscription-start"
            )
            for _, body, _ in sub_receiver.notifications
        ]
        assert numbers == ["1", "2", "3"]

    log = gateway.log()
    for secret_value in ("Colin", "Abbas", "+17185550100", "1980-02-03", tokens[PANTRY]):
        assert secret_value not in log, "the gateway logged patient data or a token"


async def _async(value: Any) -> Any:
    return value


def ahc_screening() -> dict[str, Any]:
    """An AHC HRSN QuestionnaireResponse: food insecurity and transportation."""
    items = [
        {
            "linkId": f"/{a['question']}",
            "answer": [{"valueCoding": {"system": "http://loinc.org", "code": a["answer"]}}],
        }
        for a in b.FOOD_AND_TRANSPORT
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": "ahc-1",
        "questionnaire": "http://loinc.org/q/96777-8",
        "status": "completed",
        "subject": {"reference": "urn:uuid:7f0e4a53-5a4e-4a9b-8f0e-2f1d7d1b0a11"},
        "item": items,
    }


async def test_a_transaction_bundle_with_a_consent_limited_to_food_opens_only_food(
    network: Network, gateway: GatewayProcess
) -> None:
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY, OTHER])
    await network.publish(t.directory, "svc-food", b.service("svc-food", PANTRY))
    await network.publish(
        t.directory,
        "svc-ride",
        b.service("svc-ride", OTHER, categories=("transportation-insecurity",)),
    )
    network.start_worker()
    gateway.start()
    await gateway.up()
    the_patient = {**patient("pt-77"), "id": "pt-77"}
    the_consent = {**consent(["food-insecurity"]), "patient": {"reference": "Patient/pt-77"}}
    del the_consent["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f0e4a53-5a4e-4a9b-8f0e-2f1d7d1b0a11",
                "resource": the_patient,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:0c3b7a51-1b7e-4cde-9a55-2e0f3d1e9b21",
                "resource": the_consent,
                "request": {"method": "POST", "url": "Consent"},
            },
            {
                "fullUrl": "urn:uuid:5d7c2f0e-61e4-4a8a-8f6c-0b9f7e7d3c31",
                "resource": ahc_screening(),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }
    async with (
        Receiver() as hook_receiver,
        httpx.AsyncClient(base_url=gateway.url, timeout=20) as client,
    ):
        made = await client.post(
            "/webhooks", json={"url": hook_receiver.url}, headers=auth(tokens[PANTRY])
        )
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        answer = await client.post("/fhir", json=bundle, headers=auth(tokens[CLINIC]))
        assert answer.status_code == 200, answer.text
        assert answer.json()["type"] == "transaction-response"
        offers = await network.read(t.org_referrals(PANTRY), count=1, timeout=60)
        assert offers[0]["category"] == "food-insecurity"
        assert await network.read(t.org_referrals(OTHER), timeout=4) == []

        async def food_only() -> list[dict[str, Any]] | None:
            found = await client.get("/fhir/Task", headers=auth(tokens[CLINIC]))
            tasks = [e["resource"] for e in found.json().get("entry", [])]
            return tasks or None

        tasks = await eventually(food_only, what="the clinic's Tasks")
        by_category = {t["identifier"][0]["value"].rsplit(".", 1)[1]: t for t in tasks}
        assert by_category["food-insecurity"]["status"] == "requested"
        ride = by_category["transportation-insecurity"]
        assert (ride["status"], ride["businessStatus"]["text"]) == ("failed", "consent-required")
        screenings = await network.read(t.screenings, count=1)
        assert set(screenings[0]["consented_categories"]) == {"food-insecurity"}
        assert {n["category"] for n in screenings[0]["needs"]} >= {
            "food-insecurity",
            "transportation-insecurity",
        }

        # the patient revokes consent: the offer is withdrawn, the webhook says so, the
        # organization's Task reads cancelled and can no longer change
        revoked = ConsentUpdated.new(
            patient_id="pt-77", consent={"granted": False, "categories": None, "expires_at": None}
        )
        await network.publish(t.clinic_submissions(CLINIC), "pt-77", revoked)
        await eventually(
            lambda: _async(len(hook_receiver.delivered) >= 2), what="the withdrawal's delivery"
        )
        kinds = [json.loads(body)["type"] for _, body, _ in hook_receiver.delivered]
        assert kinds == ["referral.offered", "referral.withdrawn"]
        assert all(verify(secret, h, body) for h, body, _ in hook_receiver.delivered)
        org_tasks = (await client.get("/fhir/Task", headers=auth(tokens[PANTRY]))).json()
        task = org_tasks["entry"][0]["resource"]
        assert (task["status"], task["statusReason"]["text"]) == ("cancelled", "consent-withdrawn")
        late = await client.patch(
            f"/fhir/Task/{task['id']}",
            json=[{"op": "replace", "path": "/status", "value": "accepted"}],
            headers=auth(tokens[PANTRY]),
        )
        assert late.status_code == 409 and late.json()["resourceType"] == "OperationOutcome"
    conn = await asyncpg.connect(network.gateway_database())  # the state is in PostgreSQL
    try:
        assert await conn.fetchval("SELECT count(*) FROM gateway_webhooks") == 1
    finally:
        await conn.close()
    assert not (network.data_dir / "gateway" / "gateway.sqlite3").exists()


async def test_on_a_secured_broker_the_gateway_acts_with_each_partys_own_login(
    secure_network: SecureNetwork,  # noqa: F811
) -> None:
    """SASL_SSL and ACLs: the gateway knows only the network's credentials file and each
    party's; a clinic's ServiceRequest reaches the organization, whose PATCH reaches the
    clinic, each written and read under the party's own principal. A deprovisioned
    organization's token stops working."""
    net = secure_network
    t = net.topics
    await net.provision([CLINIC], [PANTRY])
    await net.send("importer", t.directory, "svc-p", b.service("svc-p", PANTRY))
    tokens = {
        party: json.loads(net.files[party].read_text())["api_token"] for party in (CLINIC, PANTRY)
    }
    net.start_worker()
    gateway = GatewayProcess(net)
    gateway.start()
    try:
        await gateway.up()
        referral = {
            "resourceType": "ServiceRequest",
            "id": "ref-1",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "#pat"},
            "category": [{"coding": [{"system": SDOH_CATEGORY_SYSTEM, "code": "food-insecurity"}]}],
            "contained": [patient("pt-1"), consent()],
        }
        async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:
            sent = await client.post(
                "/fhir/ServiceRequest", json=referral, headers=auth(tokens[CLINIC])
            )
            assert sent.status_code == 201, sent.text

            async def offered() -> list[dict[str, Any]] | None:
                found = await client.get("/fhir/Task", headers=auth(tokens[PANTRY]))
                assert found.status_code == 200, found.text
                return [e["resource"] for e in found.json().get("entry", [])] or None

            task = (await eventually(offered, what="the offer"))[0]
            accepted = await client.patch(
                f"/fhir/Task/{task['id']}",
                json=[{"op": "replace", "path": "/status", "value": "accepted"}],
                headers=auth(tokens[PANTRY]),
            )
            assert accepted.status_code == 200, accepted.text

            async def clinic_sees() -> bool:
                read = await client.get("/fhir/Task/ref-1", headers=auth(tokens[CLINIC]))
                return read.status_code == 200 and read.json()["status"] == "accepted"

            await eventually(clinic_sees, what="the clinic's Task accepted")
            assert "AuthorizationFailed" not in gateway.log(), gateway.log()
            # without its ACLs the organization's view can read nothing: it used its own login
            await asyncio.to_thread(deprovision_party, net.admin, t, "org", PANTRY)
            gone = await client.get("/fhir/Task", headers=auth(tokens[PANTRY]))
            assert gone.status_code == 401
            await eventually(
                lambda: _async("stopped following org-bronx-pantry" in gateway.log()),
                what="the view of the deprovisioned organization to stop",
            )
    finally:
        gateway.stop()
