"""``refnet bench``: what refnet costs, measured in one run on the embedded broker."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.cli.common import Subparsers
from deploy.local.broker import LocalBroker
from deploy.settings import Settings

if TYPE_CHECKING:
    from deploy.bench.kafka import Out


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    # imported here: the other commands (a worker among them) do not load the bench
    from deploy.bench.run import run_bench

    out: Out = (
        (lambda line: print(line, file=sys.stderr, flush=True))
        if args.json
        else (lambda line: print(line, flush=True))
    )
    if settings.kafka_bootstrap:
        bootstrap = settings.kafka_bootstrap
        broker = None
    else:
        broker = LocalBroker(
            Path(tempfile.mkdtemp(prefix="refnet-bench-kafka-")),
            cache_dir=settings.cache_dir,
            version=settings.kafka_version,
            port=0,
            heap="1g",
        )
        out("# starting an embedded broker for the benchmark...")
        bootstrap = broker.start().bootstrap
    try:
        results = asyncio.run(run_bench(bootstrap, args, out))
    finally:
        if broker is not None:
            broker.stop()
    if args.json:
        print(json.dumps(results))
    return 0


def register(sub: Subparsers) -> None:
    bench = sub.add_parser(
        "bench", help="measure refnet on the embedded broker (prints figures; asserts nothing)"
    )
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--full", action="store_true", help="the issue's sizes (10^6 events)")
    bench.add_argument("--screenings", type=int, default=3000, help="screenings at saturation")
    bench.add_argument("--messages", type=int, default=30000, help="passthrough messages")
    bench.add_argument("--rates", type=int, nargs="+", default=[50, 200], help="latency rates/s")
    bench.add_argument(
        "--profile-worker",
        metavar="PATH",
        help="cProfile the pipeline's worker by its main thread's CPU, statistics to PATH",
    )
    bench.add_argument(
        "--only",
        nargs="+",
        choices=["passthrough", "floors", "pipeline", "ranking", "startup", "deadlines", "restore"],
        help="run only these parts",
    )
    bench.set_defaults(func=cmd_bench)
