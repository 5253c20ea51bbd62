"""The engines' own gauges (requests waiting and running, KV-cache use), read by the server from
the `/metrics` of every serving replica whose engine publishes them, and served again as
`kz_engine_*` gauges labelled by deployment and replica."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from kz_jupyter.planning.engine_contract import load_engines
from kz_jupyter.server_ext.lifecycle.routing import DROPPED, DROPPED_RETRIES, RETRY_PAUSE
from kz_jupyter.states import InstanceStatus

# kz's name of a gauge -> its Prometheus name and help.
GAUGES = {
    "queue": ("kz_engine_requests_waiting", "Requests the engine holds until a slot is free."),
    "running": ("kz_engine_requests_running", "Requests the engine is generating for now."),
    "kv_cache": ("kz_engine_kv_cache_usage_ratio", "Share of the engine's KV cache in use, 0-1."),
}
READ_TIMEOUT = httpx.Timeout(2.0)
MIN_INTERVAL = 1.0  # seconds: scrapes and panels within it share one reading

log = logging.getLogger(__name__)


def engine_values(text: str, names: dict[str, str]) -> dict[str, float]:
    """kz's gauges from an engine's Prometheus text, by the engine's names for them (the sum
    over an engine metric's labelled samples)."""
    wanted = {engine_name: gauge for gauge, engine_name in names.items()}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            gauge = wanted.get(sample.name)
            if gauge is not None:
                values[gauge] = values.get(gauge, 0.0) + sample.value
    return values


class EngineReadings:
    """The gauges last read from the engines (a Prometheus collector of them)."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], dict[str, float]] = {}
        self._read_at = -MIN_INTERVAL
        self._lock = asyncio.Lock()

    async def refresh(self, deployments: Iterable, client: httpx.AsyncClient) -> None:
        """Read every serving replica's gauges, unless they were read less than MIN_INTERVAL
        ago; a replica that does not answer in time is left out of this reading."""
        async with self._lock:
            if time.monotonic() - self._read_at < MIN_INTERVAL:
                return
            engines = load_engines()
            targets = []
            for deployment in deployments:
                engine = engines.get(deployment.plan.engine) if deployment.plan else None
                if engine is None or not engine.metrics_gauges:
                    continue
                targets += [
                    (deployment.name, replica, engine.metrics_gauges)
                    for replica in deployment.replicas
                    if replica.status is InstanceStatus.DEPLOYED and replica.endpoint
                ]
            readings = await asyncio.gather(
                *(self._read(client, replica.endpoint, names) for _, replica, names in targets)
            )
            self.latest = {
                (name, replica.replica_id): values
                for (name, replica, _), values in zip(targets, readings, strict=True)
                if values is not None
            }
            self._read_at = time.monotonic()

    async def _read(
        self, client: httpx.AsyncClient, endpoint: str, names: dict[str, str]
    ) -> dict[str, float] | None:
        """One replica's gauges, or None when it did not answer (a kept-alive connection
        the engine closed meanwhile is tried again on a fresh one)."""
        for attempt in range(1 + DROPPED_RETRIES):
            try:
                answer = await client.get(f"{endpoint}/metrics", timeout=READ_TIMEOUT)
                answer.raise_for_status()
                return engine_values(answer.text, names)
            except DROPPED as error:
                log.debug("engine metrics of %s: connection dropped (%s), again", endpoint, error)
                await asyncio.sleep(RETRY_PAUSE * attempt)
            except httpx.HTTPError as error:
                log.warning("engine metrics of %s unreadable: %s", endpoint, error)
                return None
        log.warning("engine metrics of %s: the engine dropped every connection", endpoint)
        return None

    def of(self, deployment: str) -> dict[str, float]:
        """A deployment's gauges over its replicas: requests summed, KV-cache use the highest."""
        total: dict[str, float] = {}
        for (name, _), values in self.latest.items():
            if name != deployment:
                continue
            for gauge, value in values.items():
                merge = max if gauge == "kv_cache" else float.__add__
                total[gauge] = merge(total[gauge], value) if gauge in total else value
        return total

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges as Prometheus families, one sample per replica."""
        for gauge, (metric, help_text) in GAUGES.items():
            family = GaugeMetricFamily(metric, help_text, labels=("deployment", "replica"))
            for (deployment, replica), values in sorted(self.latest.items()):
                if gauge in values:
                    family.add_metric((deployment, replica), values[gauge])
            yield family
