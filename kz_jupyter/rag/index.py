"""Retrieval indexes: chunks embedded with sentence-transformers (each whole, and its lead
sentence apart), searched with FAISS (and BM25 for hybrid search), kept on disk, updated
incrementally by content hash."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kz_jupyter.data_dirs import data_dir
from kz_jupyter.rag.chunks import Chunk, budget_for, chunk_sections
from kz_jupyter.rag.documents import DocumentError, find_documents, read_sections, user_path
from kz_jupyter.rag.embedders import DEFAULT_MODEL, ProgressCallback, embed, load_embedder
from kz_jupyter.rag.fusion import VECTOR_WEIGHT, fuse
from kz_jupyter.rag.keywords import KeywordIndex
from kz_jupyter.rag.rerank import CANDIDATES, Reranker, load_reranker

if TYPE_CHECKING:
    from kz_jupyter.client import KzClient

# The way chunks are cut and embedded; an index made another way is chunked again once (its
# files all). 3: a chunk's context line holds its document's title, its lead is embedded too.
CHUNKING_VERSION = 3
APPROXIMATE_ABOVE = 20_000  # chunks: above this an HNSW index, below it exact search
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class RagError(ValueError):
    """A retrieval request that cannot be served; the message says what to do."""


def rag_dir() -> Path:
    """Where indexes live: $KZ_RAG_DIR, else the user data dir (a shared folder works too)."""
    return data_dir("KZ_RAG_DIR", "rag")


def check_name(name: str) -> str:
    """Check an index name: lowercase letters, digits, '.', '_', '-'; returns it."""
    if not name or not set(name) <= NAME_CHARS or not name[0].isalnum() or len(name) > 63:
        raise RagError(
            f"Invalid index name {name!r}: use lowercase letters, digits, '.', '_' or '-'."
        )
    return name


def file_hash(path: Path) -> str:
    """The sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class UpdateReport:
    """What an index update did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why
    rebuilt: bool = False  # its chunks were made another way (an older kz, another model)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its score (cosine, or fused rank score for hybrid search)."""

    chunk: Chunk
    score: float
    rank: int


