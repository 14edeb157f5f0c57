"""REFNET_LINKAGE_SECRET: set, refused when short, or generated once for local development."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.settings import Settings, SettingsError


def test_a_set_secret_is_used_and_never_shown(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"REFNET_LINKAGE_SECRET": "s" * 24, "REFNET_DATA_DIR": str(tmp_path)}
    )
    assert settings.linkage_secret_bytes() == b"s" * 24
    assert settings.network().linkage_secret == b"s" * 24
    assert "s" * 24 not in repr(settings) and "s" * 24 not in repr(settings.network())
    assert not (tmp_path / "linkage-secret.json").exists()


def test_a_short_secret_stops_the_worker_before_it_starts(tmp_path: Path) -> None:
    env = {"REFNET_LINKAGE_SECRET": "short", "REFNET_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(env)
    with pytest.raises(SettingsError, match="REFNET_LINKAGE_SECRET: at least 16 bytes"):
        settings.network()


def test_without_one_a_secret_is_generated_once_into_an_owner_only_file(tmp_path: Path) -> None:
    settings = Settings.from_env({"REFNET_DATA_DIR": str(tmp_path)})
    first = settings.linkage_secret_bytes()
    path = tmp_path / "linkage-secret.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 16
    assert Settings.from_env({"REFNET_DATA_DIR": str(tmp_path)}).linkage_secret_bytes() == first


def test_a_damaged_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "linkage-secret.json").write_text('{"secret": "tiny"}')
    with pytest.raises(SettingsError, match="too short"):
        Settings.from_env({"REFNET_DATA_DIR": str(tmp_path)}).linkage_secret_bytes()
