"""``refnet settings``: every REFNET_* setting, its default and what it does."""

from __future__ import annotations

import argparse

from deploy.cli.common import Subparsers
from deploy.settings import Settings, describe


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    for name, default, text in describe():
        print(f"{name}\t{default}\t{text}")
    return 0


def register(sub: Subparsers) -> None:
    sub.add_parser("settings", help="list every REFNET_* setting").set_defaults(func=cmd_settings)
