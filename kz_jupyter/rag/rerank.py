"""Reranking: the top candidates of a search scored again, each read together with the query,
by a cross-encoder (sentence-transformers, in this process) or by a reranker deployment
(`deployment:NAME`, a reranker GGUF served on /kz/v1/rerank)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from kz_jupyter.rag.embedders import DEPLOYMENT_PREFIX, DeploymentUse

if TYPE_CHECKING:
    from kz_jupyter.client import KzClient

CANDIDATES = 30  # how many of a search's first results are reranked


class Reranker(Protocol):
    """Scores texts by how well each answers a query (higher is better)."""

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """One score per text, in the texts' order."""


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder run in this process."""

    def __init__(self, model: str):
        from sentence_transformers import CrossEncoder

        from kz_jupyter.models.transformers_progress import no_progress_bars

        with no_progress_bars():
            self._model = CrossEncoder(model, device="cpu")

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """The cross-encoder's score of each (query, text) pair."""
        pairs = [(query, text) for text in texts]
        return [float(s) for s in self._model.predict(pairs, show_progress_bar=False)]


class DeploymentReranker(DeploymentUse):
    """A kz deployment of a reranker GGUF, asked through /kz/v1/rerank."""

    def scores(self, query: str, texts: list[str]) -> list[float]:
        """The deployment's relevance score of each text."""
        return self.kz.rerank(self.deployment, query, texts)


def load_reranker(spec: str, client: Callable[[], KzClient] | None = None) -> Reranker:
    """`deployment:NAME` reranks through that deployment (client() connects); any other name
    is a sentence-transformers cross-encoder (a Hub name in its cache, or a folder)."""
    if spec.startswith(DEPLOYMENT_PREFIX):
        return DeploymentReranker(spec.removeprefix(DEPLOYMENT_PREFIX), client)
    return CrossEncoderReranker(spec)
