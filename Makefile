# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lab lint bench

# The engines `scripts/setup.sh` installs (llama-server, vLLM, MLX) live in .engines.
export KZ_ENGINE_ENVS_DIR ?= $(CURDIR)/.engines

setup:
	@bash scripts/setup.sh

demo:
	@bash scripts/setup.sh demo
	.venv/bin/python -m kz_jupyter.demo

test: setup lint
	.venv/bin/pytest

lint:
	.venv/bin/ruff check --no-cache .
	.venv/bin/ruff format --no-cache --check .
	.venv/bin/python scripts/lint_imports.py

lab: setup
	.venv/bin/jupyter lab notebooks/quickstart.ipynb

bench: setup
	.venv/bin/python -m bench
