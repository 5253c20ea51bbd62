"""The models on this machine: the Hugging Face cache (shared with every HF tool) and pip-shipped
models; what deleting one frees (planned first, executed only on confirmation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from huggingface_hub import scan_cache_dir
from huggingface_hub.errors import CacheNotFound

from kz_jupyter.models.file_choice import is_model_gguf, quant_of
from kz_jupyter.models.hub import HubSettings
from kz_jupyter.models.references import pip_shipped_models


class CacheError(LookupError):
    """A cache request that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class CachedModel:
    """A model whose files are on this machine."""

    name: str
    source: str
    size: int
    formats: tuple[str, ...]
    quants: tuple[str, ...]
    last_used: float
    path: str
    revisions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a cached model would remove and free."""

    name: str
    freed_bytes: int
    paths: tuple[str, ...]
    revisions: tuple[str, ...]

    def to_dict(self) -> dict:
        """Return JSON-ready data."""
        return asdict(self)


def _scan(settings: HubSettings):
    """Scan the Hugging Face cache; None when there is no cache yet."""
    try:
        return scan_cache_dir(settings.cache_dir)
    except CacheNotFound:
        return None


def list_cached(settings: HubSettings) -> list[CachedModel]:
    """Every model repo in the Hugging Face cache, then every pip-shipped model."""
    models = []
    info = _scan(settings)
    for repo in sorted(info.repos if info else (), key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        names = [f.file_name for rev in repo.revisions for f in rev.files]
        formats = []
        if any(is_model_gguf(n) for n in names):
            formats.append("gguf")
        if any(n.endswith(".safetensors") for n in names):
            formats.append("safetensors")
        quants = sorted({quant_of(n) for n in names if is_model_gguf(n)} - {""})
        models.append(
            CachedModel(
                name=repo.repo_id,
                source="hub-cache",
                size=repo.size_on_disk,
                formats=tuple(formats),
                quants=tuple(quants),
                last_used=repo.last_accessed,
                path=str(repo.repo_path),
                revisions=tuple(sorted(r.commit_hash for r in repo.revisions)),
            )
        )
    for shipped in pip_shipped_models():
        stat = shipped.path.stat()
        files = [p for p in shipped.path.rglob("*") if p.is_file()] if shipped.path.is_dir() else []
        models.append(
            CachedModel(
                name=shipped.alias,
                source=f"pip:{shipped.distribution}",
                size=sum(p.stat().st_size for p in files) if files else stat.st_size,
                formats=(shipped.format,),
                quants=tuple(q for q in [quant_of(shipped.path.name)] if q),
                last_used=stat.st_atime,
                path=str(shipped.path),
            )
        )
    return models


def plan_deletion(name: str, settings: HubSettings) -> DeletionPlan:
    """What deleting a cached Hub model would free; CacheError when it cannot be deleted."""
    info = _scan(settings)
    repo = next((r for r in (info.repos if info else ()) if r.repo_id == name), None)
    if repo is None:
        shipped = next((m for m in pip_shipped_models() if m.alias == name), None)
        if shipped is not None:
            raise CacheError(
                f"'{name}' ships with the Python package {shipped.distribution}: "
                f"pip uninstall {shipped.distribution} removes it."
            )
        raise CacheError(f"No cached model '{name}': list them with %kz models.")
    hashes = tuple(sorted(r.commit_hash for r in repo.revisions))
    strategy = info.delete_revisions(*hashes)
    paths = sorted(str(p) for p in (*strategy.repos, *strategy.snapshots, *strategy.blobs))
    return DeletionPlan(name, strategy.expected_freed_size, tuple(paths), hashes)


def delete_cached(name: str, settings: HubSettings) -> DeletionPlan:
    """Delete a cached Hub model (all revisions) and return what was freed."""
    plan = plan_deletion(name, settings)
    info = _scan(settings)
    info.delete_revisions(*plan.revisions).execute()
    return plan
