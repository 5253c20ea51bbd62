"""Hybrid search's fusion: each side's scores made comparable (scaled between its weakest and
its best candidate) and added with a weight, so a passage that one side alone ranks first keeps
a place beside those both sides find; rank fusion (RRF) sank such passages to the 60s."""

from __future__ import annotations

# The vector side's share of a fused score, measured on bench/suite_retrieval.py (47 questions,
# `python -m bench retrieval`; passage recall@5 / MRR@10 of hybrid search): 0.5 0.894/0.770,
# 0.6 0.936/0.779, 0.7 0.936/0.808, 0.8 0.936/0.792. 0.6 answers as many in the top 5 as the
# best, and still lets a keyword-only hit (the second of its side) into the top 5 when the
# vector side's scores are spread (tests/rag/test_fusion.py); at 0.7 that hit sinks.
VECTOR_WEIGHT = 0.6


def scaled(ranked: list[tuple[int, float]], floor: float | None = None) -> dict[int, float]:
    """Scores scaled to 0..1: the best is 1, floor (default: the weakest given) is 0."""
    if not ranked:
        return {}
    best = max(score for _, score in ranked)
    low = min(score for _, score in ranked) if floor is None else floor
    span = best - low
    return {row: (score - low) / span if span > 0 else 1.0 for row, score in ranked}


def fuse(
    vector: list[tuple[int, float]], keyword: list[tuple[int, float]],
    vector_weight: float = VECTOR_WEIGHT,
) -> list[tuple[int, float]]:  # fmt: skip
    """(row, fused score) best first, from the vector side's top (row, cosine) and the keyword
    side's (row, BM25 score): a row missing from one side scores 0 there (below the vector
    side's weakest candidate; no keyword in common)."""
    near = scaled(vector)
    words = scaled(keyword, floor=0.0)
    fused = {
        row: vector_weight * near.get(row, 0.0) + (1 - vector_weight) * words.get(row, 0.0)
        for row in near.keys() | words.keys()
    }
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
