"""`refnet dev up --secure` keeps its secrets and data to its owner: the super user's password
is on no command line while the secured broker is formatted and started, and the broker's
and the database's data directories are 0700 with files no one else can read."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from deploy.local.broker import LocalBroker
from deploy.local.database import LocalDatabase
from deploy.settings import Settings

pytestmark = pytest.mark.integration


class CmdlineWatch(threading.Thread):
    """Reads every process's command line until stopped; keeps those naming ``marker``."""

    def __init__(self, marker: str, secret_file: Path) -> None:
        super().__init__(daemon=True)
        self.marker = marker
        self.secret_file = secret_file
        self.seen: set[str] = set()
        self.secret: str | None = None
        self.leaks: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            if self.secret is None and self.secret_file.exists():
                try:
                    document = json.loads(self.secret_file.read_text())
                    self.secret = document["kafka"]["sasl.password"]
                except (OSError, ValueError, KeyError):
                    pass
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or int(proc.name) == os.getpid():
                    continue
                try:
                    text = (
                        (proc / "cmdline")
                        .read_bytes()
                        .replace(b"\0", b" ")
                        .decode(errors="replace")
                    )
                except OSError:
                    continue
                if self.marker in text:
                    self.seen.add(text)
                if self.secret and self.secret in text:
                    self.leaks.append(text[:80])
            time.sleep(0.005)


def _leaky(root: Path) -> list[str]:
    """Whatever under ``root`` a group or other user may read, write or enter."""
    return [
        f"{path} {oct(stat.S_IMODE(path.lstat().st_mode))}"
        for path in [root, *root.rglob("*")]
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]


def test_the_secured_broker_keeps_its_password_and_data_to_its_owner(tmp_path: Path) -> None:
    settings = Settings.from_env()
    data_dir = tmp_path / "kafka-secure"
    data_dir.mkdir(mode=0o755)  # as an older refnet left it: narrowed at start
    broker = LocalBroker(
        data_dir,
        cache_dir=settings.cache_dir,
        version=settings.kafka_version,
        port=0,
        heap="384m",
        secure=True,
    )
    watch = CmdlineWatch(str(data_dir), broker.operator_path)
    watch.start()
    try:
        broker.start(tie_to_parent=True)
        time.sleep(1.0)
    finally:
        watch.done.set()
        watch.join(5)
        broker.stop()
    assert watch.secret, "the operator's password was never written"
    assert any("kafka.Kafka" not in text for text in watch.seen), "format was never seen"
    assert watch.leaks == []
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    # what the JVM wrote (metadata log segments, its own logs) and the directories
    assert [p for p in (data_dir / "kraft").rglob("*.log") if p.is_file()]
    for tree in ("kraft", "logs"):
        assert _leaky(data_dir / tree) == []
    assert _leaky(data_dir / "tls") == [f"{data_dir / 'tls' / 'ca.pem'} 0o644"]  # public
    assert not list(data_dir.rglob("*.args"))  # the argument files are gone


def test_the_database_data_directory_is_its_owners_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "db"
    data_dir.mkdir(mode=0o755)
    db = LocalDatabase(data_dir)
    db.start()
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(db.pgdata.stat().st_mode) == 0o700
    finally:
        db.stop()
