"""The echo engine: a plugin that serves any GGUF file by echoing the user back.

It exists to show that a package outside kz-jupyter adds an engine through the
`kz_jupyter.engines` entry-point group, and is planned, placed, probed and proxied like the
built-in ones.
"""

from __future__ import annotations

from kz_jupyter.planning.engine_contract import Engine, LaunchSpec, LaunchTarget
from kz_jupyter.planning.engine_environments import EnvironmentProbe
from kz_jupyter.planning.plan import Plan


class EchoEngine(Engine):
    """Answers each chat with the last user message, word by word."""

    name = "echo"
    formats = ("gguf",)
    distributions = ("kz-echo-engine",)

    def availability(self, probe: EnvironmentProbe) -> tuple[bool, str, str]:
        """Usable wherever this package is installed."""
        version = probe.version_of("kz-echo-engine")
        if version is None:
            return False, "", "pip install -e tests/plugin_engine"
        return True, version, ""

    def launch_spec(self, plan: Plan, target: LaunchTarget) -> LaunchSpec:
        """Run the echo server on the target's address."""
        return LaunchSpec(
            args=(
                "-m",
                "kz_echo_engine.server",
                "--model",
                plan.model_path,
                "--name",
                target.served_name,
                "--host",
                target.host,
                "--port",
                str(target.port),
                *plan.extra_args,
            ),
            program=plan.engine_program,
            readiness_path="/v1/models",
        )
