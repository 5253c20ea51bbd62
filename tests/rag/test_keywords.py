"""The keyword side of hybrid search: stemmed words, code identifiers split and kept whole, and
only the texts that share a word with the query ranked."""

from __future__ import annotations

from kz_jupyter.rag.keywords import KeywordIndex, keyword_tokens

TEXTS = [
    "The client retries a request when the server answers with a Rate Limit.",
    "Gardens bloom in spring; the roses come first.",
    "parse_http_response reads the body; HTTPServer serves it.",
]


def test_words_are_stemmed_so_their_forms_match():
    assert keyword_tokens("retried rate-limits") == keyword_tokens("Retry Rate Limit")
    assert keyword_tokens("the of and") == []  # stopwords only


def test_identifiers_are_split_as_well_as_kept_whole():
    tokens = keyword_tokens("parse_http_response HttpResponseParser HTTPServer")
    assert {"parse_http_respons", "httpresponsepars", "httpserver"} <= set(tokens)  # whole
    assert {"pars", "http", "respons", "parser", "server"} <= set(tokens)  # and in parts


def test_a_stemmed_keyword_match_ranks_its_text_first():
    index = KeywordIndex(TEXTS)
    ranked = index.ranked("what happens when rate-limits are retried", depth=10)
    assert ranked[0][0] == 0 and all(score > 0 for _, score in ranked)
    assert [row for row, _ in index.ranked("HTTP response", depth=10)] == [2]
    assert index.ranked("the of and", depth=10) == []  # no word in common: nothing ranked
