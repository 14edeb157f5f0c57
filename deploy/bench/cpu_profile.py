"""Run a module under cProfile timed by its main thread's CPU, not the wall clock.

``python -m deploy.bench.cpu_profile OUT MODULE ARGS...``: on a shared or virtual
machine a wall-clock profile counts the time a call waits to be scheduled (a
socket send waking the broker) as that call's; CPU time is what a worker costs.
The statistics are written to OUT when the module returns or the process is
asked to stop (SIGTERM, as the worker is stopped).
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, module, *args = sys.argv[1:]
    profiler = cProfile.Profile(time.thread_time)
    sys.argv = [module, *args]
    profiler.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
