"""`refnet demo`: the parties it plays (no broker), and the whole demo end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from deploy.demo.clinics import Clinics
from deploy.demo.config import DemoConfig
from deploy.demo.organizations import Organizations
from deploy.demo.setup import MIN_WINDOW, scaled
from deploy.demo.tally import SUMMARY_KEYS, Tally
from schemas.codes import Category, Instrument, OrgStatus
from schemas.events import ReferralOffered, ReferralStateChanged, ServiceUpserted
from streams.decisions.scoring import score

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def config() -> DemoConfig:
    return DemoConfig.load()


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- clinics
def test_generated_answers_score_to_exactly_the_needs_drawn(config: DemoConfig) -> None:
    clinics = Clinics(config, 11, token="t", today=TODAY)
    instruments: Counter[Instrument] = Counter()
    for _ in range(600):
        screening = clinics.next(now())
        event = screening.event
        instruments[event.instrument] += 1
        result = score(event.instrument, [a.model_dump() for a in event.answers])
        assert {n.category for n in result.needs} == set(screening.needs)
    assert set(instruments) == set(Instrument)


def test_needs_follow_the_published_prevalence(config: DemoConfig) -> None:
    clinics = Clinics(config, 5, token="t", today=TODAY)
    screened: Counter[Instrument] = Counter()
    positive: Counter[tuple[Instrument, Category]] = Counter()
    for _ in range(6000):
        screening = clinics.next(now())
        screened[screening.event.instrument] += 1
        for need in screening.needs:
            positive[screening.event.instrument, need] += 1
    ahc = screened[Instrument.AHC_HRSN]
    # Greater Houston AHC site: food 38.7%, transportation 28.0%, utilities 26.7%
    assert positive[Instrument.AHC_HRSN, Category.FOOD_INSECURITY] / ahc == pytest.approx(
        0.387, abs=0.03
    )
    assert positive[Instrument.AHC_HRSN, Category.TRANSPORTATION_INSECURITY] / ahc == pytest.approx(
        0.28, abs=0.03
    )
    assert screened[Instrument.AHC_HRSN] / 6000 == pytest.approx(0.60, abs=0.03)


def test_screenings_follow_from_the_seed_and_consent_is_mostly_granted(
    config: DemoConfig,
) -> None:
    def run(seed: int) -> list[dict[str, object]]:
        clinics = Clinics(config, seed, token="t", today=TODAY)
        return [
            clinics.next(now()).event.model_dump(exclude={"event_id", "occurred_at"})
            for _ in range(300)
        ]

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    granted = sum(1 for e in first if e["consent"]["granted"])  # type: ignore[index]
    narrowed = sum(1 for e in first if e["consent"]["categories"] is not None)  # type: ignore[index]
    assert 0.9 <= granted / len(first) < 1.0
    assert narrowed > 0
    languages = {e["patient"]["preferred_language"] for e in first}  # type: ignore[index]
    assert languages == {"en", "es", "vi", "am"}


# ---------------------------------------------------------------- organizations
def _service(available: int) -> ServiceUpserted:
    return ServiceUpserted.new(
        service_id="svc-1",
        org_id="pantry-org",
        name="Pantry",
        status="active",
        categories=["food-insecurity"],
        postal_codes=["75215"],
        capacity={"available": available},
        response_sla="PT1H",
    )


def _offer(referral_id: str) -> ReferralOffered:
    at = now()
    return ReferralOffered.new(
        occurred_at=at,
        referral_id=referral_id,
        service_id="svc-1",
        category="food-insecurity",
        respond_by=at + timedelta(seconds=2),
        patient={"given_name": "Ana"},
    )


def _organizations(config: DemoConfig, **habits: object) -> Organizations:
    changed = dataclasses.replace(config, organizations={**config.organizations, **habits})
    return Organizations(
        [_service(available=10)], {"pantry-org": "Pantry Org"}, changed, seed=1, speed=14400
    )


def test_an_organization_decides_an_offer_the_same_way_whatever_the_order(
    config: DemoConfig,
) -> None:
    offers = [_offer(f"clinic:scr-{i}.food-insecurity") for i in range(40)]
    forward = _organizations(config, real_capacity=[1.0, 1.0])
    backward = _organizations(config, real_capacity=[1.0, 1.0])
    ahead = {
        o.referral_id: [
            (a.event.status, round(a.after, 6)) for a in forward.on_offer("pantry-org", o)
        ]
        for o in offers[:5]
    }
    behind = {
        o.referral_id: [
            (a.event.status, round(a.after, 6)) for a in backward.on_offer("pantry-org", o)
        ]
        for o in reversed(offers[:5])
    }
    assert ahead == behind
    everything = [forward.on_offer("pantry-org", o) for o in offers[5:]]
    assert any(actions == [] for actions in everything)  # some stay silent
    answered = [a for actions in everything for a in actions]
    statuses = {getattr(a.event, "status", None) for a in answered}
    assert {OrgStatus.ACCEPTED, OrgStatus.COMPLETED} <= statuses
    first_answers = [actions[0] for actions in everything if actions]
    assert OrgStatus.REJECTED in statuses  # not eligible, or no place left
    assert all(0 < a.after <= 2 * 0.5 for a in first_answers)  # within half the window


def test_an_organization_whose_places_are_taken_rejects_for_capacity_and_says_so(
    config: DemoConfig,
) -> None:
    orgs = _organizations(config, silent=0.0, not_eligible=0.0, real_capacity=[0.1, 0.1])
    assert orgs.services["svc-1"].real == 1
    first = orgs.on_offer("pantry-org", _offer("r-1"))
    assert first[0].event.status is OrgStatus.ACCEPTED  # type: ignore[union-attr]
    second = orgs.on_offer("pantry-org", _offer("r-2"))
    assert second[0].event.status is OrgStatus.REJECTED  # type: ignore[union-attr]
    assert second[0].event.reason == "no-capacity"  # type: ignore[union-attr]
    assert second[1].event.available == 0  # type: ignore[union-attr]
    orgs.release("r-1")
    (report,) = orgs.capacity_reports()
    assert report.event.available == 1  # type: ignore[union-attr]
    assert orgs.capacity_reports() == []  # nothing changed since


# ---------------------------------------------------------------- the summary
def _changed(referral_id: str, to: str, at: datetime, **fields: object) -> ReferralStateChanged:
    return ReferralStateChanged.new(
        occurred_at=at,
        referral_id=referral_id,
        patient_id="pt-1",
        clinic_id="oak-cliff-health",
        category=fields.pop("category", "food-insecurity"),
        to_status=to,
        attempt=fields.pop("attempt", 1),
        actor=fields.pop("actor", "network"),
        **fields,
    )


def test_the_tally_counts_offers_answers_timeouts_and_outcomes_from_the_event_log() -> None:
    t0 = now()
    tally = Tally(screenings=3)
    tally.scored_screening(2)
    tally.scored_screening(1)
    events = [
        _changed("a", "requested", t0, business_status="offered", org_id="o1"),
        _changed(
            "a",
            "requested",
            t0 + timedelta(seconds=2),
            business_status="re-routed",
            reason="timeout",
            org_id="o1",
        ),
        _changed(
            "a",
            "requested",
            t0 + timedelta(seconds=2),
            business_status="offered",
            attempt=2,
            org_id="o2",
        ),
        _changed(
            "a",
            "rejected",
            t0 + timedelta(seconds=3),
            reason="no-capacity",
            actor="organization",
            attempt=2,
            org_id="o2",
        ),
        _changed(
            "a",
            "requested",
            t0 + timedelta(seconds=3),
            business_status="offered",
            attempt=3,
            org_id="o3",
        ),
        _changed("a", "accepted", t0 + timedelta(seconds=4), actor="organization", attempt=3),
        _changed("a", "completed", t0 + timedelta(seconds=9), actor="organization", attempt=3),
        _changed("b", "requested", t0, business_status="offered", category="homelessness"),
        _changed(
            "b",
            "accepted",
            t0 + timedelta(seconds=1),
            actor="organization",
            category="homelessness",
        ),
        _changed(
            "c",
            "failed",
            t0,
            business_status="unmatched",
            reason="no-matching-service",
            category="stress",
        ),
    ]
    for event in events:
        tally.state_changed(event, org_names={"o1": "Org One"})
        if event.reason == "timeout":
            assert tally.recent[-1] == "food-insecurity: Org One did not answer in time; re-routed"
    summary = tally.summary()
    assert tuple(summary) == SUMMARY_KEYS
    assert summary == {
        "screenings": 3,
        "needs": 3,
        "offers": 4,
        "accepted": 2,
        "rejected": 1,
        "timeouts": 1,
        "completed": 1,
        "unmatched": {"stress": 1},
        "loop_closure_rate": 0.5,  # a closed, b still open
        "median_time_to_accept_s": 2.5,  # a: 4 s from its first offer, b: 1 s
        "adt_sent": 0,
        "adt_acknowledged": 0,
        "alerts_to_clinics": 0,
        "alerts_to_organizations": 0,
    }
    assert tally.recent[-1] == "stress: no service left (no-matching-service)"


def test_time_is_compressed_by_the_speed_but_never_below_the_shortest_window() -> None:
    assert scaled(timedelta(days=1), 14400) == timedelta(seconds=6)
    assert scaled(timedelta(hours=4), 3600) == timedelta(seconds=4)
    assert scaled(timedelta(minutes=5), 14400) == MIN_WINDOW


# ---------------------------------------------------------------- end to end
def _leftovers(marker: str) -> list[str]:
    """Processes whose command line or environment mentions ``marker`` (a unique data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline or marker.encode() in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def _env(data_dir: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
    env.update(REFNET_DATA_DIR=str(data_dir), REFNET_KAFKA_PORT="0", **more)
    return env


@pytest.mark.integration
def test_refnet_demo_runs_to_its_summary_and_leaves_no_process() -> None:
    """A fresh machine's first command: embedded broker and database, a worker, a summary."""
    data_dir = Path("/tmp") / f"refnet-demo-{uuid.uuid4().hex[:8]}"  # short: sockets live in it
    env = _env(data_dir)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "demo",
                "--duration",
                "20",
                "--json",
                "--seed",
                "7",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)  # exactly one JSON object
        assert tuple(summary) == SUMMARY_KEYS
        for key in (
            "screenings",
            "needs",
            "offers",
            "accepted",
            "rejected",
            "timeouts",
            "completed",
        ):
            assert summary[key] > 0, (key, summary, done.stderr)
        assert isinstance(summary["unmatched"], dict)
        assert 0 < summary["loop_closure_rate"] <= 1
        assert summary["median_time_to_accept_s"] > 0
        assert "stopped the embedded Kafka broker it started" in done.stderr
        assert _leftovers(str(data_dir)) == []
    finally:
        subprocess.run(
            [sys.executable, "-m", "deploy.cli", "dev", "down"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


@pytest.mark.integration
def test_ctrl_c_stops_the_demo_cleanly_with_a_summary(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """With the configured broker and database: they stay up, the demo's topics go."""
    from connectors.kafka.admin import list_topics

    env = _env(tmp_path, REFNET_KAFKA_BOOTSTRAP=kafka_bootstrap, REFNET_DATABASE_URL=database_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "demo", "--duration", "120", "--json", "--seed", "3"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    prefix = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"the demo ended early: {seen}"
            seen.append(line)
            if "topics under the prefix" in line:
                prefix = line.split("prefix ")[1].split(";")[0]
            if line.startswith("# 5 s:"):
                break
        assert prefix is not None and any(
            name.startswith(f"{prefix}.") for name in list_topics(kafka_bootstrap)
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert tuple(summary) == SUMMARY_KEYS and summary["screenings"] > 0
    assert _leftovers(str(tmp_path)) == []
    assert not any(name.startswith(f"{prefix}.") for name in list_topics(kafka_bootstrap))
    assert "stopped the embedded" not in err  # it used the configured ones


def test_the_demo_parties_use_randomness_only_through_their_seeds(config: DemoConfig) -> None:
    random.seed(0)
    first = Clinics(config, 9, token="t", today=TODAY).next(now()).event
    random.seed(1)
    second = Clinics(config, 9, token="t", today=TODAY).next(now()).event
    assert first.model_dump(exclude={"event_id", "occurred_at"}) == second.model_dump(
        exclude={"event_id", "occurred_at"}
    )
