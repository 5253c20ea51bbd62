"""Turn a model reference into the files on disk that an engine will load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.models.references import LocalPath, ModelReference, PipShippedModel
from kz_jupyter.states import ErrorCode


@dataclass(frozen=True)
class LocatedModel:
    """Model files found on disk, with their format and where they came from."""

    path: Path
    format: str
    source: str


class ModelNotFoundError(LookupError):
    """The model's files are not on disk; `code` says which lifecycle error this is."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.MODEL_LOADING_FAILURE):
        super().__init__(message)
        self.code = code


def _format_of_directory(directory: Path) -> tuple[Path, str]:
    """Pick the model inside a directory: its single GGUF file, or safetensors weights."""
    ggufs = sorted(directory.glob("*.gguf"))
    if len(ggufs) == 1:
        return ggufs[0], "gguf"
    if len(ggufs) > 1:
        names = ", ".join(p.name for p in ggufs[:6])
        raise ModelNotFoundError(
            f"{directory} holds several GGUF files ({names}): name the file you want."
        )
    if any(directory.glob("*.safetensors")) and (directory / "config.json").is_file():
        return directory, "safetensors"
    raise ModelNotFoundError(
        f"{directory} holds no model: expected a .gguf file, or config.json with .safetensors."
    )


def _locate_local(ref: LocalPath) -> LocatedModel:
    """Check a local path and find its model format."""
    path = ref.path
    if not path.exists():
        raise ModelNotFoundError(f"Model file not found: {path}. Check the path and try again.")
    if path.is_dir():
        path, fmt = _format_of_directory(path)
        return LocatedModel(path=path, format=fmt, source="local")
    if path.suffix.lower() != ".gguf":
        raise ModelNotFoundError(
            f"{path} is not a model file this version can serve: give a .gguf file or a "
            "directory with config.json and .safetensors."
        )
    return LocatedModel(path=path, format="gguf", source="local")


def locate_model(ref: ModelReference) -> LocatedModel:
    """Return the files of a model on disk, or raise ModelNotFoundError saying what to do.

    Hub repos are resolved by `kz_jupyter.models.sources`, which downloads what is missing.
    """
    if isinstance(ref, LocalPath):
        return _locate_local(ref)
    if isinstance(ref, PipShippedModel):
        if not ref.path.exists():
            raise ModelNotFoundError(
                f"{ref.path} from {ref.distribution} is missing: reinstall that package.",
                ErrorCode.MUST_REDOWNLOAD,
            )
        return LocatedModel(path=ref.path, format=ref.format, source=f"pip:{ref.distribution}")
    raise ModelNotFoundError(f"'{ref.short_name}' is a Hub repo, not a model on disk.")
