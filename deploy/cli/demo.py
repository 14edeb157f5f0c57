"""``refnet demo``: see the whole network work, every party simulated."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from deploy.cli.common import Subparsers
from deploy.demo.run import run_demo
from deploy.demo.simulation import DemoOptions
from deploy.settings import Settings


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value <= 0:
            raise argparse.ArgumentTypeError("must be a positive number")
        return value

    return parse


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    options = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        speed=args.speed,
        json=args.json,
        keep=args.keep,
    )
    return asyncio.run(run_demo(settings, options))


def register(subparsers: Subparsers) -> None:
    """Add ``refnet demo`` to the CLI."""
    demo = subparsers.add_parser(
        "demo",
        help="see the whole network work: a sample region, clinics and organizations simulated",
        description=(
            "Start the embedded broker and database (or use the configured ones), import the "
            "Dallas sample region, provision its clinics, run a worker and simulate every "
            "party with time compressed; show live progress and end with a summary."
        ),
    )
    demo.add_argument(
        "--duration",
        type=_positive(float),
        default=45.0,
        help="seconds of simulation once the worker answers (default: %(default)s)",
    )
    demo.add_argument(
        "--rate",
        type=_positive(float),
        default=2.0,
        help="screenings per second (default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed of the screenings and decisions (default: random)",
    )
    demo.add_argument(
        "--speed",
        type=_positive(float),
        default=14400.0,
        help="network seconds per real second (default: %(default)s, 4 hours)",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print only the summary, as one JSON object (progress on stderr)",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="leave the demo's topics, the broker and the database in place",
    )
    demo.set_defaults(func=cmd_demo)
