"""Run one refnet worker: ``refnet worker`` (and ``refnet run``)."""

from __future__ import annotations

import logging

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
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", settings.metrics_port)
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
