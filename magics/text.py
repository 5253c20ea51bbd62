"""Plain-text views of hardware, deployments and logs, for terminals and nbval."""

from __future__ import annotations

import time


def format_bytes(size: float) -> str:
    """Render a byte count with a binary unit (e.g. 23.4 GiB)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def format_hardware(profile: dict) -> str:
    """Render a hardware profile as a few aligned lines."""
    lines = [
        f"CPU      {profile['cpu_model']} ({profile['cpu_cores_physical']} cores, "
        f"{profile['cpu_cores_logical']} threads)",
        f"RAM      {format_bytes(profile['ram_available'])} free of "
        f"{format_bytes(profile['ram_total'])}",
    ]
    if profile["gpus"]:
        for gpu in profile["gpus"]:
            lines.append(
                f"GPU {gpu['index']}    {gpu['name']}: {format_bytes(gpu['memory_free'])} free of "
                f"{format_bytes(gpu['memory_total'])}"
            )
    else:
        lines.append(f"GPU      none ({profile['gpu_note']})")
    if profile["apple_silicon"]:
        lines.append("Apple    Apple Silicon (Metal)")
    for engine in profile["engines"]:
        state = f"yes {engine['version']}" if engine["available"] else f"no: {engine['reason']}"
        lines.append(f"engine   {engine['name']:<9} {state}")
    return "\n".join(lines)


def format_age(since: float) -> str:
    """Render how long ago a timestamp was (e.g. 3m12s)."""
    seconds = max(0, int(time.time() - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_deployments(deployments: list[dict]) -> str:
    """Render deployments as a table: name, status, engine, replicas, model, age."""
    if not deployments:
        return "No deployments. Start one with: %kz deploy smollm2"
    rows = [("NAME", "STATUS", "ENGINE", "REPLICAS", "MODEL", "AGE")]
    for d in deployments:
        ready = sum(1 for r in d["replicas"] if r["status"] == "DEPLOYED")
        rows.append(
            (
                d["name"],
                d["status"] + (f" ({d['error']['code']})" if d.get("error") else ""),
                d.get("engine") or "-",
                f"{ready}/{len(d['replicas'])}",
                d["model"],
                format_age(d["created_at"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_transition(entry: dict, started: float) -> str:
    """Render one status transition with the time since the deploy began."""
    detail = f"  {entry['detail']}" if entry.get("detail") else ""
    return f"{entry['status']:<14} +{entry['at'] - started:5.1f}s{detail}"


def format_failure(record: dict) -> str:
    """Render a failed deployment's error code, message and remediation."""
    error = record.get("error") or {}
    return (
        f"{record['name']} {record['status']} [{error.get('code', '?')}] "
        f"{error.get('message', '')}\n  What to do: {error.get('remediation', '')}"
    )


def format_log_event(event: dict) -> str:
    """Render one followed log line, marked with '!' and its code when it is an issue."""
    mark = f"! [{event['issue']}] " if event.get("issue") else "  "
    return f"{event['replica']} {mark}{event['line']}"


def format_logs(logs: dict) -> str:
    """Render each replica's log tail, marking detected issue lines with '!'."""
    parts = []
    for replica, data in logs["replicas"].items():
        flagged = {number: code for number, code, _ in data["issues"]}
        parts.append(f"== {replica}")
        for number, line in enumerate(data["lines"]):
            mark = f"! [{flagged[number]}] " if number in flagged else "  "
            parts.append(mark + line)
    return "\n".join(parts) if parts else f"No logs for {logs['name']} yet."
