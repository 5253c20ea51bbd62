"""What every suite hands back, and how it is shown: a table on stdout, JSON, a PNG of bars."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from tabulate import tabulate


@dataclass
class Goal:
    """A target from the issue, and whether this run met it."""

    text: str
    value: float
    met: bool


@dataclass
class Chart:
    """One panel of grouped bars: for each group (x), one bar per series."""

    title: str
    ylabel: str
    groups: list[str]
    series: dict[str, list[float]]

    @classmethod
    def from_rows(
        cls, title: str, ylabel: str, groups: list[str], rows: list[dict], columns: dict[str, str]
    ) -> Chart:
        """A chart of table rows: one series per {label: column of the rows}."""
        return cls(
            title, ylabel, groups, {label: [r[key] for r in rows] for label, key in columns.items()}
        )


@dataclass
class SuiteResult:
    """A suite's figures: rows for the table, notes and goals for the reader, charts to draw."""

    suite: str
    title: str
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    details: dict = field(default_factory=dict)


def timing_rows(column: str, samples: dict[str, list[float]]) -> list[dict]:
    """One row per labelled list of seconds: how many, median, least, most."""
    return [
        {column: label, "runs": len(values), "p50 s": statistics.median(values),
         "min s": min(values), "max s": max(values)}
        for label, values in samples.items()
    ]  # fmt: skip


def p50_chart(title: str, rows: list[dict], column: str) -> Chart:
    """Bars of the p50 seconds of timing_rows, one per row."""
    return Chart.from_rows(title, "seconds", [r[column] for r in rows], rows, {"p50": "p50 s"})


def machine() -> dict:
    """What ran the benchmark, for the JSON."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def provenance() -> dict:
    """The command and the commit it ran on ('-dirty' when files had changed since)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"command": " ".join(["python -m bench", *sys.argv[1:]]), "commit": commit}


def readable(value: object) -> object:
    """A number rounded for reading (the JSON keeps every digit); anything else as it is."""
    if not isinstance(value, float) or value != value:  # not a float, or NaN
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def table(result: SuiteResult, style: str = "simple") -> str:
    """The suite's rows as a text table."""
    rows = [{key: readable(value) for key, value in row.items()} for row in result.rows]
    return tabulate(rows, headers="keys", tablefmt=style, disable_numparse=True)


def show(result: SuiteResult) -> str:
    """The suite as text: title, table, notes, goals."""
    lines = [f"== {result.title} ==", table(result)]
    lines += [f"  {note}" for note in result.notes]
    for goal in result.goals:
        lines.append(f"  goal {'met' if goal.met else 'NOT met'}: {goal.text} ({goal.value:.3g})")
    return "\n".join(lines)


def write_json(result: SuiteResult, folder: Path, quick: bool) -> Path:
    """Write NAME.json: the rows, notes, goals, charts, details and the machine."""
    path = folder / f"{result.suite}.json"
    body = {"quick": quick, "machine": machine(), **provenance(), **asdict(result)}
    path.write_text(json.dumps(body, indent=2, default=str))
    return path


def write_plot(result: SuiteResult, folder: Path) -> Path | None:
    """Write NAME.png: one panel of grouped bars per chart; None when the suite has no chart."""
    if not result.charts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [max(4.2, 1.1 * len(chart.groups)) for chart in result.charts]
    figure, axes = plt.subplots(
        1, len(result.charts), figsize=(sum(widths), 4.0), squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )  # fmt: skip
    for ax, chart in zip(axes[0], result.charts, strict=True):
        width = 0.8 / max(1, len(chart.series))
        for index, (label, values) in enumerate(chart.series.items()):
            positions = [
                g + (index - (len(chart.series) - 1) / 2) * width for g in range(len(values))
            ]
            ax.bar(positions, values, width, label=label)
        slanted = {"rotation": 30, "ha": "right"} if len(chart.groups) > 4 else {}
        ax.set_xticks(range(len(chart.groups)), chart.groups, fontsize=8, **slanted)
        ax.set_title(chart.title, fontsize=9)
        ax.set_ylabel(chart.ylabel, fontsize=8)
        if len(chart.series) > 1:
            ax.legend(fontsize=7)
    figure.suptitle(result.title, fontsize=10)
    figure.tight_layout()
    path = folder / f"{result.suite}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_markdown(
    results: list[SuiteResult], folder: Path, command: str, name: str = "report.md"
) -> Path:
    """Write report.md (or name): every suite's table, notes and goals, and the command that
    made them."""
    parts = [f"Produced by `{command}` on {machine()['logical_cores']} cores.\n"]
    for result in results:
        parts.append(f"### {result.title}\n\n{table(result, 'github')}\n")
        parts += [f"- {note}" for note in result.notes]
        parts += [
            f"- goal {'met' if g.met else '**not met**'}: {g.text} ({g.value:.3g})"
            for g in result.goals
        ]
        parts.append("")
    path = folder / name
    path.write_text("\n".join(parts))
    return path
