# Licensed under the Apache License, Version 2.0.
"""The request body's headers and reads as the gateway takes them
(mod_clawdrouter_body.c): Content-Type and Content-Length found in one
pass over the request's headers, in any case; the usual application/json
compared a word at a time, exactly as the general parser would judge it;
a declared length over the limit refused before any body byte is read,
whatever its spelling; and a body kept as it was read (its first read
without a copy, later ones copied) reaching the upstream byte for
byte however it arrives."""

import json
import socket
import time

import pytest

from harness import (OPENAI_PATH, RawResponse, chat_body, http_request_bytes,
                     raw_request)

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def gw(make_module_gateway):
    return make_module_gateway(name="bodyheaders", max_body=LIMIT)


@pytest.fixture(scope="module")
def key(gw):
    return gw.create_key(name="bodyheaders")[1]


def _send(gw, key, body, ctype="application/json", clen=None,
          ctype_name="Content-Type", clen_name="Content-Length"):
    headers = [("Authorization", "Bearer %s" % key)]
    if ctype is not None:
        headers.append((ctype_name, ctype))
    headers.append((clen_name, str(len(body)) if clen is None else clen))
    data = http_request_bytes("POST", OPENAI_PATH, headers, body,
                              port=gw.port)
    out, _ = raw_request(gw.port, data, timeout=15)
    return RawResponse(out)


def _body(**extra):
    return json.dumps(chat_body(content="hello " * 40, **extra)).encode()


@pytest.mark.parametrize("ctype_name,clen_name", [
    ("CONTENT-TYPE", "CONTENT-LENGTH"),
    ("content-type", "content-length"),
    ("Content-type", "Content-length"),
    ("cOnTeNt-TyPe", "cOnTeNt-LeNgTh"),
])
def test_header_names_in_any_case(gw, key, upstream, ctype_name, clen_name):
    body = _body()
    r = _send(gw, key, body, ctype_name=ctype_name, clen_name=clen_name)
    assert r.status == 200, r.raw[:300]
    assert upstream.last.body == body


@pytest.mark.parametrize("ctype,status", [
    ("application/json", 200),
    ("APPLICATION/JSON", 200),
    ("applicatioN/jsoN", 200),
    ("Application/Json; charset=utf-8", 200),
    ("application/vnd.api+json", 200),
    ("application-json", 415),        # 16 bytes: '/' is compared exactly
    ("application.json", 415),
    ("application/jsom", 415),
    ("@pplication/json", 415),
    ("application/jsonx", 415),
    ("text/plain", 415),
])
def test_content_type(gw, key, upstream, ctype, status):
    body = _body()
    r = _send(gw, key, body, ctype=ctype)
    assert r.status == status, r.raw[:300]
    if status == 200:
        assert upstream.last.body == body
    else:
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert upstream.requests == []


def test_no_content_type_is_json(gw, key, upstream):
    body = _body()
    r = _send(gw, key, body, ctype=None)
    assert r.status == 200, r.raw[:300]
    assert upstream.last.body == body


@pytest.mark.parametrize("clen_name", ["Content-Length", "content-LENGTH"])
@pytest.mark.parametrize("declared", [LIMIT + 1, 10 ** 17, 10 ** 18 - 1])
def test_declared_length_over_limit_refused_unread(gw, key, upstream,
                                                    clen_name, declared):
    """Refused (413) on the header alone: no body byte is sent, and the
    answer comes at once."""
    headers = [("Authorization", "Bearer %s" % key),
               ("Content-Type", "application/json"),
               (clen_name, str(declared))]
    data = http_request_bytes("POST", OPENAI_PATH, headers, b"",
                              port=gw.port)
    out, elapsed = raw_request(gw.port, data, timeout=10, read_all=False)
    r = RawResponse(out)
    assert r.status == 413, r.raw[:300]
    assert elapsed < 5
    assert upstream.requests == []


@pytest.mark.parametrize("zeros", [3, 30])
def test_declared_length_with_leading_zeros(gw, key, upstream, zeros):
    """Leading zeros (a short and a 30-digit spelling) are the same
    length."""
    body = _body()
    r = _send(gw, key, body, clen="0" * zeros + str(len(body)))
    assert r.status == 200, r.raw[:300]
    assert upstream.last.body == body


@pytest.mark.parametrize("cuts", [
    [1],                    # the body after the headers, in its own read
    [5, 50, 500],           # a first small read, then copied reads
    [3000, 6000, 9000],     # reads that fill several blocks
])
def test_body_in_separate_reads(gw, key, upstream, cuts):
    body = _body(extra="z" * 12000)
    head = http_request_bytes("POST", OPENAI_PATH, [
        ("Authorization", "Bearer %s" % key),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body)))], b"", port=gw.port)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=15)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head)
        last = 0
        for c in cuts + [len(body)]:
            time.sleep(0.1)
            s.sendall(body[last:c])
            last = c
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    r = RawResponse(out)
    assert r.status == 200, r.raw[:300]
    assert upstream.last.body == body
