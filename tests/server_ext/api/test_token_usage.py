"""The proxy reads token counts from the engine's usage, in JSON answers and in streams, and
takes the usage event out of a stream whose client did not ask for it."""

from __future__ import annotations

import json

from kz_jupyter.server_ext.api.token_usage import Usage, UsageTap, asking_for_usage

USAGE = {"prompt_tokens": 31, "completion_tokens": 3, "total_tokens": 34}


def event(data: dict, end: bytes = b"\n\n") -> bytes:
    """One server-sent event as llama.cpp writes it."""
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + end


STREAM = [
    event({"choices": [{"index": 0, "delta": {"content": "Hi"}}]}),
    event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
    event({"choices": [], "usage": USAGE}),
    b"data: [DONE]\n\n",
]


def relay(tap: UsageTap, pieces: list[bytes]) -> bytes:
    """What the client receives of the pieces."""
    return b"".join(tap.relay(piece) for piece in pieces) + tap.end()


def test_usage_is_asked_for_only_in_streams_whose_client_did_not_ask():
    chat = {"model": "m", "messages": [], "stream": True}
    assert asking_for_usage(chat)["stream_options"] == {"include_usage": True}
    kept = {"stream_options": {"include_usage": False, "continuous_usage_stats": True}}
    assert asking_for_usage(chat | kept)["stream_options"] == {
        "include_usage": True, "continuous_usage_stats": True
    }  # fmt: skip
    assert asking_for_usage(chat | {"stream_options": {"include_usage": True}}) is None
    assert asking_for_usage({"model": "m", "messages": []}) is None  # not streamed
    assert asking_for_usage({"model": "m", "stream": "yes"}) is None


def test_the_usage_event_the_proxy_asked_for_is_read_and_taken_out():
    whole = b"".join(STREAM)
    for size in (1, 7, 64, len(whole)):  # however the engine's bytes are cut
        pieces = [whole[i : i + size] for i in range(0, len(whole), size)]
        tap = UsageTap(streamed=True, strip=True)
        assert relay(tap, pieces) == STREAM[0] + STREAM[1] + STREAM[3]
        assert tap.usage == Usage(31, 3)


def test_usage_the_client_asked_for_reaches_it_unchanged():
    tap = UsageTap(streamed=True, strip=False)
    assert relay(tap, STREAM) == b"".join(STREAM)
    assert tap.usage == Usage(31, 3)


def test_usage_on_a_chunk_with_content_keeps_the_content():
    chunk = {"choices": [{"index": 0, "delta": {"content": "!"}}], "usage": USAGE}
    tap = UsageTap(streamed=True, strip=True)
    sent = relay(tap, [event(chunk, b"\r\n\r\n"), b"data: [DONE]\r\n\r\n"])
    first = json.loads(sent.split(b"\n\n")[0].removeprefix(b"data: "))
    assert first == {"choices": chunk["choices"]} and tap.usage == Usage(31, 3)
    assert sent.endswith(b"data: [DONE]\r\n\r\n")


def test_a_json_answer_is_relayed_as_is_and_its_usage_read():
    body = json.dumps(
        {
            "choices": [{"message": {"content": 'a "usage": {"prompt_tokens": 9}'}}],
            "usage": USAGE,
            "timings": {"prompt_n": 31},
        }  # fmt: skip
    ).encode()
    tap = UsageTap(streamed=False, strip=False)
    pieces = [body[i : i + 10] for i in range(0, len(body), 10)]
    assert relay(tap, pieces) == body
    assert tap.usage == Usage(31, 3)


def test_answers_without_usage_have_none():
    tap = UsageTap(streamed=False, strip=False)
    relay(tap, [b'{"error": {"message": "no"}}'])
    assert tap.usage is None
    stream = UsageTap(streamed=True, strip=True)
    assert (
        relay(stream, [b'data: {not json, "usage": {}}\n\n'])
        == b'data: {not json, "usage": {}}\n\n'
    )
    assert stream.usage is None
