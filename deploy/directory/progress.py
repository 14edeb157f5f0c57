"""How far an import got: a bar per phase while it runs (rich), a summary at the end.

The phases are ``organizations`` (provisioned), ``topics`` (created or checked)
and ``services`` (published). Bars go to stderr, so that the report on stdout
stays readable when redirected; the summary is part of the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TextIO

PHASES: Final = ("organizations", "topics", "services")


@dataclass
class Tally:
    """One phase's count: created, already there, failed, and not reached."""

    created: int = 0
    present: int = 0
    failed: int = 0
    left: int = 0


@dataclass
class Summary:
    """What an import did, phase by phase; ``error``: why it stopped, if it did."""

    tallies: dict[str, Tally] = field(default_factory=lambda: {p: Tally() for p in PHASES})
    error: str | None = None
    #: how many of each phase there are to do (set as each phase starts)
    totals: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, phase: str) -> Tally:
        return self.tallies[phase]

    @property
    def complete(self) -> bool:
        return self.error is None and not any(t.failed or t.left for t in self.tallies.values())

    def stopped(self, error: str) -> None:
        """Stop here: whatever of each phase is not counted yet was not reached."""
        self.error = error
        for phase, total in self.totals.items():
            t = self.tallies[phase]
            t.left = max(t.left, total - t.created - t.present - t.failed)

    def lines(self) -> list[str]:
        head = f"{'summary':<14}{'created':>9}{'already there':>15}{'failed':>8}{'not reached':>13}"
        rows = [
            f"{phase:<14}{t.created:>9}{t.present:>15}{t.failed:>8}{t.left:>13}"
            for phase, t in self.tallies.items()
        ]
        return [head, *rows]

    def print(self, out: TextIO) -> None:
        for line in self.lines():
            print(line, file=out)
        if self.error is not None:
            print(f"stopped: {self.error}", file=out)
            print("run the same import again: it finishes what this one began", file=out)


class Progress:
    """A bar per phase on stderr (rich), or nothing (``enabled`` False)."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as Bars

            console = Console(file=stream) if stream is not None else Console(stderr=True)
            self._bars = Bars(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            )

    def __enter__(self) -> Progress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()

    def phase(self, name: str, total: int) -> None:
        """Show the bar of ``name``, of ``total`` steps."""
        if self._bars is not None and name not in self._tasks:
            self._tasks[name] = self._bars.add_task(name, total=total)

    def advance(self, name: str, steps: int = 1) -> None:
        if self._bars is not None and name in self._tasks:
            self._bars.advance(self._tasks[name], steps)


__all__ = ["PHASES", "Progress", "Summary", "Tally"]
