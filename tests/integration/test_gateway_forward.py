# Licensed under the Apache License, Version 2.0.
"""Forwarded requests (SPEC 2, 4.1, 4.7, 5, 6): path mapping, credential
swap, headers passed through, bodies byte for byte, streaming, upstream
answers passed through unchanged, keep-alive pooling to the upstream."""

import hashlib
import json
import os
import time

import pytest
import requests

from harness import (ANTHROPIC_CREDENTIAL, ANTHROPIC_PATH, ANTHROPIC_VERSION,
                     FILE_CREDENTIAL, OPENAI_CREDENTIAL, OPENAI_PATH,
                     REQUEST_ID_RE, anthropic_headers, chat_body,
                     messages_body, openai_headers, post)

# Also against the SQL key stores (dbd-pgsql, dbd-sqlite3; event MPM).
pytestmark = pytest.mark.keystores()


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="forward")


def _no_client_key_upstream(rec, key):
    for name, value in rec.header_list:
        assert key not in value, "client key sent upstream in %s" % name


def _check_openai_upstream(rec, key, credential=OPENAI_CREDENTIAL,
                           prefix="/openai/v1"):
    assert rec.method == "POST"
    assert rec.path == prefix + "/chat/completions"
    assert rec.header_values("Authorization") == ["Bearer " + credential]
    assert rec.header_values("x-api-key") == []
    _no_client_key_upstream(rec, key)


def _check_anthropic_upstream(rec, key):
    assert rec.method == "POST"
    assert rec.path == "/anthropic/v1/messages"
    assert rec.header_values("x-api-key") == [ANTHROPIC_CREDENTIAL]
    assert rec.header_values("Authorization") == []
    assert rec.headers.get("anthropic-version") == ANTHROPIC_VERSION
    _no_client_key_upstream(rec, key)


def _check_ok_json(resp, obj_type):
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["Content-Type"].startswith("application/json")
    doc = resp.json()
    assert doc.get("object", doc.get("type")) == obj_type, doc
    rid = resp.headers.get("Request-Id")
    assert rid and REQUEST_ID_RE.match(rid)
    return doc


@pytest.mark.parametrize("how", ["bearer", "x-api-key", "both-same"])
def test_openai_path(gateway, upstream, key, how):
    kid, k = key
    h = {"Content-Type": "application/json", "X-Custom-Client": "kept"}
    if how in ("bearer", "both-same"):
        h["Authorization"] = "Bearer " + k
    if how in ("x-api-key", "both-same"):
        h["x-api-key"] = k
    body = json.dumps(chat_body("gpt-4o-mini", temperature=0.5)).encode()
    r = post(gateway, OPENAI_PATH + "?api-version=1&x=a%20b", data=body,
             headers=h)
    _check_ok_json(r, "chat.completion")
    assert len(upstream.requests) == 1
    rec = upstream.last
    _check_openai_upstream(rec, k)
    assert rec.query == "api-version=1&x=a%20b"
    assert rec.body == body
    assert rec.headers.get("X-Custom-Client") == "kept"
    assert rec.headers.get("Request-Id") == r.headers["Request-Id"]
    assert rec.headers.get("X-Request-Id") == r.headers["Request-Id"]


@pytest.mark.parametrize("how", ["x-api-key", "bearer", "both-same"])
def test_anthropic_path(gateway, upstream, key, how):
    kid, k = key
    h = {"Content-Type": "application/json",
         "anthropic-version": ANTHROPIC_VERSION,
         "anthropic-beta": "prompt-caching-2024-07-31",
         "X-Custom-Client": "kept"}
    if how in ("bearer", "both-same"):
        h["Authorization"] = "Bearer " + k
    if how in ("x-api-key", "both-same"):
        h["x-api-key"] = k
    body = json.dumps(messages_body("claude-3-5-haiku-latest")).encode()
    r = post(gateway, ANTHROPIC_PATH + "?beta=true", data=body, headers=h)
    _check_ok_json(r, "message")
    assert len(upstream.requests) == 1
    rec = upstream.last
    _check_anthropic_upstream(rec, k)
    assert rec.query == "beta=true"
    assert rec.body == body
    assert rec.headers.get("anthropic-beta") == "prompt-caching-2024-07-31"
    assert rec.headers.get("X-Custom-Client") == "kept"
    assert rec.headers.get("Request-Id") == r.headers["Request-Id"]
    assert rec.headers.get("X-Request-Id") == r.headers["Request-Id"]


