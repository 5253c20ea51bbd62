"""`%kz rag ...`: index documents, list and remove indexes, search them, ask a deployment."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kz_jupyter.errors import KzError
from kz_jupyter.magics.panel import in_kernel, shown
from kz_jupyter.magics.progress import DownloadBar
from kz_jupyter.magics.text import format_table

if TYPE_CHECKING:
    from kz_jupyter.client import KzClient
    from kz_jupyter.rag.index import UpdateReport

USAGE = """\
%kz rag index PATH... --name N [--model M]   index documents (again: only what changed);
    M: a sentence-transformers model, or deployment:NAME to embed through a deployment
%kz rag list | %kz rag rm N                  the indexes here | remove one
%kz rag search N QUERY... [-k 5] [--hybrid] [--rerank R]   ranked chunks, scores, sources
%kz rag ask N QUESTION... --deployment D [-k 5] [--hybrid] [--rerank R] [--max-tokens 256]
%kz rag eval N FILE [-k 5] [--rerank R]      recall@k and MRR of questions: vector, hybrid
    (and reranked); FILE: JSON, JSON lines or CSV of question, source and optionally passage
    R: a sentence-transformers cross-encoder, or deployment:NAME of a reranker deployment;
    it orders the first 30 results again, each read with the question"""


def add_rag_parser(commands) -> None:
    """Add `rag` and its subcommands to the %kz parser."""
    rag = commands.add_parser("rag", add_help=False)
    actions = rag.add_subparsers(dest="action", parser_class=type(rag))
    index = actions.add_parser("index", add_help=False)
    index.add_argument("paths", nargs="+")
    index.add_argument("--name", required=True)
    index.add_argument("--model")
    actions.add_parser("list", add_help=False)
    remove = actions.add_parser("rm", add_help=False)
    remove.add_argument("name")
    evaluate = actions.add_parser("eval", add_help=False)
    evaluate.add_argument("name")
    evaluate.add_argument("file")
    evaluate.add_argument("-k", type=int, default=5)
    evaluate.add_argument("--rerank")
    for action in ("search", "ask"):
        sub = actions.add_parser(action, add_help=False)
        sub.add_argument("name")
        sub.add_argument("text", nargs="+")
        sub.add_argument("-k", type=int, default=5)
        sub.add_argument("--hybrid", action="store_true")
        sub.add_argument("--rerank")
        if action == "ask":
            sub.add_argument("--deployment", required=True)
            sub.add_argument("--max-tokens", type=int, default=256)


def run_rag(args: argparse.Namespace, client: Callable[[], KzClient]) -> object:
    """Carry out a `%kz rag` command (search returns its table widget); retrieval problems
    become one KzError line.

    Indexes live in this kernel's machine; the kz server is needed (client() connects) to ask
    a deployment, or to embed through one (`--model deployment:NAME`).
    """
    from kz_jupyter.rag.documents import DocumentError
    from kz_jupyter.rag.evaluation import QuestionsError
    from kz_jupyter.rag.index import RagError

    if args.action is None:
        print(USAGE)
        return None
    try:
        actions = {"index": _index, "list": _list, "rm": _remove, "search": _search,
                   "ask": _ask, "eval": _evaluate}  # fmt: skip
        return actions[args.action](args, client)
    except (RagError, DocumentError, QuestionsError) as error:
        raise KzError(str(error)) from None


def _index(args, client) -> None:
    from kz_jupyter import rag

    bar = DownloadBar(f"embedding for '{args.name}'", unit=" chunks")
    started = time.monotonic()

    def phase(step: str) -> None:  # each step as it begins, with the time so far
        print(f"{step}... (+{time.monotonic() - started:.1f} s)", flush=True)

    try:
        report = rag.index(args.paths, args.name, args.model, progress=bar.update,
                           client=client, phase=phase)  # fmt: skip
    finally:
        bar.close()
    print(format_update(args.name, report))


def format_update(name: str, report: UpdateReport) -> str:
    """What an index update did: counts, the files gone since (deleted, or no longer on disk),
    and each file skipped with why."""
    lines = [
        f"'{name}': {report.chunks} chunks from {len(report.added) + len(report.changed)} "
        f"new or changed files ({len(report.unchanged)} unchanged, {len(report.removed)} "
        f"removed), {report.embedded} embedded in {report.seconds:.1f} s"
    ]
    if report.rebuilt:
        lines.append("  rebuilt: its chunks were cut another way (an older kz-jupyter), so every "
                     "file was chunked and embedded again, once")  # fmt: skip
    lines += [f"  removed {source}: no longer on disk" for source in report.removed]
    lines += [f"  skipped {source}: {why}" for source, why in report.skipped.items()]
    return "\n".join(lines)


def _evaluate(args, client):
    from kz_jupyter import rag
    from kz_jupyter.magics.evaluation_panel import EvaluationPanel

    evaluation = rag.evaluate(args.name, args.file, k=args.k, client=client, rerank=args.rerank)
    return shown(EvaluationPanel(evaluation))


def _list(args, client) -> None:
    from kz_jupyter.rag.index import list_indexes

    indexes = list_indexes()
    if not indexes:
        print("No indexes yet: %kz rag index PATH --name NAME")
        return
    rows = [("NAME", "CHUNKS", "FILES", "KIND", "MODEL")]
    rows += [
        (m["name"], str(m.get("chunks", "?")), str(m.get("files", "?")), m.get("kind", "?"),
         m.get("model", m.get("error", "?")))
        for m in indexes
    ]  # fmt: skip
    print(format_table(rows))


def _remove(args, client) -> None:
    from kz_jupyter.rag.index import remove_index

    print(f"Removed {remove_index(args.name)}")


def _search(args, client):
    from kz_jupyter import rag
    from kz_jupyter.magics.search_table import SearchTable

    query = " ".join(args.text)
    hits = rag.search(args.name, query, k=args.k, hybrid=args.hybrid, client=client,
                      rerank=args.rerank)  # fmt: skip
    return shown(SearchTable(args.name, query, hits, hybrid=args.hybrid, rerank=args.rerank))


def _ask(args, client) -> None:
    """In a notebook, the ask panel (its phases live, the sources first); elsewhere, the
    answer streamed as text, then its sources."""
    from kz_jupyter import rag

    if in_kernel():
        from IPython.display import display

        from kz_jupyter.magics.ask_panel import AskPanel

        panel = AskPanel(args.name, " ".join(args.text), args.deployment, k=args.k,
                         hybrid=args.hybrid, max_tokens=args.max_tokens,
                         rerank=args.rerank)  # fmt: skip
        display(panel)
        panel.run(client)
        return
    answer = rag.ask(
        args.name, " ".join(args.text), args.deployment, k=args.k, hybrid=args.hybrid,
        max_tokens=args.max_tokens, client=client, rerank=args.rerank,
    )  # fmt: skip
    print_answer(answer)


def print_answer(answer) -> None:
    """Stream a grounded answer into the cell, then its sources."""
    for text in answer:
        print(text, end="", flush=True)
    print("\nSources:")
    for line in answer.prompt.source_lines():
        print(f"  {line}")
