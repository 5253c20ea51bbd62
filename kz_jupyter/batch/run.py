"""Running a prompt template over rows on one deployment (see `kz_jupyter.batch`): the rows
of each kind of input, the requests, the answers kept or asked for, the results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kz_jupyter.batch.cache import Answer, AnswerCache, answer_key
from kz_jupyter.batch.requests import TEXT_FIELD, BatchSpec
from kz_jupyter.batch.runner import Progress, Request, run_requests
from kz_jupyter.client import KzClient
from kz_jupyter.errors import KzError


def slots_of(record: dict) -> int:
    """How many requests a deployment answers at once: its slots times its serving replicas."""
    parallel = max(int((record.get("plan") or {}).get("parallel") or 1), 1)
    serving = sum(r["status"] == "DEPLOYED" for r in record.get("replicas", []))
    return parallel * max(serving, 1)


def rows_of(inputs: Any) -> tuple[list[dict], Any]:
    """The rows as dicts, and the index to give the result (None: a list result)."""
    if hasattr(inputs, "to_dict") and hasattr(inputs, "columns"):  # a pandas DataFrame
        return inputs.to_dict("records"), inputs.index
    if hasattr(inputs, "to_list") and hasattr(inputs, "index"):  # a pandas Series
        name = inputs.name if isinstance(inputs.name, str) else None
        return [{TEXT_FIELD: v, **({name: v} if name else {})} for v in inputs], inputs.index
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Iterable):
        raise KzError("Give the rows as a pandas Series or DataFrame, a list or an iterable.")
    return [dict(v) if isinstance(v, Mapping) else {TEXT_FIELD: v} for v in inputs], None


def result_of(spec: BatchSpec, answer: Answer) -> dict[str, Any]:
    """One row's result: its values by column, then its error (None when it has none)."""
    empty = dict.fromkeys(spec.fields())
    if answer.error is not None:
        return {**empty, "error": answer.error}
    try:
        return {**empty, **spec.read(answer.text or ""), "error": None}
    except ValueError as error:
        return {**empty, "error": f"the answer does not fit the schema: {error}"}


@dataclass(frozen=True)
class BatchRun:
    """A finished batch: each row's result with its answer's seconds and tokens, the columns
    of a result, and the index of a pandas input (None for other inputs)."""

    rows: list[dict[str, Any]]
    columns: list[str]
    index: Any

    def table(self) -> Any:
        """The results without the details: a DataFrame for a pandas input, else dicts."""
        results = [{column: row[column] for column in self.columns} for row in self.rows]
        if self.index is None:
            return results
        import pandas  # a pandas input: pandas is there

        return pandas.DataFrame(results, index=self.index, columns=self.columns)


def batch(inputs: Any, prompt: str, deployment: str, **options: Any) -> Any:
    """Ask deployment the prompt template for every row (see `kz_jupyter.batch`); the results
    as a DataFrame aligned with a pandas input, else a list of dicts."""
    return run_batch(inputs, prompt, deployment, **options).table()


def run_batch(
    inputs: Any,
    prompt: str,
    deployment: str,
    *,
    schema: object = None,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    concurrency: int | None = None,
    retry_errors: bool = False,
    progress: bool = True,
    client: KzClient | None = None,
    **parameters: Any,
) -> BatchRun:
    """Ask deployment the prompt template for every row, with each answer's seconds and tokens;
    `concurrency` caps the requests at once below the deployment's slots, `retry_errors` asks
    again for rows whose last answer was an error, more keyword arguments go into each request
    (seed, stop, top_p, ...)."""
    client = client or KzClient()
    record = client.deployment(deployment)
    asked = {"max_tokens": max_tokens, "temperature": temperature, **parameters}
    spec = BatchSpec(deployment, prompt, system, schema, asked)
    rows, index = rows_of(inputs)
    model = {"deployment": deployment, "model": record.get("model"),
             "files": (record.get("plan") or {}).get("model_path")}  # fmt: skip
    requests = [Request(answer_key(model, body), body)
                for body in (spec.body(spec.prompt(row)) for row in rows)]  # fmt: skip
    cache = AnswerCache()
    try:
        kept = {r.key: a for r in requests if (a := cache.get(r.key)) is not None}
        if retry_errors:
            kept = {key: a for key, a in kept.items() if a.error is None}
        todo = list({r.key: r for r in requests if r.key not in kept}.values())
        limit = min(slots_of(record), concurrency or slots_of(record))
        unique = {r.key for r in requests}  # equal rows are asked once
        bar = Progress(f"batch {deployment}", len(unique), len(unique & kept.keys()), progress)
        url = client.openai_base_url + "/chat/completions"
        headers = {"Authorization": f"token {client.connection.token}"}
        answers = kept | run_requests(todo, url, headers, max(limit, 1), cache, bar)
    finally:
        cache.close()
    details = [
        result_of(spec, answer)
        | {"seconds": answer.seconds, "prompt_tokens": answer.prompt_tokens,
           "completion_tokens": answer.completion_tokens}
        for answer in (answers[r.key] for r in requests)
    ]  # fmt: skip
    return BatchRun(details, [*spec.fields(), "error"], index)
