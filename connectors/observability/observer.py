"""What a worker reports as it runs, and the Prometheus metrics that count it.

The runtime calls a :class:`WorkerObserver` (``observer.dead_lettered(kind)``,
``observer.command_applied(agent, kind)``...) and never a metric itself: the
composition root (:func:`streams.runtime.app.build`) wires a
:class:`PrometheusObserver`, tests pass a :class:`NullObserver` or a recorder
of their own. Metric names and labels are those of
:mod:`connectors.observability.metrics`.
"""

from __future__ import annotations

from typing import Any, Protocol

from connectors.observability import metrics


class WorkerObserver(Protocol):
    """The events of a worker that operators count."""

    def ingress_routed(self, routed_as: str) -> None:
        """The ingress read a party message and sent it ``routed_as`` (an output label)."""

    def command_applied(self, agent: str, kind: str) -> None:
        """An owner agent applied a command of ``kind``."""

    def output_produced(self, event_type: str) -> None:
        """An owner produced a message (its label) and the broker acknowledged it."""

    def dead_lettered(self, kind: str) -> None:
        """A message went to the dead-letter topic as ``kind``."""

    def offer_timed_out(self) -> None:
        """A timer found an offer past its respond_by."""

    def task_restarted(self, task: str) -> None:
        """A supervised task or a timer's round failed (and runs again)."""

    def offsets_skipped(self, agent: str, count: int) -> None:
        """Faust let ``count`` input records by; the agent read them back."""

    def partition_poked(self, agent: str) -> None:
        """A quiet partition with records not applied was sent a poke."""

    def internal_error(self, agent: str, error: str) -> None:
        """An agent failed on a command (dead-lettered as internal)."""

    def send_retried(self, agent: str) -> None:
        """Producing an agent's outputs failed and is tried again."""

    def changelog_loaded(self, table: str, records: int) -> None:
        """A table loaded ``records`` changelog records in bulk."""

    def changelog_load_failed(self, table: str) -> None:
        """A bulk changelog load failed (Faust's recovery reads those partitions)."""

    def view_snapshot(self, event: str) -> None:
        """A snapshot of the network view was ``written`` or ``read``."""

    def view_snapshot_rejected(self, reason: str) -> None:
        """A snapshot was found but not used, for ``reason``."""


class NullObserver:
    """Counts nothing."""

    def ingress_routed(self, routed_as: str) -> None:
        pass

    def command_applied(self, agent: str, kind: str) -> None:
        pass

    def output_produced(self, event_type: str) -> None:
        pass

    def dead_lettered(self, kind: str) -> None:
        pass

    def offer_timed_out(self) -> None:
        pass

    def task_restarted(self, task: str) -> None:
        pass

    def offsets_skipped(self, agent: str, count: int) -> None:
        pass

    def partition_poked(self, agent: str) -> None:
        pass

    def internal_error(self, agent: str, error: str) -> None:
        pass

    def send_retried(self, agent: str) -> None:
        pass

    def changelog_loaded(self, table: str, records: int) -> None:
        pass

    def changelog_load_failed(self, table: str) -> None:
        pass

    def view_snapshot(self, event: str) -> None:
        pass

    def view_snapshot_rejected(self, reason: str) -> None:
        pass


def _encounter_routed(label: str) -> str:
    """Count an encounter's routing (labelled ``encounter.routed:{outcome}:{recipient
    kind}``) in ``refnet_encounters_routed_total``; the label without its detail."""
    kind, _, detail = label.partition(":")
    if kind != "encounter.routed" or not detail:
        return label
    outcome, _, recipient = detail.partition(":")
    metrics.ENCOUNTERS_ROUTED.labels(outcome, recipient or "none").inc()
    return kind


class PrometheusObserver:
    """Counts each event in the worker's Prometheus metrics.

    The counters of every message (ingress, commands, outputs) keep their
    labelled children: ``labels()`` checks and locks on each call, several times
    a screening. The label values are the metric's own bounded ones."""

    def __init__(self) -> None:
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def ingress_routed(self, routed_as: str) -> None:
        self._child(metrics.INGRESS, _encounter_routed(routed_as)).inc()

    def command_applied(self, agent: str, kind: str) -> None:
        self._child(metrics.COMMANDS, agent, kind).inc()

    def output_produced(self, event_type: str) -> None:
        self._child(metrics.OUTPUTS, _encounter_routed(event_type)).inc()

    def dead_lettered(self, kind: str) -> None:
        metrics.DEAD_LETTERS.labels(kind).inc()

    def offer_timed_out(self) -> None:
        metrics.TIMEOUTS.inc()

    def task_restarted(self, task: str) -> None:
        metrics.TASK_RESTARTS.labels(task).inc()

    def offsets_skipped(self, agent: str, count: int) -> None:
        metrics.SKIPPED_OFFSETS.labels(agent).inc(count)

    def partition_poked(self, agent: str) -> None:
        metrics.POKES.labels(agent).inc()

    def internal_error(self, agent: str, error: str) -> None:
        metrics.INTERNAL_ERRORS.labels(agent, error).inc()

    def send_retried(self, agent: str) -> None:
        metrics.SEND_RETRIES.labels(agent).inc()

    def changelog_loaded(self, table: str, records: int) -> None:
        metrics.CHANGELOG_LOADED.labels(table).inc(records)

    def changelog_load_failed(self, table: str) -> None:
        metrics.CHANGELOG_LOAD_FAILURES.labels(table).inc()

    def view_snapshot(self, event: str) -> None:
        metrics.VIEW_SNAPSHOTS.labels(event).inc()

    def view_snapshot_rejected(self, reason: str) -> None:
        metrics.VIEW_SNAPSHOT_REJECTED.labels(reason).inc()


#: the observer the worker runs with
PROMETHEUS = PrometheusObserver()
#: the observer of a component built without one
NULL = NullObserver()

__all__ = ["NULL", "PROMETHEUS", "NullObserver", "PrometheusObserver", "WorkerObserver"]
