"""Reading an engine's log for trouble: which lifecycle error a log shows, and which lines say so
(each engine gives its patterns, most specific first)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from kz_jupyter.states import ErrorCode

LogPatterns = Iterable[tuple[re.Pattern[str], ErrorCode]]


def classify_log_lines(lines: Iterable[str], patterns: LogPatterns) -> ErrorCode | None:
    """Return the code of the first pattern (in priority order) that any line matches."""
    text = list(lines)
    for pattern, code in patterns:
        if any(pattern.search(line) for line in text):
            return code
    return None


def issue_lines(lines: Iterable[str], patterns: LogPatterns) -> list[tuple[int, str, str]]:
    """Return (line number, error code, line) for every log line matching a pattern."""
    compiled = list(patterns)
    found = []
    for number, line in enumerate(lines):
        for pattern, code in compiled:
            if pattern.search(line):
                found.append((number, code.value, line))
                break
    return found
