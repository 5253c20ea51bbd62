"""Serve git repos as a Hugging Face Hub on loopback: olah (offline mirror) plus the Hub's search
listing and gated-repo access, which olah's offline mode lacks.

Runs in the olah environment (`.venv-hub`), not the product's: olah pins other versions of shared
dependencies. Usage: python serve_hub.py CONFIG.toml INDEX.json
INDEX.json maps repo ids to {"downloads": int, "likes": int, "gated": bool, "tags": [...]} and
holds the access token for gated repos under "token"; "throttle" (bytes/s, optional) slows file
downloads, for tests that interrupt one. Each file request is logged, with its Range header, to
requests.log beside INDEX.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse
from olah import server

FORMAT_TAGS = {".gguf": "gguf", ".safetensors": "safetensors"}


def _repo_dirs(mirrors: Path) -> dict[str, Path]:
    """Map each mirrored model repo id to its git working tree."""
    return {
        f"{org.name}/{repo.name}": repo
        for org in sorted((mirrors / "models").iterdir())
        for repo in sorted(org.iterdir())
        if (repo / ".git").exists()
    }


def _listing(repo_id: str, directory: Path, meta: dict) -> dict:
    """Describe one repo the way the Hub's /api/models listing does."""
    tags = set(meta.get("tags", []))
    for path in directory.rglob("*"):
        if ".git" not in path.parts and path.suffix in FORMAT_TAGS:
            tags.add(FORMAT_TAGS[path.suffix])
    return {
        "_id": repo_id,
        "id": repo_id,
        "modelId": repo_id,
        "downloads": meta.get("downloads", 0),
        "likes": meta.get("likes", 0),
        "gated": "manual" if meta.get("gated") else False,
        "private": False,
        "tags": sorted(tags),
        "library_name": meta.get("library_name"),
        "pipeline_tag": "text-generation",
    }


def main() -> None:
    """Start olah with the extra routes."""
    config_path, index_path = sys.argv[1], Path(sys.argv[2])
    mirrors = Path(json.loads(index_path.read_text())["mirrors"])
    sys.argv = ["olah-cli", "-c", config_path, "--log-path", str(index_path.parent / "logs")]
    args = server.init()
    app = server.app

    def index() -> dict:
        return json.loads(index_path.read_text())

    async def list_models(request: Request) -> JSONResponse:
        """GET /api/models: search by substring, sort by downloads or likes, limit."""
        search = (request.query_params.get("search") or "").lower()
        sort = request.query_params.get("sort") or "downloads"
        limit = int(request.query_params.get("limit") or 1000)
        repos = index()["repos"]
        found = [
            _listing(repo_id, directory, repos.get(repo_id, {}))
            for repo_id, directory in _repo_dirs(mirrors).items()
            if search in repo_id.lower()
        ]
        found.sort(key=lambda item: item.get(sort, 0), reverse=True)
        return JSONResponse(found[:limit])

    app.add_api_route("/api/models", list_models, methods=["GET"])
    app.router.routes.insert(0, app.router.routes.pop())

    @app.middleware("http")
    async def gated_access(request: Request, call_next):
        """Refuse file downloads of gated repos without the right token, like the Hub."""
        data = index()
        for repo_id, meta in data["repos"].items():
            if meta.get("gated") and f"/{repo_id}/resolve/" in request.url.path:
                if request.headers.get("authorization") != f"Bearer {data['token']}":
                    return JSONResponse(
                        {"error": f"Access to model {repo_id} is restricted."},
                        status_code=401,
                        headers={"X-Error-Code": "GatedRepo"},
                    )
        return await call_next(request)

    @app.middleware("http")
    async def throttle_and_log(request: Request, call_next):
        """Log file requests (with Range); slow their bodies down when the index says so."""
        response = await call_next(request)
        if "/resolve/" not in request.url.path or request.method != "GET":
            return response
        with open(index_path.parent / "requests.log", "a") as log:
            log.write(f"{request.url.path} range={request.headers.get('range')} "
                      f"status={response.status_code}\n")  # fmt: skip
        rate = index().get("throttle")
        if rate and hasattr(response, "body_iterator"):
            response.body_iterator = _throttled(response.body_iterator, rate)
        return response

    server.run_server(args)


async def _throttled(body, rate: float):
    """Yield body in 64 KiB pieces at about rate bytes per second."""
    async for chunk in body:
        for start in range(0, len(chunk), 1 << 16):
            piece = chunk[start : start + (1 << 16)]
            yield piece
            await asyncio.sleep(len(piece) / rate)


if __name__ == "__main__":
    main()
