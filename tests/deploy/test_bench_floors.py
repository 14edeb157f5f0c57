"""The bench's floors are bare Faust apps of refnet's own topology: the pipeline's
re-key is a plain consumer group in the worker's process, as refnet's ingress is,
not a third Faust agent (which refnet does not pay for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.bench.floor_app import TOPOLOGIES, build
from deploy.bench.floors import NAMES


def agents_of(topology: str, tmp_path: Path) -> set[str]:
    app = build("localhost:1", "floortest", topology, tmp_path)
    return {agent.name.rsplit(".", 1)[-1] for agent in app.agents.values()}


def test_refnets_floor_re_keys_outside_faust_then_runs_one_agent(tmp_path: Path) -> None:
    app = build("localhost:1", "floortest", "rekey-onehop", tmp_path)
    assert {agent.name.rsplit(".", 1)[-1] for agent in app.agents.values()} == {
        "patient_and_referral"
    }
    assert set(app.tables) == {"patients", "referrals"}


def test_the_pipeline_floor_re_keys_outside_faust_then_runs_two_agents(tmp_path: Path) -> None:
    assert agents_of("pipeline", tmp_path) == {"patient", "referral"}


def test_the_all_faust_pipeline_floor_is_kept_for_comparison(tmp_path: Path) -> None:
    assert agents_of("pipeline-faust", tmp_path) == {"rekey", "patient", "referral"}


def test_the_one_hop_floor_is_one_agent(tmp_path: Path) -> None:
    assert agents_of("onehop", tmp_path) == {"onehop"}


def test_every_topology_is_named_in_the_output() -> None:
    assert set(NAMES) == set(TOPOLOGIES)


def test_an_unknown_topology_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown topology"):
        build("localhost:1", "floortest", "threehop", tmp_path)
