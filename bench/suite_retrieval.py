"""Retrieval quality, before and after, in one run: the docstrings of 89 standard-library
modules written as `.txt` files with reStructuredText headings (bench/retrieval_corpus.py), and
47 questions written as users ask them (22 keyword-heavy, 25 paraphrases), each answered by one
passage of one file. The same corpus is indexed by this tree and by BASELINE (the code before
the retrieval work, from a git worktree), each in a process of its own; every question is asked
by vector and by hybrid search of each (and, by this tree, reranked when $KZ_BENCH_RERANKER
names a cross-encoder or `deployment:NAME`), and scored by `kz_jupyter.rag.evaluation`: passage
recall@5 and MRR@10, and file recall@5. Indexing speed is this tree's `RagIndex.update` against
encoding the same texts (each chunk, and its lead sentence) with the model alone, both loading
the model first, rounds alternating; and how many chunks are longer than the embedder reads
(its max_seq_length)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Chart, Goal, SuiteResult
from bench.retrieval_corpus import MODULES, QUESTIONS, write_corpus
from kz_jupyter.rag.chunks import Chunk
from kz_jupyter.rag.embedders import DEFAULT_MODEL, load_embedder
from kz_jupyter.rag.evaluation import DEPTH, Question, evaluate_with

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "dc35e19f57e5d0c3f91d62146d2bc151599133e9"  # before the retrieval work (issue 26)
K = 5
RERANKER = os.environ.get("KZ_BENCH_RERANKER")  # no reranker model can be had offline here
# Indexes the corpus with the kz_jupyter of the tree given, asks every question by each method
# (reranked: hybrid's candidates reranked by argv[6], when given); prints JSON: the seconds to
# index (the model loaded inside), the chunks' and leads' texts (no leads before kz had them),
# the hits.
DRIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import sentence_transformers  # imported before the clock starts, as the encoder's side is
from kz_jupyter.rag.index import RagIndex
questions = json.loads(Path(sys.argv[4]).read_text())
DEPTH = int(sys.argv[5])
index = RagIndex("retrieval", Path(sys.argv[3]))
started = time.perf_counter()
report = index.update([sys.argv[2]])
seconds = time.perf_counter() - started
rerank = sys.argv[6] if len(sys.argv) > 6 else None
def found(query, method):
    options = {"rerank": rerank} if method == "reranked" else {}
    hits = index.search(query, k=DEPTH, hybrid=method != "vector", **options)
    return [{"text": h.chunk.text, "source": h.chunk.source, "location": h.chunk.location,
             "heading": h.chunk.heading} for h in hits]
methods = ("vector", "hybrid", "reranked") if rerank else ("vector", "hybrid")
hits = {method: [found(q, method) for q in questions] for method in methods}
texts = [c.embedding_text() for c in index.chunks]
leads = [c.lead_text() for c in index.chunks] if hasattr(index.chunks[0], "lead_text") else []
print(json.dumps({"seconds": seconds, "texts": texts, "leads": leads, "hits": hits}))
"""


def run_tree(tree: Path, corpus: Path, work: Path, rerank: str | None = None) -> dict:
    """Index the corpus with the tree's code and ask every question, in a process of its own."""
    questions = work / "questions.json"
    questions.write_text(json.dumps([q for q, _, _, _ in QUESTIONS]))
    root = Path(tempfile.mkdtemp(dir=work))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tree), str(corpus), str(root), str(questions),
         str(DEPTH), *([rerank] if rerank else [])],
        capture_output=True, text=True, timeout=3600, check=True, cwd=work,
    )  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


def baseline_tree(work: Path) -> Path:
    """A git worktree of BASELINE."""
    tree = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), BASELINE],
                   cwd=ROOT, capture_output=True, check=True)  # fmt: skip
    return tree


def encode_alone(texts: list[str]) -> float:
    """Seconds to load the model and encode the texts with it, nothing else."""
    started = time.perf_counter()
    model = load_embedder(DEFAULT_MODEL)
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    return time.perf_counter() - started


def too_long(texts: list[str]) -> int:
    """How many texts are longer than the embedder reads."""
    model = load_embedder(DEFAULT_MODEL)
    window = model.max_seq_length
    return sum(len(model.tokenizer(t)["input_ids"]) > window for t in texts)


