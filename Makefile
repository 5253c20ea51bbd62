# The two commands of the README: `make demo` and `make test`. Both set everything up first.
.PHONY: setup demo test lab lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python -m kz_jupyter.demo

test: setup lint
	.venv/bin/pytest

lint:
	.venv/bin/ruff check --no-cache .
	.venv/bin/ruff format --no-cache --check .

lab: setup
	.venv/bin/jupyter lab notebooks/quickstart.ipynb

bench: setup
	.venv/bin/python -m bench
