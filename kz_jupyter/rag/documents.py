"""Documents for retrieval: find the files under the paths a user gives and read them into
sections that keep their structure (headings, paragraphs, code cells) and where they came from."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kz_jupyter.models.references import ModelReferenceError, expand_home

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".py"}
SUFFIXES = TEXT_SUFFIXES | {".ipynb", ".pdf"}
MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")
PYTHON_TOP_LEVEL = re.compile(r"^(async\s+def|def|class)\s+(\w+)")
PYTHON_IMPORT = re.compile(r"^(import\s+\w|from\s+[\w.]+\s+import\s)")
# What a file's name says it is; other names (.txt, none) are read by their content.
TEXT_KINDS = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".py": "python"}
BINARY_SNIFF = 8192


class DocumentError(ValueError):
    """A document (or a set of them) that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Section:
    """A piece of a document that belongs together: a paragraph, a code block or cell."""

    text: str
    source: str
    location: str  # "line 12", "cell 3", "page 2"
    heading: str = ""
    code: bool = False


def user_path(given: str | Path) -> Path:
    """A document path as typed, ~ expanded; DocumentError when ~NAME is no user here."""
    try:
        return expand_home(given)
    except ModelReferenceError as error:
        raise DocumentError(str(error)) from None


def readable_kind(path: Path) -> bool:
    """A file of a supported kind, or one with no extension that is not a program (README,
    CHANGES, ...: read as text, its structure read from its content)."""
    suffix = path.suffix.lower()
    return suffix in SUFFIXES or (not suffix and not os.access(path, os.X_OK))


def find_documents(paths: Iterable[str | Path]) -> list[Path]:
    """The supported files under paths (folders are walked; hidden entries skipped), and any
    file named itself, sorted."""
    found: set[Path] = set()
    for given in paths:
        path = user_path(given)
        if not path.exists():
            raise DocumentError(f"{given} does not exist.")
        if path.is_file():  # a file named by the user is read whatever its name
            found.add(path.resolve())
            continue
        for candidate in sorted(path.rglob("*")):
            hidden = any(part.startswith(".") for part in candidate.relative_to(path).parts)
            if candidate.is_file() and not hidden and readable_kind(candidate):
                found.add(candidate.resolve())
    if not found:
        where = ", ".join(str(p) for p in paths) or "nothing"
        kinds = " ".join(sorted(SUFFIXES))
        raise DocumentError(f"No documents to index in {where} (readable kinds: {kinds}).")
    return sorted(found)


def read_sections(path: Path) -> list[Section]:
    """Read one document into sections; DocumentError when it is binary, unreadable or empty."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".ipynb":
            sections = list(_notebook_sections(path))
        elif suffix == ".pdf":
            sections = list(_pdf_sections(path))
        else:
            text = _read_text(path)
            kind = TEXT_KINDS.get(suffix) or kind_of(text)
            if kind == "python":
                sections = list(_python_sections(text, str(path)))
            elif kind == "notebook":
                sections = list(_notebook_sections(path))
            else:
                sections = list(_prose_sections(text, str(path), rst=kind == "rst"))
    except OSError as error:
        raise DocumentError(f"{path} cannot be read ({error.strerror or error}).") from None
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise DocumentError(f"{path} has no text to index.")
    return sections


def kind_of(text: str) -> str:
    """What a text whose name does not say is: a notebook, Python, reStructuredText (titles
    underlined and no Markdown `#` headings) or Markdown."""
    head = text.lstrip()[:2000]
    if head.startswith("{") and '"nbformat"' in text:
        return "notebook"
    lines = text.splitlines()
    if head.startswith("#!") and "python" in head.splitlines()[0]:
        return "python"
    code = sum(1 for line in lines if PYTHON_TOP_LEVEL.match(line) or PYTHON_IMPORT.match(line))
    if code >= 2 and code * 20 >= len(lines):
        return "python"
    underlined = any(
        RST_UNDERLINE.match(line) and previous.strip() and not RST_UNDERLINE.match(previous)
        for previous, line in zip(lines, lines[1:], strict=False)
    )
    if underlined and not any(MARKDOWN_HEADING.match(line) for line in lines):
        return "rst"
    return "markdown"


def _read_text(path: Path) -> str:
    """A text file's content; binary content (NUL bytes, not UTF-8) is refused."""
    data = path.read_bytes()
    if b"\0" in data[:BINARY_SNIFF]:
        raise DocumentError(f"{path} is a binary file, not text.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{path} is not UTF-8 text.") from None


