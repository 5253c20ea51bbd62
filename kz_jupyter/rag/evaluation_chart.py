"""An evaluation as HTML: the table, a small bar chart of recall@k and MRR per method (SVG in
JupyterLab's theme colors, readable in light, dark and high-contrast themes), and the misses."""

from __future__ import annotations

from html import escape

BAR_HEIGHT, BAR_GAP, LABEL_WIDTH, CHART_WIDTH = 12, 3, 70, 220
# Each figure's bar color and its name in the legend: the theme's brand and accent colors.
FIGURES = (("recall", "var(--jp-brand-color1)"), ("MRR", "var(--jp-accent-color1)"))
TEXT = "fill:var(--jp-ui-font-color1);font-size:11px;font-family:var(--jp-ui-font-family)"


def evaluation_svg(k: int, figures: dict[str, tuple[float, float]]) -> str:
    """Two bars per method ({method: (recall@k, MRR)}), on a scale from 0 to 1."""
    rows, y = [], 0
    for method, values in figures.items():
        rows.append(f"<text x='0' y='{y + BAR_HEIGHT + 2}' style='{TEXT}'>{escape(method)}</text>")
        for (figure, color), value in zip(FIGURES, values, strict=True):
            width = value * (CHART_WIDTH - LABEL_WIDTH - 40)
            rows.append(
                f"<rect x='{LABEL_WIDTH}' y='{y}' width='{width:.1f}' height='{BAR_HEIGHT}' "
                f"fill='{color}'><title>{figure} {value:.3f}</title></rect>"
                f"<text x='{LABEL_WIDTH + width + 4:.1f}' y='{y + BAR_HEIGHT - 2}' "
                f"style='{TEXT}'>{value:.2f}</text>"
            )
            y += BAR_HEIGHT + BAR_GAP
        y += 2 * BAR_GAP
    legend = "".join(
        f"<rect x='{LABEL_WIDTH + n * 80}' y='{y + 2}' width='10' height='10' fill='{color}'/>"
        f"<text x='{LABEL_WIDTH + n * 80 + 14}' y='{y + 11}' style='{TEXT}'>"
        f"{figure}{f'@{k}' if figure == 'recall' else ''}</text>"
        for n, (figure, color) in enumerate(FIGURES)
    )
    height = y + 16
    return (
        f"<svg width='{CHART_WIDTH}' height='{height}' role='img' aria-label='recall and MRR "
        f"per method'>{''.join(rows)}{legend}</svg>"
    )


def evaluation_html(
    caption: str, rows: list[dict], chart: str, misses: list[tuple[str, str, str]]
) -> str:
    """The caption, the table (a dict per row) and the chart side by side (the chart under
    the table when narrow), then the misses folded: (method, question, source) each."""
    head = "".join(f"<th>{escape(str(key))}</th>" for key in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(value))}</td>" for value in row.values()) + "</tr>"
        for row in rows
    )
    items = "".join(
        f"<li>{escape(method)} missed “{escape(question)}” ({escape(source)})</li>"
        for method, question, source in misses
    )
    folded = f"<details><summary>misses</summary><ul>{items}</ul></details>" if items else ""
    return (
        "<div class='kz-evaluation' style='color:var(--jp-ui-font-color1)'>"
        f"<b>{escape(caption)}</b>"
        "<div style='display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start'>"
        f"<table><tr>{head}</tr>{body}</table>{chart}</div>{folded}</div>"
    )
