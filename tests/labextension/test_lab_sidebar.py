"""The JupyterLab sidebar in a real browser: a real JupyterLab server (the extension as the
package build made it), headless Debian Chromium driven by Playwright. Browse the models and
see the plan, deploy the default model from the form, see it come up and reach DEPLOYED, run
the notebook panels and the docked chat beside it (in the light, dark and high-contrast
themes, every text measured against WCAG AA), use `%kz ps` at a narrow width, read the logs
in a main-area tab, find the chat's conversation again after a reload, stop it, remove a FAILED
record. Screenshots of each step are kept in
test-artifacts/lab-sidebar/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from tests.support.kernel_session import start_jupyter_server
from playwright.sync_api import Page, expect, sync_playwright
from tests.support.contrast import below_aa
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
    # JupyterLab's settings (the theme this test switches) and layout: this server's only
    settings = tmp_path / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "get notified about news?" toast over us
    notes = tmp_path / "notes"  # what the notebook indexes, for the chat's sources
    notes.mkdir()
    (notes / "office.md").write_text(OFFICE_NOTES)
    url, token, process = start_jupyter_server(
        tmp_path, app="jupyterlab", JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
        KZ_RAG_DIR=str(tmp_path / "rag"),
    )
    yield url, token
    process.terminate()
    process.wait(timeout=60)


def test_deploy_watch_logs_and_stop_from_the_sidebar(jupyterlab):
    url, token = jupyterlab
    assert Path(CHROMIUM).exists(), "Chromium is missing: make setup installs Debian's chromium"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"])  # the copy buttons
        page = context.new_page()
        page.set_default_timeout(60_000)
        console = []  # the page's console, kept with the screenshots
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        try:
            drive_the_sidebar(page, url, token)
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png")
            raise
        finally:
            (ARTIFACTS / "console.log").write_text("\n".join(console))
            browser.close()

    headers = {"Authorization": f"token {token}"}
    records = httpx.get(url + "kz/api/deployments", headers=headers).json()
    statuses = sorted((r["name"], r["status"]) for r in records)
    assert statuses == [("smollm2", "STOPPED")]  # the FAILED records were removed


def drive_the_sidebar(page: Page, url: str, token: str) -> None:
    """Each step in the browser, a screenshot after each."""
    page.goto(f"{url}lab?token={token}")
    tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kz-sidebar']")
    tab.click()
    sidebar = page.locator("#kz-sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.locator(".kz-hardware")).to_contain_text("RAM:")
    expect(sidebar.locator("select[name=engine] option[value=llamacpp]")).to_have_count(1)
    with page.expect_request(lambda r: "kz/api/hardware" in r.url, timeout=15_000):
        pass  # the free RAM is read again while the sidebar is shown
    page.screenshot(path=ARTIFACTS / "1-sidebar.png")
    launcher_card = page.locator(".jp-LauncherCard", has_text="Chat with a local LLM")
    expect(launcher_card).to_be_visible()  # the docked chat, from the launcher too
    model_browser_and_plan(page)

    expect(sidebar.locator("input[name=model]")).to_have_value("smollm2")
    sidebar.locator("button[type=submit]").click()
    row = sidebar.locator(".kz-deployment[data-deployment='smollm2']")
    expect(row.locator(".kz-steps")).to_contain_text(re.compile(r"REQUESTED \+0\.0 s.* so far"))
    page.screenshot(path=ARTIFACTS / "2-deploying.png")
    expect(sidebar.locator(".kz-message")).to_contain_text("Deploying smollm2 as 'smollm2'")
    expect(row.locator(".kz-status")).to_have_text("DEPLOYED", timeout=180_000)
    expect(row).to_contain_text(re.compile(r"llamacpp 1/1 · ~[\d.]+ MiB"))  # planned memory
    expect(sidebar.locator(".kz-message")).to_have_text(
        "'smollm2' is DEPLOYED: chat with it, or use its endpoint below."
    )
    expect(row.locator(".kz-endpoint code")).to_have_text(f"{url}kz/v1")
    row.locator(".kz-endpoint").get_by_role("button", name="copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"{url}kz/v1"
    chat = {"model": "smollm2", "max_tokens": 16, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]}  # fmt: skip
    answer = httpx.post(url + "kz/v1/chat/completions", json=chat, timeout=120,
                        headers={"Authorization": f"token {token}"})  # fmt: skip
    assert answer.status_code == 200
    figures = row.locator(".kz-figures")  # the last minute's figures, under the row
    expect(figures).to_contain_text(re.compile(r"0\.02 req/s · [\d.]+ tok/s · TTFT p50 \d+ ms"))
    expect(figures).to_contain_text("queue 0")
    charts = row.locator(".kz-chart")  # the last 5 minutes: tokens/s and TTFT p95
    expect(charts.locator("svg[role=img] polyline")).to_have_count(2)
    expect(charts.first).to_contain_text(re.compile(r"^tok/s [\d.]+$"))
    expect(charts.nth(1)).to_contain_text(re.compile(r"^TTFT p95 \(s\) [\d.]+$"))
    page.screenshot(path=ARTIFACTS / "2-deployed.png")

    panels_in_a_notebook(page, url, token)

    if not sidebar.is_visible():  # the notebook's page may have it closed
        tab.click()
    expect(sidebar).to_be_visible()
    row.get_by_role("button", name="logs").click()
    logs = page.locator(".jp-MainAreaWidget .kz-logs")
    expect(logs).to_contain_text("listening on http://127.0.0.1")
    expect(page.locator(".lm-TabBar-tab", has_text="Logs: smollm2")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "3-logs.png")
    logs_viewer(page)
    chat_kept_after_reload(page)

    if not sidebar.is_visible():
        tab.click()
    row.get_by_role("button", name="stop").click()
    expect(row.locator(".kz-status")).to_have_text("STOPPED", timeout=60_000)
    expect(row).not_to_contain_text("MiB")  # a stopped deployment holds no memory
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
    failed.get_by_role("button", name="remove").click()
    expect(failed).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "6-failed-removed.png")


QUESTION = "What is the capital of France? Answer in one word."
WIFI_QUESTION = "What is the password of the office wifi?"
CHAT_CELL = (
    "chat = %kz chat smollm2 --max-tokens 24 --temperature 0\n"
    "chat.send('What is the capital of France? Answer in one word.')\nchat.wait(120)\nchat"
)
LONG_PATH = "/nonexistent/" + "a-very-long-folder-name/" * 6 + "model.gguf"
EVAL_CELL = (  # one question answered by the notes, one by nothing indexed
    "import json\nfrom pathlib import Path\n"
    "Path('office-questions.json').write_text(json.dumps([\n"
    f"    {{'question': '{WIFI_QUESTION}', 'source': 'office.md', 'passage': 'lantern-42'}},\n"
    "    {'question': 'Who waters the plants?', 'source': 'garden.md'}]))\n"
    "%kz rag eval office office-questions.json"
)
CELLS = [
    "from kz_jupyter import rag\nrag.index(['notes'], name='office')",
    "%load_ext kz_jupyter\n%kz top",
    f'%kz rag ask office "{WIFI_QUESTION}" --deployment smollm2 --max-tokens 32',
    EVAL_CELL,
    "%kz ps",
    CHAT_CELL,
    f"%kz deploy {LONG_PATH} --name broken",
]
PANELS = "#kz-sidebar, #kz-chat, .jp-OutputArea-output"
OFFICE_NOTES = """# The office

