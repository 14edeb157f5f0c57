"""The worker's observer counts each event in the metric operators know it by."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from prometheus_client import REGISTRY

from connectors.observability.observer import NullObserver, PrometheusObserver, WorkerObserver

#: observer call -> (metric sample, labels, how much it adds)
CALLS: list[tuple[str, tuple[Any, ...], str, dict[str, str], float]] = [
    ("ingress_routed", ("command.submission",), "refnet_ingress_messages_total",
     {"routed_as": "command.submission"}, 1),
    ("command_applied", ("referrals", "open"), "refnet_commands_total",
     {"agent": "referrals", "kind": "open"}, 1),
    ("output_produced", ("referral.offered",), "refnet_outputs_total",
     {"event_type": "referral.offered"}, 1),
    ("dead_lettered", ("internal",), "refnet_dead_letters_total", {"kind": "internal"}, 1),
    ("offer_timed_out", (), "refnet_offer_timeouts_total", {}, 1),
    ("task_restarted", ("timer",), "refnet_task_restarts_total", {"task": "timer"}, 1),
    ("offsets_skipped", ("patients", 3), "refnet_skipped_offsets_total", {"agent": "patients"}, 3),
    ("partition_poked", ("referrals",), "refnet_pokes_total", {"agent": "referrals"}, 1),
    ("internal_error", ("patients", "KeyError"), "refnet_internal_errors_total",
     {"agent": "patients", "error": "KeyError"}, 1),
    ("send_retried", ("referrals",), "refnet_send_retries_total", {"agent": "referrals"}, 1),
    ("changelog_loaded", ("referrals", 5), "refnet_changelog_loaded_records_total",
     {"table": "referrals"}, 5),
    ("changelog_load_failed", ("referrals",), "refnet_changelog_load_failures_total",
     {"table": "referrals"}, 1),
    ("view_snapshot", ("written",), "refnet_view_snapshots_total", {"event": "written"}, 1),
    ("view_snapshot_rejected", ("checksum",), "refnet_view_snapshots_rejected_total",
     {"reason": "checksum"}, 1),
]  # fmt: skip


def value(sample: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(sample, labels) or 0.0


@pytest.mark.parametrize(("call", "args", "sample", "labels", "adds"), CALLS)
def test_each_event_counts_in_its_metric(
    call: str, args: tuple[Any, ...], sample: str, labels: dict[str, str], adds: float
) -> None:
    before = value(sample, labels)
    getattr(PrometheusObserver(), call)(*args)
    assert value(sample, labels) == before + adds
    getattr(NullObserver(), call)(*args)
    assert value(sample, labels) == before + adds


def test_every_event_of_the_interface_is_counted_and_tested() -> None:
    events = {n for n, _ in inspect.getmembers(WorkerObserver, inspect.isfunction) if n[0] != "_"}
    assert events == {call for call, *_ in CALLS}
    for observer in (PrometheusObserver, NullObserver):
        assert events <= {n for n, _ in inspect.getmembers(observer, inspect.isfunction)}


@pytest.mark.parametrize(("call", "args", "sample", "labels", "adds"), CALLS[:3])
def test_every_message_counts_again_on_the_same_observer(
    call: str, args: tuple[Any, ...], sample: str, labels: dict[str, str], adds: float
) -> None:
    observer = PrometheusObserver()
    before = value(sample, labels)
    for _ in range(3):
        getattr(observer, call)(*args)
    assert value(sample, labels) == before + 3 * adds


def test_an_encounter_routed_counts_its_outcome_each_time() -> None:
    observer = PrometheusObserver()
    labels = {"outcome": "alerted", "recipient": "clinic"}
    before = value("refnet_encounters_routed_total", labels)
    outputs = value("refnet_outputs_total", {"event_type": "encounter.routed"})
    for _ in range(2):
        observer.output_produced("encounter.routed:alerted:clinic")
    assert value("refnet_encounters_routed_total", labels) == before + 2
    assert value("refnet_outputs_total", {"event_type": "encounter.routed"}) == outputs + 2
