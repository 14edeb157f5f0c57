"""An ingress loop on a thread of its own, with its own event loop and producer.

The organizations' updates' consumer names every organization's partition in each
fetch and decodes each in the response (aiokafka has no incremental fetch
sessions), and refreshes the metadata of every topic for its pattern: with
thousands of organizations, tens of milliseconds at a time during which an event
loop does nothing else. On the worker's own loop, every hop of a screening would
wait behind that; on a thread of its own it holds the interpreter for at most
the switch interval (5 ms) at a time.

What the thread shares with the worker's loop is read only: the network's state
(``services``, a dict the worker's loop replaces entries of; a lookup is atomic
under the GIL), the topics, the limits. Its producer, its quota and its consumer
are its own; the counters it bumps (Prometheus) are thread-safe.

:meth:`ThreadedIngress.run` is a coroutine of the worker's loop, run under the
supervisor like any loop: it ends when the thread's ingress ends (with its
error), and a cancellation (the worker stopping) stops the thread's ingress,
which commits what it has acknowledged, and waits for the thread to end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaProducer

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from streams.runtime.ingress import Ingress
from streams.runtime.partitioner import PARTITIONER

log = logging.getLogger(__name__)

#: builds the ingress, given the thread's own producer
IngressFactory = Callable[[AIOKafkaProducer], Ingress]


class ThreadedIngress:
    """Runs ``build(producer)``'s ingress on a thread named ``name``."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        build: IngressFactory,
        *,
        auth: KafkaAuth = PLAINTEXT,
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.auth = auth
        self._build = build
        self._ready = ready
        #: the ingress the thread runs now (None between two runs)
        self.ingress: Ingress | None = None

    async def run(self) -> None:
        if self._ready is not None:
            await self._ready()  # on the worker's loop: the view it waits for lives there
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self.name, daemon=True)
        thread.start()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        outcome = asyncio.wrap_future(done)
        started = asyncio.run_coroutine_threadsafe(_started(self._own(), done), loop)
        try:
            task = await asyncio.shield(asyncio.wrap_future(started))
            await asyncio.shield(outcome)
        finally:
            if not done.done():  # the worker stopping: stop the thread's ingress too
                task = started.result(timeout=5)  # started on the thread's loop by now
                loop.call_soon_threadsafe(task.cancel)
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await outcome  # it commits what it acknowledged, and stops
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
            loop.close()

    async def _own(self) -> None:
        """On the thread's loop: a producer of its own, and the ingress."""
        producer = clients.producer(self.bootstrap, self.auth, partitioner=PARTITIONER)
        await producer.start()
        try:
            self.ingress = self._build(producer)
            log.info("%s runs on a thread of its own", self.name)
            await self.ingress.run()
        finally:
            self.ingress = None
            await producer.stop()


async def _started(
    work: Coroutine[Any, Any, None], done: concurrent.futures.Future[None]
) -> asyncio.Task[None]:
    """On the thread's loop: ``work`` as a task whose outcome ``done`` receives."""

    def settle(task: asyncio.Task[None]) -> None:
        if task.cancelled():
            done.cancel()
        elif task.exception() is not None:
            done.set_exception(task.exception())
        else:
            done.set_result(None)

    task = asyncio.ensure_future(work)
    task.add_done_callback(settle)
    return task


__all__ = ["ThreadedIngress"]