## Wifi

The wifi network of the office is called harbour and its password is lantern-42.

## Kitchen

The coffee machine is cleaned every Friday by whoever arrived last.
"""


def model_browser_and_plan(page: Page) -> None:
    """The model browser lists the presets and the models here, searches (the Hub is out of
    reach here, and says so); the plan of the form's model shows before anything starts,
    and what to change when it cannot be deployed."""
    sidebar = page.locator("#kz-sidebar")
    choices = sidebar.locator(".kz-model-choice")
    expect(choices.filter(has_text="smollm2-hub")).to_have_count(1)  # a preset
    expect(choices.filter(has_text="all-minilm-l6-v2")).to_contain_text("safetensors")  # here
    plan = sidebar.locator(".kz-plan")
    expect(plan).to_contain_text("Engine llamacpp")
    expect(plan).to_contain_text("Context 4096 tokens")
    expect(plan).to_contain_text(re.compile(r"Fits: ~[\d.]+ MiB of [\d.]+ GiB free \(RAM\)"))
    expect(plan.locator(".kz-plan-bar[role=meter]")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "1-plan.png")
    sidebar.locator("input[name=context]").fill("100000")
    expect(plan.locator(".kz-error")).to_contain_text("exceeds the model's maximum (8192)")
    sidebar.locator("input[name=context]").fill("")
    sidebar.locator("input[name=model-search]").fill("smol")
    expect(sidebar.locator(".kz-models")).to_contain_text("is not reachable")
    choices.filter(has_text="smollm2-hub").click()
    expect(sidebar.locator("input[name=model]")).to_have_value("smollm2-hub")
    expect(plan.locator(".kz-error")).to_contain_text("not reachable")
    page.screenshot(path=ARTIFACTS / "1-plan-refused.png")
    choices.filter(has=page.locator("b", has_text=re.compile("^smollm2$"))).first.click()
    expect(sidebar.locator("input[name=model]")).to_have_value("smollm2")
    expect(plan).to_contain_text("Fits:")


def use_theme(page: Page, theme: str) -> None:
    """Switch JupyterLab's theme as a user does: Settings → Theme."""
    page.get_by_role("menuitem", name="Settings").click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Theme", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text(theme, exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", theme)
    page.wait_for_timeout(500)  # the theme's stylesheet applied