def test_same_key_on_both_protocols(gateway, upstream, key):
    kid, k = key
    for _ in range(2):
        r = post(gateway, OPENAI_PATH, chat_body(), openai_headers(k))
        _check_ok_json(r, "chat.completion")
        r = post(gateway, ANTHROPIC_PATH, messages_body(),
                 anthropic_headers(k))
        _check_ok_json(r, "message")
    paths = [rq.path for rq in upstream.requests]
    assert paths == ["/openai/v1/chat/completions", "/anthropic/v1/messages"] * 2


def test_count_tokens_is_anthropic(gateway, upstream, key):
    kid, k = key
    r = post(gateway, "/v1/messages/count_tokens", messages_body(),
             anthropic_headers(k))
    assert r.status_code == 200, r.text
    assert r.json() == {"input_tokens": 12}
    assert upstream.last.path == "/anthropic/v1/messages/count_tokens"
    assert upstream.last.header_values("x-api-key") == [ANTHROPIC_CREDENTIAL]
    # and it is Anthropic for errors too: no anthropic-version -> 400
    r = post(gateway, "/v1/messages/count_tokens", messages_body(),
             anthropic_headers(k, version=None))
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert len(upstream.requests) == 1


def test_file_credential_upstream(gateway, upstream, key):
    """ClawdRouterUpstream ... file:PATH sends the file's content (no
    newline) as the credential."""
    kid, k = key
    r = post(gateway, OPENAI_PATH, chat_body("o1-mini"), openai_headers(k))
    _check_ok_json(r, "chat.completion")
    _check_openai_upstream(upstream.last, k, FILE_CREDENTIAL, "/filecred/v1")


def test_other_openai_endpoint_path_mapping(gateway, upstream, key):
    """Any path below the Location maps to the same path below the URL."""
    kid, k = key
    r = post(gateway, "/v1/embeddings?a=1",
             {"model": "gpt-embed-x", "input": "hi"}, openai_headers(k))
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/openai/v1/embeddings"
    assert upstream.last.query == "a=1"
    assert upstream.last.header_values("Authorization") == [
        "Bearer " + OPENAI_CREDENTIAL]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("status", [400, 401, 429, 500, 503, 529])
def test_upstream_errors_pass_through(gateway, upstream, key, protocol,
                                      status):
    """The upstream's own errors reach the client unchanged (SPEC 5), with
    the gateway's Request-Id."""
    kid, k = key
    if protocol == "openai":
        r = post(gateway, OPENAI_PATH, chat_body(),
                 openai_headers(k, **{"X-Mock-Status": str(status)}))
        assert r.json()["error"]["code"] == "mock_%d" % status, r.text
    else:
        r = post(gateway, ANTHROPIC_PATH, messages_body(),
                 anthropic_headers(k, **{"X-Mock-Status": str(status)}))
        assert r.json()["error"]["message"] == "mock error %d" % status, r.text
    assert r.status_code == status
    assert r.headers.get("X-Mock-Upstream") == "1"
    assert REQUEST_ID_RE.match(r.headers.get("Request-Id", ""))
    assert len(upstream.requests) == 1


