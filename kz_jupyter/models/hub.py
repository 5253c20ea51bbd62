"""The Hugging Face Hub through huggingface_hub: search, repo listings, ranged reads, downloads.

Every call takes a HubSettings read from the environment when it is made (not when
huggingface_hub was imported), so a server can be pointed at another endpoint or cache.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from huggingface_hub import HfApi, constants, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import build_hf_headers
from tqdm.auto import tqdm

from kz_jupyter.models.downloads import resumable_download

DEFAULT_ENDPOINT = "https://huggingface.co"
SEARCH_LIMIT = 20
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubSettings:
    """Where the Hub is, who we are to it, and where its files are cached."""

    endpoint: str = DEFAULT_ENDPOINT
    token: str | None = field(default=None, repr=False)  # never in a log line or traceback
    cache_dir: str | None = None
    offline: bool = False

    @classmethod
    def from_env(cls, cache_dir: str | None = None, token: str | None = None) -> HubSettings:
        """Read HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME and HF_HUB_OFFLINE now."""
        hub_cache = os.environ.get("HF_HUB_CACHE")
        if hub_cache is None and os.environ.get("HF_HOME"):
            hub_cache = str(Path(os.environ["HF_HOME"]) / "hub")
        return cls(
            endpoint=(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            token=token or os.environ.get("HF_TOKEN") or None,
            cache_dir=cache_dir or hub_cache,
            offline=os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE,
        )

    def api(self) -> HfApi:
        """An HfApi client for these settings."""
        return HfApi(endpoint=self.endpoint, token=self.token)


class HubError(LookupError):
    """A Hub request that failed; the message says what to do. `offline` marks no connection."""

    def __init__(self, message: str, offline: bool = False):
        super().__init__(message)
        self.offline = offline


@dataclass(frozen=True)
class RemoteFile:
    """One file of a Hub repo: path, size and the hash the Hub publishes for it."""

    path: str
    size: int
    sha256: str | None = None
    blob_id: str = ""

    @property
    def etag(self) -> str:
        """The name its blob gets in the Hugging Face cache (sha256 for LFS, else git sha1)."""
        return self.sha256 or self.blob_id


@dataclass(frozen=True)
class HubModel:
    """One search result from the Hub."""

    repo_id: str
    downloads: int
    likes: int
    formats: tuple[str, ...]
    gated: bool
    tags: tuple[str, ...] = field(default=())


FORMAT_TAGS = ("gguf", "safetensors", "mlx", "onnx")


def hub_error(error: Exception, repo_id: str, filename: str | None = None) -> HubError:
    """Turn a huggingface_hub or network error into a HubError that says what to do."""
    if isinstance(error, GatedRepoError):
        return HubError(_gated_message(repo_id))
    if isinstance(error, RepositoryNotFoundError):
        return HubError(
            f"No model repo '{repo_id}' on the Hub (or it is private): check the id with "
            "%kz search, or set HF_TOKEN for a private repo."
        )
    if isinstance(error, RevisionNotFoundError):
        return HubError(f"'{repo_id}' has no such revision: check --revision.")
    if isinstance(error, EntryNotFoundError):
        return HubError(f"'{repo_id}' has no file '{filename}': list its files with %kz plan.")
    if isinstance(error, OfflineModeIsEnabled | LocalEntryNotFoundError) or is_network_error(error):
        return HubError(
            f"The Hub is not reachable ({type(error).__name__}) and '{repo_id}' is not fully "
            "in the local cache: connect, or deploy a model that is cached (%kz models).",
            offline=True,
        )
    if isinstance(error, HfHubHTTPError):
        return HubError(f"The Hub refused the request for '{repo_id}': {error}".splitlines()[0])
    return HubError(f"Hub request for '{repo_id}' failed: {type(error).__name__}: {error}")


def is_network_error(error: BaseException) -> bool:
    """True for a connection failure of httpx (or of httpx2, which huggingface_hub 2 uses)."""
    return any(cls.__name__ == "TransportError" for cls in type(error).__mro__)


def hub_reachable(settings: HubSettings, timeout: float = 3.0) -> bool:
    """True when the Hub endpoint answers at all (quickly, without huggingface_hub's retries)."""
    if settings.offline:
        return False
    try:
        httpx.head(settings.endpoint, timeout=timeout)
    except httpx.TransportError:
        return False
    return True


def _gated_message(repo_id: str) -> str:
    """What to do about a gated repo."""
    return (
        f"'{repo_id}' is gated: accept its terms on the Hub, then set HF_TOKEN "
        "(or c.KzApp.hf_token) to a token with access."
    )


def _offline_error(repo_id: str) -> HubError:
    """The error for a Hub request made in offline mode."""
    return HubError(
        f"Offline mode (HF_HUB_OFFLINE) is on and '{repo_id}' is not fully in the local cache.",
        offline=True,
    )


def search_hub(query: str, settings: HubSettings, limit: int = SEARCH_LIMIT) -> list[HubModel]:
    """Search Hub models whose id contains query, most downloaded first."""
    if settings.offline:
        raise _offline_error(query)
    if not hub_reachable(settings):  # at once, not after huggingface_hub's retries (~25 s)
        raise HubError(
            f"The Hub ({settings.endpoint}) is not reachable: connect to search it. The models "
            "already here are listed by %kz models.",
            offline=True,
        )
    try:
        found = settings.api().list_models(search=query, sort="downloads", limit=limit)
        models = []
        for info in found:
            tags = tuple(info.tags or ())
            models.append(
                HubModel(
                    repo_id=info.id,
                    downloads=int(info.downloads or 0),
                    likes=int(info.likes or 0),
                    formats=tuple(t for t in FORMAT_TAGS if t in tags),
                    gated=bool(info.gated),
                    tags=tags,
                )
            )
        return models
    except Exception as error:  # every Hub failure becomes one explained error
        raise hub_error(error, query) from None


def list_repo_files(repo_id: str, revision: str | None, settings: HubSettings) -> list[RemoteFile]:
    """List every file of a repo revision with its size and published hash."""
    if settings.offline:
        raise _offline_error(repo_id)
    if not hub_reachable(settings):
        raise HubError(
            f"The Hub ({settings.endpoint}) is not reachable and '{repo_id}' is not fully in the "
            "local cache: connect, or deploy a model that is cached (%kz models).",
            offline=True,
        )
    try:
        entries = settings.api().list_repo_tree(
            repo_id, revision=revision or "main", recursive=True, expand=True
        )
        return [
            RemoteFile(
                path=entry.path,
                size=int(entry.size),
                sha256=entry.lfs.sha256 if entry.lfs else None,
                blob_id=entry.blob_id,
            )
            for entry in entries
            if isinstance(entry, RepoFile)
        ]
    except Exception as error:  # every Hub failure becomes one explained error
        raise hub_error(error, repo_id) from None


def read_remote_prefix(
    repo_id: str, filename: str, revision: str | None, length: int, settings: HubSettings
) -> bytes:
    """Read the first length bytes of a remote file: a ranged read, or a cut-short stream."""
    if settings.offline:
        raise _offline_error(repo_id)
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=settings.endpoint)
    headers = build_hf_headers(token=settings.token) | {"Range": f"bytes=0-{length - 1}"}
    chunks, received = [], 0
    try:
        with httpx.Client(follow_redirects=True, timeout=30) as client:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code in (401, 403):
                    code = response.headers.get("X-Error-Code", "")
                    raise HubError(
                        _gated_message(repo_id)
                        if code == "GatedRepo"
                        else f"No access to '{repo_id}': set HF_TOKEN to a token with access."
                    )
                if response.status_code == 404:
                    raise HubError(f"'{repo_id}' has no file '{filename}'.")
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    received += len(chunk)
                    if received >= length:
                        break
    except HubError:
        raise
    except Exception as error:  # network failures become one explained error
        raise hub_error(error, repo_id, filename) from None
    return b"".join(chunks)[:length]


