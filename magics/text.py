"""Plain-text views of hardware, deployments, logs, replies and sources, for terminals and nbval."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kz_jupyter.client.replies import Reply


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


def format_engines(engines: list[dict]) -> str:
    """Render each engine: usable or not (and why), version, and the environment it runs from."""
    rows = [("ENGINE", "USABLE", "VERSION", "ENVIRONMENT")]
    reasons = []
    for engine in engines:
        rows.append(
            (
                engine["name"],
                "yes" if engine["available"] else "no",
                engine["version"] or "-",
                engine["environment"],
            )
        )
        if not engine["available"]:
            reasons.append(f"{engine['name']}: {engine['reason']}")
    return "\n".join([format_table(rows), *reasons])


def format_age(since: float) -> str:
    """Render how long ago a timestamp was (e.g. 3m12s)."""
    seconds = max(0, int(time.time() - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_deployments(deployments: list[dict]) -> str:
    """Render deployments as a table: name, status, engine, replicas, model, age, owner, who
    else sees it."""
    if not deployments:
        return "No deployments. Start one with: %kz deploy smollm2"
    rows = [("NAME", "STATUS", "ENGINE", "REPLICAS", "MODEL", "AGE", "OWNER", "SHARED")]
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
                d.get("owner") or "-",
                d.get("visibility", "private"),
            )
        )
    return format_table(rows)


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Render rows (the first is the header) as left-aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


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


def format_search(result: dict) -> str:
    """Render search results: Hub repos, presets and models already here."""
    lines = []
    if result["hub"]:
        lines.append("Hub (most downloaded first):")
        for model in result["hub"]:
            formats = ",".join(model["formats"]) or "-"
            gated = "  gated" if model["gated"] else ""
            lines.append(
                f"  {model['repo_id']:<48} {model['downloads']:>9} downloads "
                f"{model['likes']:>5} likes  {formats}{gated}"
            )
    elif result.get("hub_error"):
        lines.append(f"Hub: {result['hub_error']}")
    else:
        lines.append(f"Hub: nothing matches '{result['query']}'.")
    for preset in result["presets"]:
        lines.append(f"preset  {preset['name']:<24} {preset['model']}  {preset['description']}")
    for model in result["local"]:
        lines.append(
            f"here    {model['name']:<24} {format_bytes(model['size'])}  {model['source']}"
        )
    return "\n".join(lines)


TASK_SERVES = {"embed": "embeddings (/v1/embeddings)", "rerank": "reranking (/v1/rerank)"}


def format_plan(plan: dict) -> str:
    """Render a plan: engine and why, files, context, memory verdict, other engines."""
    memory = plan["memory"]
    verdict = "fits" if memory["fits"] else "does NOT fit" + (" (forced)" if plan["forced"] else "")
    where = plan["repo_id"] or plan["model_path"]
    lines = [
        f"model    {plan['model']} ({plan['source']}: {where})",
        f"engine   {plan['engine']} {plan.get('engine_version', '')}: {plan['engine_reason']}"
        + (f" (runs from {plan['engine_program']})" if plan.get("engine_program") else ""),
        f"files    {plan['variant']}: " + ", ".join(plan["files"]),
    ]
    if plan["download_bytes"]:
        lines.append(f"download {format_bytes(plan['download_bytes'])} still to fetch")
    lines += [
        f"context  {plan['context_length']} tokens"
        + (
            f" per request, {plan['parallel']} parallel requests"
            if plan.get("parallel", 1) > 1
            else ""
        ),
        f"chat     {'yes' if plan['can_chat'] else 'no'}: {plan['chat_reason']}",
        *([f"serves   {TASK_SERVES[plan['task']]}"] if plan.get("task") in TASK_SERVES else []),
        *(
            [f"adapters {', '.join(plan['lora_adapters'])}: ask for DEPLOYMENT/ADAPTER"]
            if plan.get("lora_adapters")
            else []
        ),
        *([f"draft    {plan['draft_model_path']}"] if plan.get("draft_model_path") else []),
        *([f"KV cache {plan['kv_cache_type']}"] if plan.get("kv_cache_type") else []),
        f"memory   {format_bytes(memory['total'])} estimated vs "
        f"{format_bytes(memory['available'])} {memory['device']} free: {verdict}",
        f"         weights {format_bytes(memory['weights'])}, KV cache "
        f"{format_bytes(memory['kv_cache'])}, buffers {format_bytes(memory['compute'])}, "
        f"engine {format_bytes(memory['overhead'])}",
    ]
    for engine, reason in plan["rejected"].items():
        lines.append(f"not {engine}: {reason}")
    return "\n".join(lines)


def format_models(models: list[dict]) -> str:
    """Render the models on the machine: size, format, quants, last use, users."""
    if not models:
        return "No models here yet. Download one with: %kz pull REPO"
    rows = [("MODEL", "SIZE", "FORMAT", "QUANTS", "LAST USED", "USED BY", "SOURCE")]
    for m in models:
        rows.append(
            (
                m["name"],
                format_bytes(m["size"]),
                ",".join(m["formats"]) or "-",
                ",".join(m["quants"]) or "-",
                format_age(m["last_used"]) + " ago",
                ",".join(m.get("used_by", [])) or "-",
                m["source"],
            )
        )
    return format_table(rows)


def format_deletion(plan: dict) -> str:
    """Render what deleting a cached model frees (or freed)."""
    verb = "Deleted" if plan["deleted"] else "Would delete"
    head = f"{verb} {plan['name']}: {format_bytes(plan['freed_bytes'])} freed"
    if plan["deleted"]:
        return head + "."
    return f"{head}.\n  " + "\n  ".join(plan["paths"][:10]) + "\nRun again with --yes to delete."


def format_audit(entries: list[dict]) -> str:
    """Render audit entries: when, who, what, on what, details."""
    if not entries:
        return "The audit log is empty."
    rows = [("WHEN", "USER", "ACTION", "TARGET", "DETAILS")]
    for entry in entries:
        known = ("at", "user", "action", "target")
        details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in known)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["at"]))
        rows.append((when, entry["user"], entry["action"], entry["target"], details))
    return format_table(rows)


def format_reply_figures(reply: Reply, max_tokens: int) -> str:
    """How a reply came: time to first token, tokens, tokens/s, and how it ended early."""
    parts = []
    if reply.ttft is not None:
        parts.append(f"TTFT {reply.ttft * 1000:.0f} ms")
    if reply.completion_tokens:
        parts.append(f"{reply.completion_tokens} tokens")
    if reply.tokens_per_s:
        parts.append(f"{reply.tokens_per_s:.1f} tok/s")
    if reply.stopped:
        parts.append("stopped")
    elif reply.finish_reason == "length":
        parts.append(f"cut at --max-tokens {max_tokens}")
    return " · ".join(parts)
