"""What the commands share: the shape of a command, and ``export`` lines for a shell."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any

from deploy.settings import Settings

#: A command: the settings and the parsed arguments in, an exit status out.
Command = Callable[[Settings, argparse.Namespace], int]
#: What ``add_subparsers()`` returns: each command module adds its parser to it.
Subparsers = Any


def env_line(name: str, value: str) -> str:
    """``export NAME=value``, quoted for a POSIX shell: ``eval "$(refnet dev up)"`` then
    hands the variables to every later command (``refnet topics apply``, ``refnet worker``)."""
    return f"export {name}={shlex.quote(value)}"


def print_env(lines: list[tuple[str, str]]) -> None:
    for name, value in lines:
        print(env_line(name, value))
