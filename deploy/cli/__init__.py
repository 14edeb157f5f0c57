"""The ``refnet`` command line: the edge where settings are read and output printed.

One module per command; each adds its parser (``register``) and runs it (``cmd_*``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from deploy.cli import (
    bench,
    demo,
    dev,
    directory,
    gateway,
    mllp,
    provision,
    report,
    run,
    schemas,
    settings,
    topics,
)
from deploy.settings import Settings
from schemas.errors import RefnetError

#: The commands, in the order ``refnet --help`` lists them.
COMMANDS = (
    dev,
    topics,
    provision,
    schemas,
    run,
    settings,
    bench,
    directory,
    demo,
    report,
    gateway,
    mllp,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refnet",
        description="refnet: closed-loop social-needs referrals over Apache Kafka.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(Settings.from_env(), args))
    except RefnetError as exc:
        print(f"refnet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
