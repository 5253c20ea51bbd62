"""Plain-text views of the figures (`%kz top`, `%kz stats`, `%kz usage`) for terminals and
nbval: tables with units on every figure, and series as one-line plots."""

from __future__ import annotations

from kz_jupyter.magics.text import format_bytes, format_table

LEVELS = "▁▂▃▄▅▆▇█"


def spark(values: list[float | None]) -> str:
    """A series as a line of block characters, lowest to highest (no value: a dot)."""
    known = [v for v in values if v is not None]
    top = max(known, default=0) or 1
    return "".join(
        "·" if v is None else LEVELS[min(int(v / top * len(LEVELS)), len(LEVELS) - 1)]
        for v in values
    )


def rate(value: float | None, unit: str) -> str:
    """A rate with its unit, or '-'."""
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def millis(seconds: float | None) -> str:
    """Seconds as milliseconds, or '-'."""
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def count(value: float | None) -> str:
    """A gauge's value as a whole number, or '-' when the engine publishes none."""
    return "-" if value is None else f"{value:.0f}"


def machine_line(sample: dict) -> str:
    """The machine's use in one line: CPU, RAM and each GPU's memory and utilization."""
    parts = [
        f"CPU {sample['cpu_percent']:.0f}%",
        f"RAM {format_bytes(sample['ram_used'])} used of {format_bytes(sample['ram_total'])}",
    ]
    for gpu in sample["gpus"]:
        busy = "" if gpu["utilization"] is None else f", {gpu['utilization']}% busy"
        parts.append(
            f"GPU {gpu['index']} {format_bytes(gpu['memory_used'])} used of "
            f"{format_bytes(gpu['memory_total'])}{busy}"
        )
    return "machine  " + "  ".join(parts)


def deployment_cells(d: dict) -> tuple[str, ...]:
    """A deployment's figures as table cells (see STATS_HEADER)."""
    now, gauges = d["now"], d["engine_gauges"]
    return (
        d["name"],
        d["status"],
        str(now["requests"]),
        rate(now["requests_per_s"], "req/s"),
        rate(now["tokens_per_s"], "tok/s"),
        millis(now["ttft_p50"]),
        millis(now["ttft_p95"]),
        rate(now["decode_tokens_per_s"], "tok/s"),
        str(d["in_flight"]),
        count(gauges.get("queue")),
        f"~{format_bytes(d['memory'])}" if d["memory"] else "-",
    )


STATS_HEADER = (
    "DEPLOYMENT", "STATUS", "REQUESTS", "REQ/S", "TOK/S", "TTFT P50", "TTFT P95", "GENERATION",
    "IN FLIGHT", "QUEUE", "MEMORY",
)  # fmt: skip


def format_stats(stats: dict) -> str:
    """The figures: a table of the last minute per deployment, each one's series over the
    span as plots, and the machine's use now."""
    deployments = stats["deployments"]
    if not deployments:
        return "No deployments. Start one with: %kz deploy smollm2"
    lines = [
        f"last {stats['now_seconds']:.0f} s:",
        format_table([STATS_HEADER, *(deployment_cells(d) for d in deployments)]),
        f"last {stats['span']:.0f} s, one point every {stats['step']:.0f} s:",
    ]
    for d in deployments:
        series, queue = d["series"], d["gauges"]["queue"]
        plots = [
            f"req/s {spark(series['requests_per_s'])}",
            f"tok/s {spark(series['tokens_per_s'])}",
            f"TTFT p95 {spark(series['ttft_p95'])}",
        ]
        if any(v is not None for v in queue):
            plots.append(f"queue {spark(queue)}")
        lines.append(f"{d['name']}  " + "  ".join(plots))
    samples = stats["machine"]["samples"]
    if samples:
        lines.append(machine_line(samples[-1]))
    return "\n".join(lines)


def format_usage(usage: dict) -> str:
    """Requests and tokens per user and deployment, as a table."""
    rows = usage["usage"]
    whose = "every user" if usage["admin"] else f"{usage['user']} (admins see every user)"
    if not rows:
        return f"No requests yet since the server started ({whose})."
    table = [("USER", "DEPLOYMENT", "REQUESTS", "PROMPT TOKENS", "COMPLETION TOKENS")]
    table += [
        (r["user"], r["deployment"], str(r["requests"]), str(r["prompt_tokens"]),
         str(r["completion_tokens"]))
        for r in rows
    ]  # fmt: skip
    return f"Since the server started, {whose}:\n" + format_table(table)
