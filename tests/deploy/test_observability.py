"""The deploy/ files for operators: Prometheus rules checked by promtool, a dashboard and a
compose file that name only what refnet really exports and reads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import connectors.observability.metrics  # noqa: F401 - registers every metric
from deploy.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: deploy/bootstrap.sh installs Debian's prometheus package"
    return subprocess.run(
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )


def exported() -> set[str]:
    """Every metric name a worker exports (with the names' usual suffixes)."""
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES)
    return names


def names_in(expression: str) -> set[str]:
    return {n for n in re.findall(r"\brefnet[:_][a-z0-9_:]+", expression) if ":" not in n}


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return loaded


def test_promtool_accepts_the_scrape_configuration_and_the_rules() -> None:
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout


def test_the_alerts_fire_when_they_should_and_not_before() -> None:
    """deploy/prometheus/alerts_test.yml feeds series to every alert and checks each
    fires (labels and text) at the right time, and stays quiet before."""
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    covered = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "alerts_test.yml").read_text()))
    alerts = {r["alert"] for g in rules()["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == {
        "RefnetLoopClosureLow",
        "RefnetTimeoutsRising",
        "RefnetDeadLetters",
        "RefnetConsumerLagGrowing",
        "RefnetTaskRestarting",
        "RefnetLedgerWaiting",
        "RefnetViewSnapshotRejected",
    }
    assert covered == alerts


def test_rules_and_dashboard_name_only_metrics_the_worker_exports() -> None:
    known = exported()
    expressions = [r["expr"] for g in rules()["groups"] for r in g["rules"]]
    dashboard = json.loads((GRAFANA / "dashboards" / "refnet.json").read_text())
    expressions += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(names_in(e) for e in expressions))
    assert used - known == set()
    # labels are bounded: codes and party ids, never a patient or referral id
    for family in REGISTRY.collect():
        if family.name.startswith("refnet_"):
            for sample in family.samples:
                assert not {"referral_id", "patient_id", "patient"} & set(sample.labels)


def test_the_dashboard_is_a_grafana_dashboard_of_the_network() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "refnet.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Loop closure (7 days)", "Time to accept", "Consumer lag"} <= titles
    assert all(
        t["datasource"]["uid"] == "prometheus" for p in dashboard["panels"] for t in p["targets"]
    )
    source = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert source["datasources"][0]["uid"] == "prometheus"


def test_the_compose_file_runs_what_the_project_really_has() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "topics", "worker-1", "worker-2", "prometheus", "grafana"} <= set(
        services
    )
    for name in ("topics", "worker-1", "worker-2"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        # every REFNET_* variable is a real setting with a valid value
        Settings.from_env({k: str(v) for k, v in service["environment"].items()})
        command = service["command"]
        assert command in (["worker"], ["topics", "apply"])
    assert services["worker-1"]["environment"]["REFNET_STATUS_PORT"] == "8080"
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    port = services["worker-1"]["environment"]["REFNET_METRICS_PORT"]
    assert targets == [f"worker-1:{port}", f"worker-2:{port}"]
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            assert (DEPLOY / volume.split(":")[0]).exists(), volume
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (DEPLOY.parent / source).exists(), source


@pytest.mark.parametrize("path", ["alerts.yml", "alerts_test.yml", "prometheus.yml"])
def test_prometheus_files_are_yaml(path: str) -> None:
    assert yaml.safe_load((PROMETHEUS / path).read_text())
