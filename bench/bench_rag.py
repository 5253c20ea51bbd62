"""Retrieval: indexing speed against sentence-transformers alone, query latency at scale, and
recall of vector vs hybrid search.

1. Indexing: the generated record volumes (the tests' document set) plus this repository's
   Python sources and Markdown, indexed by `RagIndex.update` (find, read, chunk, hash, embed,
   FAISS, write) vs `SentenceTransformer.encode` alone on the same chunk texts, both loading
   all-MiniLM-L6-v2 first; runs interleaved (A, B, A, B...); ratio ours / bare in chunks/s.
2. Query latency at 10k and 100k chunks (--quick: 10k): indexes written in the index format with
   random unit vectors (embedding 100k chunks would take half an hour on two cores) and
   generated chunk texts for BM25, then opened with RagIndex; each query is a real search:
   the query embedded by the model, FAISS (exact at 10k, HNSW above 20k) and, for hybrid,
   BM25 and rank fusion. p50/p99 over the queries, after one warm-up query.
3. Recall@5 and @10 of the known answer chunks of the generated questions, vector vs hybrid.

Usage: python bench/bench_rag.py [--quick] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kz_jupyter.rag_chunks import Chunk, chunk_sections
from kz_jupyter.rag_documents import find_documents, read_sections
from kz_jupyter.rag_embedders import DEFAULT_MODEL, load_embedder
from kz_jupyter.rag_index import APPROXIMATE_ABOVE, RagIndex, build_faiss

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from ragtools.corpus import generate_corpus  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    """The value below which fraction of values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def build_documents(folder: Path) -> tuple[list[Path], list[tuple[str, str, str]]]:
    """The indexing set (generated volumes + this repository's sources and Markdown)."""
    questions = generate_corpus(folder)
    paths = [folder, ROOT / "README.md", ROOT / "kz_jupyter", ROOT / "server_ext", ROOT / "engines"]
    return paths, questions


def chunk_texts(paths: list[Path]) -> list[str]:
    """What the index embeds, for the bare encode runs."""
    texts = []
    for document in find_documents([str(p) for p in paths]):
        texts += [c.embedding_text() for c in chunk_sections(read_sections(document))]
    return texts


def indexing(paths: list[Path], work: Path, rounds: int) -> dict:
    """Chunks/s of a full index build vs encode alone, interleaved."""
    texts = chunk_texts(paths)
    load_embedder(DEFAULT_MODEL).encode(texts[:64])  # torch's first-use costs, paid by neither
    ours, bare = [], []
    for number in range(rounds):
        started = time.perf_counter()
        model = load_embedder(DEFAULT_MODEL)
        model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        bare.append(len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        report = RagIndex(f"build-{number}", work).update(paths)
        ours.append(report.chunks / (time.perf_counter() - started))
    ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
    return {
        "chunks": len(texts),
        "ours_chunks_per_s": round(statistics.median(ours), 1),
        "bare_encode_chunks_per_s": round(statistics.median(bare), 1),
        "ratio": round(ratio, 3),
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
    meta = {"name": name, "model": DEFAULT_MODEL, "dimension": dimension, "kind": kind,
            "chunks": size, "files": 0, "paths": []}  # fmt: skip
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
        row[f"{label}_p50_ms"] = round(percentile(times, 0.5), 2)
        row[f"{label}_p99_ms"] = round(percentile(times, 0.99), 2)
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


def main() -> None:
    """Run the three suites, print a table, write JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10k chunks only, fewer rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("bench/results/rag.json"))
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    sizes = [10_000] if args.quick else [10_000, 100_000]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        (work / "docs").mkdir()
        paths, questions = build_documents(work / "docs")
        built = indexing(paths, work / "indexes", rounds)
        print(
            f"indexing: {built['chunks']} chunks, ours {built['ours_chunks_per_s']} chunks/s vs "
            f"encode alone {built['bare_encode_chunks_per_s']} chunks/s: ratio {built['ratio']}"
        )
        rng = random.Random(1)
        queries = [q for q, _, _ in questions] * (2 if args.quick else 5)
        rng.shuffle(queries)
        latency = []
        for size in sizes:
            row = query_latency(work / "synthetic", size, queries)
            latency.append(row)
            print(
                f"query at {size} chunks ({row['kind']}, {len(queries)} queries): vector p50 "
                f"{row['vector_p50_ms']} ms p99 {row['vector_p99_ms']} ms; hybrid p50 "
                f"{row['hybrid_p50_ms']} ms p99 {row['hybrid_p99_ms']} ms (BM25 built in "
                f"{row['hybrid_first_s']} s on first use)"
            )
        recalls = recall(RagIndex("build-0", work / "indexes"), questions)
        print(
            f"recall on {recalls['questions']} questions: vector @5 {recalls['vector_recall@5']} "
            f"@10 {recalls['vector_recall@10']}; hybrid @5 {recalls['hybrid_recall@5']} "
            f"@10 {recalls['hybrid_recall@10']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    results = {"quick": args.quick, "indexing": built, "latency": latency, "recall": recalls}
    args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