def logs_viewer(page: Page) -> None:
    """The logs tab: the level filter keeps warnings (llama-server warns that no API key is
    set), the search keeps matching lines, wrap folds long lines, download saves the log."""
    view = page.locator(".jp-MainAreaWidget .kz-logs-view")
    logs = view.locator(".kz-logs")
    view.locator("select[name=level]").select_option("warning")
    expect(logs).to_contain_text("no API key is set")
    expect(logs).not_to_contain_text("listening on")
    page.screenshot(path=ARTIFACTS / "3-logs-warnings.png")
    use_theme(page, "JupyterLab Dark")  # readable in the dark theme too
    measured, low = below_aa(page, ".kz-logs-view")
    assert measured > 5 and not low, low
    page.screenshot(path=ARTIFACTS / "3-logs-dark.png")
    use_theme(page, "JupyterLab Light")
    view.locator("select[name=level]").select_option("info")
    view.locator("input[name=search]").fill("LISTENING")
    expect(logs.locator("span:not(.kz-logs-replica)")).to_have_count(1)
    expect(logs).to_contain_text("listening on http://127.0.0.1")
    view.locator("input[name=search]").fill("")
    expect(logs).to_have_class(re.compile(r"\bkz-logs-wrap\b"))
    view.locator("input[name=wrap]").uncheck()
    expect(logs).not_to_have_class(re.compile(r"\bkz-logs-wrap\b"))
    with page.expect_download() as download:
        view.get_by_role("button", name="download").click()
    assert download.value.suggested_filename == "smollm2.log"
    assert "listening on http://127.0.0.1" in Path(download.value.path()).read_text()


