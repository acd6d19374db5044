# Licensed under the Apache License, Version 2.0.
"""Token usage of forwarded responses (SPEC section 11): read from every
format, streamed and not, into CLAWDROUTER_INPUT/OUTPUT/TOTAL_TOKENS, with
the usage log format of conf/clawdrouter-usage.conf; a response without
usage is logged as such, never guessed; responses reach the client
unchanged."""

import json
import os
import re
import socket
import time

import pytest

from harness import (anthropic_headers, chat_body, messages_body,
                     openai_headers, post)
from harness.gateway import REPO

USAGE_CONF = os.path.join(REPO, "conf", "clawdrouter-usage.conf")
COLUMNS = ["time", "request_id", "key_id", "model", "upstream", "status",
           "input", "output", "total", "duration_ms"]


def usage_logformat():
    """The LogFormat line of the shipped usage log configuration."""
    with open(USAGE_CONF) as f:
        for line in f:
            if line.strip().startswith("LogFormat"):
                return line.strip()
    raise AssertionError("no LogFormat in " + USAGE_CONF)


@pytest.fixture(scope="module", params=["event", "prefork"])
def gw(request, make_module_gateway):
    g = make_module_gateway(
        mpm=request.param, log_level="info",
        extra_server_conf="\n".join([
            usage_logformat(),
            'CustomLog "%s/usage.log" clawdrouter_usage '
            'env=CLAWDROUTER_REQUEST_ID' % "logs"]))
    g.usage_log = os.path.join(g.root, "logs", "usage.log")
    return g


@pytest.fixture(scope="module")
def key(gw):
    return gw.create_key(name="usage")


