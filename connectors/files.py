"""Owner-only files: credentials, API tokens and the token store are written here.

A private file lives in a directory only its owner may enter (0700) and holds
mode 0600 from its first byte: it is written beside its final name and renamed
over it, so a reader sees the old document or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def private_dir(path: Path) -> None:
    """Create ``path``'s directory if needed, and make it owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)


def write_private_json(path: Path, document: dict[str, Any], *, sort_keys: bool = False) -> None:
    """Write ``document`` to ``path`` with mode 0600 from the first byte (atomic rename)."""
    private_dir(path)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=sort_keys)
        handle.write("\n")
    partial.replace(path)


__all__ = ["private_dir", "write_private_json"]
