# Licensed under the Apache License, Version 2.0.
"""Streamed OpenAI chats that do not ask for usage (SPEC section 11): the
gateway sets stream_options.include_usage on the way upstream (the only
change it ever makes to a body, everything else byte for byte) and takes
the usage-only chunk out of the stream, so the client gets the stream it
asked for; a client that asked for usage gets the upstream's stream
unchanged; ClawdRouterStreamUsage Off turns it off."""

import json

import pytest

from harness import chat_body, openai_headers, post

ADDED = b',"stream_options":{"include_usage":true}}'


@pytest.fixture(scope="module", params=["event", "prefork"])
def gw(request, make_module_gateway):
    return make_module_gateway(
        mpm=request.param, log_level="info",
        after_location_conf="\n".join([
            "<Location /v1/off>",
            "    ClawdRouterStreamUsage Off",
            "</Location>"]))


@pytest.fixture(scope="module")
def key(gw):
    return gw.create_key(name="stream-usage")


def without_usage_chunk(sent):
    events = sent.split(b"\n\n")
    kept = [e for e in events if b'"choices": []' not in e]
    assert len(kept) == len(events) - 1, sent
    return b"\n\n".join(kept)


def stream(gw, k, body_bytes, path="/v1/chat/completions", usage="17,23"):
    h = openai_headers(k)
    h["X-Mock-Usage"] = usage
    r = post(gw, path, data=body_bytes, headers=h, stream=True)
    got = b"".join(r.iter_content(chunk_size=None))
    assert r.status_code == 200, got[:300]
    return r, got


def test_include_usage_added_and_chunk_taken_out(gw, key, upstream):
    kid, k = key
    body = json.dumps(chat_body(stream=True), separators=(",", ":")).encode()
    r, got = stream(gw, k, body)
    rec = upstream.last
    # Upstream: the body plus the member, nothing else changed.
    assert rec.body == body[:-1] + ADDED
    assert rec.json()["stream_options"] == {"include_usage": True}
    # Client: the upstream's stream minus its usage chunk, byte for byte
    # (the "usage": null members of the other chunks stay).
    assert got == without_usage_chunk(rec.sent)
    assert b'"choices": []' not in got and got.endswith(b"data: [DONE]\n\n")
    # And the usage was read: the tpm headers of the next request show it
    # (40 tokens of a key of 6000 a minute refill in 0.4 s).
    p = gw.keys("create", "--json", "--tpm", "6000", check=True)
    k6 = json.loads(p.stdout)["key"]
    r1, _ = stream(gw, k6, body)
    assert r1.headers["x-ratelimit-remaining-tokens"] == "6000"
    r2, _ = stream(gw, k6, body)
    assert 5960 <= int(r2.headers["x-ratelimit-remaining-tokens"]) < 5990


@pytest.mark.parametrize("options,expected", [
    (b'{"include_usage":false}', b'{"include_usage":true}'),
    (b'{"x_other":1}', b'{"x_other":1,"include_usage":true}'),
    (b'null', b'{"include_usage":true}'),
])
def test_other_stream_options_kept(gw, key, upstream, options, expected):
    kid, k = key
    body = (b'{"model":"gpt-4o-mini","stream":true,"stream_options":' + options
            + b',"messages":[{"role":"user","content":"hi"}]}')
    r, got = stream(gw, k, body)
    assert upstream.last.body == body.replace(options, expected)
    assert got == without_usage_chunk(upstream.last.sent)


def test_client_that_asked_for_usage_gets_it_unchanged(gw, key, upstream):
    kid, k = key
    body = (b'{"model":"gpt-4o-mini","stream":true,'
            b'"stream_options": {"include_usage": true},'
            b'"messages":[{"role":"user","content":"hi"}]}')
    r, got = stream(gw, k, body)
    assert upstream.last.body == body
    assert got == upstream.last.sent
    assert b'"choices": []' in got and b'"total_tokens": 40' in got


def test_stream_usage_off(gw, key, upstream):
    kid, k = key
    body = json.dumps(chat_body(stream=True)).encode()
    r, got = stream(gw, k, body, path="/v1/off/chat/completions")
    assert upstream.last.body == body
    assert got == upstream.last.sent
    assert b'"usage"' not in got


def test_other_bodies_untouched(gw, key, upstream):
    kid, k = key
    for body in (json.dumps(chat_body()).encode(),
                 json.dumps({"model": "gpt-4o-mini", "input": "hi",
                             "stream": True}).encode()):
        path = ("/v1/chat/completions" if b"messages" in body
                else "/v1/responses")
        h = openai_headers(k)
        r = post(gw, path, data=body, headers=h)
        assert r.status_code == 200
        assert upstream.last.body == body
