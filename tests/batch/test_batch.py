"""`kz_jupyter.batch` on a real llama.cpp deployment of SmolLM2 with 4 slots, through a real
Jupyter server that takes 3 requests at once: 200 rows with a progress bar, answers equal to
one-by-one answers, never more requests at once than the slots, 429s asked again, a structured
extraction with typed columns and per-row errors, equal rows asked once, and a real kernel
killed mid-batch whose re-run asks for no row it already has."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time

import httpx
import pandas
import psutil
import pydantic
import pytest

from kz_jupyter.batch import batch, compare, compare_rows
from kz_jupyter.client import KzClient
from kz_jupyter.client.connection import ServerConnection
from tests.support.kernel_session import KernelSession, start_jupyter_server
from tests.support.metric_samples import samples

pytestmark = pytest.mark.slow
NAME = "batcher"
SLOTS = 4
TEMPLATE = "Is {text} an even or an odd number? Answer in one word."


@pytest.fixture(scope="module")
def served(tmp_path_factory, smollm2_path):
    """A Jupyter server (its kernels share the test's answer cache) taking one request fewer at
    once than the slots, and a KzClient of it, with SmolLM2 deployed with SLOTS slots."""
    work = tmp_path_factory.mktemp("batch")
    patch = pytest.MonkeyPatch()
    patch.setenv("KZ_BATCH_CACHE", str(work / "answers"))
    limit = f"--KzApp.max_requests_per_deployment={SLOTS - 1}"  # one request of 4: a 429
    url, token, process = start_jupyter_server(work, args=(limit,))
    client = KzClient(ServerConnection(url, token, "test"))
    client.deploy("smollm2", name=NAME, parallel=SLOTS, context_length=512)
    record = client.wait(NAME)
    assert record["status"] == "DEPLOYED", record
    client.deploy(str(smollm2_path), engine="echo", name="echo")  # a second one, to compare
    assert client.wait("echo")["status"] == "DEPLOYED"
    yield url, token, client, process.pid
    process.terminate()
    process.wait(timeout=60)
    patch.undo()


def metrics(url: str, token: str) -> str:
    """The server's /kz/metrics text."""
    return httpx.get(url + "kz/metrics", headers={"Authorization": f"token {token}"}).text


def answered(url: str, token: str) -> float:
    """Requests the proxy answered for the deployment."""
    return samples(metrics(url, token), "kz_requests_total", deployment=NAME, outcome="ok")


def test_200_rows_at_most_the_slots_at_once_equal_to_one_by_one(served, capsys):
    url, token, client, _ = served
    numbers = pandas.Series([str(n) for n in range(200)], name="number")
    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:  # the proxy's in-flight gauge, sampled while the batch runs
        while not done.is_set():
            seen.append(samples(metrics(url, token), "kz_requests_in_flight", deployment=NAME))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = batch(numbers, TEMPLATE, NAME, max_tokens=4, client=client)
    finally:
        done.set()
        watcher.join()
    assert list(result.columns) == ["text", "error"] and list(result.index) == list(range(200))
    assert result["error"].isna().all() and result["text"].str.len().gt(0).all()
    assert SLOTS - 1 <= max(seen) <= SLOTS  # the slots used, never more
    # past the server's limit: answered 429, asked again after its Retry-After, answered
    assert samples(metrics(url, token), "kz_requests_total", deployment=NAME, outcome="429")
    bar = capsys.readouterr().err
    assert "batch batcher: 100%" in bar and "200/200" in bar and "tok/s" in bar

    # one by one, no cache: the same answers at temperature 0
    for n in range(0, 200, 20):
        alone = client.openai().chat.completions.create(
            model=NAME, max_tokens=4, temperature=0,
            messages=[{"role": "user", "content": TEMPLATE.format(text=n)}],
        )  # fmt: skip
        assert alone.choices[0].message.content == result["text"][n], n

    # again: every row comes from the cache, none is asked
    before = answered(url, token)
    again = batch(numbers, TEMPLATE, NAME, max_tokens=4, client=client, progress=False)
    assert again.equals(result) and answered(url, token) == before


class City(pydantic.BaseModel):
    """What the extraction asks for."""

    city: str
    country: str


def test_a_schema_batch_gives_typed_columns_and_per_row_errors(served):
    url, token, client, _ = served
    texts = ["Alice moved to Paris, in France.", "Bob lives in Rome, Italy."]
    prompt = "Extract the city and the country from: {text}"
    fields = batch(texts, prompt, NAME, schema=City, max_tokens=48, client=client)
    assert [sorted(row) for row in fields] == [["city", "country", "error"]] * 2
    assert fields[0]["error"] is None and fields[0]["city"] == "Paris"
    assert isinstance(fields[1]["country"], str) and fields[1]["error"] is None

    # too few tokens to close the JSON: the row keeps its error, the others their values
    cut = batch(pandas.DataFrame({"text": texts}), prompt, NAME, schema=City, max_tokens=3,
                client=client, progress=False)  # fmt: skip
    assert list(cut.columns) == ["city", "country", "error"]
    assert cut["error"].str.startswith("the answer does not fit the schema").all()
    assert cut["city"].isna().all()

    # equal rows are asked once
    before = answered(url, token)
    twice = batch(["Carol is in Oslo, Norway."] * 2, prompt, NAME, schema=City, max_tokens=48,
                  client=client, progress=False)  # fmt: skip
    assert twice[0] == twice[1] and answered(url, token) - before == 1


def test_compare_streams_a_prompt_from_each_and_runs_rows_on_each(served):
    _, _, client, _ = served
    grown: dict[str, list[str]] = {}

    def grow(name: str, text: str) -> None:
        grown.setdefault(name, []).append(text)

    smol, echo = compare([NAME, "echo"], "Say hello.", max_tokens=8, client=client, on_text=grow)
    assert echo.text == "echo: Say hello. " and echo.error is None
    assert (echo.prompt_tokens, echo.completion_tokens) == (2, 3)  # the echo engine's usage
    assert grown["echo"] == ["echo: ", "echo: Say ", "echo: Say hello. "]  # as it streamed
    assert smol.text and 0 < smol.ttft < smol.seconds and 0 < smol.completion_tokens <= 8
    assert smol.tokens_per_s > 0

    numbers = pandas.Series(["1", "2", "3"], index=["a", "b", "c"])
    side = compare_rows([NAME, "echo"], numbers, "Is {text} even? One word.", max_tokens=4,
                        client=client, progress=False)  # fmt: skip
    assert list(side.answers.columns) == [NAME, "echo"] and list(side.answers.index) == [
        "a",
        "b",
        "c",
    ]
    assert side.answers["echo"]["b"] == "echo: Is 2 even? One word."
    summary = {s["deployment"]: s for s in side.summary}
    assert (summary["echo"]["rows"], summary["echo"]["errors"]) == (3, 0)
    assert summary["echo"]["tokens_per_answer"] == 6 and summary[NAME]["latency_p50"] > 0

    # a deployment that is not there: its column says so, the other answers
    ghost = compare([NAME, "ghost"], "Hi", max_tokens=2, client=client)
    assert ghost[0].error is None and ghost[1].error.startswith("HTTP 404: No deployment named")


def kernel_pid(server_pid: int) -> int:
    """The one kernel process the server started."""
    (kernel,) = [
        p for p in psutil.Process(server_pid).children(recursive=True)
        if "ipykernel_launcher" in " ".join(p.cmdline())
    ]  # fmt: skip
    return kernel.pid


async def run_killed_then_again(
    url: str, token: str, server_pid: int, code: str, answered_at_kill: float, then: str
) -> tuple[str, str]:
    """Start code in a kernel, SIGKILL the kernel once the proxy answered answered_at_kill
    requests, then run code in a new kernel, and then; the outputs of both."""
    headers = {"Authorization": f"token {token}"}
    for attempt in ("killed", "again"):
        kernel = httpx.post(url + "api/kernels", json={"name": "python3"}, headers=headers).json()
        async with KernelSession(url, token, kernel["id"]) as session:
            if attempt == "again":
                outputs = await session.execute(code, timeout=600)
                assert not outputs.err.strip().startswith("Traceback"), outputs.err
                magic = await session.execute(then, timeout=600)
                return outputs.out, magic.out + magic.err
            await session.submit(code)
            while answered(url, token) < answered_at_kill:
                await asyncio.sleep(0.05)
            os.kill(kernel_pid(server_pid), signal.SIGKILL)
    raise AssertionError("unreachable")


def test_a_kernel_killed_mid_batch_resumes_and_asks_no_row_twice(served):
    url, token, _, server_pid = served
    rows = 120
    code = (
        "from kz_jupyter.batch import batch\n"
        f"result = batch([f'{{n}} apples' for n in range({rows})], "
        f"'Count: {{text}}', {NAME!r}, max_tokens=12)\n"
        "print('errors', sum(r['error'] is not None for r in result), 'rows', len(result))"
    )
    before = answered(url, token)
    magic = (
        "import pandas\n%load_ext kz_jupyter\n"
        "fruit = pandas.DataFrame({'name': ['apple', 'lemon'], 'n': [1, 2]})\n"
        f"%kz batch {NAME} fruit 'What color is a {{name}}? One word.' --max-tokens 4 "
        "--into color\n"
        "print(fruit.columns.tolist(), fruit['color_error'].isna().all())\n"
        "%kz batch ghost fruit '{name}'\n%kz batch batcher nothing '{text}'\n"
        f"%kz compare {NAME} echo 'Say hi.' --max-tokens 4\n%kz compare {NAME} 'Say hi.'"
    )
    out, magic_out = asyncio.run(
        run_killed_then_again(url, token, server_pid, code, before + 30, magic)
    )
    assert "errors 0 rows 120" in out, out
    # the magic: answers as new columns of the notebook's DataFrame; mistakes are one line
    assert "['name', 'n', 'color', 'color_error'] True" in magic_out, magic_out
    assert "kz: No deployment named 'ghost'" in magic_out
    assert "kz: no variable named 'nothing' in this notebook" in magic_out
    assert re.search(r"DEPLOYMENT +TTFT +TOKENS.*\nbatcher +\d+ ms +\d+ .*\necho +\d+ ms +3 ",
                     magic_out), magic_out  # fmt: skip
    assert "kz: name two deployments or more, then the prompt" in magic_out
    # each row answered once (and the magics' 2 + 1): those before the kill came from the disk
    assert answered(url, token) - before == rows + 3
    cancelled = samples(metrics(url, token), "kz_requests_total", deployment=NAME,
                        outcome="cancelled")  # fmt: skip
    assert cancelled <= SLOTS  # at most the requests in flight at the kill were cut
