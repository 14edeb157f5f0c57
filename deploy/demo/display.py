"""What the demo shows: progress lines, the live panel (rich) and the summary."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from deploy.demo.simulation import DemoOptions, Simulation
from deploy.demo.tally import Tally
from deploy.report import percent

if TYPE_CHECKING:
    pass


# ---------------------------------------------------------------- output
class Output:
    """Progress for people: rich on a terminal (stdout), plain lines on stderr with --json."""

    def __init__(self, as_json: bool) -> None:
        from rich.console import Console

        self.as_json = as_json
        self.console = Console(stderr=as_json, highlight=False)

    def say(self, text: str) -> None:
        if self.as_json:
            print(f"# {text}", file=sys.stderr, flush=True)
        else:
            self.console.print(f"[dim]·[/dim] {text}")


# ---------------------------------------------------------------- display
def render(sim: Simulation | None, options: DemoOptions, phase: str) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    hours_per_second = options.speed / 3600
    if sim is None or sim.started_at is None:
        title = f"refnet demo · {phase}"
        return Panel(title, border_style="cyan")
    tally = sim.tally
    summary = tally.summary()
    counts = Table.grid(padding=(0, 2))
    counts.add_column(justify="left")
    counts.add_column(justify="right")
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(tally.rejected.items()))
    rows = [
        ("screenings", str(summary["screenings"])),
        ("needs", str(summary["needs"])),
        ("offers", str(summary["offers"])),
        ("accepted", str(summary["accepted"])),
        ("rejected", f"{summary['rejected']}" + (f" ({rejected})" if rejected else "")),
        ("timeouts", str(summary["timeouts"])),
        ("completed", str(summary["completed"])),
        ("unmatched", str(sum(tally.unmatched.values()))),
        ("consent required", str(tally.consent_required)),
        ("loop closure", percent(summary["loop_closure_rate"])),
        ("median time to accept", _accept_text(summary["median_time_to_accept_s"], options.speed)),
        ("hospital ADT sent / AA", f"{summary['adt_sent']} / {summary['adt_acknowledged']}"),
        (
            "encounter alerts",
            f"clinics {summary['alerts_to_clinics']}, "
            f"organizations {summary['alerts_to_organizations']}",
        ),
    ]
    for name, value in rows:
        counts.add_row(name, value)
    by_category = Table(box=None, padding=(0, 1), show_edge=False)
    by_category.add_column("category", no_wrap=True)
    for _, head in CATEGORY_COLUMNS:
        by_category.add_column(head, justify="right")
    for category, counter in sorted(tally.by_category.items()):
        by_category.add_row(category, *(str(counter[k]) for k, _ in CATEGORY_COLUMNS))
    recent = "\n".join(tally.recent[-6:]) or "..."
    title = (
        f"refnet demo · Dallas sample region · {hours_per_second:g} h of network time per "
        f"second · {min(sim.elapsed(), options.duration):.0f} s of {options.duration:.0f} · "
        f"{phase}"
    )
    return Panel(
        Group(counts, "", by_category, "", f"[dim]{recent}[/dim]"),
        title=title,
        border_style="cyan",
    )


#: Columns of the live table by category: the tally's key, and the heading.
CATEGORY_COLUMNS: Final = (
    ("offered", "offers"),
    ("accepted", "acc."),
    ("rejected", "rej."),
    ("timeouts", "t/o"),
    ("completed", "done"),
    ("unmatched", "unm."),
)
#: How the summary's keys read in the terminal.
SUMMARY_LABELS: Final = {
    "loop_closure_rate": "loop-closure rate",
    "median_time_to_accept_s": "median time to accept",
    "adt_sent": "hospital ADT sent",
    "adt_acknowledged": "ADT acknowledged (AA)",
    "alerts_to_clinics": "encounter alerts to clinics",
    "alerts_to_organizations": "encounter alerts to organizations",
}


def _accept_text(seconds: float | None, speed: float) -> str:
    if seconds is None:
        return "-"
    network = timedelta(seconds=seconds * speed)
    return f"{seconds:.1f} s (≈ {network.total_seconds() / 3600:.1f} h of network time)"


def print_summary(
    tally: Tally, options: DemoOptions, seed: int, output: Output, *, interrupted: bool
) -> None:
    summary = tally.summary()
    if options.json:
        print(json.dumps(summary), flush=True)
        return
    from rich.table import Table

    table = Table(
        title="refnet demo: summary" + (" (interrupted)" if interrupted else ""),
        show_header=False,
        title_justify="left",
    )
    table.add_column("what")
    table.add_column("", justify="right")
    for key, value in summary.items():
        if key == "unmatched":
            shown = ", ".join(f"{k} {v}" for k, v in value.items()) or "0"
        elif key == "loop_closure_rate":
            shown = percent(value)
        elif key == "median_time_to_accept_s":
            shown = _accept_text(value, options.speed)
        else:
            shown = str(value)
        table.add_row(SUMMARY_LABELS.get(key, key), shown)
    output.console.print(table)
    output.console.print(
        f"[dim]seed {seed} · loop closure: the share of the referrals offered to an "
        "organization whose organization reported the outcome (completed or failed) before "
        "the end, as the status page and refnet report count it; "
        "time to accept counts from the referral's first offer[/dim]"
    )
