"""The keyword side of hybrid search: BM25 over words stemmed (so "retried" finds "retry" and
"rate-limits" finds "Rate Limit"), with code identifiers split as well as kept whole
(`parse_http_response` and `HttpResponseParser` also find "HTTP response")."""

from __future__ import annotations

import functools
import re

WORD = re.compile(r"\w+")
# The words of a CamelCase or snake_case identifier: runs of capitals (HTTP in HTTPServer),
# capitalized or lower-case words, and digits.
IDENTIFIER_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@functools.cache
def _stemmer():
    """Snowball's English stemmer (PyStemmer), made once."""
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.cache
def _stopwords() -> frozenset[str]:
    """The English stopwords BM25 leaves out (bm25s's list)."""
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def keyword_tokens(text: str) -> list[str]:
    """A text's BM25 tokens: each word stemmed, lower-cased, without stopwords; an identifier
    (snake_case, CamelCase) also gives its parts."""
    words: list[str] = []
    for word in WORD.findall(text):
        parts = IDENTIFIER_PART.findall(word)
        words.append(word.lower())
        if len(parts) > 1:
            words += [p.lower() for p in parts]
    stopwords = _stopwords()
    kept = [w for w in words if len(w) > 1 and w not in stopwords]
    return _stemmer().stemWords(kept)


class KeywordIndex:
    """BM25 over a list of texts (its rows)."""

    def __init__(self, texts: list[str]):
        import bm25s

        self._bm25 = bm25s.BM25()
        self._bm25.index([keyword_tokens(t) or ["\0"] for t in texts], show_progress=False)
        self._rows = len(texts)

    def ranked(self, query: str, depth: int) -> list[tuple[int, float]]:
        """(row, score) of the texts that share a token with the query, best first, at most
        depth of them."""
        tokens = keyword_tokens(query)
        if not tokens or not self._rows:
            return []
        rows, scores = self._bm25.retrieve([tokens], k=min(depth, self._rows), show_progress=False)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
