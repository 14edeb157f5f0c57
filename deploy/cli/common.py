"""What the commands share: the subparsers they add themselves to, ``export`` lines."""

from __future__ import annotations

import shlex
from typing import Any

#: What ``add_subparsers()`` returns: each command module adds its parser to it.
Subparsers = Any


def env_line(name: str, value: str) -> str:
    """``export NAME=value``, quoted for a POSIX shell: ``eval "$(refnet dev up)"`` then
    hands the variables to every later command (``refnet topics apply``, ``refnet worker``)."""
    return f"export {name}={shlex.quote(value)}"


def print_env(lines: list[tuple[str, str]]) -> None:
    for name, value in lines:
        print(env_line(name, value))
