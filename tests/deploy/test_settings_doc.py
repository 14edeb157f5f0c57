"""docs/settings.md's table is the one `Settings` renders: CI fails when they drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import settings_table
from deploy.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


@pytest.fixture(autouse=True)
def _no_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in settings_table.XDG_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def test_the_documented_table_is_the_generated_one() -> None:
    assert settings_table.current(DOC.read_text()) == settings_table.render(), (
        "run: python -m deploy.settings_table --write docs/settings.md"
    )


def test_every_setting_has_a_row_and_a_meaning() -> None:
    rows = settings_table.render().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for name, row in zip(Settings.model_fields, rows, strict=True):
        assert row.startswith(f"| `REFNET_{name.upper()}` |")
        assert not row.endswith("|  |"), f"REFNET_{name.upper()} has no description"


def test_defaults_read_as_a_user_would_set_them() -> None:
    table = settings_table.render()
    assert "| `REFNET_DEFAULT_RESPONSE_SLA` | `P1D` |" in table
    assert "| `REFNET_DATA_DIR` | `~/.local/state/refnet` |" in table
    assert "| `REFNET_GATEWAY_DEV_HTTP_WEBHOOKS` | `false` |" in table
    assert "| `REFNET_STANDBY_REPLICAS` | `0` |" in table
    assert "| `REFNET_KAFKA_BOOTSTRAP` |  |" in table


def test_rewrite_replaces_only_the_table() -> None:
    stale = f"intro\n{settings_table.BEGIN}\n| old |\n{settings_table.END}\noutro\n"
    fresh = settings_table.rewrite(stale)
    assert fresh.startswith(f"intro\n{settings_table.BEGIN}\n")
    assert fresh.endswith(f"{settings_table.END}\noutro\n")
    assert settings_table.current(fresh) == settings_table.render()
    assert settings_table.rewrite(fresh) == fresh


def test_check_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "settings.md"
    doc.write_text(f"{settings_table.BEGIN}\n| old |\n{settings_table.END}\n")
    assert settings_table.main(["--check", str(doc)]) == 1
    assert "--write" in capsys.readouterr().err
    assert settings_table.main(["--write", str(doc)]) == 0
    assert settings_table.main(["--check", str(doc)]) == 0


def test_a_document_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="settings-table:begin"):
        settings_table.rewrite("no table here\n")
