"""`%kz rag eval`'s result as a widget: the table and a small chart of recall@k and MRR per
method, the misses folded under them; its text is the text table."""

from __future__ import annotations

import ipywidgets as widgets

from kz_jupyter.magics.panel import TextRepr
from kz_jupyter.magics.text import format_table
from kz_jupyter.rag.evaluation import Evaluation

BAR_WIDTH = 20  # characters of a recall of 1


def format_evaluation(evaluation: Evaluation) -> str:
    """Recall@k and MRR per method as a table with bars, then each method's misses."""
    rows = [tuple(evaluation.rows()[0]) + ("",)]
    for row in evaluation.rows():
        bar = "█" * round(row[f"recall@{evaluation.k}"] * BAR_WIDTH)
        rows.append((*(str(value) for value in row.values()), bar))
    lines = [format_table(rows)]
    for method in evaluation.ranks:
        for question in evaluation.misses(method):
            lines.append(f"  {method} missed: {question.text!r} ({question.source})")
    return "\n".join(lines)


class EvaluationPanel(TextRepr, widgets.VBox):
    """An evaluation's table, chart and misses (Evaluation's own HTML) in a widget."""

    def __init__(self, evaluation: Evaluation):
        self.evaluation = evaluation
        super().__init__([widgets.HTML(self.html())])

    def text(self) -> str:
        """The text table with bars, and the misses."""
        return format_evaluation(self.evaluation)

    def html(self) -> str:
        """The evaluation's HTML."""
        return self.evaluation._repr_html_()
