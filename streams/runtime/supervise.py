"""Supervision: no task of a worker dies unseen, and no log line carries patient data.

Every long-running task of a worker (ingress, network view, ledger sink) runs
under :class:`Supervisor`: a failure is logged with the exception's type only
(messages may hold values, and values may be patient data), counted in
``refnet_task_restarts_total{task}``, and the task is started again after a
backoff that doubles from 0.5 s to 30 s. A task that fails again and again
without a healthy stretch in between (``max_failures`` in a row) ends the
process with a non-zero status through :func:`fatal`: a worker that cannot
read its parties' topics must stop, so that its partitions move to a worker
that can, instead of running deaf.

:func:`fatal` exits at once (``os._exit``): no offset is committed after it, so
whatever the worker had not finished is read again by the next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from connectors.observability.observer import NULL, WorkerObserver
from connectors.retry import Backoff

log = logging.getLogger(__name__)

#: Exit status of a worker stopped by :func:`fatal` (EX_SOFTWARE).
FATAL_EXIT = 70


def fatal(reason: str) -> None:
    """Log ``reason`` (no patient data) and end the process with :data:`FATAL_EXIT`."""
    log.critical("worker stopping: %s", reason)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # exiting anyway
            handler.flush()
    sys.stderr.flush()
    os._exit(FATAL_EXIT)


@dataclass
class Supervised:
    name: str
    factory: Callable[[], Awaitable[None]]
    failures: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Runs named coroutines forever, restarting them with backoff when they fail."""

    def __init__(
        self,
        *,
        max_failures: int = 6,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
        healthy_after: float = 60.0,
        on_fatal: Callable[[str], None] = fatal,
        observer: WorkerObserver = NULL,
    ) -> None:
        self.max_failures = max_failures
        self.backoff = Backoff(first=first_backoff, cap=max_backoff)
        self.healthy_after = healthy_after
        self._on_fatal = on_fatal
        self._observer = observer
        self._tasks: list[Supervised] = []

    def start(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        entry = Supervised(name, factory)
        entry.task = asyncio.create_task(self._run(entry), name=f"supervised-{name}")
        self._tasks.append(entry)

    async def stop(self) -> None:
        for entry in self._tasks:
            if entry.task is not None:
                entry.task.cancel()
        for entry in self._tasks:
            if entry.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await entry.task
        self._tasks.clear()

    def failures(self, name: str) -> int:
        return sum(e.failures for e in self._tasks if e.name == name)

    async def _run(self, entry: Supervised) -> None:
        while True:
            started = time.monotonic()
            failed: Exception | None
            try:
                await entry.factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the point: nothing dies unseen
                failed = exc
            else:
                failed = None
            if time.monotonic() - started >= self.healthy_after:
                entry.failures = 0
            entry.failures += 1
            self._observer.task_restarted(entry.name)
            what = f"{type(failed).__name__}" if failed is not None else "returned"
            if entry.failures >= self.max_failures:
                self._on_fatal(
                    f"task {entry.name} failed {entry.failures} times in a row (last: {what})"
                )
                return
            delay = self.backoff.delay(entry.failures)
            log.error(
                "task %s failed (%s, %d in a row); restarting in %.1fs",
                entry.name,
                what,
                entry.failures,
                delay,
            )
            await asyncio.sleep(delay)


# ---------------------------------------------------------------- log redaction
_PUBLISH_ERROR = re.compile(r"_on_published error for message topic (\S+) error (.*?) message <")


class _RedactFaustSends(logging.Filter):
    """faust logs a failed send with the whole message, value included: keep topic and error."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if "_on_published error" in text:
            match = _PUBLISH_ERROR.search(text)
            topic = match.group(1) if match else "?"
            error = match.group(2).split(":")[0][:200] if match else "?"
            record.msg = "send to %s failed: %s (message not logged: it may hold patient data)"
            record.args = (topic, error)
        return True


_REDACTED_LOGGERS = ("faust.topics", "faust.transport.producer", "faust.tables.base")


def install_log_redaction() -> None:
    """Attach the redacting filters (idempotent)."""
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactFaustSends) for f in logger.filters):
            logger.addFilter(_RedactFaustSends())


__all__ = ["FATAL_EXIT", "Supervisor", "fatal", "install_log_redaction"]
