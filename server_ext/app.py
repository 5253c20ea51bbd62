"""The Jupyter server extension app: configuration, the controller, and the routes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, List, Unicode, default

from kz_jupyter.engines.pool import RayPool
from kz_jupyter.models.hub import HubSettings
from kz_jupyter.planning.engine_environments import EngineEnvironments, default_envs_dir
from kz_jupyter.server_ext.access.audit import AuditLog
from kz_jupyter.server_ext.access.hub_identity import HubIdentityProvider
from kz_jupyter.server_ext.access.quotas import DeployPolicy
from kz_jupyter.server_ext.api.base import UnknownRouteHandler
from kz_jupyter.server_ext.api.deployments import API_HANDLERS
from kz_jupyter.server_ext.api.engines import ENGINE_HANDLERS, EngineInstalls
from kz_jupyter.server_ext.api.metrics import METRICS_HANDLERS, ProxyMetrics
from kz_jupyter.server_ext.api.models import MODEL_HANDLERS
from kz_jupyter.server_ext.api.open_answers import OpenAnswers
from kz_jupyter.server_ext.api.openai_proxy import PROXY_HANDLERS
from kz_jupyter.server_ext.api.openapi import OPENAPI_HANDLERS
from kz_jupyter.server_ext.api.stats import STATS_HANDLERS, SampleHistory
from kz_jupyter.server_ext.lifecycle.controller import Controller
from kz_jupyter.server_ext.lifecycle.healing import HealingPolicy
from kz_jupyter.server_ext.lifecycle.pulls import PullJobs
from kz_jupyter.server_ext.lifecycle.replicas import ReplicaRunner, ReplicaSettings
from kz_jupyter.server_ext.lifecycle.restore import restore_deployments
from kz_jupyter.server_ext.lifecycle.room import RoomSettings
from kz_jupyter.server_ext.lifecycle.store import DeploymentStore


class KzApp(ExtensionApp):
    """kz-jupyter inside a Jupyter server: REST API under /kz/api, OpenAI proxy under /kz/v1."""

    name = "kz_jupyter"
    load_other_extensions = True

    ray_address = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Address of an existing Ray cluster; unset starts a local Ray on the first deploy. "
        "Environment: KZ_RAY_ADDRESS.",
    )
    engine_host = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Address engines listen on. Default: 127.0.0.1 with a local Ray; each node's Ray "
        "address on a cluster. Environment: KZ_ENGINE_HOST.",
    )
    prestart_ray = Bool(
        True,
        config=True,
        help="Start Ray (or join the cluster) and a warm spare replica actor per node in the "
        "background as soon as the server starts (and find the pip-shipped models), so the "
        "first deploy does not wait for them; off: on the first deploy (the in-kernel server "
        "does so).",
    )
    state_dir = Unicode(config=True, help="Where deployment logs and state are kept.")
    startup_timeout = Float(
        300.0, config=True, help="Seconds an engine may take to become ready before failing."
    )
    replica_num_cpus = Float(
        1.0, config=True, help="CPUs Ray reserves for each replica actor (its engine's share)."
    )
    placement_timeout = Float(
        60.0, config=True, help="Seconds Ray may take to find a node for a replica."
    )
    max_restarts = Int(
        3, config=True, help="Restarts of a dead engine before its deployment is FAILED."
    )
    restart_backoff = Float(
        1.0, config=True, help="Seconds before the first restart; doubled after each failure."
    )
    restart_backoff_max = Float(30.0, config=True, help="Longest wait between two restarts.")
    drain_timeout = Float(
        30.0, config=True, help="Seconds a stopping deployment lets in-flight requests finish."
    )
    hf_cache_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Hugging Face cache folder for downloads; unset: the standard one (HF_HUB_CACHE, "
        "HF_HOME/hub or ~/.cache/huggingface/hub), shared with every Hugging Face tool.",
    )
    keep_alive = Int(
        -1,
        config=True,
        help="Seconds a deployment stays loaded without requests before it is unloaded "
        "(UNLOADED; the next request loads it again); -1 keeps it loaded. Per deployment: "
        "keep_alive in the deploy request, %kz deploy --keep-alive N.",
    )
    make_room = Bool(
        None,
        allow_none=True,
        config=True,
        help="When a deploy, or the reload of an idle-unloaded deployment, does not fit (in "
        "memory or under max_loaded), unload idle deployments, least recently used first, that "
        "serve no request, are not pinned (--pin) and that the requester may unload (their own; "
        "any for an admin). Unset: on for a personal server, off in the JupyterHub service.",
    )
    max_loaded = Int(
        0,
        config=True,
        help="Deployments loaded (engines running or starting) at once; one more makes room "
        "(make_room) or is refused. 0: no limit.",
    )
    memory_budget = Float(
        0.0,
        config=True,
        help="Memory (GiB, as planned) all deployments together may take on this machine, "
        "below what it has free; 0: what it has free.",
    )
    persist = Bool(
        True,
        config=True,
        help="Keep deployment records in state_dir (SQLite) and restore them when the server "
        "starts again: engines still running under Ray are adopted, the others restarted.",
    )
    model_roots = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Folders local model paths must be inside; empty allows any path the server can "
        "read (set it when several users share one server).",
    )
    engine_envs = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        default_value={},
        config=True,
        help="Python environment per engine: a virtual environment folder or an interpreter, "
        'like {"vllm": "/opt/vllm-venv"}. Unset engines run from engine_envs_dir/<engine> '
        "when it exists, else from the server's own environment.",
    )
    engine_envs_dir = Unicode(
        config=True,
        help="Where `%kz engines install` creates engine environments. "
        "Environment: KZ_ENGINE_ENVS_DIR; default ~/.local/share/kz-jupyter/engines.",
    )
    deploy_users = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Users who may deploy (with deploy_groups); both empty: everyone. Others still "
        "see and use what is shared with them. Admins always may.",
    )
    deploy_groups = List(
        Unicode(), default_value=[], config=True, help="Hub groups whose members may deploy."
    )
    max_deployments_per_user = Int(
        0, config=True, help="Active deployments one user may run at once; 0: no limit."
    )
    max_memory_per_deployment = Float(
        0.0,
        config=True,
        help="Most memory (GiB, as planned) one deployment may take; 0: no limit.",
    )
    max_requests_per_deployment = Int(
        64,
        config=True,
        help="Requests one deployment may have in flight through /kz/v1 (streaming, or waiting "
        "in its engine's queue); more are answered 429 with Retry-After, so the server's "
        "memory stays bounded. 0: no limit.",
    )
    audit_log = Unicode(
        config=True, help="The audit log (JSON lines); default: state_dir/audit.jsonl."
    )
    proxy_metrics = Bool(
        True,
        config=True,
        help="Measure every request through /kz/v1 (outcomes, times, tokens: /kz/metrics, "
        "%kz top and %kz usage). Off: requests are only logged with their id.",
    )
    metrics_token = Unicode(
        config=True,
        help="A token that may read GET /kz/metrics without a Jupyter or hub login (a "
        "Prometheus scraping the server sends Authorization: Bearer TOKEN); unset: only "
        "logged-in users. Environment: KZ_METRICS_TOKEN.",
    )
    hf_token = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Hugging Face token for gated and private repos; unset: HF_TOKEN.",
    )

    @default("ray_address")
    def _default_ray_address(self) -> str | None:
        return os.environ.get("KZ_RAY_ADDRESS") or None

    @default("engine_host")
    def _default_engine_host(self) -> str | None:
        return os.environ.get("KZ_ENGINE_HOST") or None

    @default("metrics_token")
    def _default_metrics_token(self) -> str:
        return os.environ.get("KZ_METRICS_TOKEN", "")

    @default("engine_envs_dir")
    def _default_engine_envs_dir(self) -> str:
        return str(default_envs_dir())

    @default("audit_log")
    def _default_audit_log(self) -> str:
        return os.path.join(self.state_dir, "audit.jsonl")

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.environ.get("KZ_STATE_DIR") or os.path.join(jupyter_data_dir(), "kz_jupyter")

    def initialize_settings(self) -> None:
        """Create the controller and share it with the handlers."""
        runner = ReplicaRunner(
            RayPool(
                address=self.ray_address,
                engine_host=self.engine_host,
                placement_timeout=self.placement_timeout,
            ),
            ReplicaSettings(
                state_dir=Path(self.state_dir),
                startup_timeout=self.startup_timeout,
                num_cpus=self.replica_num_cpus,
            ),
        )
        healing = HealingPolicy(
            max_restarts=self.max_restarts,
            backoff=self.restart_backoff,
            backoff_max=self.restart_backoff_max,
            drain_timeout=self.drain_timeout,
        )
        store = (
            DeploymentStore(Path(self.state_dir) / "deployments.sqlite") if self.persist else None
        )
        if store is not None and store.set_aside is not None:
            self.log.error(
                "kz: %s was not a readable database: kept as %s; starting with no deployment "
                "records.",
                store.path,
                store.set_aside,
            )
        audit = AuditLog(Path(self.audit_log))
        self.controller = Controller(
            runner,
            healing,
            log=self.log,
            hub_settings=self.hub_settings,
            model_roots=tuple(self.model_roots),
            store=store,
            keep_alive=self.keep_alive,
            environments=EngineEnvironments(
                root=Path(self.engine_envs_dir), configured=dict(self.engine_envs)
            ),
            max_requests=self.max_requests_per_deployment,
            room=RoomSettings(
                make_room=self.make_room if self.make_room is not None else not self.in_hub,
                max_loaded=self.max_loaded,
                memory_budget=int(self.memory_budget * 1024**3),
            ),
            audit=audit.record,
        )
        # Idle connections to engines are dropped before the engines drop them (llama-server's
        # keep-alive timeout is 5 s), so a request is not sent on a connection being closed.
        self.http_client = httpx.AsyncClient(limits=httpx.Limits(keepalive_expiry=2.0))
        self.settings.update(
            kz_controller=self.controller,
            kz_log=self.serverapp.log,
            kz_http_client=self.http_client,
            kz_pulls=PullJobs(self.controller),
            kz_engine_installs=EngineInstalls(self.controller.environments),
            kz_audit=audit,
            kz_metrics=ProxyMetrics(enabled=self.proxy_metrics),
            kz_open_answers=OpenAnswers(),
            kz_samples=SampleHistory(),
            kz_metrics_token=self.metrics_token,
            kz_policy=DeployPolicy(
                users=frozenset(self.deploy_users),
                groups=frozenset(self.deploy_groups),
                max_per_user=self.max_deployments_per_user,
                max_memory=int(self.max_memory_per_deployment * 1024**3),
            ),
        )

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        """Once the event loop runs: start Ray in the background (when configured), restore
        the deployments of the previous server."""
        if self.prestart_ray:
            threading.Thread(target=self.controller.warm_up, name="kz-warm-up", daemon=True).start()
        await restore_deployments(self.controller)

    @property
    def in_hub(self) -> bool:
        """True when this server is the JupyterHub service (users of the hub share it)."""
        return isinstance(self.serverapp.identity_provider, HubIdentityProvider)

    def hub_settings(self) -> HubSettings:
        """Hub endpoint, token, cache and offline mode: this config, else the environment."""
        return HubSettings.from_env(cache_dir=self.hf_cache_dir, token=self.hf_token)

    def initialize_handlers(self) -> None:
        """Register the REST API and the OpenAI-compatible proxy; any other path under them
        answers a JSON 404."""
        self.handlers.extend(
            API_HANDLERS
            + MODEL_HANDLERS
            + ENGINE_HANDLERS
            + PROXY_HANDLERS
            + METRICS_HANDLERS
            + STATS_HANDLERS
            + OPENAPI_HANDLERS
        )
        self.handlers.append((r"/kz/(?:api|v1)/.*", UnknownRouteHandler))

    async def stop_extension(self) -> None:
        """End the answers under way with an error their clients read, then stop every
        deployment: no engine outlives the server."""
        try:
            ended = await self.settings["kz_open_answers"].end_all()
            if ended:
                self.log.info("kz: %d answers under way ended: the server is stopping", ended)
        finally:
            await self.controller.shutdown()
        await self.http_client.aclose()
