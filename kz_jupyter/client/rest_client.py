"""The REST client that magics and scripts use to talk to the kz server."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from kz_jupyter.client.connection import ServerConnection, connect
from kz_jupyter.errors import KzError
from kz_jupyter.states import DeploymentStatus

WAIT_POLL_SECONDS = 0.1


def error_message(response: httpx.Response) -> str:
    """Pull the human message out of an error response (Jupyter or OpenAI form)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return body["error"].get("message", str(body))
        if body.get("message"):
            code = f"[{body['code']}] " if body.get("code") else ""
            return code + body["message"]
    return f"HTTP {response.status_code}"


class KzClient:
    """A client of the kz REST API and its OpenAI-compatible proxy."""

    def __init__(self, connection: ServerConnection | None = None, timeout: float = 60.0):
        self.connection = connection or connect()
        self._http = httpx.Client(
            headers={"Authorization": f"token {self.connection.token}"}, timeout=timeout
        )

    @property
    def openai_base_url(self) -> str:
        """The base URL to give any OpenAI client."""
        return self.connection.url("kz/v1")

    def _request(self, method: str, *path: str, **kwargs) -> object:
        """Send a request to the REST API and return its JSON, raising KzError on failure."""
        url = self.connection.url("kz/api", *path)
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            raise KzError(f"Cannot reach the kz server at {url}: {error}") from None
        if response.status_code >= 400:
            raise KzError(error_message(response))
        return response.json()

    def hardware(self, engines: bool = True) -> dict:
        """Return the server machine's hardware profile (engines: also probe each engine)."""
        params = {} if engines else {"engines": "false"}
        return self._request("GET", "hardware", params=params)

    def stats(self, name: str | None = None, span: float = 300, step: float = 10) -> dict:
        """Figures of the deployments (or of one): rates, TTFT, tokens/s, queue, now and as
        series over the last span seconds, with the machine's use sampled meanwhile."""
        path = ("stats", name) if name else ("stats",)
        return self._request("GET", *path, params={"span": span, "step": step})

    def usage(self) -> dict:
        """Requests and tokens per user and deployment (admins: every user's)."""
        return self._request("GET", "usage")

    def deployments(self) -> list[dict]:
        """Return every deployment."""
        return self._request("GET", "deployments")

    def deployment(self, name: str) -> dict:
        """Return one deployment."""
        return self._request("GET", "deployments", name)

    def deploy(self, model: str, **options) -> dict:
        """Request a deployment (name, engine, context_length, replicas are optional)."""
        body = {"model": model, **{k: v for k, v in options.items() if v is not None}}
        return self._request("POST", "deployments", json=body)

    def search(self, query: str) -> dict:
        """Search the Hub and this machine: {hub, hub_error, local, presets}."""
        return self._request("GET", "search", params={"q": query})

    def plan(self, model: str, **options) -> dict:
        """Return the plan a deployment of model would follow (nothing is downloaded)."""
        body = {"model": model, **{k: v for k, v in options.items() if v is not None}}
        return self._request("POST", "plan", json=body)

    def pull(self, model: str, **options) -> dict:
        """Start downloading the files a deployment of model would use; return the job."""
        body = {"model": model, **{k: v for k, v in options.items() if v is not None}}
        return self._request("POST", "pulls", json=body)

    def pull_job(self, job_id: str) -> dict:
        """Return a pull job's progress and outcome."""
        return self._request("GET", "pulls", job_id)

    def wait_pull(self, job_id: str, on_progress: Callable[[int, int], None] | None = None) -> dict:
        """Wait for a pull job to end, reporting (done, total) bytes as they grow."""
        while True:
            job = self.pull_job(job_id)
            if on_progress is not None and job["total"]:
                on_progress(job["done"], job["total"])
            if job["status"] != "running":
                return job
            time.sleep(WAIT_POLL_SECONDS)

    def engines(self) -> list[dict]:
        """Return every engine: usable or not and why, version, environment."""
        return self._request("GET", "engines")

    def install_engine(
        self,
        engine: str,
        on_line: Callable[[str], None] | None = None,
        on_bytes: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Install an engine into its own environment on the server; wait and return the job.

        Progress lines go to on_line as they come, the current download's bytes to on_bytes.
        """
        job = self._request("POST", "engines", engine, "install")
        shown = 0
        while True:
            kept = job["lines"]
            first_kept = job["line_count"] - len(kept)
            for line in kept[max(shown - first_kept, 0) :] if on_line is not None else ():
                on_line(line)
            shown = job["line_count"]
            if on_bytes is not None and job["total"]:
                on_bytes(job["done"], job["total"])
            if job["status"] != "running":
                return job
            time.sleep(WAIT_POLL_SECONDS)
            job = self._request("GET", "engines", engine, "install")

    def models(self) -> list[dict]:
        """Return the models on the server machine (Hub cache and pip-shipped)."""
        return self._request("GET", "models")

    def delete_model(self, name: str, dry_run: bool = True) -> dict:
        """Plan (dry_run) or carry out deleting a cached model; return what is freed."""
        params = {"dry_run": "true" if dry_run else "false"}
        return self._request("DELETE", "models", name, params=params)

    def stop(self, name: str, forget: bool = False) -> dict:
        """Stop a deployment and return its final record; with forget, its record is removed
        too (a STOPPED or FAILED one leaves the list, its name free)."""
        params = {"forget": "true"} if forget else None
        return self._request("DELETE", "deployments", name, params=params)

    def remove(self, name: str) -> dict:
        """Stop a deployment when it runs and forget its record."""
        return self.stop(name, forget=True)

    def share(self, name: str, share: str) -> dict:
        """Share a deployment: 'private', 'all' or 'group:NAME' (owner or admin)."""
        return self._request("PATCH", "deployments", name, json={"share": share})

    def audit(self, limit: int = 200, user: str | None = None) -> list[dict]:
        """The latest audit entries (admins only)."""
        params = {"limit": limit} | ({"user": user} if user else {})
        return self._request("GET", "audit", params=params)

    def restart(self, name: str) -> dict:
        """Stop a deployment (when running) and deploy it again; return the new record."""
        return self._request("POST", "deployments", name, "restart")

    def logs(self, name: str, lines: int = 200) -> dict:
        """Return the last lines of each replica's log, with detected issues."""
        return self._request("GET", "deployments", name, "logs", params={"lines": lines})

    def follow_logs(
        self, name: str, lines: int = 20, stop: threading.Event | None = None
    ) -> Iterator[dict]:
        """Yield log events {replica, line, issue} as the engine writes them, until it stops
        (or stop is set: checked at each line and at the server's heartbeats)."""
        url = self.connection.url("kz/api/deployments", name, "logs")
        params = {"lines": lines, "follow": "true"}
        try:
            with self._http.stream("GET", url, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise KzError(error_message(response))
                for line in response.iter_lines():
                    if stop is not None and stop.is_set():
                        return
                    if line:
                        yield json.loads(line)
        except httpx.HTTPError as error:
            raise KzError(f"Cannot follow the logs at {url}: {error}") from None

    def wait(
        self,
        name: str,
        on_transition: Callable[[dict], None] | None = None,
        timeout: float = 900.0,
        on_progress: Callable[[int, int], None] | None = None,
        on_poll: Callable[[dict], None] | None = None,
    ) -> dict:
        """Wait until a deployment is DEPLOYED or has ended; report each transition, the
        download progress (done, total bytes) while its files are fetched, and each record
        read (on_poll, about twice a second: for elapsed time)."""
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            record = self.deployment(name)
            for entry in record["history"][seen:]:
                if on_transition is not None:
                    on_transition(entry)
            seen = len(record["history"])
            progress = record.get("progress")
            if on_progress is not None and progress and progress.get("total"):
                on_progress(progress["done"], progress["total"])
            if on_poll is not None:
                on_poll(record)
            status = DeploymentStatus(record["status"])
            if status in (DeploymentStatus.DEPLOYED, DeploymentStatus.UNLOADED) or (
                status.is_terminal
            ):
                return record
            if time.monotonic() > deadline:
                raise KzError(f"'{name}' is still {status.value} after {timeout:.0f} s.")
            time.sleep(WAIT_POLL_SECONDS)

    def openai(self):
        """Return an `openai.OpenAI` client pointed at the proxy."""
        import openai

        return openai.OpenAI(base_url=self.openai_base_url, api_key=self.connection.token)

    def chat(
        self, name: str, messages: list[dict], max_tokens: int | None = None, **params
    ) -> Iterator[str]:
        """Stream a chat completion from a deployment, yielding text as it arrives."""
        with self._openai_errors():
            stream = self.openai().chat.completions.create(
                model=name, messages=messages, stream=True, max_tokens=max_tokens, **params
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    def embed(self, name: str, texts: list[str]) -> list[list[float]]:
        """Embeddings of texts from an embedding deployment, in order.

        Texts longer than the model's context are cut to it, as sentence-transformers does
        (`truncate_prompt_tokens`, which vLLM takes; other engines ignore it).
        """
        with self._openai_errors():
            answer = self.openai().embeddings.create(
                model=name, input=texts, extra_body={"truncate_prompt_tokens": -1}
            )
        return [item.embedding for item in sorted(answer.data, key=lambda d: d.index)]

    def rerank(self, name: str, query: str, documents: list[str]) -> list[float]:
        """Relevance scores of documents to query from a reranker deployment, in order."""
        body = {"model": name, "query": query, "documents": documents}
        with self._openai_errors():
            answer = self.openai().post("/rerank", body=body, cast_to=object)
        scores = [0.0] * len(documents)
        for result in answer["results"]:
            scores[result["index"]] = float(result["relevance_score"])
        return scores

    @contextlib.contextmanager
    def _openai_errors(self) -> Iterator[None]:
        """Turn the openai client's errors into KzError lines."""
        import openai

        try:
            yield
        except openai.APIStatusError as error:
            raise KzError(error_message(error.response)) from None
        except openai.APIConnectionError as error:
            raise KzError(f"Cannot reach {self.openai_base_url}: {error}") from None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
