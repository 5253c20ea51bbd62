"""The deploy panel's steps, download bar, endpoint snippet and failure, as widgets and text."""

from __future__ import annotations

from kz_jupyter.magics.deploy_panel import DeployPanel

STARTED = 1000.0
STEPS = [
    {"status": "REQUESTED", "at": 1000.0, "detail": "deploy smollm2"},
    {"status": "DEPLOYING", "at": 1000.4, "detail": "llamacpp: gguf model on CPU"},
]


def test_steps_progress_and_a_ready_endpoint_with_a_snippet():
    panel = DeployPanel("smollm2", "smollm2", STARTED)
    for step in STEPS:
        panel.add_step(step)
    panel.progress(50 * 1024 * 1024, 100 * 1024 * 1024)
    assert panel._bar.value == 0.5 and panel._bytes.value == "50.0 MiB of 100.0 MiB"
    panel.tick({"status": "DEPLOYING", "history": STEPS}, now=1012.6)  # a poll, 12 s later
    assert "DEPLOYING for 12 s, 13 s in all" in panel._waiting.value
    record = {"name": "smollm2", "status": "DEPLOYED", "plan": {"task": "generate"}}
    panel.finish(record, "http://127.0.0.1:8888/kz/v1")
    assert panel._waiting.value == ""  # the spinner goes with the outcome
    text = panel.text().splitlines()
    assert text[0] == "Deploying smollm2 as 'smollm2'"
    assert text[1].split()[:2] == ["REQUESTED", "+"] and "+  0.4s" in text[2]
    assert (
        text[3]
        == "'smollm2' is ready: OpenAI endpoint http://127.0.0.1:8888/kz/v1 (model='smollm2')"
    )
    assert 'model="smollm2", messages=' in panel.text()
    assert "chat.completions.create" in panel._result.value


def test_an_embedding_deployment_gets_an_embeddings_snippet():
    panel = DeployPanel("all-minilm-l6-v2", "minilm", STARTED)
    panel.finish({"name": "minilm", "status": "DEPLOYED", "plan": {"task": "embed"}}, "/kz/v1")
    assert 'embeddings.create(model="minilm"' in panel.text()


def test_a_reranker_deployment_gets_a_rerank_snippet():
    panel = DeployPanel("./reranker.gguf", "rr", STARTED)
    panel.finish({"name": "rr", "status": "DEPLOYED", "plan": {"task": "rerank"}}, "/kz/v1")
    assert '"/rerank"' in panel.text() and '{"model": "rr", "query":' in panel.text()


def test_a_failure_shows_its_code_message_and_what_to_do():
    panel = DeployPanel("big", "big", STARTED)
    panel.add_step(STEPS[0])
    panel.add_step({"status": "FAILED", "at": 1001.0, "detail": "OOM: Will not fit: 30 GiB"})
    assert "Will not fit" in panel._steps.value
    record = {
        "name": "big",
        "status": "FAILED",
        "error": {"code": "OOM", "message": "Will not fit: 30 GiB vs 8 GiB free",
                  "remediation": "Use a smaller quant or context."},
    }  # fmt: skip
    panel.finish(record, "/kz/v1")
    assert "big FAILED [OOM] Will not fit" in panel.text()
    assert "What to do: Use a smaller quant or context." in panel.text()
    # the panel shows the FAILED step with its code; the message and what to do are said once,
    # by the line under it (the magic's error line)
    assert panel._result.value == "" and "<td>OOM</td>" in panel._steps.value
    assert "var(--jp-error-color1)" in panel._steps.value
    assert "Will not fit" not in panel._steps.value