ProgressCallback = Callable[[int, int], None]


def progress_tqdm(report: ProgressCallback, total_bytes: int, done_before: int) -> type[tqdm]:
    """A tqdm class that reports bytes downloaded (across files) to report(done, total)."""

    class ReportingTqdm(tqdm):
        """tqdm that forwards its progress instead of drawing it."""

        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)  # a resumed download starts there

        def update(self, n: float | None = 1) -> bool | None:
            """Count n more bytes and report the running total."""
            self.done += int(n or 0)
            report(done_before + self.done, total_bytes)
            return None

    return ReportingTqdm


def download_files(
    repo_id: str,
    revision: str | None,
    files: list[RemoteFile],
    settings: HubSettings,
    report: ProgressCallback | None = None,
    force: bool = False,
) -> Path:
    """Download files into the cache (cached ones only when forced); return the snapshot."""
    total = sum(f.size for f in files)
    done, path = 0, None
    try:
        for remote in files:
            tqdm_class = progress_tqdm(report, total, done) if report else None
            path = None
            if not settings.offline:
                path = resumable_download(
                    repo_id, remote.path, revision, settings.cache_dir, settings.endpoint,
                    settings.token, tqdm_class, force,
                )  # fmt: skip
            path = path or hf_hub_download(
                repo_id,
                remote.path,
                revision=revision,
                cache_dir=settings.cache_dir,
                token=settings.token,
                endpoint=settings.endpoint,
                local_files_only=settings.offline,
                force_download=force,
                tqdm_class=tqdm_class,
            )
            done += remote.size
            if report:
                report(done, total)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise hub_error(error, repo_id) from None
        raise HubError(
            f"The disk holding the model cache ({settings.cache_dir or constants.HF_HUB_CACHE}) "
            "is full: free space "
            "(%kz models rm NAME deletes a cached model) or set HF_HUB_CACHE to a larger disk, "
            f"then pull '{repo_id}' again: what was downloaded is kept and the download resumes."
        ) from None
    except Exception as error:  # every Hub failure becomes one explained error
        raise hub_error(error, repo_id) from None
    if path is None:
        raise HubError(f"Nothing to download from '{repo_id}'.")
    return snapshot_root(Path(path), files[-1].path)


def snapshot_root(file_path: Path, relative: str) -> Path:
    """The snapshot folder holding file_path, which sits at relative inside it."""
    root = file_path
    for _ in Path(relative).parts:
        root = root.parent
    return root
