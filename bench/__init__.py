"""The benchmark suites of kz-jupyter: the product against the bare engines and the tools
users would pick instead. Run them with `python -m bench` (see bench/__main__.py)."""
