"""Organizations by name where people read them: the gateway learns names from the
directory topic, adds them as FHIR ``Reference.display``, serves ``Organization`` reads,
and the web inbox says who is signed in by name. Real broker, worker, gateway process."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.demo.setup import load_region
from deploy.directory.kafka import publish
from deploy.directory.plan import plan
from tests.network import builders as b
from tests.network.conftest import Network
from tests.network.test_gateway_flows import GatewayProcess, auth, eventually, provision

pytestmark = pytest.mark.integration

CLINIC, PANTRY = "mott-haven", "bronx-pantry"
PANTRY_NAME = "Bronx Community Pantry"


@pytest.fixture
async def gateway(network: Network) -> Any:
    process = GatewayProcess(network)
    try:
        yield process
    finally:
        process.stop()


async def _json(client: httpx.AsyncClient, path: str, token: str, **params: Any) -> Any:
    answer = await client.get(path, params=params, headers=auth(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_tasks_name_the_organization_and_organization_reads_answer_by_name(
    network: Network, gateway: GatewayProcess
) -> None:
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY])
    service = b.service("svc-food", PANTRY).model_copy(update={"org_name": PANTRY_NAME})
    await network.publish(t.directory, "svc-food", service)
    network.start_worker()
    gateway.start()
    await gateway.up()
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-1"))
    await network.read(t.org_referrals(PANTRY), count=1, timeout=60)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:

        async def offered() -> Any:
            found = await _json(client, "/fhir/Task", tokens[PANTRY], _include="Task:focus")
            return found if found["total"] == 1 else None

        bundle = await eventually(offered, what="the offer as a Task")
        task = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match")
        sr = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include")
        named = {"reference": f"Organization/{PANTRY}", "display": PANTRY_NAME}
        assert task["owner"] == named
        assert task["requester"] == {"reference": "Organization/refnet"}
        assert named in sr["performer"]
        read = await _json(client, f"/fhir/Task/{task['id']}", tokens[PANTRY])
        assert read["owner"] == named

        async def clinic_sees() -> Any:
            found = await _json(client, "/fhir/Task", tokens[CLINIC], _include="Task:focus")
            included = [e["resource"] for e in found.get("entry", [])]
            requests = [r for r in included if r["resourceType"] == "ServiceRequest"]
            return requests if requests and requests[0].get("performer") else None

        requests = await eventually(clinic_sees, what="the clinic's referral with its performer")
        assert named in requests[0]["performer"]

        me = await _json(client, "/me", tokens[PANTRY])
        assert me == {"party": "org", "id": PANTRY, "name": PANTRY_NAME}
        assert "name" not in await _json(client, "/me", tokens[CLINIC])
        org = await _json(client, f"/fhir/Organization/{PANTRY}", tokens[CLINIC])
        assert org["resourceType"] == "Organization" and org["name"] == PANTRY_NAME
        assert org["identifier"][0]["value"] == PANTRY and org["active"] is True
        missing = await client.get("/fhir/Organization/nobody", headers=auth(tokens[CLINIC]))
        assert missing.status_code == 404
        assert (await client.get(f"/fhir/Organization/{PANTRY}")).status_code == 401
        statement = (await client.get("/fhir/metadata")).json()
        types = {r["type"]: r for r in statement["rest"][0]["resource"]}
        assert types["Organization"]["interaction"] == [{"code": "read"}]

        # a rename in the directory reaches the gateway that is running
        renamed = service.model_copy(update={"org_name": "Bronx Pantry Network"})
        await network.publish(t.directory, "svc-food", renamed)

        async def renamed_read() -> bool:
            me = await _json(client, "/me", tokens[PANTRY])
            return bool(me.get("name") == "Bronx Pantry Network")

        await eventually(renamed_read, timeout=30, what="the new name")


async def test_the_demo_region_directory_names_its_organizations_in_the_inbox(
    network: Network, gateway: GatewayProcess
) -> None:
    """As `refnet demo` does: the sample Open Referral region imported in one transaction,
    its organizations provisioned; one signs in to the inbox and reads its own name."""
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium is missing: deploy/bootstrap.sh installs it"
    t = network.topics
    await network.provision([], [])
    conversion, org_names = load_region(1.0)
    org_id = sorted(org_names)[0]
    name = org_names[org_id]
    assert name and name != org_id
    tokens = await asyncio.to_thread(provision, network, [], [org_id])
    changes = plan(conversion, {}, source="demo", prune=False)
    await asyncio.to_thread(
        publish,
        network.bootstrap,
        t.directory,
        changes,
        source="demo",
        transactional_id=f"refnet-demo.{t.prefix}",
    )
    gateway.start()
    await gateway.up()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:

        async def named() -> Any:
            me = await _json(client, "/me", tokens[org_id])
            return me if me.get("name") else None

        assert (await eventually(named, what="the organization's name"))["name"] == name
        others = sorted(set(org_names) - {org_id})
        org = await _json(client, f"/fhir/Organization/{others[0]}", tokens[org_id])
        assert org["name"] == org_names[others[0]]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{gateway.url}/inbox")
            await page.fill("#token", tokens[org_id])
            await page.click("#signin-button")
            # locators, not wait_for_function: the inbox's CSP forbids eval
            who = page.locator("#who", has_text=f"Signed in as {name}")
            await who.wait_for(timeout=20_000)
            assert await who.get_attribute("title") == f"org {org_id}"
            assert await page.locator("#who-id").inner_text() == f"({org_id})"
        finally:
            await browser.close()
