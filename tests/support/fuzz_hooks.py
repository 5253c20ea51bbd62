"""Schemathesis hooks for tests/test_fuzz.py: generated requests keep off the one deployment the
test checks afterwards, never follow a log forever, ask it for short answers, and never start
a real engine installation (a llama.cpp build takes 8 minutes: the fuzzing learns engine names
from GET /kz/api/engines)."""

from __future__ import annotations

import schemathesis

KEPT = "keeper"  # the deployment the fuzzing must not stop, restart or re-share
MAX_TOKENS = 32  # the kept engine answers within the request timeout


@schemathesis.hook
def before_call(ctx, case, kwargs) -> None:
    """Edit a generated request just before it is sent."""
    if case.query and "follow" in case.query:
        case.query["follow"] = "false"  # a followed log streams until the deployment stops
    if case.operation.path == "/kz/api/engines/{name}/install" and case.method == "POST":
        case.path_parameters["name"] = "not-an-engine"
    elif case.method != "GET" and (case.path_parameters or {}).get("name") == KEPT:
        case.path_parameters["name"] = f"{KEPT}-not-this-one"
    body = case.body
    if isinstance(body, dict) and body.get("model") == KEPT:
        body["max_tokens"] = MAX_TOKENS
