"""The root of every error refnet raises for a cause it can name.

Each package's own errors (bad settings, a credentials file that is not one, a
directory that cannot be read, a broker that will not start...) derive from
:class:`RefnetError`, so the CLI reports any of them as one line and an exit
status of 2 without listing them by hand. Errors that are bugs stay Python's own.
"""

from __future__ import annotations


class RefnetError(Exception):
    """An error whose message says what was wrong and what to do about it."""


__all__ = ["RefnetError"]
