"""%kz rag in a real IPython shell: index, list, search, ask the deployed SmolLM2, remove."""

from __future__ import annotations

import re

import pytest

from tests.support.magics_run import run_session
from tests.support.ragtools.corpus import generate_corpus

pytestmark = pytest.mark.slow
FOLLOW_UP = "What colour were its outer walls?"  # "its": what the conversation is about


@pytest.fixture(scope="module")
def transcript(tmp_path_factory):
    home = tmp_path_factory.mktemp("rag-magics")
    corpus = home / "corpus"
    corpus.mkdir()
    question, heading, year = generate_corpus(corpus)[0]
    cells = [
        "%load_ext kz_jupyter",
        f"%kz rag index {corpus} --name records",
        "%kz rag list",
        f'%kz rag search records "{question}" -k 3',
        f"%kz rag index {corpus} --name records",
        "%kz deploy smollm2",
        f'%kz rag ask records "{question}" --deployment smollm2 -k 3 --max-tokens 48',
        f'%kz chat smollm2 "{question}" --rag records -k 3 --max-tokens 48',
        "from kz_jupyter import rag\n"
        f"first = rag.ask('records', {question!r}, 'smollm2', k=3, max_tokens=24)\n"
        f"history = [{{'role': 'user', 'content': {question!r}}},\n"
        "           {'role': 'assistant', 'content': ''.join(first)}]\n"
        f"follow = rag.ask('records', {FOLLOW_UP!r}, 'smollm2', k=3, max_tokens=24,\n"
        "                  history=history)\n"
        "print('answer:', ''.join(follow))\n"
        "print('turn 2 source:', follow.sources[0].chunk.heading)\n"
        f"print('alone:', rag.search('records', {FOLLOW_UP!r}, k=1)[0].chunk.heading)",
        "from kz_jupyter.client import KzClient\n"
        "from kz_jupyter.magics.chat_panel import ChatPanel\n"
        "chat = ChatPanel(KzClient(), 'smollm2', rag='records', k=3, max_tokens=24)\n"
        f"chat.send({question!r})\nchat.wait(120)\n"
        f"chat.send({FOLLOW_UP!r})\nchat.wait(120)\nprint(chat.text())",
        "from kz_jupyter.magics.ask_panel import AskPanel\n"  # %kz rag ask's notebook panel
        f"ask = AskPanel('records', {question!r}, 'smollm2', k=3, max_tokens=8)\n"
        "ask.run(KzClient)\nprint(ask.text())\nprint('figures:', ask.figures)\n"
        "print('phase left:', repr(ask._phase.value))",
        "%kz rag search ghost anything",
        "%kz rag index /nonexistent/docs --name x",
        "%kz rag rm records",
        "%kz rag list",
        "%kz stop smollm2",
    ]
    out, err = run_session(home, cells, KZ_RAG_DIR=str(home / "rag"))
    return out, err, heading, year


def test_no_cell_shows_a_traceback(transcript):
    out, err, _, _ = transcript
    assert sorted(out) == list(range(16))
    for number in out:
        assert "Traceback" not in out[number] + err[number], (number, out[number], err[number])


def test_index_list_search_and_incremental_reindex(transcript):
    out, _, heading, _ = transcript
    assert "'records': 414 chunks from 46 new or changed files (0 unchanged" in out[1]
    steps = [line.split("...")[0] for line in out[1].splitlines() if "... (+" in line]
    assert steps == ["finding the documents", "loading the embedder all-MiniLM-L6-v2",
                     "reading 46 files", "embedding 414 chunks"], out[1]  # fmt: skip
    assert "records" in out[2] and "414" in out[2] and "flat" in out[2]
    lines = out[3].splitlines()
    start = next(n for n, line in enumerate(lines) if "chunks of 'records'" in line)
    caption, header, first_hit = lines[start : start + 3]
    assert "3 chunks of 'records' for" in caption and "(vector search)" in caption
    assert header.split() == ["#", "SCORE", "SOURCE", "HEADING", "TEXT"]
    assert first_hit.startswith("1 ") and heading[:30] in first_hit
    assert "from 0 new or changed files (46 unchanged, 0 removed), 0 embedded" in out[4]


def test_ask_streams_an_answer_with_its_sources(transcript):
    out, _, heading, _ = transcript
    answer, _, sources = out[6].partition("Sources:")
    assert answer.strip()
    assert "[1] " in sources and f"({heading})" in sources


def test_bad_requests_are_one_line_errors(transcript):
    out, err, _, _ = transcript
    assert "kz: No index named 'ghost': create it with %kz rag index PATH." in err[11]
    assert "kz: /nonexistent/docs does not exist." in err[12]
    assert "Removed " in out[13] and "No indexes yet" in out[14]


def test_a_grounded_chat_retrieves_with_the_conversation_so_far(transcript):
    out, _, heading, _ = transcript
    answer, _, sources = out[7].partition("Sources:")  # %kz chat --rag: as %kz rag ask
    assert answer.strip() and f"({heading})" in sources
    # the follow-up alone finds another section; with the conversation, the one it is about
    assert f"turn 2 source: {heading}" in out[8] and f"alone: {heading}" not in out[8], out[8]
    # the chat widget: each reply with its sources, the second turn's about the same section
    turns = out[9].split("\nuser: ")
    assert len(turns) == 3 and "grounded in 'records'" in turns[0], out[9]
    assert all("  source [1] " in turn and heading in turn for turn in turns[1:]), out[9]


def test_the_ask_panel_shows_sources_the_answer_and_a_cut(transcript):
    out, _, heading, _ = transcript
    answer, _, rest = out[10].partition("Sources:")
    assert answer.strip().endswith("[cut at --max-tokens 8]"), out[10]  # 8 tokens: cut
    assert "[1] " in rest and f"({heading})" in rest
    assert re.search(
        r"figures: TTFT \d+ ms · 8 tokens · [\d.]+ tok/s · cut at --max-tokens 8", rest
    )
    assert "phase left: ''" in rest  # the spinner is gone once the answer is in
