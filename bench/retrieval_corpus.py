"""The retrieval suite's corpus and questions: the docstrings of standard-library modules (the same
text wherever the same Python runs), one file per module with reStructuredText headings in a
`.txt` file, and questions as users ask them, each answered by one passage of one file."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

MODULES = [
    "argparse", "array", "ast", "base64", "bisect", "calendar", "cmath", "codecs", "collections",
    "colorsys", "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "dis", "email.message", "enum", "filecmp", "fnmatch", "fractions", "functools",
    "getpass", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "html",
    "http.client", "http.cookies", "inspect", "io", "ipaddress", "itertools", "json", "locale",
    "logging", "math", "mimetypes", "mmap", "netrc", "operator", "os", "pathlib", "pickle",
    "plistlib", "pprint", "queue", "random", "sched", "secrets", "select", "shlex", "shutil",
    "signal", "smtplib", "socket", "sqlite3", "ssl", "statistics", "string", "struct",
    "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "tomllib", "trace", "traceback", "unicodedata", "urllib.parse", "urllib.request", "uuid",
    "warnings", "wave", "weakref", "webbrowser", "xml.etree.ElementTree", "zipfile", "zlib",
    "zoneinfo",
]  # fmt: skip
MIN_DOCSTRING = 40  # characters: shorter docstrings say too little to be asked about

# (question, module, a substring of the passage that answers it, kind)
QUESTIONS = [
    ("How do I copy a whole folder with all its subfolders?", "shutil",
     "Recursively copy a directory tree", "paraphrase"),
    ("rmtree ignore_errors onerror", "shutil", "Recursively delete a directory tree", "keyword"),
    ("find where an executable program lives on the PATH", "shutil",
     "Given a command, mode, and a PATH string", "paraphrase"),
    ("how much free space is left on a drive", "shutil", "Return disk usage statistics",
     "paraphrase"),
    ("strip the indentation shared by every line of a text block", "textwrap",
     "Remove any common leading whitespace", "paraphrase"),
    ("textwrap shorten placeholder", "textwrap", "Collapse and truncate the given text",
     "keyword"),
    ("get the ten biggest values from a list without sorting it all", "heapq",
     "Find the n largest elements", "paraphrase"),
    ("heapq merge sorted inputs key reverse", "heapq",
     "Merge multiple sorted inputs into a single sorted output", "keyword"),
    ("suggest similar words for a misspelled one", "difflib", "good enough", "paraphrase"),
    ("token_urlsafe nbytes Base64", "secrets", "Return a random URL-safe text string",
     "keyword"),
    ("make a unique temporary file safely and get its file descriptor", "tempfile",
     "User-callable function to create and return a unique temporary", "paraphrase"),
    ("TemporaryDirectory context manager cleanup", "tempfile", "used as a context manager",
     "keyword"),
    ("shlex quote shell-escaped", "shlex", "Return a shell-escaped version of the string",
     "keyword"),
    ("break a command line into arguments the way a shell does", "shlex",
     "using shell-like syntax", "paraphrase"),
    ("fnmatch normcase FILENAME PATTERN", "fnmatch", "Test whether FILENAME matches PATTERN",
     "keyword"),
    ("find every file in nested folders with a wildcard pattern", "glob",
     "the pattern '**' will match any files", "paraphrase"),
    ("json dumps sort_keys indent separators", "json",
     "Serialize ``obj`` to a JSON formatted ``str``", "keyword"),
    ("turn a JSON text into Python objects", "json", "Deserialize ``s``", "paraphrase"),
    ("guess the delimiter of a spreadsheet export", "csv", "Sniffs", "paraphrase"),
    ("CalledProcessError check=True returncode", "subprocess", "CalledProcessError", "keyword"),
    ("capture what a program prints to its standard output", "subprocess",
     "Run command with arguments and return its output", "paraphrase"),
    ("group consecutive items that share a key", "itertools", "consecutive keys and groups",
     "paraphrase"),
    ("lru_cache maxsize typed", "functools", "Least-recently-used cache decorator", "keyword"),
    ("remember a function's results for its most recent arguments", "functools",
     "Least-recently-used cache decorator", "paraphrase"),
    ("count how often each word appears in a list", "collections",
     "Dict subclass for counting hashable items", "paraphrase"),
    ("namedtuple _fields _replace", "collections",
     "Returns a new subclass of tuple with named fields", "keyword"),
    ("fast appends and pops at both ends of a sequence", "collections",
     "optimized for data accesses near its endpoints", "paraphrase"),
    ("logging basicConfig filename filemode format", "logging",
     "Do basic configuration for the logging system", "keyword"),
    ("get a named logger, creating it when it does not exist yet", "logging",
     "Return a logger with the specified name", "paraphrase"),
    ("the middle value of a list of numbers", "statistics",
     "Return the median (middle value) of numeric data", "paraphrase"),
    ("stdev sample variance square root", "statistics",
     "Return the square root of the sample variance", "keyword"),
    ("read what is inside a .zip archive", "zipfile",
     "Class with methods to open, read, write, close, list zip files", "paraphrase"),
    ("is_tarfile tar archive", "tarfile", "Return True if name points to a tar archive",
     "keyword"),
    ("compress bytes in one call", "gzip", "Compress data in one shot", "paraphrase"),
    ("hashlib file_digest fileobj", "hashlib", "Hash the contents of a file-like object",
     "keyword"),
    ("open a web page in the user's usual browser", "webbrowser",
     "Display url using the default browser", "paraphrase"),
    ("build the query string of a URL from a dictionary", "urllib.parse",
     "Encode a dict or sequence of two-element tuples", "paraphrase"),
    ("urlencode doseq quote_via", "urllib.parse",
     "Encode a dict or sequence of two-element tuples", "keyword"),
    ("a thread-safe first-in first-out queue with a size limit", "queue",
     "Create a queue object with a given maximum size", "paraphrase"),
    ("ignore one kind of exception inside a with block", "contextlib",
     "Context manager to suppress specified exceptions", "paraphrase"),
    ("dataclasses asdict dict_factory", "dataclasses",
     "Return the fields of a dataclass instance as a new dictionary", "keyword"),
    ("b64encode altchars", "base64", "Encode the bytes-like object s using Base64", "keyword"),
    ("is 2024 a leap year", "calendar", "Return True for leap years", "paraphrase"),
    ("ip_network strict host bits", "ipaddress",
     "Take an IP string/int and return an object of the correct type", "keyword"),
    ("ZipFile compression ZIP_DEFLATED allowZip64", "zipfile", "ZIP64 extensions", "keyword"),
    ("TopologicalSorter graph hashable nodes", "graphlib",
     "topologically sort a graph of hashable nodes", "keyword"),
    ("copyfileobj fsrc fdst", "shutil", "copy data from file-like object fsrc", "keyword"),
]  # fmt: skip


def module_text(name: str) -> str:
    """A module's docstring, then each public function and class it defines under its name as
    a reStructuredText heading."""
    module = importlib.import_module(name)
    parts = [inspect.getdoc(module) or ""]
    for attribute, value in sorted(vars(module).items()):
        defined_here = getattr(value, "__module__", None) == module.__name__
        callable_kind = inspect.isfunction(value) or inspect.isclass(value)
        if attribute.startswith("_") or not (defined_here and callable_kind):
            continue
        doc = inspect.getdoc(value)
        if doc and len(doc) > MIN_DOCSTRING:
            parts.append(f"{attribute}\n{'=' * len(attribute)}\n\n{doc}")
    return "\n\n".join(parts)


def write_corpus(folder: Path) -> list[Path]:
    """Write one `.txt` file per module into folder; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in MODULES:
        path = folder / f"{name}.txt"
        path.write_text(module_text(name))
        paths.append(path)
    return paths
