# Licensed under the Apache License, Version 2.0.
"""SPEC 10, the rest of the API that clients call: retry advice on the
gateway's own errors, WebSocket upgrades refused once, count_tokens
checked like /messages but never counted against rpm."""

import pytest

from harness import (anthropic_headers, assert_error, call, openai_headers,
                     post)

PROTOCOLS = ["openai", "anthropic"]
COUNT_PATH = "/v1/messages/count_tokens"


def count_body(model="claude-3-5-haiku-latest"):
    return {"model": model,
            "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="api")


# ---- x-should-retry ----------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_key_says_do_not_retry(gateway, upstream, key, protocol):
    r = call(gateway, protocol, "sk-" + "x" * 48)
    assert_error(r, "invalid_key", protocol)
    assert r.headers["x-should-retry"] == "false"
    r = call(gateway, protocol, None)
    assert_error(r, "missing_key", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rate_limit_says_retry(gateway, upstream, protocol):
    _, key = gateway.create_key(rpm=1)
    assert call(gateway, protocol, key).status_code == 200
    r = call(gateway, protocol, key)
    assert_error(r, "rate_limited", protocol)
    assert r.headers["x-should-retry"] == "true"
    assert len(upstream.requests) == 1


# ---- WebSocket -----------------------------------------------------------

WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket",
              "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_websocket_refused_once(gateway, upstream, protocol):
    import requests
    _, key = gateway.create_key()
    if protocol == "openai":
        h, path = openai_headers(key), "/v1/responses"
    else:
        h, path = anthropic_headers(key), "/v1/messages"
    h.update(WS_HEADERS)
    r = requests.get(gateway.url + path, headers=h, timeout=10)
    assert_error(r, "websocket", protocol)
    assert r.headers["x-should-retry"] == "false"
    assert upstream.requests == []


# ---- count_tokens ----------------------------------------------------------

def test_count_tokens_not_counted_against_rpm(gateway, upstream):
    _, key = gateway.create_key(rpm=2)
    for _ in range(6):
        r = post(gateway, COUNT_PATH, count_body(), anthropic_headers(key))
        assert r.status_code == 200, r.text
        assert r.json() == {"input_tokens": 12}
    assert len(upstream.requests) == 6
    assert all(q.path.endswith("/messages/count_tokens")
               for q in upstream.requests)
    # the key's two requests per minute are all still there
    assert call(gateway, "anthropic", key).status_code == 200
    assert call(gateway, "anthropic", key).status_code == 200
    assert_error(call(gateway, "anthropic", key), "rate_limited", "anthropic")


def test_count_tokens_checked_like_messages(gateway, upstream):
    _, key = gateway.create_key(models="claude-3-5-haiku-*")
    r = post(gateway, COUNT_PATH, count_body(), anthropic_headers(None))
    assert_error(r, "missing_key", "anthropic")
    r = post(gateway, COUNT_PATH, count_body("claude-opus-4"),
             anthropic_headers(key))
    assert_error(r, "model_not_permitted", "anthropic")
    _, all_models = gateway.create_key()
    r = post(gateway, COUNT_PATH, count_body("llama-3"),
             anthropic_headers(all_models))
    assert_error(r, "model_not_found", "anthropic")
    r = post(gateway, COUNT_PATH, count_body(),
             anthropic_headers(key, version=None))
    assert_error(r, "missing_version", "anthropic")
    assert upstream.requests == []
