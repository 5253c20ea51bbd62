"""Install an engine into its own Python environment, reporting pip's progress as it goes.

Also a command line, which the setup script uses:
`python -m kz_jupyter.planning.engine_install vllm mlx`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from kz_jupyter.planning.engine_contract import (
    InstallRecipe,
    LineCallback,
    ProgressCallback,
    get_engine,
    load_engines,
)
from kz_jupyter.planning.engine_environments import (
    INSTALLED_MARKER,
    EngineEnvironments,
    interpreter_in,
)
from kz_jupyter.planning.hardware import probe_hardware

# pip lines worth showing a person; the rest (index warnings, resolver chatter) is noise.
SHOWN_LINE = re.compile(
    r"^(Collecting|Downloading|Using cached|Installing collected|Successfully|Attempting|"
    r"Found existing|Building|Created wheel|Requirement already satisfied: (vllm|mlx|llama)|"
    r"ERROR|error:)"
)
RAW_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)$")


def shortened(line: str, shown: int = 6) -> str:
    """pip's one-line lists of every package, cut to a count and the first few."""
    for prefix in ("Installing collected packages: ", "Successfully installed "):
        if line.startswith(prefix):
            names = line[len(prefix) :].replace(",", " ").split()
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            return f"{prefix.rstrip(': ')} ({len(names)}): {', '.join(names[:shown])}{more}"
    return line


class EngineInstallError(RuntimeError):
    """An engine could not be installed; the message says why and what to try."""


def install_engine(
    name: str,
    environments: EngineEnvironments,
    on_line: LineCallback = print,
    on_bytes: ProgressCallback | None = None,
) -> str:
    """Create (or update) the engine's own environment and install the engine there.

    Returns the environment's interpreter (or, for an engine that is built, its program).
    Progress comes through on_line (what it is doing) and on_bytes (bytes of the current
    download).
    """
    try:
        engine = get_engine(name)
    except KeyError as error:
        raise EngineInstallError(str(error.args[0])) from None
    hardware = probe_hardware(with_engines=False)
    recipe = engine.install_recipe(hardware)
    if recipe is None:
        gpus = f"{len(hardware.gpus)} NVIDIA GPU(s)" if hardware.gpus else "no NVIDIA GPU"
        raise EngineInstallError(
            f"{name} has no build kz-jupyter can install on this machine ({hardware.system} "
            f"{hardware.machine}, {gpus}): install it by hand into an environment and name it "
            f'in c.KzApp.engine_envs = {{"{name}": "/path/to/venv"}}.'
        )
    if name in environments.configured:
        folder = Path(environments.configured[name]).expanduser()
        if not folder.is_dir():
            raise EngineInstallError(
                f"{name} is configured to run from {folder}, which is not a virtual environment "
                "folder: install it there yourself, or remove it from c.KzApp.engine_envs."
            )
    else:
        folder = environments.folder_for(name)
    if recipe.build is not None:
        folder.mkdir(parents=True, exist_ok=True)
        program = recipe.build(folder, on_line)
        (folder / INSTALLED_MARKER).write_text(f"built by kz-jupyter: {program}\n")
        on_line(f"{name} is installed in {folder}")
        return str(program)
    python = interpreter_in(folder)
    if not python.exists():
        on_line(f"Creating the environment {folder}")
        _run([sys.executable, "-m", "venv", str(folder)], on_line, on_bytes)
        # A new venv's pip is the one bundled with Python: too old for progress reports.
        _run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], on_line, on_bytes)
    _pip_install(python, recipe, on_line, on_bytes)
    (folder / INSTALLED_MARKER).write_text(" ".join(recipe.packages) + "\n")
    on_line(f"{name} is installed in {folder}")
    return str(python)


def _pip_install(
    python: Path, recipe: InstallRecipe, on_line: LineCallback, on_bytes: ProgressCallback | None
) -> None:
    """pip install the recipe's packages, then remove the ones that would break them."""
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--progress-bar", "raw", *recipe.packages], on_line, on_bytes)
    if recipe.remove:
        on_line(f"Removing {', '.join(recipe.remove)} (they break this engine's torch here)")
        _run([*pip, "uninstall", "-y", *recipe.remove], on_line, on_bytes)


def _run(command: list[str], on_line: LineCallback, on_bytes: ProgressCallback | None) -> None:
    """Run pip, passing on its useful lines and download progress."""

    def pip_line(line: str) -> None:
        progress = RAW_PROGRESS.match(line)
        if progress:
            if on_bytes is not None:
                on_bytes(int(progress.group(1)), int(progress.group(2)))
        elif SHOWN_LINE.match(line) and "(from " not in line:  # not each dependency
            on_line(shortened(line))

    run_streaming(command, pip_line)


def run_streaming(command: list[str], on_output: LineCallback) -> None:
    """Run a command, handing each line of its output to on_output; raise EngineInstallError
    with the output's last lines if it fails."""
    tail: list[str] = []
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
    except OSError as error:
        raise EngineInstallError(f"`{command[0]}` could not be run: {error}") from None
    with process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            if line and not line.startswith("WARNING: Location") and not RAW_PROGRESS.match(line):
                tail = [*tail[-19:], line]
            on_output(line)
    if process.returncode != 0:
        details = "\n".join(tail[-8:])
        shown = " ".join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command))
        raise EngineInstallError(f"`{shown}` failed (exit {process.returncode}):\n{details}")


def main(argv: list[str] | None = None) -> int:
    """Install engines from the command line; exit 1 with the reason when one fails."""
    parser = argparse.ArgumentParser(
        prog="python -m kz_jupyter.planning.engine_install",
        description="Install engines into their own environments (as %kz engines install).",
    )
    parser.add_argument("engines", nargs="+", help="engine names, like vllm mlx")
    parser.add_argument("--dir", help="where environments go (default: KZ_ENGINE_ENVS_DIR)")
    parser.add_argument(
        "--skip-available", action="store_true", help="leave engines that already work alone"
    )
    args = parser.parse_args(argv)
    environments = EngineEnvironments(root=Path(args.dir)) if args.dir else EngineEnvironments()
    for name in args.engines:
        if args.skip_available and name in load_engines():
            check = get_engine(name).check(environments)
            if check.available:
                print(f"{name} {check.version} is already usable ({check.source})")
                continue
        try:
            install_engine(name, environments)
        except EngineInstallError as error:
            print(f"kz: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
