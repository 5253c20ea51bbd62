"""A prompt over many rows: `batch(df["review"], "Classify: {text}", deployment="smollm2")`.

Each row fills in the template (a Series or list gives `{text}`, a DataFrame or dicts give their
columns); the requests run as many at once as the deployment's slots take; every answer is kept
on disk as it arrives, so a re-run (after a kernel restart or an interrupted cell) asks only for
the rows not answered yet. With `schema=` (a pydantic model or a JSON schema) the engine answers
in JSON of that shape and the result has one column per field; a row that does not fit keeps its
error. The result: a DataFrame aligned with a pandas input (columns: the text or the fields,
then `error`), else a list of dicts.

`compare(["a", "b"], "prompt")` streams one prompt from several deployments at once;
`compare_rows(["a", "b"], rows, "template {text}")` runs a batch on each, side by side.
"""

from kz_jupyter.batch.compare import Comparison, Reply, compare, compare_rows
from kz_jupyter.batch.run import batch, result_of, rows_of, run_batch, slots_of

__all__ = [
    "Comparison", "Reply", "batch", "compare", "compare_rows", "result_of", "rows_of",
    "run_batch", "slots_of",
]  # fmt: skip
