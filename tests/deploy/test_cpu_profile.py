"""``--profile-worker`` profiles by the main thread's CPU, so waiting is not counted."""

from __future__ import annotations

import pstats
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import time

def spin():
    end = time.thread_time() + 0.2
    while time.thread_time() < end:
        pass

def wait():
    time.sleep(1.0)

spin()
wait()
"""


def test_a_module_s_cpu_is_profiled_and_its_sleep_is_not(tmp_path: Path) -> None:
    (tmp_path / "profiled_program.py").write_text(PROGRAM)
    out = tmp_path / "cpu.prof"
    subprocess.run(
        [sys.executable, "-m", "deploy.bench.cpu_profile", str(out), "profiled_program"],
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{Path.cwd()}"},
        timeout=60,
    )
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    cumulative = {name: entry[3] for (_, _, name), entry in stats.items()}
    assert cumulative["spin"] >= 0.15
    # a wall-clock profile would give the sleep its whole second
    assert cumulative["wait"] < 0.1