def docked_chat(page: Page) -> None:
    """The chat docked in the right sidebar, opened from a deployment's chat button: Enter
    sends, Shift+Enter adds a line, the reply streams in rendered with its figures, Stop ends
    one mid-reply, a reply goes into a new notebook cell; the palette and launcher open it."""
    page.locator("#kz-sidebar .kz-deployment[data-deployment='smollm2']").get_by_role(
        "button", name="chat"
    ).click()
    chat = page.locator("#kz-chat")
    expect(chat).to_be_visible()
    expect(chat.locator("select[name=deployment]")).to_have_value("smollm2")
    chat.locator("input[name=temperature]").fill("0")  # the same answer every time
    box = chat.locator("textarea[name=message]")
    box.fill("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("first line\nsecond line")  # a line added, nothing sent
    expect(chat.locator(".kz-chat-turn")).to_have_count(0)
    box.fill(QUESTION)
    box.press("Enter")
    expect(box).to_have_value("")
    expect(chat.locator(".kz-chat-user")).to_have_text(QUESTION)  # shown at once
    reply = chat.locator(".kz-chat-assistant").first
    expect(reply.locator(".jp-RenderedMarkdown")).to_contain_text("Paris", timeout=120_000)
    expect(reply.locator(".kz-chat-figures")).to_have_text(
        re.compile(r"^TTFT \d+ ms · \d+ tokens · [\d.]+ tok/s$")
    )
    page.screenshot(path=ARTIFACTS / "chat-reply.png")

    box.fill("Write a long story about a dragon who learns to fly.")
    box.press("Enter")
    second = chat.locator(".kz-chat-assistant").nth(1)
    expect(second.locator(".jp-RenderedMarkdown")).to_contain_text(
        re.compile(r"\w+ \w+ \w+ \w+"), timeout=120_000
    )
    chat.get_by_role("button", name="Stop").click()
    expect(second.locator(".kz-chat-figures")).to_contain_text("stopped")
    expect(chat.get_by_role("button", name="Send")).to_be_enabled()
    page.screenshot(path=ARTIFACTS / "chat-stopped.png")

    reply.get_by_role("button", name="copy").click()
    assert "Paris" in page.evaluate("navigator.clipboard.readText()")
    cells = page.locator(".jp-Notebook .jp-Cell")
    before = cells.count()
    reply.get_by_role("button", name="insert into a new cell").click()
    expect(cells).to_have_count(before + 1)
    expect(page.locator(".jp-Notebook .jp-Cell.jp-mod-active")).to_contain_text("Paris")

    page.keyboard.press("Control+Shift+C")  # the command palette
    palette = page.locator("#command-palette")
    palette.locator("input").fill("Chat with a local LLM")
    expect(palette.locator(".lm-CommandPalette-item", has_text="Chat with a local LLM")).to_be_visible()
    page.keyboard.press("Escape")


def chat_with_sources(page: Page) -> None:
    """The docked chat answers from the index the notebook made: retrieval runs in a kernel of
    the chat's own, the sources show with the reply, then its answer and figures. "New chat"
    first clears the conversation so far."""
    chat = page.locator("#kz-chat")
    chat.get_by_role("button", name="New chat").click()
    expect(chat.locator(".kz-chat-turn")).to_have_count(0)
    expect(chat).to_contain_text("No messages yet.")
    expect(chat.locator("select[name=index] option[value=office]")).to_have_count(1)
    chat.locator("select[name=index]").select_option("office")
    box = chat.locator("textarea[name=message]")
    box.fill(WIFI_QUESTION)
    box.press("Enter")
    reply = chat.locator(".kz-chat-assistant")
    sources = reply.locator(".kz-chat-sources")
    expect(sources).to_contain_text(re.compile(r"^Sources\[1\] \S*office\.md, "), timeout=120_000)
    expect(reply.locator(".kz-chat-figures")).to_contain_text("tok/s", timeout=120_000)
    expect(reply.locator(".jp-RenderedMarkdown")).to_contain_text("lantern-42")
    page.screenshot(path=ARTIFACTS / "chat-sources.png")
    chat.locator("select[name=index]").select_option("")


def chat_kept_after_reload(page: Page) -> None:
    """The docked chat's conversation is in JupyterLab's workspace: there again after the page
    is reloaded, sources and figures too."""
    page.once("dialog", lambda dialog: dialog.accept())  # "leave with unsaved changes?"
    page.reload()
    page.locator(".lm-TabBar-tab[data-id='kz-chat']").click()
    chat = page.locator("#kz-chat")
    expect(chat.locator("select[name=deployment]")).to_have_value("smollm2")
    expect(chat.locator(".kz-chat-user")).to_have_text(WIFI_QUESTION)
    reply = chat.locator(".kz-chat-assistant")
    expect(reply.locator(".kz-chat-sources")).to_contain_text("office.md")
    expect(reply.locator(".jp-RenderedMarkdown")).to_contain_text("lantern-42")
    expect(reply.locator(".kz-chat-figures")).to_contain_text("tok/s")
    page.screenshot(path=ARTIFACTS / "chat-after-reload.png")


def panels_in_a_notebook(page: Page, url: str, token: str) -> None:
    """The notebook panels (`%kz top`, `%kz ps`, the chat widget, a failed deploy) beside the
    sidebar and the docked chat: readable in the light, dark and high-contrast themes; `%kz
    ps`'s buttons usable when the page is narrow, its remove button removing the FAILED one."""
    cells = [{"cell_type": "code", "source": source, "metadata": {}, "outputs": [],
              "execution_count": None} for source in CELLS]  # fmt: skip
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel},
                "cells": cells}  # fmt: skip
    saved = httpx.put(url + "api/contents/panels.ipynb",
                      headers={"Authorization": f"token {token}"},
                      json={"type": "notebook", "content": notebook})  # fmt: skip
    assert saved.status_code in (200, 201), saved.text
    page.goto(f"{url}lab/tree/panels.ipynb?token={token}")
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
    page.locator(".jp-Notebook .jp-Cell .jp-InputArea-editor").first.click()
    for _ in CELLS:
        page.keyboard.press("Shift+Enter")
    panel = page.locator(".jp-OutputArea-output .widget-html", has_text="TTFT p95")
    expect(panel).to_contain_text("smollm2", timeout=120_000)
    expect(panel.locator("svg polyline").first).to_be_attached()
    ask = page.locator(".jp-OutputArea-output", has_text="grounded in 'office'")
    expect(ask).to_contain_text(re.compile(r"TTFT \d+ ms"), timeout=120_000)  # `%kz rag ask`
    parts = ask.evaluate("n => [...n.querySelectorAll('.widget-html')].map(e => e.innerText)")
    sources = next(i for i, text in enumerate(parts) if "office.md" in text)
    assert re.search(r"\[1\] \S*office\.md, line \d+ \(Wifi\)", parts[sources]), parts
    answer, figures = parts[sources + 1], parts[sources + 2]  # the sources first, then these
    assert answer.strip() and re.match(r"TTFT \d+ ms", figures), parts
    ask.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "rag-ask.png")
    evaluation = page.locator(".jp-OutputArea-output", has_text="2 questions, the first 5")
    expect(evaluation.locator("svg rect")).to_have_count(6)  # 2 methods x 2 bars, the legend
    expect(evaluation.locator("tr", has_text="hybrid")).to_contain_text("1/2")
    evaluation.get_by_text("misses").click()  # folded: the question no index answers
    expect(evaluation).to_contain_text("hybrid missed “Who waters the plants?” (garden.md)")
    evaluation.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "rag-eval.png")
    chat = page.locator(".jp-OutputArea-output", has_text="Chat with 'smollm2'")
    expect(chat).to_contain_text("Paris", timeout=120_000)
    expect(chat).to_contain_text(re.compile(r"TTFT \d+ ms"))
    box = chat.locator("textarea[aria-label=Message]")  # Enter sends, Shift+Enter adds a line
    box.fill("Name a city")
    box.press("Shift+Enter")
    box.press_sequentially("in Italy. One word.")
    expect(box).to_have_value("Name a city\nin Italy. One word.")  # the cell did not run again
    box.press("Enter")
    expect(box).to_have_value("")
    expect(chat).to_contain_text("Name a city\nin Italy. One word.")
    expect(chat.get_by_text(re.compile(r"^TTFT \d+ ms"))).to_have_count(2, timeout=120_000)
    first = chat.locator("[data-kz-reply]").first  # under each reply: copy, insert
    first.get_by_role("button", name="copy").click()
    expect(first).to_contain_text("copied")
    assert "Paris" in page.evaluate("navigator.clipboard.readText()")
    cells = page.locator(".jp-Notebook .jp-Cell")
    count = cells.count()
    first.get_by_role("button", name="insert into a new cell").click()
    expect(cells).to_have_count(count + 1)
    below = cells.nth(CELLS.index(CHAT_CELL) + 1)  # right under the chat's cell
    expect(below.locator(".jp-InputArea-editor")).to_contain_text("The capital of France is Paris.")
    broken = page.locator(".kz-ps-row", has_text="broken")
    expect(broken).to_contain_text("FAILED MODEL_LOADING_FAILURE", timeout=60_000)
    expect(broken).to_contain_text("Model file not found")  # the message and what to do
    expect(broken).to_contain_text("What to do: The model could not be loaded")
    expect(broken).not_to_contain_text("MiB")  # a FAILED one holds no memory
    serving = page.locator(".kz-ps-row", has_text="endpoint")
    expect(serving).to_contain_text(re.compile(r"DEPLOYED .*~[\d.]+ MiB"))  # planned memory
    tab = page.locator(".jp-SideBar .lm-TabBar-tab[data-id='kz-sidebar']")
    if not page.locator("#kz-sidebar").is_visible():
        tab.click()
    docked_chat(page)
    chat_with_sources(page)
    themes = (("light", "JupyterLab Dark"), ("dark", "JupyterLab Dark High Contrast"),
              ("high-contrast", "JupyterLab Light"))  # fmt: skip
    for shown, theme in themes:
        page.screenshot(path=ARTIFACTS / f"panels-{shown}.png")
        measured, low = below_aa(page, PANELS)
        assert measured > 40 and not low, (shown, low)
        use_theme(page, theme)
    measured, low = below_aa(page, PANELS)  # light again, as it was
    assert measured > 40 and not low, low

    page.locator(".lm-TabBar-tab[data-id='kz-chat']").click()  # fold the chat away
    page.set_viewport_size({"width": 560, "height": 900})  # a narrow page: the row wraps
    broken.scroll_into_view_if_needed()
    output = broken.locator("xpath=ancestor::div[contains(@class,'jp-OutputArea-output')]")
    area = output.bounding_box()
    for name in ("stop", "restart", "logs", "remove"):
        button = broken.get_by_role("button", name=name)
        box = button.bounding_box()
        assert box["width"] >= 40 and box["x"] + box["width"] <= area["x"] + area["width"] + 1
        expect(button).to_contain_text(name)
    page.screenshot(path=ARTIFACTS / "ps-narrow.png")
    broken.get_by_role("button", name="remove").click()
    expect(broken).to_have_count(0, timeout=30_000)
    page.set_viewport_size({"width": 1400, "height": 900})
