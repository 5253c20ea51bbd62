"""An OpenAI-compatible server that echoes: `python -m kz_echo_engine.server --model F ...`."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def prompt_text(body: dict) -> str:
    """A chat's last user text, or a completion's prompt."""
    if "messages" in body:
        users = [m.get("content") or "" for m in body["messages"] if m.get("role") == "user"]
        return users[-1] if users else ""
    return str(body.get("prompt", ""))


def reply_text(body: dict) -> str:
    """The answer to a chat or completion request: its last user text, echoed."""
    return f"echo: {prompt_text(body)}"


def usage_of(body: dict) -> dict:
    """Token counts as this engine counts them: one token per word of prompt and reply."""
    prompt, completion = len(prompt_text(body).split()), len(reply_text(body).split(" "))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


class EchoHandler(BaseHTTPRequestHandler):
    """Serves /v1/models, /v1/chat/completions and /v1/completions."""

    served_name = "echo"
    word_delay = 0.0  # seconds between streamed words (--word-delay)

    def do_GET(self) -> None:
        """List the one model."""
        if self.path != "/v1/models":
            return self._json(404, {"error": {"message": "not found"}})
        self._json(200, {"object": "list", "data": [{"id": self.served_name, "object": "model"}]})

    def do_POST(self) -> None:
        """Answer a chat or a completion, streamed as server-sent events when asked."""
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            return self._json(404, {"error": {"message": "not found"}})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        chat = self.path.endswith("chat/completions")
        text = reply_text(body)
        ident = self.headers.get("X-Request-Id") or f"echo-{uuid.uuid4().hex[:12]}"
        base = {"id": ident, "created": int(time.time()), "model": self.served_name}
        if not body.get("stream"):
            choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            return self._json(
                200,
                base
                | {
                    "object": "chat.completion" if chat else "text_completion",
                    "choices": [{"index": 0, "finish_reason": "stop", **choice}],
                    "usage": usage_of(body),
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in text.split(" "):
            piece = {"delta": {"content": word + " "}} if chat else {"text": word + " "}
            chunk = base | {
                "object": "chat.completion.chunk" if chat else "text_completion",
                "choices": [{"index": 0, "finish_reason": None, **piece}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(self.word_delay)
        if (body.get("stream_options") or {}).get("include_usage"):
            last = base | {"object": "chat.completion.chunk" if chat else "text_completion",
                           "choices": [], "usage": usage_of(body)}  # fmt: skip
            self.wfile.write(f"data: {json.dumps(last)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, status: int, data: dict) -> None:
        """Send a JSON answer."""
        encoded = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


def main() -> None:
    """Check the model file is there, then serve until killed."""
    parser = argparse.ArgumentParser()
    for option in ("--model", "--name", "--host", "--port"):
        parser.add_argument(option, required=True)
    parser.add_argument("--word-delay", type=float, default=0.0)
    args = parser.parse_args()
    size = Path(args.model).stat().st_size  # a missing model fails like a real engine's would
    print(f"echo engine: serving {args.model} ({size} bytes) as {args.name}", flush=True)
    EchoHandler.served_name = args.name
    EchoHandler.word_delay = args.word_delay
    ThreadingHTTPServer((args.host, int(args.port)), EchoHandler).serve_forever()


if __name__ == "__main__":
    main()
