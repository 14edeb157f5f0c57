"""A scripted scenario through a real worker; the ledger's report equals what it produced.

One worker (with a database of its own, metrics and the status page) runs the
scenario once for the module. Organizations claim times hours and days ahead of
the network's clock (REFNET_MAX_CLOCK_SKEW is 40 days here): the network's events
carry the network's own time, so times to accept and to close are what the
network saw, whatever an organization claims; clinics backdate screenings to
exercise the 30- and 60-day quality measures. The report runs as a user runs it: ``refnet report``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.ledger.sink import Ledger
from deploy.local.runtime import free_port
from schemas.topics import Topics
from tests.connectors.fresh_db import fresh_database
from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration

H, D = timedelta(hours=1), timedelta(days=1)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
HOUSING_WORRIED = [{"question": "71802-3", "answer": "LA31994-9"}]


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def at(event: Any, when: datetime) -> Any:
    return event.model_copy(update={"occurred_at": when})


@dataclass
class Scenario:
    network: Network
    database_url: str
    metrics_port: int
    status_port: int
    #: durations the scenario produced (seconds), worked out from the offers received
    to_accept: list[float] = field(default_factory=list)
    to_close: list[float] = field(default_factory=list)
    pending_food: str = ""


async def offers(net: Network, org: str, count: int) -> list[dict[str, Any]]:
    values = await net.read(net.topics.org_referrals(org), count=count)
    return [v for v in values if v["event_type"] == "referral.offered"]


async def run_scenario(net: Network, s: Scenario) -> None:
    t = net.topics
    clinic = t.clinic_submissions("mott-haven")
    now = datetime.now(UTC)
    es_10451 = b.patient("pt-1", language="es", postal_code="10451")
    # 1. a screening two hours old: pantry-a accepts 2 h and completes 3 days after the offer
    await net.publish(
        clinic,
        "pt-1",
        at(b.screening("s1", answers=b.FOOD_ONLY, patient_fields=es_10451), now - 2 * H),
    )
    [offer1] = await offers(net, "pantry-a", 1)
    opened1 = datetime.fromisoformat(offer1["occurred_at"])
    # the same screening need again while the first is open: a duplicate, not a referral
    await net.publish(
        clinic, "pt-1", b.screening("s1b", answers=b.FOOD_ONLY, patient_fields=es_10451)
    )
    rid1 = offer1["referral_id"]
    await net.publish(
        t.org_updates("pantry-a"), rid1, at(b.status(rid1, "accepted"), opened1 + 2 * H)
    )
    await net.publish(
        t.org_updates("pantry-a"),
        rid1,
        at(b.status(rid1, "completed", outcome="enrolled"), opened1 + 3 * D),
    )
    # 2. a clinician's referral: pantry-a has no capacity, pantry-b accepts, then cannot reach
    en_10451 = b.patient("pt-2", language="en", postal_code="10451")
    await net.publish(clinic, "pt-2", b.requested("r2", patient_fields=en_10451))
    offered = await offers(net, "pantry-a", 2)
    offer2a = offered[1]
    rid2 = offer2a["referral_id"]
    opened2 = datetime.fromisoformat(offer2a["occurred_at"])
    await net.publish(
        t.org_updates("pantry-a"), rid2, at(b.status(rid2, "rejected", "no-capacity"), opened2 + H)
    )
    [offer2b] = await offers(net, "pantry-b", 1)
    reoffered = datetime.fromisoformat(offer2b["occurred_at"])
    await net.publish(
        t.org_updates("pantry-b"), rid2, at(b.status(rid2, "accepted"), reoffered + 4 * H)
    )
    await net.publish(
        t.org_updates("pantry-b"),
        rid2,
        at(b.status(rid2, "failed", "could-not-contact"), reoffered + 10 * D),
    )
    # 3. housing: the only service never answers (response_sla 3 s), then none is left
    es_10452 = b.patient("pt-3", language="es", postal_code="10452")
    await net.publish(
        clinic, "pt-3", b.screening("s3", answers=HOUSING_WORRIED, patient_fields=es_10452)
    )
    # 4. food and transportation, consent for food only: food waits for pantry-a's answer
    en_10452 = b.patient("pt-4", language="en", postal_code="10452")
    await net.publish(
        clinic,
        "pt-4",
        b.screening(
            "s4",
            patient_fields=en_10452,
            consent_fields=b.consent(["food-insecurity"]),
        ),
    )
    # 5. a screening 45 days old: accepted an hour after the offer (MIPS #498, not SNS-E)
    en_10451_5 = b.patient("pt-5", language="en", postal_code="10451")
    await net.publish(
        clinic,
        "pt-5",
        at(b.screening("s5", answers=b.FOOD_ONLY, patient_fields=en_10451_5), now - 45 * D),
    )
    offered = await offers(net, "pantry-a", 4)
    by_patient = {o["referral_id"].split(":")[1].split(".")[0]: o for o in offered}
    offer5 = by_patient["s5"]
    rid5 = offer5["referral_id"]
    opened5 = datetime.fromisoformat(offer5["occurred_at"])
    await net.publish(t.org_updates("pantry-a"), rid5, at(b.status(rid5, "accepted"), opened5 + H))
    s.pending_food = by_patient["s4"]["referral_id"]
    # 6. a message that is no event at all
    await net.publish(t.org_updates("pantry-b"), "x", b"not json")
    # the housing offer times out and the referral ends unmatched
    await net.read(
        t.clinic_updates("mott-haven"),
        until=lambda vs: any(v.get("business_status") == "unmatched" for v in vs),
        timeout=60,
    )


def network_durations(events: list[dict[str, Any]], s: Scenario) -> None:
    """Times to accept and to close as the network saw them (from each referral's
    first offer, by the network's clock), whatever the organizations claimed."""
    first: dict[str, datetime] = {}
    for e in events:
        if e.get("event_type") != "referral.state-changed":
            continue
        rid, when = e["referral_id"], datetime.fromisoformat(e["occurred_at"])
        if e.get("business_status") == "offered":
            first.setdefault(rid, when)
        elif e["actor"] == "organization" and e["to_status"] == "accepted":
            s.to_accept.append((when - first[rid]).total_seconds())
        elif e["actor"] == "organization" and e["to_status"] in ("completed", "failed"):
            s.to_close.append((when - first[rid]).total_seconds())


def expected_totals() -> dict[str, Any]:
    return {
        "opened": 6,  # s1 food, r2, s3 housing, s4 food, s4 transport, s5 food
        "accepted": 3,  # s1, r2, s5
        "rejected": 1,  # r2 at pantry-a
        "timed_out": 1,  # s3 at housing-org
        "completed": 1,  # s1
        "failed": 1,  # r2, by pantry-b
        "unmatched": 1,  # s3
        "expired": 0,
        "consent_required": 1,  # s4 transport
        "network_error": 0,
        "cancelled": 0,
        "open": 2,  # s4 food (offered), s5 (accepted)
        "closed_with_outcome": 2,
        "offered": 5,  # all but s4 transport, which never reached an organization
        "loop_closed": 2,  # s1, r2
        "loop_closure_rate": 0.4,
    }


async def wait_for_ledger(url: str, expected_events: int) -> None:
    ledger = await Ledger.connect(url)
    try:
        for _ in range(150):
            if await ledger.count() >= expected_events:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the ledger has {await ledger.count()} of {expected_events} events")
    finally:
        await ledger.close()


@pytest.fixture(scope="module")
async def scenario(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scenario]:
    topics = Topics(prefix=f"n{uuid.uuid4().hex[:8]}", partitions=3)
    net = Network(kafka_bootstrap, topics, tmp_path_factory.mktemp("report"))
    async with fresh_database(database_url) as url:
        s = Scenario(net, url, free_port(), free_port())
        net.database_url = url
        net.metrics_port = s.metrics_port
        net.extra_env = {
            "REFNET_MAX_CLOCK_SKEW": "P40D",
            "REFNET_STATUS_PORT": str(s.status_port),
            "REFNET_STATUS_REFRESH": "0.5",
        }
        try:
            await net.provision(["mott-haven"], ["pantry-a", "pantry-b", "housing-org"])
            directory = [
                b.service("svc-a", "pantry-a", languages=("es", "en"), available=10),
                b.service("svc-b", "pantry-b", postal_codes=("10451",), available=5),
                b.service(
                    "svc-h",
                    "housing-org",
                    categories=("housing-instability",),
                    postal_codes=("10452",),
                    languages=("es",),
                    response_sla="PT3S",
                ),
            ]
            for service in directory:
                await net.publish(topics.directory, service.service_id, service)
            net.start_worker()
            await run_scenario(net, s)
            events = await net.read(topics.referral_events, timeout=5)
            network_durations(events, s)
            await wait_for_ledger(url, len(events))
            yield s
        finally:
            await net.close()


def refnet(s: Scenario, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env["REFNET_DATABASE_URL"] = s.database_url
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


async def report(s: Scenario, *args: str) -> dict[str, Any]:
    """``refnet report --format json``, once the ledger shows the whole scenario."""
    done: dict[str, Any] = {}
    for _ in range(50):
        run = await asyncio.to_thread(refnet, s, "--since", "P60D", "--format", "json", *args)
        assert run.returncode == 0, run.stderr
        done = json.loads(run.stdout)
        if done["totals"] == expected_totals():
            return done
        await asyncio.sleep(0.3)
    return done


async def test_the_report_equals_what_the_scenario_produced(scenario: Scenario) -> None:
    figures = await report(scenario)

    assert figures["totals"] == expected_totals()
    assert figures["rejected_by_reason"] == {"no-capacity": 1}
    to_accept, to_close = figures["time_to_accept_seconds"], figures["time_to_close_seconds"]
    assert to_accept["count"] == 3
    assert to_close["count"] == 2
    for p in (0.5, 0.9, 0.95):
        name = f"p{round(p * 100)}"
        assert to_accept[name] == pytest.approx(percentile(scenario.to_accept, p), abs=1e-3)
        assert to_close[name] == pytest.approx(percentile(scenario.to_close, p), abs=1e-3)
    # the organizations claimed 1 h, 2 h and 4 h: their clocks do not count
    assert max(scenario.to_accept) < 600 and max(scenario.to_close) < 600
    # s1 and s1b (its duplicate: the open referral serves it) within 30 days; s4 still
    # waiting; s5 screened 45 days before its acceptance
    assert figures["sns_e"] == {
        "food": {"positive": 4, "intervened": 2, "rate": 0.5},
        "housing": {"positive": 1, "intervened": 0, "rate": 0.0},
        "transportation": {"positive": 1, "intervened": 0, "rate": 0.0},
        "all": {"positive": 6, "intervened": 2, "rate": 0.3333},
    }
    # s1, s1b and s5 (within 60 days) connected; s3 and s4 not
    assert figures["mips_498"] == {"positive": 5, "connected": 3, "rate": 0.6}
    assert figures["service_gaps"] == [
        {"category": "housing-instability", "postal_code": "10452", "language": "es",
         "unmatched": 1, "timed_out": 1, "no_capacity": 0},
        {"category": "food-insecurity", "postal_code": "10451", "language": "en",
         "unmatched": 0, "timed_out": 0, "no_capacity": 1},
    ]  # fmt: skip
    organizations = {o["org_id"]: o for o in figures["organizations"]}
    assert {k: organizations["pantry-a"][k] for k in ("offers", "accepted", "rejected")} == {
        "offers": 4,  # s1, r2, s4, s5
        "accepted": 2,
        "rejected": 1,
    }
    assert organizations["pantry-a"]["pending"] == 1  # s4
    assert organizations["housing-org"]["timed_out"] == 1
    assert (organizations["pantry-b"]["accepted"], organizations["pantry-b"]["failed"]) == (1, 1)


async def test_every_figure_is_stratified_by_language_and_postal_code(
    scenario: Scenario,
) -> None:
    figures = await report(scenario, "--by", "language", "--by", "postal-code")

    strata = {(s["stratum"]["language"], s["stratum"]["postal_code"]): s for s in figures["strata"]}
    assert {k: v["totals"]["opened"] for k, v in strata.items()} == {
        ("es", "10451"): 1,  # s1
        ("en", "10451"): 2,  # r2, s5
        ("es", "10452"): 1,  # s3
        ("en", "10452"): 2,  # s4 food and transport
    }
    assert strata[("es", "10451")]["totals"]["loop_closure_rate"] == 1.0
    assert strata[("en", "10452")]["totals"]["consent_required"] == 1
    assert strata[("en", "10451")]["mips_498"] == {"positive": 1, "connected": 1, "rate": 1.0}


async def test_refnet_report_prints_a_table_and_csv_and_refuses_bad_options(
    scenario: Scenario,
) -> None:
    await report(scenario)  # the ledger is complete
    table = await asyncio.to_thread(refnet, scenario, "--since", "P60D")
    assert table.returncode == 0, table.stderr
    assert "loop closure 40.0% (2 of 5 offered closed with an outcome)" in table.stdout
    assert "housing-instability  10452" in table.stdout
    csv_run = await asyncio.to_thread(refnet, scenario, "--since", "P60D", "--format", "csv")
    assert "totals,all,,opened,6" in csv_run.stdout.splitlines()
    bad = await asyncio.to_thread(refnet, scenario, "--since", "yesterday")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "--since 'yesterday'" in bad.stderr
    backwards = await asyncio.to_thread(
        refnet, scenario, "--since", "2030-01-02", "--until", "2030-01-01"
    )
    assert backwards.returncode == 2
    assert "is not before --until" in backwards.stderr


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith("refnet_") and " " in line:
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


async def test_the_worker_counts_each_step_once_and_promtool_accepts_its_metrics(
    scenario: Scenario,
) -> None:
    await report(scenario)
    text = await asyncio.to_thread(scrape, scenario.metrics_port)
    found = samples(text)

    def total(step: str) -> float:
        return sum(
            v
            for k, v in found.items()
            if k.startswith("refnet_referrals_total{") and f'step="{step}"' in k
        )

    assert (total("opened"), total("accepted"), total("rejected"), total("timed_out")) == (
        6,
        3,
        1,
        1,
    )
    assert (total("completed"), total("failed"), total("unmatched")) == (1, 1, 1)
    assert total("consent_required") == 1
    assert total("first_offered") == 5  # the report's "offered": loop closure's denominator
    assert found['refnet_time_to_accept_seconds_count{category="food-insecurity"}'] == 3
    assert found['refnet_time_to_close_seconds_count{category="food-insecurity"}'] == 2
    assert found['refnet_dead_letters_logged_total{kind="decode"}'] == 1
    for _ in range(60):  # the open gauge and the lag are sampled every few seconds
        found = samples(await asyncio.to_thread(scrape, scenario.metrics_port))
        if found.get('refnet_open_referrals{category="food-insecurity"}') == 2 and any(
            k.startswith("refnet_consumer_lag{") for k in found
        ):
            break
        await asyncio.sleep(0.5)
    assert found['refnet_open_referrals{category="food-insecurity"}'] == 2
    assert any(k.startswith("refnet_consumer_lag{") for k in found), sorted(found)
    assert not any("pt-" in k or "mott-haven:" in k for k in found)  # no patient or referral id
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: deploy/bootstrap.sh installs Debian's prometheus"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_the_status_page_shows_live_numbers_on_a_phone(scenario: Scenario) -> None:
    """Headless chromium on a phone-sized screen; an acceptance made while the page is
    open shows without a reload (server-sent events). The screenshot is kept."""
    from playwright.async_api import async_playwright

    await report(scenario)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium is missing: deploy/bootstrap.sh installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
            )
            await page.goto(f"http://127.0.0.1:{scenario.status_port}/")
            # selectors, not wait_for_function: the page's CSP admits no eval
            await page.wait_for_selector("#open:text-is('2')", timeout=20_000)
            assert await page.text_content("#closure") == "40.0%"
            tta = await page.text_content("#tta") or ""
            assert "h" not in tta, tta  # the network's time, not the organizations' claims
            assert await page.text_content("#live-text") == "live"
            orgs = await page.inner_text("#orgs")
            assert "pantry-a" in orgs and "housing-org" in orgs
            # one gap in housing: under the page's threshold, left out and said so
            assert "housing-instability" not in await page.inner_text("#gaps")
            assert "fewer than 5 gaps" in await page.inner_text("#gaps-note")
            assert "decode" in await page.inner_text("#kinds")
            url = f"http://127.0.0.1:{scenario.status_port}/status.json"
            with urllib.request.urlopen(url, timeout=10) as response:
                answers = json.loads(response.read())["answers"]
            # pantry-b's unreadable message was answered to it: counted by kind
            assert {"kind": "decode", "count": 1} in answers["refused_by_kind"]
            assert answers["screenings_answered"] >= 1
            before = await page.evaluate("document.body.dataset.version")
            # pantry-a accepts s4's food referral while the page is open
            net, rid = scenario.network, scenario.pending_food
            accepted = b.status(rid, "accepted")
            await net.publish(net.topics.org_updates("pantry-a"), rid, accepted)
            await page.wait_for_selector("#opened:has-text('4 accepted')", timeout=20_000)
            assert await page.evaluate("document.body.dataset.version") != before
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, "the page must not scroll sideways on a phone"
            await page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)
        finally:
            await browser.close()
