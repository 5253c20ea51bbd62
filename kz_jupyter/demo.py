"""Headless demo: deploy the default model, ask it a question, print the reply, stop it.

Run with `python -m kz_jupyter.demo [MODEL] [QUESTION]`; it uses the same client as the magics,
against the enclosing Jupyter server or the embedded one.
"""

from __future__ import annotations

import sys
import time

from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError

DEFAULT_MODEL = "smollm2"
DEFAULT_QUESTION = "What is the capital of France? Answer in one word."


def run(model: str = DEFAULT_MODEL, question: str = DEFAULT_QUESTION) -> int:
    """Deploy, chat, stop; return a process exit status."""
    started = time.monotonic()
    client = KzClient()
    print(f"kz server: {client.connection.base_url} ({client.connection.source})")
    record = client.deploy(model)
    name = record["name"]
    try:
        final = client.wait(
            name,
            on_transition=lambda e: print(f"  {e['status']:<13} {e['detail']}", flush=True),
        )
        if final["status"] != "DEPLOYED":
            error = final["error"]
            print(f"{name} {final['status']} [{error['code']}] {error['message']}")
            print(f"  What to do: {error['remediation']}")
            return 1
        print(f"deployed in {time.monotonic() - started:.1f} s; asking: {question}")
        messages = [{"role": "user", "content": question}]
        for text in client.chat(name, messages, max_tokens=64, temperature=0):
            print(text, end="", flush=True)
        print()
        return 0
    finally:
        print(f"{name}: {client.stop(name)['status']}")


def main() -> None:
    """Entry point for `python -m kz_jupyter.demo`."""
    args = sys.argv[1:]
    try:
        sys.exit(run(*args[:2]))
    except KzError as error:
        print(f"kz: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
