"""Run one refnet worker: ``refnet worker`` (and ``refnet run``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Any

import faust
from prometheus_client import start_http_server

from connectors.kafka.auth import KafkaAuth
from deploy.environment import topics_for
from deploy.settings import Settings
from streams.runtime.app import build
from streams.runtime.supervise import install_log_redaction

log = logging.getLogger(__name__)

#: Exit status of a worker that did not stop within its grace period (128 + SIGTERM).
GRACE_EXPIRED_EXIT = 143


class GracefulWorker(faust.Worker):
    """Faust's worker, with a bound on how long stopping may take.

    The first SIGTERM or SIGINT starts Faust's orderly stop (agents finish the
    event in hand, offsets are committed, the producer is flushed) and a watchdog
    thread: if the process still runs ``grace`` seconds later, whatever the broker
    or an agent is doing, it logs why and exits with :data:`GRACE_EXPIRED_EXIT`.
    Nothing is lost by that: offsets not committed are read again by the next owner.
    """

    def __init__(self, *args: Any, grace: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grace = grace
        self._watchdog: threading.Timer | None = None

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._grace, self._grace_expired, args=(signal.name,))
            self._watchdog.daemon = True
            self._watchdog.start()
        super()._schedule_shutdown(signal)

    async def _sentinel_task(self) -> None:
        """The last callbacks' turn before the event loop closes, once everything has
        stopped: mode gives them a whole second at every stop, a tenth is plenty."""
        await asyncio.sleep(0.1)

    def _grace_expired(self, name: str) -> None:
        log.critical(
            "worker did not stop within %.0fs of %s (REFNET_SHUTDOWN_GRACE): exiting now; "
            "uncommitted input is read again by the next owner",
            self._grace,
            name,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(GRACE_EXPIRED_EXIT)


def run_worker(settings: Settings, bootstrap: str) -> int:
    """Run until SIGINT/SIGTERM. Topics must exist (``refnet topics apply``).

    A signal stops the worker cleanly within ``REFNET_SHUTDOWN_GRACE`` seconds
    (else it exits anyway with status 143: see :class:`GracefulWorker`).

    A supervised task that keeps failing, or a table write the broker keeps
    refusing, ends the process with a non-zero status (see streams.runtime.supervise):
    a worker that cannot do its job stops instead of running deaf.
    """
    config = settings.network()
    problems = _partition_problems(settings, bootstrap, config.kafka_auth)
    if problems:
        print("refnet worker: the state topics' partitions do not match:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.http_host)
        log.info("metrics on http://%s:%d/metrics", settings.http_host, settings.metrics_port)
    (config.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    network = build(config, bootstrap)
    worker = GracefulWorker(
        network.app,
        grace=settings.shutdown_grace,
        loglevel=settings.log_level.upper(),
        override_logging=True,
        redirect_stdouts=False,
    )
    install_log_redaction()
    worker.execute_from_commandline()
    return 0


def _partition_problems(settings: Settings, bootstrap: str, auth: KafkaAuth) -> list[str]:
    """Refuse to start when the keyed state topics and the changelogs disagree.

    Faust would otherwise fail every table write (the changelog must have as
    many partitions as the topic whose keys it holds).
    """
    from connectors.kafka.admin import check_partitions, partition_advice

    specs = topics_for(settings).state_catalog(settings.app_id)
    problems = check_partitions(bootstrap, specs, auth=auth)
    if problems:
        problems.append(partition_advice(specs, bootstrap))
    return problems
