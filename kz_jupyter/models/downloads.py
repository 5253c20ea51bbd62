"""Resumable downloads into the Hugging Face cache.

huggingface_hub 2 downloads each file into a temporary file unique to that attempt and deletes it
when the attempt fails, so a download cut off at 90% starts again from zero. Here the part kept
so far waits in `blobs/<etag>.kz-partial` and the next pull continues it with an HTTP Range
request (huggingface_hub's own `http_get`), under the cache's own lock for that file. The cache
layout stays huggingface_hub's: the blob appears under its real name only once it is whole, then
the snapshot link and the ref, so `hf_hub_download`, `scan_cache_dir` and `%kz models` see it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.file_download import http_get, repo_folder_name
from huggingface_hub.utils import WeakFileLock, build_hf_headers
from tqdm.auto import tqdm

PARTIAL_SUFFIX = ".kz-partial"


def resumable_download(
    repo_id: str,
    filename: str,
    revision: str | None,
    cache_dir: str | None,
    endpoint: str,
    token: str | None,
    tqdm_class: type[tqdm] | None = None,
    force: bool = False,
) -> Path | None:
    """Download one file of a model repo into the cache, continuing an earlier cut-off attempt;
    return its snapshot path. None when the file is stored with Xet and hf_xet is installed:
    huggingface_hub's own download is the better one then (Xet keeps the chunks it fetched)."""
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    metadata = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    if metadata.xet_file_data is not None and importlib.util.find_spec("hf_xet"):
        return None
    if not metadata.etag or not metadata.commit_hash:
        raise OSError(f"The Hub gave no etag or commit for {repo_id}/{filename}.")
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    blob = storage / "blobs" / metadata.etag
    partial = blob.with_name(blob.name + PARTIAL_SUFFIX)
    lock = cache / ".locks" / storage.name / f"{metadata.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        if force:
            blob.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
        if not blob.exists():
            # a signed CDN location must not get the Hub token
            same_host = urlparse(url).netloc == urlparse(metadata.location).netloc
            sent_token = token if same_host else None
            _continue(partial, metadata.location, sent_token, metadata.size, filename, tqdm_class)
            os.replace(partial, blob)
    pointer = storage / "snapshots" / metadata.commit_hash / filename
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if not pointer.exists():
        pointer.unlink(missing_ok=True)  # a dangling link
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    if revision != metadata.commit_hash:
        ref = storage / "refs" / (revision or constants.DEFAULT_REVISION)
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(metadata.commit_hash)
    return pointer


def _continue(
    partial: Path,
    url: str,
    token: str | None,
    size: int | None,
    filename: str,
    tqdm_class: type[tqdm] | None,
) -> None:
    """Append the rest of the file to partial (a server that ignores Range starts it over)."""
    with open(partial, "r+b" if partial.exists() else "wb") as stream:
        stream.seek(0, os.SEEK_END)
        done = stream.tell()
        if size is not None and done > size:  # not this file's beginning: start over
            stream.seek(0)
            stream.truncate()
            done = 0
        http_get(
            url,
            stream,
            resume_size=done,
            headers=build_hf_headers(token=token),
            expected_size=size,
            displayed_filename=filename,
            tqdm_class=tqdm_class,
        )
        stream.truncate()
