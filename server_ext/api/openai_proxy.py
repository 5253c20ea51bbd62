"""The OpenAI-compatible proxy: routes by `model` to a healthy replica and streams bytes back."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from kz_jupyter.planning.engine_contract import load_engines, requested_features
from kz_jupyter.server_ext.access.sharing import can_see
from kz_jupyter.server_ext.api.base import KzAPIHandler
from kz_jupyter.server_ext.api.metrics import outcome_of
from kz_jupyter.server_ext.api.open_answers import SHUTDOWN_CODE, SHUTDOWN_MESSAGE
from kz_jupyter.server_ext.api.request_window import FinishedRequest
from kz_jupyter.server_ext.api.token_usage import UsageTap, asking_for_usage
from kz_jupyter.server_ext.lifecycle.routing import RouteRefused
from kz_jupyter.states import DeploymentStatus

UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)
REQUEST_ID_HEADER = "X-Request-Id"
OVERHEAD_HEADER = "X-Kz-Overhead-Ms"  # from the request's arrival to its forwarding, in ms
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PASSED_RESPONSE_HEADERS = ("Content-Type", "Cache-Control")
# An engine's server error that says the request asks for something it does not do.
UNSUPPORTED = re.compile(r"not (?:supported|implemented)|unsupported", re.I)
# (message, code) for a request a deployment's task cannot serve: by the deployment's task, or
# for a text-generating deployment by the route's.
TASK_REFUSALS = {
    "embed": ("'{name}' is an embedding model: use /v1/embeddings.", "embeddings_only"),
    "rerank": ("'{name}' is a reranking model: use /v1/rerank.", "rerank_only"),
}
GENERATOR_REFUSALS = {
    "embed": (
        "'{name}' generates text and serves no embeddings: deploy an embedding model (for "
        "example %kz deploy all-minilm-l6-v2).",
        "embeddings_not_supported",
    ),
    "rerank": (
        "'{name}' generates text and does not rerank: deploy a reranker GGUF (a cross-encoder "
        "such as bge-reranker-v2-m3-GGUF).",
        "rerank_not_supported",
    ),
}


def error_body(message: str, error_type: str, code: str) -> str:
    """An error in the OpenAI wire format."""
    return json.dumps({"error": {"message": message, "type": error_type, "code": code}})


class OpenAIErrorMixin:
    """Answer errors in the OpenAI wire format, so OpenAI clients show the message."""

    def openai_error(self, status: int, message: str, error_type: str, code: str):
        """Finish the request with an OpenAI-style error body (nothing when it was ended)."""
        if self._finished:  # ended meanwhile, by the server stopping
            return None
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        return self.finish(error_body(message, error_type, code))


class ModelsHandler(OpenAIErrorMixin, KzAPIHandler):
    """GET /kz/v1/models: the deployments that can take traffic now."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """List deployments that take requests (DEPLOYED, or UNLOADED: loaded on request)."""
        data, viewer = [], self.viewer
        for d in self.controller.list():
            if d.status not in (DeploymentStatus.DEPLOYED, DeploymentStatus.UNLOADED):
                continue
            if not can_see(viewer, d.owner, d.shared_with):
                continue
            entry = {"object": "model", "created": int(d.created_at), "owned_by": "kz-jupyter"}
            data.append({"id": d.name, **entry})
            data += [{"id": f"{d.name}/{a}", "parent": d.name, **entry} for a in d.adapters()]
        self.finish(json.dumps({"object": "list", "data": data}))


def request_id_of(given: str | None) -> str:
    """The id of a request: the client's X-Request-Id when it is a plain token, else a new one."""
    if given and REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class ForwardingHandler(OpenAIErrorMixin, KzAPIHandler):
    """POST a completion request to a replica of the deployment named by `model`."""

    upstream_path = ""
    needs_chat = False
    task = "generate"  # what the deployment must serve: "generate", "embed" or "rerank"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Route by model and stream the engine's answer back unchanged; measure it."""
        self.started = time.perf_counter()
        self.request_id = request_id_of(self.request.headers.get(REQUEST_ID_HEADER))
        self.set_header(REQUEST_ID_HEADER, self.request_id)
        self.replica_id, self.sent, self.first_byte, self.cancelled = "", None, None, False
        self.tap: UsageTap | None = None
        body = self._request_object()
        if body is None:
            return
        name = body.get("model")
        viewer = self.viewer
        deployment = self.controller.serving(name) if isinstance(name, str) else None
        if deployment is not None and not can_see(viewer, deployment.owner, deployment.shared_with):
            deployment = None  # another user's private deployment: as if there were none
        if deployment is None:
            visible = [d for d in self.controller.list() if can_see(viewer, d.owner, d.shared_with)]
            known = ", ".join(d.name for d in visible) or "none"
            return self.openai_error(
                404,
                f"No deployment named {name!r} (deployments: {known}).",
                "invalid_request_error",
                "model_not_found",
            )
        self.deployment = deployment
        refusal = self._refusal(deployment, body)
        if refusal:
            self.openai_error(400, refusal[0], "invalid_request_error", refusal[1])
            return self._account(deployment.name)
        content = self._upstream_body(deployment, name, body)
        in_flight = self.settings["kz_metrics"].in_flight.labels(deployment.name)
        in_flight.inc()
        try:
            with self.settings["kz_open_answers"].held(self):
                async with self.controller.router.send(
                    deployment, lambda replica: self._connect(replica, content)
                ) as upstream:
                    overhead = (self.sent - self.started) * 1000
                    self.set_header(OVERHEAD_HEADER, f"{overhead:.2f}")
                    await self._relay(upstream)
        except RouteRefused as refusal:
            if refusal.retry_after:
                self.set_header("Retry-After", str(refusal.retry_after))
            self.openai_error(refusal.status, str(refusal), refusal.error_type, refusal.code)
        finally:
            in_flight.dec()
            self._account(deployment.name)

    def end_for_shutdown(self):
        """The server is stopping: end the answer with an error, a last event in a stream
        already under way, else a 503; the future of its last bytes (None: it had ended, and
        is only leaving)."""
        if self._finished:
            return None
        if not self._headers_written:
            return self.openai_error(503, SHUTDOWN_MESSAGE, "server_error", SHUTDOWN_CODE)
        if "text/event-stream" in self._headers.get("Content-Type", ""):
            self.write(f"data: {error_body(SHUTDOWN_MESSAGE, 'server_error', SHUTDOWN_CODE)}\n\n")
        return self.finish()

    @property
    def route(self) -> str:
        """The route's name in metrics and logs: chat/completions, completions, ..."""
        return self.upstream_path.removeprefix("/v1/")

    def _account(self, deployment: str) -> None:
        """Count the request in the metrics and write its log line (id, deployment, replica,
        user, status, outcome, tokens, time to first bytes, duration)."""
        first = None if self.first_byte is None else self.first_byte - self.started
        request = FinishedRequest(
            deployment, self.replica_id, self.route, self.viewer.name,
            outcome_of(self.get_status(), self.cancelled), first,
            time.perf_counter() - self.started, self.tap.usage if self.tap else None, time.time(),
            bool(self.tap and self.tap.streamed),
        )  # fmt: skip
        if self.settings["kz_metrics"].enabled:
            self.settings["kz_metrics"].observe(request)
        usage = request.usage
        self.log.info(
            "kz request %s %s deployment=%s replica=%s user=%s status=%d outcome=%s "
            "prompt_tokens=%s completion_tokens=%s first_byte_ms=%s duration_ms=%.0f",
            self.request_id, self.route, deployment, self.replica_id or "-", request.user,
            self.get_status(), request.outcome, usage.prompt if usage else "-",
            usage.completion if usage else "-", "-" if first is None else f"{first * 1000:.0f}",
            request.duration * 1000,
        )  # fmt: skip

    def _refusal(self, deployment, body: dict) -> tuple[str, str] | None:
        """(message, code) when the deployment cannot serve this request, else None."""
        plan = deployment.plan
        task = plan.task if plan else "generate"
        engine = load_engines().get(plan.engine) if plan else None
        missing = sorted(
            requested_features(body) & set(engine.unsupported_features if engine else ())
        )
        if missing:
            feature = missing[0]
            return (
                f"'{deployment.name}' runs on {engine.name}, which does not support "
                f"'{feature}': {engine.unsupported_features[feature]}.",
                "unsupported_feature",
            )
        if task != self.task:
            message, code = TASK_REFUSALS.get(task) or GENERATOR_REFUSALS[self.task]
            return message.format(name=deployment.name), code
        if self.needs_chat and plan and not plan.can_chat:
            return f"'{deployment.name}' cannot chat: {plan.chat_reason}.", "chat_not_supported"
        return None

    def _request_object(self) -> dict | None:
        """Parse the JSON body; answer a 400 in OpenAI form when it is not an object."""
        try:
            body = json.loads(self.request.body or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            self.openai_error(400, f"Invalid JSON body: {error}", "invalid_request_error", "")
            return None
        if not isinstance(body, dict):
            self.openai_error(400, "The body must be a JSON object.", "invalid_request_error", "")
            return None
        return body

    def _upstream_body(self, deployment, name: str, body: dict) -> bytes:
        """The request as the engine takes it: unchanged, asking for usage in a stream (the
        tap reads it and takes it out again), or for `DEPLOYMENT/ADAPTER` as the engine asks
        for one of its LoRA adapters."""
        asked = None
        if self.settings["kz_metrics"].enabled:
            asked = asking_for_usage(body) if self.task == "generate" else None
            self.tap = UsageTap(streamed=body.get("stream") is True, strip=asked is not None)
        plan = deployment.plan
        engine = load_engines().get(plan.engine) if plan else None
        if name != deployment.name and engine is not None:
            adapter = name.split("/", 1)[1]
            wanted = engine.adapter_request(asked or body, adapter, plan, deployment.name)
            return json.dumps(wanted).encode()
        return json.dumps(asked).encode() if asked else self.request.body

    async def _connect(self, replica, content: bytes) -> httpx.Response:
        """Send the body to a replica's engine, with the request's id; return the response
        with its body still to be read."""
        self.replica_id, self.sent = replica.replica_id, time.perf_counter()
        client: httpx.AsyncClient = self.settings["kz_http_client"]
        request = client.build_request(
            "POST",
            replica.endpoint + self.upstream_path,
            content=content,
            headers={
                "Content-Type": "application/json",
                "Accept": "*/*",
                REQUEST_ID_HEADER: self.request_id,
            },
            timeout=UPSTREAM_TIMEOUT,
        )
        return await client.send(request, stream=True)

    async def _relay(self, upstream: httpx.Response) -> None:
        """Relay status, headers and bytes as they arrive; a broken stream ends cleanly."""
        url = str(upstream.request.url)
        try:
            if upstream.status_code >= 500 and is_json(upstream):
                return await self._relay_server_error(upstream)
            self.set_status(upstream.status_code)
            for header in PASSED_RESPONSE_HEADERS:
                if header in upstream.headers:
                    self.set_header(header, upstream.headers[header])
            async for chunk in upstream.aiter_raw():
                if self._finished:  # ended by the server stopping
                    return
                if self.first_byte is None:
                    self.first_byte = time.perf_counter()
                relayed = self.tap.relay(chunk) if self.tap else chunk
                if relayed:
                    self.write(relayed)
                    await self.flush()
            if not self._finished:
                self.finish(self.tap.end() if self.tap else b"")
        except StreamClosedError:
            self.cancelled = True  # the client went away; closing upstream cancels the generation
        except httpx.HTTPError as error:
            if self._finished:  # ended by the server stopping, which ends the engines too
                return
            self.log.warning("engine stream for %s broke: %s", url, error)
            self.controller.healer.check_now()
            message = f"The engine stopped answering mid-response: {error}"
            if not self._headers_written:
                return self.openai_error(502, message, "server_error", "engine_stream_broken")
            if "text/event-stream" in upstream.headers.get("Content-Type", ""):
                event = error_body(message, "server_error", "engine_stream_broken")
                self.write(f"data: {event}\n\n")
            self.finish()
        finally:
            await upstream.aclose()

    async def _relay_server_error(self, upstream: httpx.Response) -> None:
        """An engine's server error, as it is; but one for something the engine does not do (an
        image to a model with no vision, ...) is the request's fault: a 400 naming the engine
        and what it said."""
        body = await upstream.aread()
        message = engine_error_message(body)
        if not UNSUPPORTED.search(message):
            self.set_status(upstream.status_code)
            self.set_header("Content-Type", upstream.headers["Content-Type"])
            self.finish(body)
            return
        plan = self.deployment.plan
        self.openai_error(
            400,
            f"'{self.deployment.name}' runs on {plan.engine if plan else 'its engine'}, which "
            f"does not support this request: {message}",
            "invalid_request_error",
            "unsupported_feature",
        )


def is_json(response: httpx.Response) -> bool:
    """Whether a response's body is JSON."""
    return "application/json" in response.headers.get("Content-Type", "")


def engine_error_message(body: bytes) -> str:
    """The message of an engine's JSON error body (OpenAI's form or FastAPI's), else ''."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(data.get("detail") or data.get("message") or "") if isinstance(data, dict) else ""


class ChatCompletionsHandler(ForwardingHandler):
    """POST /kz/v1/chat/completions."""

    upstream_path = "/v1/chat/completions"
    needs_chat = True


class CompletionsHandler(ForwardingHandler):
    """POST /kz/v1/completions."""

    upstream_path = "/v1/completions"


class EmbeddingsHandler(ForwardingHandler):
    """POST /kz/v1/embeddings."""

    upstream_path = "/v1/embeddings"
    task = "embed"


class RerankHandler(ForwardingHandler):
    """POST /kz/v1/rerank: relevance scores of documents for a query (Jina/Cohere form)."""

    upstream_path = "/v1/rerank"
    task = "rerank"


PROXY_HANDLERS = [
    (r"/kz/v1/models", ModelsHandler),
    (r"/kz/v1/chat/completions", ChatCompletionsHandler),
    (r"/kz/v1/completions", CompletionsHandler),
    (r"/kz/v1/embeddings", EmbeddingsHandler),
    (r"/kz/v1/rerank", RerankHandler),
]
