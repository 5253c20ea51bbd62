"""The chat widget's rendering: the model's markdown as HTML (raw HTML shown as text), the
user's words as typed, and each reply's figures and how it ended."""

from __future__ import annotations

from kz_jupyter.client.replies import Reply
from kz_jupyter.magics.chat_panel import ChatPanel
from kz_jupyter.magics.text import format_reply_figures


def test_replies_render_markdown_and_never_run_html():
    chat = ChatPanel(client=None, name="smollm2")
    answer = "Here:\n\n```python\nprint(1)\n```\n\n**done** <script>x</script>"
    chat.messages = [
        {"role": "user", "content": "Show **code** <b>please</b>"},
        {"role": "assistant", "content": answer},
    ]
    chat.figures[1] = "TTFT 80 ms · 12 tokens · 30.0 tok/s"
    chat._render()
    html = chat._history.value
    assert "Show **code** &lt;b&gt;please&lt;/b&gt;" in html  # the user's text, as typed
    assert '<pre><code class="language-python">print(1)\n</code></pre>' in html
    assert "<strong>done</strong>" in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "TTFT 80 ms · 12 tokens · 30.0 tok/s" in html
    assert "data-kz-reply='1'" in html and chat._history.replies == {"1": answer}  # copy, insert
    assert "(TTFT 80 ms · 12 tokens · 30.0 tok/s)" in chat.text()


def test_figures_say_how_a_reply_ended():
    whole = Reply("m", ttft=0.25, seconds=1.25, completion_tokens=11, finish_reason="stop")
    assert format_reply_figures(whole, 256) == "TTFT 250 ms · 11 tokens · 10.0 tok/s"
    cut = Reply("m", ttft=0.1, seconds=1.1, completion_tokens=2, finish_reason="length")
    assert (
        format_reply_figures(cut, 2) == "TTFT 100 ms · 2 tokens · 1.0 tok/s · cut at --max-tokens 2"
    )
    stopped = Reply("m", ttft=0.1, seconds=0.5, stopped=True)
    assert format_reply_figures(stopped, 256) == "TTFT 100 ms · stopped"