def usage_row(gw, rid, timeout=5.0):
    """The usage log row of a request, as a dict of the documented
    columns."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(gw.usage_log) as f:
                for line in f:
                    cols = line.rstrip("\n").split("\t")
                    if len(cols) > 1 and cols[1] == rid:
                        assert len(cols) == len(COLUMNS), line
                        return dict(zip(COLUMNS, cols))
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("no usage row for %s" % rid)


def sse_bytes(resp):
    return b"".join(resp.iter_content(chunk_size=None))


CASES = [
    # name, path, body, protocol, headers, (input, output)
    ("chat", "/v1/chat/completions", chat_body("gpt-4o-mini"), "openai",
     {"X-Mock-Usage": "31,7"}, (31, 7)),
    ("chat-stream-with-usage", "/v1/chat/completions",
     chat_body("gpt-4o-mini", stream=True,
               stream_options={"include_usage": True}), "openai",
     {"X-Mock-Usage": "12,40"}, (12, 40)),
    ("responses", "/v1/responses",
     {"model": "gpt-4o-mini", "input": "Say hello"}, "openai",
     {"X-Mock-Usage": "21,13"}, (21, 13)),
    ("responses-stream", "/v1/responses",
     {"model": "gpt-4o-mini", "input": "Say hello", "stream": True},
     "openai", {"X-Mock-Usage": "22,14"}, (22, 14)),
    ("embeddings", "/v1/embeddings",
     {"model": "gpt-embedding-small", "input": "hi"}, "openai",
     {"X-Mock-Usage": "8,0"}, (8, 0)),
    ("messages", "/v1/messages", messages_body("claude-3-5-haiku-latest"),
     "anthropic", {"X-Mock-Usage": "9,5"}, (9, 5)),
    ("messages-cache", "/v1/messages", messages_body("claude-cache-haiku"),
     "anthropic", {"X-Mock-Usage": "9,6"}, (129, 6)),
    ("messages-stream", "/v1/messages",
     messages_body("claude-cache-haiku", stream=True), "anthropic",
     {"X-Mock-Usage": "4,27"}, (124, 27)),
]


@pytest.mark.parametrize("name,path,body,protocol,extra,expected", CASES,
                         ids=[c[0] for c in CASES])
def test_usage_log_fields(gw, key, upstream, name, path, body, protocol,
                          extra, expected):
    kid, k = key
    rid = "usage-%s-%s" % (gw.mpm, name)
    h = openai_headers(k) if protocol == "openai" else anthropic_headers(k)
    h.update(extra)
    h["Request-Id"] = rid
    r = post(gw, path, body, h, stream=True)
    got = sse_bytes(r)
    assert r.status_code == 200, got[:500]
    # The client gets what the upstream sent, byte for byte.
    assert got == upstream.last.sent
    row = usage_row(gw, rid)
    assert row["key_id"] == kid
    assert row["model"] == body["model"]
    assert row["status"] == "200"
    assert (int(row["input"]), int(row["output"])) == expected
    assert int(row["total"]) == sum(expected)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$", row["time"])
    assert row["duration_ms"].isdigit()


def test_usage_in_the_access_log_format(gw, key):
    """The variables are there for any LogFormat (%{...}e): the default
    harness format does not have them, the usage format does; a gateway
    refusal has none."""
    kid, k = key
    r = post(gw, "/v1/chat/completions", chat_body("llama-3"),
             dict(openai_headers(k), **{"Request-Id": "usage-refused-%s"
                                        % gw.mpm}))
    assert r.status_code == 404
    row = usage_row(gw, "usage-refused-%s" % gw.mpm)
    assert (row["input"], row["output"], row["total"]) == ("-", "-", "-")
    assert row["status"] == "404"


def _no_usage_lines(gw, offset):
    return [l for l in gw.error_log_text(offset).splitlines()
            if "CR0700" in l]


@pytest.mark.allow_log("AH01102", "AH01110", "AH00898")
def test_upstream_error_has_no_usage(gw, key):
    kid, k = key
    offset = gw.error_log_size()
    rid = "usage-upstream-500-%s" % gw.mpm
    r = post(gw, "/v1/chat/completions", chat_body("gpt-4o-mini"),
             dict(openai_headers(k), **{"Request-Id": rid,
                                        "X-Mock-Status": "500"}))
    assert r.status_code == 500
    row = usage_row(gw, rid)
    assert (row["input"], row["output"], row["total"]) == ("-", "-", "-")
    lines = _no_usage_lines(gw, offset)
    assert any("status 500" in l and "[clawdrouter:info]" in l
               for l in lines), lines


def test_stream_without_usage_counts_nothing(gw, upstream, make_gateway):
    """An upstream that reports no usage: nothing is guessed.  (With
    ClawdRouterStreamUsage On, the default, the gateway would ask for it:
    this gateway has it Off, so the upstream reports none.)"""
    gw = make_gateway(
        mpm=gw.mpm, log_level="info", name="usage-off",
        extra_server_conf="\n".join([
            usage_logformat(),
            'CustomLog "%s/usage.log" clawdrouter_usage '
            'env=CLAWDROUTER_REQUEST_ID' % "logs",
            "ClawdRouterStreamUsage Off"]))
    gw.usage_log = os.path.join(gw.root, "logs", "usage.log")
    kid, k = gw.create_key(name="usage-off")
    offset = gw.error_log_size()
    rid = "usage-none-%s" % gw.mpm
    r = post(gw, "/v1/chat/completions",
             chat_body("gpt-4o-mini", stream=True,
                       stream_options={"include_usage": False}),
             dict(openai_headers(k), **{"Request-Id": rid}), stream=True)
    got = sse_bytes(r)
    assert r.status_code == 200
    assert got == upstream.last.sent
    row = usage_row(gw, rid)
    assert (row["input"], row["output"], row["total"]) == ("-", "-", "-")
    assert any("reported none" in l for l in _no_usage_lines(gw, offset))


@pytest.mark.allow_log("AH01102", "AH01110", "AH00898", "AH02447",
                       "AH01435", "AH10157")
def test_client_gone_mid_stream(gw, key, upstream):
    """A client that closes the connection before the usage arrives: the
    request is logged without usage, and why."""
    kid, k = key
    offset = gw.error_log_size()
    rid = "usage-gone-%s" % gw.mpm
    body = json.dumps(chat_body("gpt-4o-slow", stream=True,
                                stream_options={"include_usage": True}))
    req = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"
           "Request-Id: %s\r\nX-Mock-Event-Delay: 0.3\r\n"
           "Content-Length: %d\r\n\r\n%s" % (k, rid, len(body), body))
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(req.encode())
    first = s.recv(4096)
    assert b" 200 " in first.split(b"\r\n", 1)[0]
    s.close()
    row = usage_row(gw, rid, timeout=15)
    assert (row["input"], row["output"], row["total"]) == ("-", "-", "-")
    assert any("client went away" in l
               for l in _no_usage_lines(gw, offset)), \
        _no_usage_lines(gw, offset)


def test_encoded_response_is_not_read(gw, key, upstream):
    """A response the upstream compressed (the gateway asks for none, but
    an upstream may still send it): passed on byte for byte with its
    Content-Encoding, its usage not guessed, and the reason logged."""
    import gzip
    kid, k = key
    doc = {"id": "chatcmpl-gz", "object": "chat.completion",
           "model": "gpt-4o-mini", "choices": [],
           "usage": {"prompt_tokens": 3, "completion_tokens": 4,
                     "total_tokens": 7}}
    payload = gzip.compress(json.dumps(doc).encode())
    upstream.set_behaviour(handler=lambda rec: (
        200, [("Content-Type", "application/json"),
              ("Content-Encoding", "gzip"),
              ("Request-Id", "upstream-own-id")], payload))
    try:
        offset = gw.error_log_size()
        rid = "usage-gzip-%s" % gw.mpm
        r = post(gw, "/v1/chat/completions", chat_body("gpt-4o-mini"),
                 dict(openai_headers(k), **{"Request-Id": rid,
                                            "Accept-Encoding": "gzip"}),
                 stream=True)
        raw = r.raw.read(decode_content=False)
        assert r.status_code == 200
        assert r.headers.get("Content-Encoding") == "gzip"
        assert raw == payload
        # The gateway's Request-Id, not the upstream's.
        assert r.headers.get("Request-Id") == rid
        row = usage_row(gw, rid)
        assert (row["input"], row["output"], row["total"]) == ("-", "-", "-")
        lines = _no_usage_lines(gw, offset)
        assert any("the response is encoded (gzip)" in l for l in lines), \
            lines
    finally:
        upstream.clear()
