"""Retrieval indexes over a generated document set: structure-aware reading and chunking,
recall@5 of known answer chunks, incremental re-index, persistence, bad input."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from kz_jupyter import rag
from kz_jupyter.magics.rag_magics import format_update
from kz_jupyter.rag.chunks import CharBudget, chunk_sections
from kz_jupyter.rag.documents import DocumentError, find_documents, read_sections
from kz_jupyter.rag.embedders import DEFAULT_MODEL, load_embedder
from kz_jupyter.rag.index import (
    CHUNKING_VERSION,
    RagError,
    RagIndex,
    list_indexes,
    remove_index,
)
from tests.support.model_files import fill_disk
from tests.support.ragtools.corpus import generate_corpus

KEEPER = (
    "# The lighthouse keeper\n\nThe keeper of the northern lighthouse climbed the stairs every "
    "evening at dusk, trimmed the wick, polished the lens and wrote the weather into the log book. "
    "In the winter storms the waves reached the gallery and the keeper stayed awake through the "
    "night to keep the lamp burning. The lamp's burner carries the maker's stamp ZK4471Q. When the "
    "fog came in, the keeper rang the bell every thirty seconds until the fishing boats had "
    "returned to the harbour.\n"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, generate_corpus(folder)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    folder, _ = corpus
    root = tmp_path_factory.mktemp("rag")
    index = RagIndex("records", root)
    seen = []
    report = index.update([folder], progress=lambda done, total: seen.append((done, total)))
    return index, report, root, seen


def test_sections_keep_headings_code_and_places(tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text(
        "# Install\n\nRun the setup.\n\n```\nmake setup\n\nmake test\n```\n\n## Use\n\nOpen it.\n"
    )
    sections = read_sections(doc)
    assert [(s.heading, s.location, s.code) for s in sections] == [
        ("Install", "line 3", False),
        ("Install", "line 5", True),
        ("Use", "line 13", False),
    ]
    assert sections[1].text == "```\nmake setup\n\nmake test\n```"
    rst = tmp_path / "notes.rst"
    rst.write_text("Overview\n========\n\nFirst paragraph.\n\nSecond one.\n")
    assert [(s.heading, s.text) for s in read_sections(rst)] == [
        ("Overview", "First paragraph."),
        ("Overview", "Second one."),
    ]
    module = tmp_path / "tool.py"
    module.write_text(
        '"""Tool."""\nimport os\n\n\ndef run():\n    return 1\n\n\nclass Box:\n    pass\n'
    )
    assert [(s.heading, s.location) for s in read_sections(module)] == [
        ("module", "line 1"),
        ("run", "line 5"),
        ("Box", "line 9"),
    ]
    notebook = tmp_path / "demo.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Loading\n\nWe load data."),
        nbformat.v4.new_code_cell("import pandas as pd\ndf = pd.read_csv('x.csv')"),
    ]
    nbformat.write(nb, str(notebook))
    cells = read_sections(notebook)
    assert [(s.location, s.heading, s.code) for s in cells] == [
        ("cell 1", "Loading", False),
        ("cell 2", "Loading", True),
    ]


def test_chunks_join_small_sections_and_cut_long_ones_with_overlap(tmp_path):
    doc = tmp_path / "long.md"
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(12)]
    doc.write_text("# Part\n\n" + "\n\n".join(paragraphs) + "\n\n" + "long " * 600)
    chunks = chunk_sections(read_sections(doc), CharBudget(500, 200))
    assert all(len(c.text) <= 500 for c in chunks) and len(chunks) > 5
    assert all(c.heading == "Part" for c in chunks)
    # each chunk after the first starts with the last paragraph of the one before
    assert chunks[1].text.startswith(chunks[0].text.split("\n\n")[-1])


def test_structure_is_read_from_the_content_when_the_name_does_not_say(tmp_path):
    rst = "Overview\n========\n\nFirst paragraph.\n\nUsage\n-----\n\nCall it with --help.\n"
    for name in ("README", "notes.txt"):
        (tmp_path / name).write_text(rst)
        assert [(s.heading, s.text) for s in read_sections(tmp_path / name)] == [
            ("Overview", "First paragraph."),
            ("Usage", "Call it with --help."),
        ]
    (tmp_path / "guide.txt").write_text("# Install\n\nRun it.\n\nSetup\n=====\n\nDone.\n")
    assert [s.heading for s in read_sections(tmp_path / "guide.txt")] == ["Install", "Setup"]
    (tmp_path / "tool").write_text("import os\n\n\ndef run():\n    return os.getcwd()\n")
    (tmp_path / "tool").chmod(0o755)  # a program: not read from a folder, read when named
    assert tmp_path / "README" in find_documents([tmp_path])
    assert tmp_path / "tool" not in find_documents([tmp_path])
    assert [s.heading for s in read_sections(tmp_path / "tool")] == ["module", "run"]


def test_no_chunk_is_longer_than_the_embedder_reads(built):
    index, _, _, _ = built
    embedder = load_embedder(DEFAULT_MODEL)
    assert index.meta["chunking"] == f"{CHUNKING_VERSION}:tokens:254"
    longest = max(len(embedder.tokenizer(c.embedding_text())["input_ids"]) for c in index.chunks)
    assert longest <= embedder.max_seq_length == 256


def test_an_index_chunked_the_old_way_is_rebuilt_once(built, tmp_path):
    _, _, root, _ = built
    copy = tmp_path / "docs"
    copy.mkdir()
    (copy / "a.md").write_text("# A\n\nThe first document.\n")
    (copy / "b.md").write_text("# B\n\nThe second document.\n")
    first = RagIndex("old-way", root).update([copy])
    meta = root / "old-way" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "chunking": "1:chars:1000"}))
    again = RagIndex("old-way", root).update([copy])
    assert again.rebuilt and again.embedded == first.embedded and not again.unchanged
    assert "rebuilt: its chunks were cut another way" in format_update("old-way", again)
    third = RagIndex("old-way", root).update([copy])
    assert not third.rebuilt and third.embedded == 0 and len(third.unchanged) == 2


def test_evaluate_gives_the_recall_a_hand_count_gives(built, corpus, tmp_path, monkeypatch):
    _, _, root, _ = built
    passage = "The stone bridge of Tembrook"
    source = next(p.name for p in corpus[0].glob("*.md") if passage in p.read_text())
    asked = [  # (question, passage) answered by source; "" is the file alone
        ("When was the stone bridge of Tembrook built?", ""),
        ("stone bridge of Tembrook", passage),
        ("stone bridge of Tembrook", "a passage no file has"),
    ]
    path = tmp_path / "questions.json"
    path.write_text(json.dumps([
        {"question": q, "source": source, **({"passage": p} if p else {})}
        for q, p in asked
    ]))  # fmt: skip
    records = RagIndex("records", root)

    def by_hand(question: str, passage: str, hybrid: bool) -> int | None:
        for rank, hit in enumerate(records.search(question, k=10, hybrid=hybrid), start=1):
            text = " ".join(f"{hit.chunk.heading} {hit.chunk.text}".split())
            if hit.chunk.source.endswith(f"/{source}") and passage in text:
                return rank
        return None

    monkeypatch.setenv("KZ_RAG_DIR", str(root))  # where the built index is
    evaluation = rag.evaluate("records", path, k=5)
    for method, hybrid in (("vector", False), ("hybrid", True)):
        ranks = [by_hand(question, passage, hybrid) for question, passage in asked]
        assert evaluation.ranks[method] == ranks and ranks[2] is None and ranks[1] is not None
        assert evaluation.recall(method) == sum(r is not None and r <= 5 for r in ranks) / 3
        assert evaluation.mrr(method) == pytest.approx(sum(1 / r for r in ranks if r) / 3)
    assert [row["method"] for row in evaluation.rows()] == ["vector", "hybrid"]
    with pytest.raises(RagError, match="Unknown method 'bm25'"):
        rag.evaluate("records", path, methods=["bm25"])


def test_recall_at_5_of_known_answer_chunks(built, corpus):
    index, report, _, _ = built
    _, questions = corpus
    assert report.chunks >= 400 and index.meta["kind"] == "flat"
    for hybrid in (False, True):
        found = 0
        for question, heading, year in questions:
            hits = index.search(question, k=5, hybrid=hybrid)
            found += any(h.chunk.heading == heading and year in h.chunk.text for h in hits)
        recall = found / len(questions)
        assert recall >= 0.9, (hybrid, recall)


def test_progress_is_reported_in_batches(built):
    _, report, _, seen = built
    assert seen[-1] == (report.embedded, report.embedded) and len(seen) > 3


def test_reindex_skips_unchanged_files_and_drops_deleted_ones(built, corpus, tmp_path):
    index, _, root, _ = built
    folder, _ = corpus
    copy = tmp_path / "copy"
    copy.mkdir()
    for doc in sorted(folder.glob("*.md"))[:4]:
        (copy / doc.name).write_text(doc.read_text())
    small = RagIndex("small", root)
    first = small.update([copy])
    assert len(first.added) == 4 and first.embedded == first.chunks
    (copy / "volume-01.md").write_text("# Changed\n\nThe pier of Nowhere was rebuilt in 2001.\n")
    (copy / "volume-02.md").unlink()
    again = RagIndex("small", root).update([copy])
    assert len(again.unchanged) == 2 and len(again.changed) == 1 and len(again.removed) == 1
    assert again.embedded == 1 and again.chunks == first.chunks - 18 + 1
    hits = RagIndex("small", root).search("When was the pier of Nowhere rebuilt?", k=1)
    assert "2001" in hits[0].chunk.text


def test_reindexing_under_the_same_name_drops_sources_gone_from_disk(built, corpus, tmp_path):
    _, _, root, _ = built
    folder, _ = corpus
    old, new = tmp_path / "old", tmp_path / "new"
    for place, doc in ((old, "volume-01.md"), (new, "volume-02.md")):
        place.mkdir()
        (place / doc).write_text((folder / doc).read_text())
    RagIndex("seeds", root).update([old])
    shutil.rmtree(old)
    report = RagIndex("seeds", root).update([new])  # the same name, another folder
    assert report.removed == [str(old / "volume-01.md")], report
    assert report.added == [str(new / "volume-02.md")]
    seeds = RagIndex("seeds", root)
    assert {c.source for c in seeds.chunks} == {str(new / "volume-02.md")}
    assert seeds.meta["paths"] == [str(new)]
    summary = format_update("seeds", report)
    assert "1 removed" in summary and f"removed {old}/volume-01.md: no longer on disk" in summary


def test_hybrid_search_finds_what_only_the_keywords_find(built, corpus, tmp_path):
    _, _, root, _ = built
    shutil.copytree(root / "records", root / "keywords")  # the corpus, embedded once
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "keeper.md").write_text(KEEPER)
    index = RagIndex("keywords", root)
    assert index.update([extra]).embedded == 1
    question = "ZK4471Q pier repairs"  # the vectors go to the piers; one passage has the stamp
    assert not any("ZK4471Q" in h.chunk.text for h in index.search(question, k=5))
    assert any("ZK4471Q" in h.chunk.text for h in index.search(question, k=5, hybrid=True))


def test_a_large_index_is_approximate_and_finds_what_the_exact_one_finds(
    built, corpus, tmp_path, monkeypatch
):
    exact, _, root, _ = built
    _, questions = corpus
    module = importlib.import_module("kz_jupyter.rag.index")  # rag.index is also a function
    monkeypatch.setattr(module, "APPROXIMATE_ABOVE", 100)  # 20k chunks, scaled down
    shutil.copytree(root / "records", root / "approx")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "keeper.md").write_text(KEEPER)
    approx = RagIndex("approx", root)
    approx.update([extra])  # rebuilt with one more file: now over the threshold
    assert approx.meta["kind"] == "hnsw" and type(approx._faiss).__name__ == "IndexHNSWFlat"
    assert RagIndex("approx", root).meta["kind"] == "hnsw"  # and so it is written
    found = total = 0
    for question, _, _ in questions:
        wanted = {(h.chunk.source, h.chunk.location) for h in exact.search(question, k=5)}
        got = {(h.chunk.source, h.chunk.location) for h in approx.search(question, k=5)}
        found, total = found + len(wanted & got), total + len(wanted)
    assert found / total >= 0.95, found / total  # recall of HNSW against exact search


def test_a_terminal_script_prints_the_search(built, tmp_path):
    _, _, root, _ = built
    script = tmp_path / "search.ipy"  # in `ipython script.ipy` a returned value is not shown
    script.write_text('%load_ext kz_jupyter\n%kz rag search records "stone bridge of Tembrook"\n')
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--quick", str(script)], capture_output=True,
        text=True, timeout=120, env={**os.environ, "KZ_RAG_DIR": str(root)},
    )  # fmt: skip
    assert "5 chunks of 'records'" in done.stdout, done.stdout + done.stderr
    assert "The stone bridge of Tembrook" in done.stdout


def test_an_index_persists_and_answers_in_another_process(built):
    _, _, root, _ = built
    script = (
        "from pathlib import Path; from kz_jupyter.rag.index import RagIndex; "
        f"hits = RagIndex('records', Path({str(root)!r})).search('stone bridge of Tembrook', k=3); "
        "print(hits[0].chunk.heading)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "The stone bridge of Tembrook", done.stderr
    names = [meta["name"] for meta in list_indexes(root)]
    assert "records" in names


def test_bad_input_is_a_clear_message_and_writes_nothing(tmp_path):
    root = tmp_path / "rag"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentError, match="No documents to index in"):
        RagIndex("empty", root).update([empty])
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "data.txt").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(RagError, match="data.txt is a binary file"):
        RagIndex("binary", root).update([binary])
    with pytest.raises(DocumentError, match="does not exist"):
        find_documents([tmp_path / "missing"])
    with pytest.raises(DocumentError, match="'~nobody-here' names no user"):
        RagIndex("nobody", root).update(["~nobody-here/docs"])
    with pytest.raises(RagError, match="No index named 'ghost'"):
        RagIndex("ghost", root).search("anything")
    with pytest.raises(RagError, match="Invalid index name"):
        RagIndex("../escape", root)
    with pytest.raises(RagError, match="No index named 'ghost'"):
        remove_index("ghost", root)
    assert not root.exists() or list(root.iterdir()) == []


def test_a_damaged_index_says_how_to_recover(tmp_path, corpus):
    folder, _ = corpus
    root = tmp_path / "rag"
    RagIndex("one", root).update([sorted(folder.glob("*.md"))[0]])
    (root / "one" / "chunks.json").write_text("{broken")
    with pytest.raises(RagError, match="is damaged .*%kz rag rm one"):
        RagIndex("one", root)
    remove_index("one", root)
    assert json.dumps(list_indexes(root)) == "[]"


def test_a_full_disk_keeps_the_old_index_whole(corpus, small_disk):
    folder, _ = corpus
    files = sorted(folder.glob("*.md"))
    root = small_disk(8 * 2**20) / "rag"
    RagIndex("kept", root).update(files[:1])
    before = RagIndex("kept", root).search("retention policy", k=3)
    filler = fill_disk(root.parent)

    index = RagIndex("kept", root)
    with pytest.raises(RagError, match=r"could not be written .*No space left on device.*free "
                                       r"space there.*The index on disk is unchanged"):  # fmt: skip
        index.update(files)
    assert index.meta["files"] == 1  # the object is back to what is on disk
    assert sorted(p.name for p in root.iterdir()) == ["kept"]  # nothing half-written is left
    again = RagIndex("kept", root)
    assert again.meta["files"] == 1
    assert [h.chunk.text for h in again.search("retention policy", k=3)] == [
        h.chunk.text for h in before
    ]

    filler.unlink()  # space again: the same update now goes through
    report = RagIndex("kept", root).update(files)
    assert report.added and RagIndex("kept", root).meta["files"] == len(files)


def test_a_write_stopped_between_its_renames_is_recovered(corpus, tmp_path):
    folder, _ = corpus
    root = tmp_path / "rag"
    RagIndex("swap", root).update(sorted(folder.glob("*.md"))[:1])
    (root / "swap").rename(root / ".swap-previous")  # the state a crash there would leave
    index = RagIndex("swap", root)
    assert index.exists and index.meta["files"] == 1
    assert sorted(p.name for p in root.iterdir()) == ["swap"]