class RagIndex:
    """One named index on disk: meta.json, chunks.json, files.json, embeddings.npy (a row per
    chunk), leads.npy (a row per chunk's lead sentence), index.faiss (both)."""

    def __init__(
        self, name: str, root: Path | None = None, client: Callable[[], KzClient] | None = None
    ):
        """Open index name under root (default rag_dir()); client() connects to the kz server
        when the index embeds through a deployment."""
        self.name = check_name(name)
        self.path = (root or rag_dir()) / name
        self._client = client
        self.meta: dict = {}
        self.chunks: list[Chunk] = []
        self.files: dict[str, dict] = {}
        self._embeddings = None
        self._leads = None
        self._faiss = None
        self._bm25 = None
        self._embedder = None
        self._rerankers: dict[str, Reranker] = {}
        self._recover_swap()
        if (self.path / "meta.json").exists():
            self._load()

    def _recover_swap(self) -> None:
        """Put back the previous version if a write stopped between its two renames."""
        previous = self._previous_path
        if previous.is_dir() and not self.path.exists():
            previous.rename(self.path)

    @property
    def _previous_path(self) -> Path:
        """Where the version being replaced waits while a new one is swapped in."""
        return self.path.with_name(f".{self.name}-previous")

    @property
    def exists(self) -> bool:
        """True once the index has been written."""
        return bool(self.meta)

    def _load(self) -> None:
        """Read the index files."""
        import faiss
        import numpy as np

        try:
            self.meta = json.loads((self.path / "meta.json").read_text())
            self.chunks = [Chunk(**c) for c in json.loads((self.path / "chunks.json").read_text())]
            self.files = json.loads((self.path / "files.json").read_text())
            self._embeddings = np.load(self.path / "embeddings.npy")
            leads = self.path / "leads.npy"  # none in an index made before kz embedded leads
            self._leads = np.load(leads) if leads.exists() else None
            self._faiss = faiss.read_index(str(self.path / "index.faiss"))
        except (OSError, ValueError, RuntimeError) as error:
            raise RagError(
                f"Index '{self.name}' at {self.path} is damaged ({error}): remove it "
                f"(%kz rag rm {self.name}) and index again."
            ) from None

    def update(
        self,
        paths: Iterable[str | Path],
        model: str | None = None,
        progress: ProgressCallback | None = None,
        phase: Callable[[str], None] | None = None,
    ) -> UpdateReport:
        """Index new and changed documents under paths, drop deleted ones; unchanged files keep
        their embeddings. Written whole or not at all. phase hears each step as it begins
        (finding the documents, loading the embedder, reading, embedding)."""
        import numpy as np

        started = time.perf_counter()
        paths = [str(user_path(p).resolve()) for p in paths]
        model = model or self.meta.get("model") or DEFAULT_MODEL
        if self.exists and model != self.meta["model"]:
            raise RagError(
                f"Index '{self.name}' was built with {self.meta['model']}: index with that model, "
                "or remove it first to change models."
            )
        report = UpdateReport()
        say = phase or (lambda _: None)
        say("finding the documents")
        documents = {str(p): p for p in find_documents(paths)}
        say(f"loading the embedder {model}")
        embedder = self._embedder_for(model)
        budget = budget_for(embedder)
        chunking = f"{CHUNKING_VERSION}:{budget.describe()}"
        if self.exists and self.meta.get("chunking") != chunking:
            report.rebuilt = True  # chunks made another way: every file is chunked again
            self.files = {s: {**f, "sha256": ""} for s, f in self.files.items()}
            for source in self.files:  # those indexed from other paths too, while they exist
                if source not in documents and Path(source).is_file():
                    documents[source] = Path(source)
        keep, new_chunks, new_files = [], [], {}
        say(f"reading {len(documents)} files")
        for source, path in documents.items():
            try:
                digest = file_hash(path)
            except OSError as error:
                report.skipped[source] = f"cannot be read ({error.strerror or error})"
                continue
            if self.files.get(source, {}).get("sha256") == digest:
                report.unchanged.append(source)
                keep.append(source)
                new_files[source] = self.files[source]
                continue
            try:
                chunks = chunk_sections(read_sections(path), budget)
            except DocumentError as error:
                report.skipped[source] = str(error)
                continue
            (report.changed if source in self.files else report.added).append(source)
            new_chunks += chunks
            new_files[source] = {"sha256": digest, "chunks": len(chunks)}
        under = tuple(p if p.endswith(os.sep) else p + os.sep for p in paths)
        for source in self.files:
            if source not in documents and (source in paths or source.startswith(under)):
                report.removed.append(source)
        for source in self.files:  # files indexed from other paths stay while they exist
            if source in documents or source in report.removed:
                continue
            if Path(source).exists():
                keep.append(source)
                new_files[source] = self.files[source]
            else:
                report.removed.append(source)
        if not new_files:
            reasons = "; ".join(f"{k}: {v}" for k, v in report.skipped.items())
            raise RagError(f"Nothing could be indexed ({reasons}).")
        kept = set(keep)
        kept_rows = [i for i, c in enumerate(self.chunks) if c.source in kept]
        if new_chunks:
            say(f"embedding {len(new_chunks)} chunks")
        texts = [c.embedding_text() for c in new_chunks] + [c.lead_text() for c in new_chunks]

        def counted(done: int, total: int) -> None:  # in chunks: each is two texts
            progress(done * len(new_chunks) // total, len(new_chunks))

        vectors = embed(embedder, texts, counted if progress else None)
        wholes, leads = vectors[: len(new_chunks)], vectors[len(new_chunks) :]
        old = self._embeddings[kept_rows] if self._embeddings is not None else wholes[:0]
        old_leads = self._leads[kept_rows] if self._leads is not None else leads[:0]
        self.chunks = [self.chunks[i] for i in kept_rows] + new_chunks
        self._embeddings = np.vstack([old, wholes]).astype("float32")
        self._leads = np.vstack([old_leads, leads]).astype("float32")
        self.files = new_files
        self.meta = {
            "name": self.name,
            "model": model,
            "dimension": int(self._embeddings.shape[1]),
            "kind": "hnsw" if len(self.chunks) > APPROXIMATE_ABOVE else "flat",
            "chunks": len(self.chunks),
            "chunking": chunking,
            "files": len(self.files),
            "paths": sorted(
                {p for p in self.meta.get("paths", []) if Path(p).exists()} | set(paths)
            ),
            "created": self.meta.get("created", time.time()),
            "updated": time.time(),
        }
        self._faiss = build_faiss(np.vstack([self._embeddings, self._leads]), self.meta["kind"])
        self._bm25 = None
        try:
            self._write()
        except OSError as error:
            self._forget_unwritten()
            raise RagError(
                f"Index '{self.name}' could not be written to {self.path.parent} "
                f"({error.strerror or error}): free space there, or set KZ_RAG_DIR to another "
                "folder, and index again. The index on disk is unchanged."
            ) from None
        report.chunks, report.embedded = len(self.chunks), len(new_chunks)
        report.seconds = time.perf_counter() - started
        return report

    def _forget_unwritten(self) -> None:
        """Go back to what is on disk (nothing, for a new index) after a failed write."""
        self.meta, self.chunks, self.files = {}, [], {}
        self._embeddings = self._leads = self._faiss = self._bm25 = None
        if (self.path / "meta.json").exists():
            self._load()

    def _embedder_for(self, model: str):
        """The embedding model, loaded once per index object."""
        if self._embedder is None:
            try:
                self._embedder = load_embedder(model, self._client)
            except (OSError, ValueError) as error:
                raise RagError(f"Embedding model '{model}' cannot be loaded ({error}).") from None
        return self._embedder

    def _write(self) -> None:
        """Write every file into a new folder, then swap it in for the old one."""
        import faiss
        import numpy as np

        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.name}-", dir=self.path.parent))
        try:
            (staging / "chunks.json").write_text(json.dumps([c.to_dict() for c in self.chunks]))
            (staging / "files.json").write_text(json.dumps(self.files, indent=1))
            np.save(staging / "embeddings.npy", self._embeddings)
            np.save(staging / "leads.npy", self._leads)
            faiss.write_index(self._faiss, str(staging / "index.faiss"))
            (staging / "meta.json").write_text(json.dumps(self.meta, indent=1))
            previous = self._previous_path
            if self.path.exists():
                shutil.rmtree(previous, ignore_errors=True)
                self.path.rename(previous)
            staging.rename(self.path)
            shutil.rmtree(previous, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def search(
        self, query: str, k: int = 5, hybrid: bool = False, vector_weight: float = VECTOR_WEIGHT,
        rerank: str | None = None,
    ) -> list[Hit]:  # fmt: skip
        """The k chunks nearest to query (cosine of the chunk or of its lead, the nearer), or
        those scores fused with BM25's (the vector side's share: vector_weight). rerank (a
        cross-encoder, or `deployment:NAME` of a reranker deployment) scores the first
        CANDIDATES again, each read with the query, and keeps its k best."""
        if not self.exists:
            raise RagError(f"No index named '{self.name}': create it with %kz rag index PATH.")
        if not query.strip():
            raise RagError("The query is empty.")
        k = max(1, min(k, len(self.chunks)))
        wanted = min(len(self.chunks), max(k, CANDIDATES)) if rerank else k
        depth = wanted if not hybrid else min(len(self.chunks), max(50, 5 * wanted))
        ranked = self._nearest(query, depth)
        if hybrid:
            if self._bm25 is None:
                self._bm25 = KeywordIndex([c.embedding_text() for c in self.chunks])
            ranked = fuse(ranked, self._bm25.ranked(query, depth), vector_weight)
        hits = [Hit(self.chunks[r], s, n) for n, (r, s) in enumerate(ranked[:wanted], start=1)]
        return self._reranked(rerank, query, hits)[:k] if rerank else hits

    def _reranked(self, spec: str, query: str, hits: list[Hit]) -> list[Hit]:
        """The hits in the order of the reranker's scores (their new scores)."""
        if spec not in self._rerankers:
            try:
                self._rerankers[spec] = load_reranker(spec, self._client)
            except (OSError, ValueError) as error:
                why = str(error).splitlines()[0]
                raise RagError(
                    f"Reranker '{spec}' cannot be loaded ({why}): give a sentence-transformers "
                    "cross-encoder (a name in the Hugging Face cache, or a folder), or "
                    "deployment:NAME for a reranker deployment."
                ) from None
        scores = self._rerankers[spec].scores(query, [h.chunk.embedding_text() for h in hits])
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
        return [Hit(hits[i].chunk, scores[i], n) for n, i in enumerate(order, start=1)]

    def _nearest(self, query: str, depth: int) -> list[tuple[int, float]]:
        """(chunk row, cosine) of the depth nearest chunks, each by its nearer vector."""
        vector = embed(self._embedder_for(self.meta["model"]), [query])
        scores, rows = self._faiss.search(vector, min(self._faiss.ntotal, 2 * depth))
        nearest: dict[int, float] = {}
        for row, score in zip(rows[0], scores[0], strict=True):
            if row >= 0:  # rows past the chunks' are their leads: the first seen is the nearer
                nearest.setdefault(int(row) % len(self.chunks), float(score))
        return list(nearest.items())[:depth]


def build_faiss(vectors, kind: str):
    """An inner-product FAISS index over normalized vectors: exact, or HNSW when large."""
    import faiss

    dimension = vectors.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dimension)
    index.add(vectors)
    return index


def list_indexes(root: Path | None = None) -> list[dict]:
    """Every index under root: its meta (name, model, chunks, files, kind, paths, dates)."""
    root = root or rag_dir()
    found = []
    for meta in sorted(root.glob("*/meta.json")) if root.is_dir() else []:
        try:
            found.append(json.loads(meta.read_text()))
        except (OSError, ValueError):
            found.append({"name": meta.parent.name, "error": "unreadable meta.json"})
    return found


def remove_index(name: str, root: Path | None = None) -> Path:
    """Delete an index folder; RagError when there is none."""
    path = (root or rag_dir()) / check_name(name)
    if not (path / "meta.json").exists():
        raise RagError(f"No index named '{name}' in {path.parent}.")
    shutil.rmtree(path)
    return path
