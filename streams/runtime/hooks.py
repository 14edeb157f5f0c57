"""Points where a test may step into a running worker (nothing is hooked in production).

:func:`streams.runtime.app.build` takes a :class:`Hooks`; a test that needs a
worker to crash at a precise step builds the app with one (see
``tests/network/crashing_worker.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Hooks:
    """Callbacks the worker calls at fixed points of its protocol."""

    #: called with the agent's name once a batch's state (and outbox) is durable and
    #: before its outputs are produced, when the batch has outputs
    after_state: Callable[[str], None] | None = None


__all__ = ["Hooks"]