def _big_body(model, size):
    head = b'{"model":"%s","messages":[{"role":"user","content":"' % model.encode()
    tail = b'"}]}'
    pad = (b"0123456789abcdef" * (size // 16 + 1))[:size - len(head) - len(tail)]
    return head + pad + tail


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_5mib_body_byte_for_byte(gateway, upstream, key, protocol):
    kid, k = key
    if protocol == "openai":
        body, path, h = _big_body("gpt-4o-mini", 5 * 1024 * 1024), OPENAI_PATH, openai_headers(k)
    else:
        body, path, h = _big_body("claude-3-5-haiku-latest", 5 * 1024 * 1024), ANTHROPIC_PATH, anthropic_headers(k)
    assert len(body) == 5 * 1024 * 1024
    r = post(gateway, path, data=body, headers=h, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert len(upstream.requests) == 1
    assert len(upstream.last.body) == len(body)
    assert upstream.last.sha256 == hashlib.sha256(body).hexdigest()


def _children_written(gateway):
    """Bytes the gateway's child processes have written so far (write(2)
    and its kin, to sockets and files alike: /proc/PID/io wchar)."""
    with open(gateway.pid_path) as f:
        parent = f.read().strip()
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[1] != parent:
                    continue
            with open("/proc/%s/io" % pid) as f:
                for line in f:
                    if line.startswith("wchar:"):
                        total += int(line.split()[1])
        except (OSError, IndexError):
            continue
    return total


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_body_sent_from_memory(gateway, upstream, key, protocol,
                                     framing):
    """The body the gateway holds goes to the upstream from memory, with
    its length: mod_proxy_http does not copy it into a temporary file
    first (which it does for a body replayed by an input filter unless
    the filter gives it the body's end at once), so the children write
    the body once (to the upstream), not twice."""
    kid, k = key
    if protocol == "openai":
        body, path, h = _big_body("gpt-4o-mini", 3 * 1024 * 1024), OPENAI_PATH, openai_headers(k)
    else:
        body, path, h = _big_body("claude-3-5-haiku-latest", 3 * 1024 * 1024), ANTHROPIC_PATH, anthropic_headers(k)
    before = _children_written(gateway)
    if framing == "chunked":
        data = (body[i:i + 65536] for i in range(0, len(body), 65536))
    else:
        data = body
    r = requests.post(gateway.url + path, data=data, headers=h, timeout=30)
    assert r.status_code == 200, r.text[:300]
    written = _children_written(gateway) - before
    assert len(upstream.requests) == 1
    rec = upstream.last
    assert rec.sha256 == hashlib.sha256(body).hexdigest()
    # sent with its length, whatever the client's framing
    assert rec.header_values("Content-Length") == [str(len(body))]
    assert rec.header_values("Transfer-Encoding") == []
    # once to the upstream (and a small response): a spooled body is
    # written twice (the file, then the upstream)
    assert len(body) <= written < 1.5 * len(body), written


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_chunked_body_byte_for_byte(gateway, upstream, key, protocol):
    kid, k = key
    if protocol == "openai":
        body, path, h = _big_body("gpt-4o-mini", 1234567), OPENAI_PATH, openai_headers(k)
    else:
        body, path, h = _big_body("claude-3-5-haiku-latest", 1234567), ANTHROPIC_PATH, anthropic_headers(k)

    def chunks():
        for i in range(0, len(body), 7919):
            yield body[i:i + 7919]

    r = requests.post(gateway.url + path, data=chunks(), headers=h, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert len(upstream.requests) == 1
    assert upstream.last.sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_streaming_is_not_buffered(gateway, upstream, key, protocol):
    """With a slow upstream (0.25 s between events), the first event
    reaches the client long before the upstream sends the last one."""
    kid, k = key
    if protocol == "openai":
        path, body, h = OPENAI_PATH, chat_body("gpt-4o-slow", stream=True), openai_headers(k)
    else:
        path, body, h = ANTHROPIC_PATH, messages_body("claude-slow", stream=True), anthropic_headers(k)
    r = requests.post(gateway.url + path, data=json.dumps(body), headers=h,
                      stream=True, timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    first_at = None
    data_lines = []
    for line in r.iter_lines(chunk_size=1):
        if line.startswith(b"data:"):
            if first_at is None:
                first_at = time.monotonic()
            data_lines.append(line)
    events = [e for e in upstream.events_sent if e[0] is upstream.last]
    assert len(events) >= 8
    last_sent = events[-1][2]
    assert first_at < last_sent - 1.0, (
        "first event at %.2f s, last sent at %.2f s: buffered?"
        % (first_at - events[0][2], last_sent - events[0][2]))
    if protocol == "openai":
        assert data_lines[-1] == b"data: [DONE]"
        text = "".join(json.loads(l[5:])["choices"][0]["delta"].get("content", "")
                       for l in data_lines[:-1])
    else:
        docs = [json.loads(l[5:]) for l in data_lines]
        assert docs[0]["type"] == "message_start"
        assert docs[-1]["type"] == "message_stop"
        text = "".join(d["delta"]["text"] for d in docs
                       if d["type"] == "content_block_delta")
    assert text == "Hello from the mock."


def test_upstream_keepalive_pooling(gateway, upstream, key):
    """50 sequential requests, each on a new client connection, use far
    fewer upstream connections: the gateway pools them."""
    kid, k = key
    for i in range(50):
        if i % 2:
            r = post(gateway, OPENAI_PATH, chat_body(),
                     dict(openai_headers(k), Connection="close"))
        else:
            r = post(gateway, ANTHROPIC_PATH, messages_body(),
                     dict(anthropic_headers(k), Connection="close"))
        assert r.status_code == 200
    assert len(upstream.requests) == 50
    assert upstream.connections <= 12, (
        "%d upstream connections for 50 requests" % upstream.connections)
