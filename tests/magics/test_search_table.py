"""The search table widget: a widget view, the full text table for terminals and nbval, and
static HTML with each chunk's whole text (escaped) for renderers without widgets."""

from __future__ import annotations

from kz_jupyter.magics.search_table import SearchTable
from kz_jupyter.rag.chunks import Chunk
from kz_jupyter.rag.index import Hit

HITS = [
    Hit(
        Chunk(
            "Open Settings, then Reset <password>. " * 5,
            "/docs/guide.md",
            "lines 3-9",
            "Accounts > Passwords",
        ),
        0.812,
        1,
    ),  # fmt: skip
    Hit(Chunk("print('hello')", "/docs/intro.ipynb", "cell 4", ""), 0.5, 2),
]


def test_bundle_has_the_widget_view_the_whole_text_table_and_html():
    table = SearchTable("handbook", "reset my password", HITS, hybrid=True)
    bundle = table._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == table.model_id
    lines = bundle["text/plain"].splitlines()
    assert (
        lines[0] == "2 chunks of 'handbook' for 'reset my password' (hybrid (vector + BM25) search)"
    )
    assert lines[1].split() == ["#", "SCORE", "SOURCE", "HEADING", "TEXT"]
    assert lines[2].split()[:3] == ["1", "0.812", "guide.md:lines3-9"] and lines[2].endswith("...")
    assert lines[3].split()[:3] == ["2", "0.500", "intro.ipynb:cell4"]
    html = bundle["text/html"]
    assert html.count("<tr>") == 3 and "&lt;password&gt;" in html and "<password>" not in html
    assert "<details>" in html and "Accounts &gt; Passwords" in html
    assert table.children[0].value == html  # the widget shows the same table


def test_no_hits_is_an_empty_table_that_says_so():
    table = SearchTable("handbook", "nothing", [])
    assert repr(table).startswith("0 chunks of 'handbook' for 'nothing' (vector search)")