def scores(outcome: dict, questions: list[Question], by_file: bool = False) -> dict[str, tuple]:
    """(recall@K, MRR@DEPTH) per method of a tree's hits; by_file: the file alone counts."""
    asked = [Question(q.text, q.source) if by_file else q for q in questions]
    lookup = {
        method: {q: [Chunk(**hit) for hit in hits] for q, hits in zip(
            [q.text for q in questions], outcome["hits"][method], strict=True)}
        for method in outcome["hits"]
    }  # fmt: skip
    evaluation = evaluate_with(lambda query, method: lookup[method][query], asked, k=K,
                               methods=list(lookup))  # fmt: skip
    return {m: (evaluation.recall(m), evaluation.mrr(m)) for m in evaluation.ranks}


def run(quick: bool) -> SuiteResult:
    """Index the corpus with this tree and BASELINE, score both; time indexing vs encoding."""
    questions = [Question(q, f"{module}.txt", passage) for q, module, passage, _ in QUESTIONS]
    with tempfile.TemporaryDirectory(prefix="kz-retrieval-") as folder:
        work = Path(folder)
        corpus = work / "corpus"
        write_corpus(corpus)
        tree = baseline_tree(work)
        try:
            before = run_tree(tree, corpus, work)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)],
                           cwd=ROOT, capture_output=True)  # fmt: skip
        index_s, encode_s = [], []
        for _ in range(1 if quick else 2):  # alternating: this tree's index, the encoder alone
            after = run_tree(ROOT, corpus, work, RERANKER)
            index_s.append(after["seconds"])
            encode_s.append(encode_alone(after["texts"] + after["leads"]))
    rows = []
    for label, outcome in (("before", before), ("after", after)):
        passages, files = scores(outcome, questions), scores(outcome, questions, by_file=True)
        for method, (recall, mrr) in passages.items():
            rows.append({"code": label, "method": method, f"passage recall@{K}": recall,
                         f"passage MRR@{DEPTH}": mrr, f"file recall@{K}": files[method][0],
                         "chunks": len(outcome["texts"]),
                         "chunks over the window": too_long(outcome["texts"])})  # fmt: skip
    speed = statistics.median(e / i for i, e in zip(index_s, encode_s, strict=True))
    hybrid = next(r for r in rows if r["code"] == "after" and r["method"] == "hybrid")
    return SuiteResult(
        suite="retrieval",
        title="Retrieval: passage recall and MRR, before and after (stdlib docstrings)",
        rows=rows,
        notes=[
            f"corpus: {len(MODULES)} modules' docstrings as .txt files with reStructuredText "
            f"headings ({sys.version.split()[0]}); questions: 22 keyword-heavy, 25 paraphrases; "
            f"before = {BASELINE[:7]}, after = this tree",
            f"indexing: this tree's RagIndex.update {statistics.median(index_s):.1f} s, the "
            f"encoder alone {statistics.median(encode_s):.1f} s on the same texts "
            f"({len(after['texts'])} chunks and {len(after['leads'])} lead sentences): "
            f"speed ratio {speed:.2f} (index ÷ encode time, inverted)",
            f"reranked: by {RERANKER}"
            if RERANKER
            else "reranked: not measured, no "
            "cross-encoder or reranker GGUF can be had on this machine (set KZ_BENCH_RERANKER "
            "to a cross-encoder or deployment:NAME)",
        ],
        goals=[
            Goal(
                f"hybrid passage recall@{K} >= 0.95",
                hybrid[f"passage recall@{K}"],
                hybrid[f"passage recall@{K}"] >= 0.95,
            ),
            Goal(
                f"hybrid passage MRR@{DEPTH} >= 0.85",
                hybrid[f"passage MRR@{DEPTH}"],
                hybrid[f"passage MRR@{DEPTH}"] >= 0.85,
            ),
            Goal("indexing no slower than 0.9x the encoder alone", speed, speed >= 0.9),
            Goal(
                "no chunk longer than the embedder reads",
                hybrid["chunks over the window"],
                hybrid["chunks over the window"] == 0,
            ),
        ],  # fmt: skip
        charts=[
            Chart.from_rows(
                "Passage recall@5 and MRR@10",
                "fraction",
                [f"{r['code']} {r['method']}" for r in rows],
                rows,
                {f"recall@{K}": f"passage recall@{K}", f"MRR@{DEPTH}": f"passage MRR@{DEPTH}"},
            )
        ],  # fmt: skip
        details={"index_s": index_s, "encode_s": encode_s, "baseline": BASELINE},
    )
