"""The bench compares refnet's pipeline with the passthrough and every floor of the
same run: rate ratios, and the worker's CPU per screening beyond each floor's."""

from __future__ import annotations

from typing import Any

from deploy.bench.run import compare


def results() -> dict[str, Any]:
    return {
        "passthrough": {"messages_per_s": 10_000},
        "floors": {
            "pipeline": {"messages_per_s": 500.0, "cpu_s_per_1000": 2.0},
            "onehop": {"messages_per_s": 1_000.0, "cpu_s_per_1000": 1.0},
        },
        "pipeline": {"screenings_per_s": 450.0},
        "cost": {"cpu_s_per_1000": 2.4},
    }


def test_the_pipeline_is_compared_with_the_passthrough_and_each_floor() -> None:
    found, lines = results(), []
    compare(found, lines.append)
    pipeline = found["pipeline"]
    assert pipeline["ratio_to_passthrough"] == 0.045
    assert pipeline["ratio_to_pipeline_floor"] == 0.9
    assert pipeline["ratio_to_onehop_floor"] == 0.45
    assert pipeline["cpu_ms_beyond_pipeline_floor"] == 0.4
    assert pipeline["cpu_ms_beyond_onehop_floor"] == 1.4
    assert found["floors"]["onehop"]["ratio_to_passthrough"] == 0.1
    assert "   pipeline / pipeline floor = 0.900; CPU beyond it: +0.40 ms a screening" in lines


def test_without_the_pipeline_only_the_floors_are_compared_with_the_passthrough() -> None:
    found, lines = results(), []
    del found["pipeline"], found["cost"]
    compare(found, lines.append)
    assert found["floors"]["pipeline"]["ratio_to_passthrough"] == 0.05
    assert lines == []
