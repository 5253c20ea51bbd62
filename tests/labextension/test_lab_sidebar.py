"""The JupyterLab sidebar in a real browser: a real JupyterLab server (the extension as the
package build made it), headless Debian Chromium driven by Playwright. Open the sidebar, deploy
the default model from the form, see it reach DEPLOYED, open its logs in a main-area tab, stop
it. Screenshots of each step are kept in test-artifacts/lab-sidebar/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from tests.support.kernel_session import start_jupyter_server
from playwright.sync_api import Page, expect, sync_playwright
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "lab-sidebar"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless, and quiet on a machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def jupyterlab(tmp_path):
    url, token, process = start_jupyter_server(tmp_path, app="jupyterlab")
    yield url, token
    process.terminate()
    process.wait(timeout=60)


def test_deploy_watch_logs_and_stop_from_the_sidebar(jupyterlab):
    url, token = jupyterlab
    assert Path(CHROMIUM).exists(), "Chromium is missing: make setup installs Debian's chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        try:
            drive_the_sidebar(page, url, token)
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png")
            raise
        finally:
            browser.close()

    headers = {"Authorization": f"token {token}"}
    records = httpx.get(url + "kz/api/deployments", headers=headers).json()
    statuses = sorted((r["name"], r["status"]) for r in records)
    assert statuses == [("model.gguf", "FAILED"), ("smollm2", "STOPPED")]


def drive_the_sidebar(page: Page, url: str, token: str) -> None:
    """Each step in the browser, a screenshot after each."""
    page.goto(f"{url}lab?token={token}")
    tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kz-sidebar']")
    tab.click()
    sidebar = page.locator("#kz-sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.locator(".kz-hardware")).to_contain_text("RAM:")
    expect(sidebar.locator("select[name=engine] option[value=llamacpp]")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "1-sidebar.png")

    expect(sidebar.locator("input[name=model]")).to_have_value("smollm2")
    sidebar.locator("button[type=submit]").click()
    row = sidebar.locator(".kz-deployment[data-deployment='smollm2']")
    expect(sidebar.locator(".kz-message")).to_contain_text("Deploying smollm2 as 'smollm2'")
    expect(row.locator(".kz-status")).to_have_text("DEPLOYED", timeout=180_000)
    expect(row).to_contain_text("llamacpp 1/1")
    chat = {"model": "smollm2", "max_tokens": 16, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]}  # fmt: skip
    answer = httpx.post(url + "kz/v1/chat/completions", json=chat, timeout=120,
                        headers={"Authorization": f"token {token}"})  # fmt: skip
    assert answer.status_code == 200
    figures = row.locator(".kz-figures")  # the last minute's figures, under the row
    expect(figures).to_contain_text(re.compile(r"0\.02 req/s · [\d.]+ tok/s · TTFT p50 \d+ ms"))
    expect(figures).to_contain_text("queue 0")
    page.screenshot(path=ARTIFACTS / "2-deployed.png")

    top_in_a_notebook(page, url, token)

    if not sidebar.is_visible():  # the notebook's page may have it closed
        tab.click()
    expect(sidebar).to_be_visible()
    row.get_by_role("button", name="logs").click()
    logs = page.locator(".jp-MainAreaWidget .kz-logs")
    expect(logs).to_contain_text("listening on http://127.0.0.1")
    expect(page.locator(".lm-TabBar-tab", has_text="Logs: smollm2")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "3-logs.png")

    row.get_by_role("button", name="stop").click()
    expect(row.locator(".kz-status")).to_have_text("STOPPED", timeout=60_000)
    expect(row.get_by_role("button", name="stop")).to_be_disabled()
    page.screenshot(path=ARTIFACTS / "4-stopped.png")

    # bad input: refused at once with the server's message, or FAILED with what to do
    sidebar.locator("input[name=model]").fill("")
    sidebar.locator("button[type=submit]").click()
    expect(sidebar.locator(".kz-message.kz-error")).to_contain_text("'model' is required")
    sidebar.locator("input[name=model]").fill("/nonexistent/model.gguf")
    sidebar.locator("button[type=submit]").click()
    failed = sidebar.locator(".kz-deployment[data-deployment='model.gguf']")
    expect(failed.locator(".kz-status")).to_have_text("FAILED")
    expect(failed.locator(".kz-error")).to_contain_text(
        "[MODEL_LOADING_FAILURE] Model file not found: /nonexistent/model.gguf"
    )
    expect(failed.locator(".kz-remediation")).to_contain_text("What to do:")
    page.screenshot(path=ARTIFACTS / "5-bad-model.png")


def top_in_a_notebook(page: Page, url: str, token: str) -> None:
    """`%kz top` in a notebook: the live panel with the deployment's plots and the machine's."""
    cells = [{"cell_type": "code", "source": "%load_ext kz_jupyter\n%kz top", "metadata": {},
              "outputs": [], "execution_count": None}]  # fmt: skip
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel},
                "cells": cells}  # fmt: skip
    saved = httpx.put(url + "api/contents/top.ipynb", headers={"Authorization": f"token {token}"},
                      json={"type": "notebook", "content": notebook})  # fmt: skip
    assert saved.status_code in (200, 201), saved.text
    page.goto(f"{url}lab/tree/top.ipynb?token={token}")
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
    editor = page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first
    editor.click()
    page.keyboard.press("Shift+Enter")
    panel = page.locator(".jp-OutputArea-output .widget-html", has_text="TTFT p95")
    expect(panel).to_contain_text("smollm2", timeout=120_000)
    expect(panel).to_contain_text("machine")
    expect(panel.locator("svg polyline").first).to_be_attached()
    page.screenshot(path=ARTIFACTS / "top.png")
