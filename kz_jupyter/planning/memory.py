"""Memory estimates: weights, KV cache, working buffers and engine overhead, against free memory."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from kz_jupyter.deploy_options import KV_CACHE_TYPES
from kz_jupyter.models.shapes import ModelShape

MIB = 1024 * 1024
GIB = 1024 * MIB
KV_BYTES_PER_VALUE = 2  # f16 keys and values, every engine's default


@dataclass(frozen=True)
class MemoryEstimate:
    """How much memory a deployment will take, part by part, and where it must fit."""

    weights: int
    kv_cache: int
    compute: int
    overhead: int
    device: str = "RAM"
    available: int = 0

    @property
    def total(self) -> int:
        """All parts together, in bytes."""
        return self.weights + self.kv_cache + self.compute + self.overhead

    @property
    def fits(self) -> bool:
        """True when the total is within what is available on the device."""
        return self.total <= self.available

    def with_cache_type(self, cache_type: str) -> MemoryEstimate:
        """This estimate with its f16 KV cache stored as cache_type (a KV_CACHE_TYPES name)."""
        ratio = KV_CACHE_TYPES[cache_type] / KV_BYTES_PER_VALUE
        return replace(self, kv_cache=int(self.kv_cache * ratio))

    def with_second_model(self, other: MemoryEstimate) -> MemoryEstimate:
        """This estimate with a second model in the same process (a speculative-decoding
        draft): its weights, cache and buffers, but not a second engine."""
        return replace(
            self,
            weights=self.weights + other.weights,
            kv_cache=self.kv_cache + other.kv_cache,
            compute=self.compute + other.compute,
        )

    def to_dict(self) -> dict:
        """Return JSON-ready data, with the total and the verdict."""
        return asdict(self) | {"total": self.total, "fits": self.fits}

    def summary(self) -> str:
        """One line: total against available, with the parts."""
        verdict = "fits" if self.fits else "does NOT fit"
        return (
            f"{human_bytes(self.total)} estimated ({human_bytes(self.weights)} weights + "
            f"{human_bytes(self.kv_cache)} KV cache + {human_bytes(self.compute)} buffers + "
            f"{human_bytes(self.overhead)} engine) vs {human_bytes(self.available)} "
            f"{self.device} free: {verdict}"
        )


def kv_cache_bytes(shape: ModelShape, context_length: int, sequences: int = 1) -> int:
    """Bytes of an f16 KV cache holding context_length tokens for each sequence."""
    per_token = shape.layers * shape.kv_heads * (shape.head_dim_k + shape.head_dim_v)
    return per_token * KV_BYTES_PER_VALUE * context_length * sequences


def human_bytes(count: int | float) -> str:
    """Bytes as a short human figure (MiB below 1 GiB, else GiB)."""
    if abs(count) < GIB:
        return f"{count / MIB:.0f} MiB"
    return f"{count / GIB:.1f} GiB"


def fit_suggestions(estimate: MemoryEstimate, shape: ModelShape, context_length: int) -> list[str]:
    """Concrete changes that would make an estimate fit."""
    over = estimate.total - estimate.available
    suggestions = []
    if estimate.kv_cache and context_length > 512:
        per_token = max(estimate.kv_cache // context_length, 1)
        shorter = context_length - (over // per_token) - 1
        if shorter >= 512:
            suggestions.append(f"a shorter context: --context {int(shorter) // 256 * 256}")
        else:
            suggestions.append("a shorter context (--context 2048)")
    suggestions.append("a smaller quant or model (e.g. :Q4_K_M, or fewer parameters)")
    if estimate.device != "RAM":
        suggestions.append("CPU or partial offload: --engine llamacpp with fewer GPU layers")
    suggestions.append("free memory by stopping other deployments (%kz ps), or --force to try")
    return suggestions