def _prose_sections(text: str, source: str, rst: bool = False, start_line: int = 1):
    """Paragraphs under their headings (Markdown `#` and underlined headings, or
    reStructuredText's underlined titles); fenced code blocks stay whole."""
    lines = text.splitlines()
    heading, paragraph, first, fenced = "", [], 0, False

    def flush() -> Iterator[Section]:
        if paragraph:
            body = "\n".join(paragraph).strip()
            yield Section(body, source, f"line {first}", heading, code=body.startswith("```"))
        paragraph.clear()

    for number, line in enumerate(lines, start=start_line):
        if line.strip().startswith("```"):
            if not fenced:
                yield from flush()
                first = number
            fenced = not fenced
            paragraph.append(line)
            if not fenced:
                yield from flush()
            continue
        if fenced:
            paragraph.append(line)
            continue
        markdown = MARKDOWN_HEADING.match(line) if not rst else None
        # a title underlined: reStructuredText, or Markdown's = and - (setext) headings
        underline = (
            RST_UNDERLINE.match(line) and len(paragraph) == 1 and (rst or line.strip()[0] in "=-")
        )
        if markdown or underline:
            title = markdown.group(2) if markdown else paragraph.pop()
            yield from flush()
            heading = title.strip()
            continue
        if not line.strip():
            yield from flush()
            continue
        if not paragraph:
            first = number
        paragraph.append(line)
    yield from flush()


def _python_sections(text: str, source: str) -> Iterator[Section]:
    """Top-level functions and classes, each whole, and the module code between them."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if PYTHON_TOP_LEVEL.match(line)]
    bounds = [0, *starts, len(lines)]
    for begin, end in zip(bounds, bounds[1:], strict=False):
        body = "\n".join(lines[begin:end]).strip()
        match = PYTHON_TOP_LEVEL.match(lines[begin]) if begin < len(lines) else None
        name = match.group(2) if match else "module"
        if body:
            yield Section(body, source, f"line {begin + 1}", name, code=True)


def _notebook_sections(path: Path) -> Iterator[Section]:
    """Markdown cells as prose under their headings, code cells whole."""
    import nbformat

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # nbformat raises many kinds for a bad file
        raise DocumentError(f"{path} is not a readable notebook ({error}).") from None
    heading = ""
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "markdown":
            for section in _prose_sections(cell.source, str(path)):
                heading = section.heading or heading
                yield Section(section.text, str(path), f"cell {number}", heading)
            titles = [
                m.group(2) for m in map(MARKDOWN_HEADING.match, cell.source.splitlines()) if m
            ]
            heading = titles[-1] if titles else heading
        elif cell.cell_type == "code" and cell.source.strip():
            yield Section(cell.source, str(path), f"cell {number}", heading, code=True)


def _pdf_sections(path: Path) -> Iterator[Section]:
    """Paragraphs of each page (pypdf, when installed)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise DocumentError(f"{path}: reading PDF needs pypdf (pip install pypdf).") from None
    try:
        pages = [page.extract_text() or "" for page in PdfReader(str(path)).pages]
    except PdfReadError as error:
        raise DocumentError(f"{path} is not a readable PDF ({error}).") from None
    for number, text in enumerate(pages, start=1):
        for section in _prose_sections(text, str(path)):
            yield Section(section.text, str(path), f"page {number}", section.heading)
