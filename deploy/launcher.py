"""``refnet worker`` as a child process: how the demo, the bench and the tests start one.

The worker runs in a session of its own (``start_new_session``), so that stopping
it can reach whatever it started; its output goes to a log file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

#: The module whose ``worker`` command runs a worker (its settings in the environment).
WORKER_MODULE = "deploy.cli"


def worker_env(
    settings: Mapping[str, str], *, inherit_refnet: bool = False, drop: Collection[str] = ()
) -> dict[str, str]:
    """This process's environment with ``settings`` added.

    This process's own ``REFNET_*`` settings are left out unless ``inherit_refnet``;
    the names in ``drop`` are always left out.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in drop and (inherit_refnet or not name.startswith("REFNET_"))
    }
    env.update(settings)
    return env


def start_worker(
    env: Mapping[str, str],
    log: Path,
    *,
    profile: str | None = None,
    cwd: Path | None = None,
    module: str = WORKER_MODULE,
) -> subprocess.Popen[bytes]:
    """Start ``refnet worker`` with ``env``, its output appended to ``log``.

    ``profile``: run it under cProfile timed by its main thread's CPU
    (:mod:`deploy.bench.cpu_profile`), the statistics written to that path.
    ``module``: another entry with a ``worker`` command (a test's, that hooks the worker).
    """
    python = [sys.executable]
    if profile:
        python = [sys.executable, "-m", "deploy.bench.cpu_profile", profile]
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*python, *([] if profile else ["-m"]), module, "worker"],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(
    proc: subprocess.Popen[bytes] | None, *, timeout: float = 30.0, group: bool = False
) -> int | None:
    """SIGTERM the worker, SIGKILL it after ``timeout``; wait for it; its exit status.

    ``group``: signal its whole process group, and kill what is left of it at the end.
    None when there was no worker or it had already exited.
    """
    if proc is None or proc.poll() is not None:
        return None
    _signal(proc, signal.SIGTERM, group)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal(proc, signal.SIGKILL, group)
        code = proc.wait(timeout=10)
    if group:  # anything it started
        _signal(proc, signal.SIGKILL, group)
    return code


def _signal(proc: subprocess.Popen[bytes], number: signal.Signals, group: bool) -> None:
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, number)
    else:
        proc.send_signal(number)


__all__ = ["WORKER_MODULE", "start_worker", "stop_worker", "worker_env"]
