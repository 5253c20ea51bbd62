"""Build llama.cpp's `llama-server` once, from a pinned source, for this machine; keep the build.

The source is the llama.cpp that llama-cpp-python's source distribution vendors, fetched from
the package index with pip (so no other download site is needed). To upgrade llama.cpp, raise
`LLAMA_CPP_PYTHON_VERSION`, run `%kz engines install llamacpp` (a new build, cached beside the
old one) and `make test`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from kz_jupyter.planning.engine_contract import LineCallback
from kz_jupyter.planning.engine_install import EngineInstallError, run_streaming
from kz_jupyter.planning.machine import HardwareProfile

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
BINARY = "llama-server"
CACHE_VARIABLE = "KZ_BUILD_CACHE"

# One static binary with the server and nothing else: no tests, examples, web UI download,
# curl or TLS (kz hands it local files and talks to it on loopback).
COMMON_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DGGML_CCACHE=OFF",
)
# Portable x86-64 (AVX2 class), not -march=native: a native build enables AMX on CPUs that
# advertise it, and its AMX matmul crashes on virtual machines that do not really allow AMX;
# a native binary is also unsafe to reuse on another machine.
PORTABLE_X86_FLAGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
)
BUILD_PROGRESS = re.compile(r"^\[\s*(\d+)%\]")


def find_nvcc() -> str | None:
    """The CUDA compiler, from PATH or the usual toolkit folders."""
    found = shutil.which("nvcc")
    if found:
        return found
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    candidate = Path(home) / "bin" / "nvcc"
    return str(candidate) if candidate.exists() else None


def build_flags(hardware: HardwareProfile) -> tuple[str, ...]:
    """CMake flags for this machine: portable CPU code; CUDA with an NVIDIA GPU and a CUDA
    toolkit (for the GPUs present); Metal on Apple Silicon."""
    flags = list(COMMON_FLAGS)
    if hardware.machine in ("x86_64", "AMD64"):
        flags += PORTABLE_X86_FLAGS
    else:
        flags.append("-DGGML_NATIVE=OFF")
    if hardware.apple_silicon:
        flags += ["-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON"]
    nvcc = find_nvcc() if hardware.gpus else None
    if nvcc:
        flags += ["-DGGML_CUDA=ON", f"-DCMAKE_CUDA_COMPILER={nvcc}"]
        flags.append("-DCMAKE_CUDA_ARCHITECTURES=native")
    return tuple(flags)


def cache_root() -> Path:
    """Where builds are kept: $KZ_BUILD_CACHE, else `<XDG cache>/kz-jupyter/llama-server`."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "kz-jupyter" / "llama-server"


def cached_binary(flags: tuple[str, ...]) -> Path:
    """The kept build for a source version and set of flags (the same flags reuse it)."""
    key = hashlib.sha1(" ".join(flags).encode()).hexdigest()[:10]
    return cache_root() / f"{LLAMA_CPP_PYTHON_VERSION}-{platform.machine()}-{key}" / BINARY


def build_llama_server(folder: Path, on_line: LineCallback, *, hardware: HardwareProfile) -> Path:
    """Put a llama-server built for this machine into folder/bin (building it once); return it."""
    flags = build_flags(hardware)
    built = cached_binary(flags)
    if built.exists():
        on_line(f"Using the llama-server built before ({built})")
    else:
        compile_llama_server(flags, built, on_line)
    target = folder / "bin" / BINARY
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{BINARY}.part")
    shutil.copy2(built, partial)
    os.replace(partial, target)
    return target


def compile_llama_server(flags: tuple[str, ...], built: Path, on_line: LineCallback) -> None:
    """Fetch the pinned source, configure and build llama-server, and keep the binary at built."""
    if shutil.which("cmake") is None:
        raise EngineInstallError(
            "Building llama-server needs CMake and a C/C++ compiler: install them (Debian: "
            "apt-get install cmake g++; macOS: xcode-select --install and brew install cmake), "
            "or put a llama-server on PATH (Homebrew: brew install llama.cpp)."
        )
    with tempfile.TemporaryDirectory(prefix="kz-llama-server-") as scratch:
        source = fetch_source(Path(scratch), on_line)
        build_dir = Path(scratch) / "build"
        on_line(f"Configuring llama.cpp ({' '.join(f for f in flags if 'GGML' in f)})")
        run_streaming(["cmake", "-S", str(source), "-B", str(build_dir), *flags], lambda _: None)
        jobs = str(os.cpu_count() or 1)
        on_line(f"Building llama-server with {jobs} jobs (about 7 minutes on 2 cores)")
        shown = [-10]

        def progress(line: str) -> None:
            match = BUILD_PROGRESS.match(line)
            if match is None:
                return
            percent = int(match.group(1))
            if percent >= shown[0] + 10:
                shown[0] = percent
                on_line(f"Building llama-server: {percent}%")

        command = ["cmake", "--build", str(build_dir), "--target", BINARY, "-j", jobs]
        run_streaming(command, progress)
        output = next(build_dir.rglob(f"bin/{BINARY}"), None)
        if output is None:
            raise EngineInstallError(f"The build finished without a {BINARY} in {build_dir}.")
        built.parent.mkdir(parents=True, exist_ok=True)
        partial = built.with_name(f".{BINARY}.part")
        shutil.copy2(output, partial)
        os.replace(partial, built)
        on_line(f"Built llama-server, kept in {built}")


def fetch_source(scratch: Path, on_line: LineCallback) -> Path:
    """Download llama-cpp-python's source distribution and unpack its vendored llama.cpp."""
    on_line(f"Fetching the llama.cpp source (llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist)")
    requirement = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
    command += ["--no-deps", "--no-binary", "llama-cpp-python", "-d", str(scratch), requirement]
    run_streaming(command, lambda _: None)
    archive = next(scratch.glob("llama_cpp_python-*.tar.gz"), None)
    if archive is None:
        raise EngineInstallError(f"pip downloaded no source archive of {requirement}.")
    with tarfile.open(archive) as tar:
        tar.extractall(scratch, filter="data")
    source = scratch / archive.name.removesuffix(".tar.gz") / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").exists():
        raise EngineInstallError(f"{archive.name} holds no vendor/llama.cpp source.")
    return source
