"""Run one refnet worker: ``refnet worker`` (and ``refnet run``)."""

from __future__ import annotations

import logging
import sys

import faust
from prometheus_client import start_http_server

from deploy.settings import Settings
from streams.app import build
from streams.supervise import install_log_redaction

log = logging.getLogger(__name__)


def run_worker(settings: Settings, bootstrap: str) -> int:
    """Run until SIGINT/SIGTERM. Topics must exist (``refnet topics apply``).

    A supervised task that keeps failing, or a table write the broker keeps
    refusing, ends the process with a non-zero status (see streams.supervise):
    a worker that cannot do its job stops instead of running deaf.
    """
    config = settings.network()
    problems = _partition_problems(settings, bootstrap)
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
    worker = faust.Worker(
        network.app,
        loglevel=settings.log_level.upper(),
        override_logging=True,
        redirect_stdouts=False,
    )
    install_log_redaction()
    worker.execute_from_commandline()
    return 0


def _partition_problems(settings: Settings, bootstrap: str) -> list[str]:
    """Refuse to start when the keyed state topics and the changelogs disagree.

    Faust would otherwise fail every table write (the changelog must have as
    many partitions as the topic whose keys it holds).
    """
    from connectors.kafka_admin import check_partitions, partition_advice
    from schemas.topics import Topics

    topics = Topics(
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    specs = topics.state_catalog(settings.app_id)
    problems = check_partitions(bootstrap, specs)
    if problems:
        problems.append(partition_advice(specs, bootstrap))
    return problems
