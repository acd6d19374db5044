# Licensed under the Apache License, Version 2.0.
"""Self-test of the harness: the mock upstream and the httpd control work
(through a plain ProxyPass, without mod_clawdrouter), so a gateway test
failure points at the module, not at the harness."""

import hashlib
import time

import pytest
import requests

from harness import chat_body, bad_lines, line_level


@pytest.fixture(scope="module")
def plain_proxy(make_module_gateway):
    return make_module_gateway(module=False, mpm="event", log_level="info",
                               name="plainproxy")


def test_mock_records_and_answers(plain_proxy, upstream):
    r = requests.post(plain_proxy.url + "/v1/chat/completions?x=1",
                      json=chat_body(), headers={"X-Client": "a"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["object"] == "chat.completion"
    rec = upstream.last
    assert rec.path == "/openai/v1/chat/completions" and rec.query == "x=1"
    assert rec.headers["x-client"] == "a"


def test_mock_chunked_body_and_pooling(plain_proxy, upstream):
    body = b'{"model":"gpt-x","pad":"' + b"z" * 300000 + b'"}'
    chunks = (body[i:i + 10000] for i in range(0, len(body), 10000))
    r = requests.post(plain_proxy.url + "/v1/other", data=chunks,
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200
    assert upstream.last.sha256 == hashlib.sha256(body).hexdigest()
    assert upstream.last.chunked
    upstream.close_connections()
    time.sleep(0.2)
    upstream.clear()
    with requests.Session() as s:
        for _ in range(10):
            assert s.post(plain_proxy.url + "/v1/chat/completions",
                          json=chat_body(), timeout=10).status_code == 200
    assert len(upstream.requests) == 10
    assert 1 <= upstream.connections < 10


def test_mock_streams_with_delay(plain_proxy, upstream):
    t0 = time.monotonic()
    r = requests.post(plain_proxy.url + "/v1/chat/completions",
                      json=chat_body("gpt-slow", stream=True), stream=True,
                      timeout=10)
    first = None
    lines = []
    for line in r.iter_lines():
        if line and first is None:
            first = time.monotonic()
        if line:
            lines.append(line)
    assert lines[-1] == b"data: [DONE]"
    assert first - t0 < upstream.events_sent[-1][2] - t0 - 1.0


def test_mock_steering(plain_proxy, upstream):
    r = requests.post(plain_proxy.url + "/v1/chat/completions",
                      json=chat_body(), headers={"X-Mock-Status": "429"},
                      timeout=10)
    assert r.status_code == 429 and r.json()["error"]["code"] == "mock_429"


def test_log_level_parsing():
    text = ("[Thu Nov 27 17:42:00.1 2025] [proxy:error] [pid 1] AH1: x\n"
            "[Thu Nov 27 17:42:00.1 2025] [core:trace8] [pid 1] an [error] y\n"
            "[Thu Nov 27 17:42:00.1 2025] [warn] [pid 1] CR0101: z\n")
    assert line_level(text.splitlines()[1]) == "trace8"
    assert len(bad_lines(text)) == 2
    assert len(bad_lines(text, ["CR0101"])) == 1
