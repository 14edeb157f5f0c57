"""Every part of ``refnet bench``, one after the other, on one broker."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from deploy.bench.decisions import deadlines, ranking
from deploy.bench.floors import floors
from deploy.bench.kafka import (
    Out,
)
from deploy.bench.passthrough import passthrough
from deploy.bench.pipeline import pipeline
from deploy.bench.recovery import restore, startup


# ---------------------------------------------------------------- the command
async def run_bench(bootstrap: str, args: argparse.Namespace, out: Out) -> dict[str, Any]:
    full = args.full
    history = [100_000, 1_000_000] if full else [10_000, 100_000]
    opens = [100_000, 1_000_000]
    restored = 1_000_000 if full else 100_000
    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    }
    with tempfile.TemporaryDirectory(prefix="refnet-bench-") as tmp:
        data_dir = Path(tmp)
        only = set(args.only or [])

        def wanted(name: str) -> bool:
            return not only or name in only

        if wanted("passthrough"):
            results["passthrough"] = await passthrough(bootstrap, args.messages, out)
        if wanted("floors"):
            results["floors"] = await floors(bootstrap, data_dir, args.screenings, out)
        if wanted("pipeline"):
            profile = getattr(args, "profile_worker", None)
            results.update(
                await pipeline(
                    bootstrap, data_dir, args.screenings, args.rates, out, profile=profile
                )
            )
        if wanted("ranking"):
            results["ranking"] = ranking([10, 1_000, 10_000], out)
        if wanted("startup"):
            results["startup"] = await startup(bootstrap, data_dir, history, out)
        if wanted("deadlines"):
            results["deadlines"] = deadlines(opens, out)
        if wanted("restore"):
            results["restore"] = await restore(bootstrap, data_dir, restored, out)
    compare(results, out)
    return results


def compare(results: dict[str, Any], out: Out) -> None:
    """The pipeline against the passthrough and each floor of the same run: its rate's
    ratio to theirs and, against each floor, the worker's CPU per screening beyond
    the floor's per message (refnet's own code, more steady than a rate on a shared
    machine). Adds them to ``results`` and prints them."""
    pipeline, passthrough = results.get("pipeline"), results.get("passthrough")
    if pipeline is not None and passthrough is not None:
        ratio = pipeline["screenings_per_s"] / passthrough["messages_per_s"]
        pipeline["ratio_to_passthrough"] = round(ratio, 4)
        out(f"   pipeline / passthrough = {ratio:.3f}")
    cost = results.get("cost")
    for topology, floor in results.get("floors", {}).items():
        if passthrough is not None:
            floor["ratio_to_passthrough"] = round(
                floor["messages_per_s"] / passthrough["messages_per_s"], 4
            )
        if pipeline is None:
            continue
        ratio = pipeline["screenings_per_s"] / floor["messages_per_s"]
        pipeline[f"ratio_to_{topology}_floor"] = round(ratio, 4)
        line = f"   pipeline / {topology} floor = {ratio:.3f}"
        if cost is not None:
            beyond = cost["cpu_s_per_1000"] - floor["cpu_s_per_1000"]
            pipeline[f"cpu_ms_beyond_{topology}_floor"] = round(beyond, 3)
            line += f"; CPU beyond it: {beyond:+.2f} ms a screening"
        out(line)
