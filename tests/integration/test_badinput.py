# Licensed under the Apache License, Version 2.0.
"""Hostile and malformed requests: each is answered with the right 4xx JSON
error, nothing reaches the upstream, and httpd keeps serving."""

import json
import secrets
import socket
import string
import time

import pytest

from harness import (ANTHROPIC_PATH, ANTHROPIC_VERSION, OPENAI_PATH,
                     Gateway, RawResponse, assert_error, call, chat_body,
                     http_request_bytes, messages_body, raw_request, registry)

PROTOCOLS = ["openai", "anthropic"]
# httpd's Timeout for this module's gateways: how long a stalled client may
# hold a connection.  Small, so the truncated-body tests stay short.
STALL_TIMEOUT = 3


@pytest.fixture(scope="module")
def gateway(request, upstream):
    """The default gateway, with a short Timeout."""
    gw = Gateway(mpm=request.param, upstream=upstream, name="badinput",
                 extra_server_conf="Timeout %d" % STALL_TIMEOUT)
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="badinput")


@pytest.fixture(autouse=True)
def still_serving(request):
    """After every test here: the gateway still answers a good request."""
    yield
    if "gateway" in request.fixturenames and "key" in request.fixturenames:
        gw = request.getfixturevalue("gateway")
        kid, k = request.getfixturevalue("key")
        for p in PROTOCOLS:
            r = call(gw, p, k, timeout=10)
            assert r.status_code == 200, "gateway no longer serving: %r" % r.text


def path_of(protocol):
    return OPENAI_PATH if protocol == "openai" else ANTHROPIC_PATH


def base_headers(protocol):
    h = [("Content-Type", "application/json")]
    if protocol == "anthropic":
        h.append(("anthropic-version", ANTHROPIC_VERSION))
    return h


def body_of(protocol, model=None):
    if protocol == "openai":
        return json.dumps(chat_body(model or "gpt-4o-mini")).encode()
    return json.dumps(messages_body(model or "claude-3-5-haiku-latest")).encode()


def send_raw(gw, protocol, headers, body=None, method="POST", path=None,
             timeout=10):
    """A raw request (for what requests cannot express); RawResponse."""
    if body is None:
        body = body_of(protocol) if method == "POST" else b""
    h = list(headers)
    if body or method == "POST":
        h.append(("Content-Length", str(len(body))))
    data, _ = raw_request(gw.port, http_request_bytes(
        method, path or path_of(protocol), h, body, gw.port), timeout=timeout)
    return RawResponse(data)


class RawAsRequests:
    """Adapter so assert_error() can check a RawResponse."""

    def __init__(self, raw):
        self.status_code = raw.status
        self.headers = _CI(raw.headers)
        self.text = raw.body.decode("utf-8", "replace")
        self._raw = raw

    def json(self):
        return self._raw.json()


class _CI(dict):
    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())


def check(raw, kind, protocol):
    return assert_error(RawAsRequests(raw), kind, protocol)


# ---- credentials ----------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("auth", [
    [],                                         # no header at all
    [("x-api-key", "")],                        # empty key
    [("Authorization", "Bearer")],              # Bearer with nothing after it
    [("Authorization", "Bearer ")],
    [("Authorization", "Bearer   "), ("x-api-key", "")],
], ids=["none", "empty-x-api-key", "bearer-alone", "bearer-space",
        "both-empty"])
def test_missing_credential(gateway, upstream, key, protocol, auth):
    r = send_raw(gateway, protocol, base_headers(protocol) + auth)
    check(r, "missing_key", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_empty_authorization_header(gateway, upstream, key, protocol):
    """An empty Authorization value counts as no key: 401 missing_api_key,
    in the protocol's format."""
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [("Authorization", "")])
    check(r, "missing_key", protocol)
    assert upstream.requests == []


def _malformed_keys():
    good_shape = "sk-" + "A" * 48
    return {
        "space-inside": "sk-abc def" + "a" * 40,
        "trailing-junk": good_shape + " extra",
        "tab-inside": "sk-abc\tdef" + "a" * 40,
        "not-sk": "pk-" + "a" * 48,
        "too-short": "sk-abc",
        "non-base62": "sk-" + "a" * 40 + "!$%&",
        "utf8": "sk-" + "ä" * 40,
        "7kb": "sk-" + "a" * 7000,
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", sorted(_malformed_keys()))
@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
def test_malformed_key(gateway, upstream, key, protocol, name, header):
    bad = _malformed_keys()[name]
    value = ("Bearer " + bad) if header == "Authorization" else bad
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [(header, value.encode("utf-8"))])
    check(r, "invalid_key", protocol)
    assert bad.encode() not in r.raw
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("ctl", ["\x01", "\x7f", "\x1b"])
def test_key_with_control_character(gateway, upstream, key, protocol, ctl):
    """A control character in the key: 401 from the gateway, or 400 from
    httpd's own header parser (HttpProtocolOptions Strict), which the
    gateway still answers in the protocol's JSON - never forwarded."""
    bad = "sk-" + "a" * 20 + ctl + "a" * 27
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [("Authorization", "Bearer " + bad)])
    if r.status == 400:
        check(r, "bad_request", protocol)   # refused by httpd's parser
    else:
        check(r, "invalid_key", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
def test_10kb_key(gateway, upstream, key, protocol, header):
    """10 KB of key: over httpd's LimitRequestFieldSize (8190), so httpd
    itself refuses it (400) before the gateway's hooks run; the answer is
    still the protocol's JSON, and nothing is forwarded."""
    bad = "sk-" + "b" * 10240
    value = ("Bearer " + bad) if header == "Authorization" else bad
    r = send_raw(gateway, protocol, base_headers(protocol) + [(header, value)])
    check(r, "bad_request", protocol)
    assert bad.encode() not in r.raw
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_headers_disagree(gateway, upstream, key, protocol):
    kid, k = key
    other = "sk-" + "".join(secrets.choice(string.ascii_letters)
                            for _ in range(48))
    registry.add_key(other)
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [("Authorization", "Bearer " + k), ("x-api-key", other)])
    check(r, "invalid_key", protocol)
    # with an empty x-api-key the Bearer key alone counts
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [("Authorization", "Bearer " + k), ("x-api-key", "")])
    assert r.status == 200
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("scheme", ["Basic dXNlcjpwYXNz", "Token abc",
                                    "Digest username=\"x\"", "sk-justthekey"])
def test_non_bearer_authorization(gateway, upstream, key, protocol, scheme):
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [("Authorization", scheme)])
    check(r, "invalid_key", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bearer_scheme_case_insensitive(gateway, upstream, key, protocol):
    kid, k = key
    r = send_raw(gateway, protocol, base_headers(protocol) +
                 [("Authorization", "bearer " + k)])
    assert r.status == 200
    assert len(upstream.requests) == 1


# ---- bodies ---------------------------------------------------------------

def _deep(n):
    return b'{"model":"gpt-4o-mini","x":' + b"[" * n + b"]" * n + b"}"


BAD_BODIES = {
    "invalid-json": b'{"model": "gpt-4o-mini",',
    "trailing-garbage": b'{"model":"gpt-4o-mini"} {"x":1}',
    "array": b'[{"model":"gpt-4o-mini"}]',
    "string": b'"gpt-4o-mini"',
    "number": b"42",
    "null": b"null",
    "empty": b"",
    "whitespace": b"   \r\n ",
    "model-number": b'{"model":4}',
    "model-null": b'{"model":null}',
    "model-object": b'{"model":{"name":"gpt-4o-mini"}}',
    "model-missing": b'{"messages":[]}',
    "model-empty": b'{"model":""}',
    "duplicate-model": b'{"model":"gpt-4o-mini","model":"gpt-4o"}',
    "duplicate-model-same": b'{"model":"gpt-4o-mini","model":"gpt-4o-mini"}',
    "deep-10000": _deep(10000),
    "invalid-utf8": b'{"model":"gpt-4o-mini","x":"\xff\xfe"}',
    "nul-in-model": b'{"model":"gpt-4o-mini\\u0000x"}',
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_body(gateway, upstream, key, protocol, name):
    kid, k = key
    body = BAD_BODIES[name]
    if protocol == "anthropic":
        body = body.replace(b"gpt-4o-mini", b"claude-3-5-haiku-latest")
    auth = [("Authorization", "Bearer " + k)]
    r = send_raw(gateway, protocol, base_headers(protocol) + auth, body)
    check(r, "invalid_body", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("how", ["close", "wait"])
def test_truncated_body(gateway, upstream, key, protocol, how):
    """Content-Length larger than what is sent: the gateway answers 400 or
    closes, never forwards, and gives up within a bounded time."""
    kid, k = key
    body = body_of(protocol)
    h = base_headers(protocol) + [("Authorization", "Bearer " + k),
                                  ("Content-Length", str(len(body) + 1000))]
    req = http_request_bytes("POST", path_of(protocol), h, body, gateway.port)
    data, elapsed = raw_request(gateway.port, req,
                                timeout=STALL_TIMEOUT + 10,
                                shutdown_write=(how == "close"))
    assert elapsed < STALL_TIMEOUT + 5, "held the connection %.1f s" % elapsed
    if data:
        r = RawResponse(data)
        assert r.status in (400, 408), data[:300]
        if r.status == 400:
            check(r, "invalid_body", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_chunked_encoding(gateway, upstream, key, protocol):
    kid, k = key
    h = base_headers(protocol) + [("Authorization", "Bearer " + k),
                                  ("Transfer-Encoding", "chunked")]
    req = http_request_bytes("POST", path_of(protocol), h,
                             b"zz\r\n{}\r\n0\r\n\r\n", gateway.port)
    data, elapsed = raw_request(gateway.port, req, timeout=STALL_TIMEOUT + 10)
    assert elapsed < STALL_TIMEOUT + 5
    if data:
        assert RawResponse(data).status == 400, data[:300]
    assert upstream.requests == []


# ---- methods and content types -------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_405(gateway, upstream, key, protocol, method):
    kid, k = key
    auth = [("Authorization", "Bearer " + k)]
    body = body_of(protocol) if method in ("PUT", "PATCH") else b""
    r = send_raw(gateway, protocol, base_headers(protocol) + auth, body,
                 method=method)
    check(r, "method_not_allowed", protocol)
    assert "POST" in r.headers.get("allow", "")
    assert upstream.requests == []


def test_get_models_answered_not_forwarded(gateway, upstream, key):
    """GET /models is the gateway's own answer (test_models.py); only
    the upstreams' own /models lists are fetched, nothing is forwarded."""
    kid, k = key
    r = send_raw(gateway, "openai", [("Authorization", "Bearer " + k)],
                 method="GET", path="/v1/models")
    assert r.status == 200, r.raw[:300]
    assert r.json()["object"] == "list"
    assert all(rec.method == "GET" and rec.path.endswith("/models")
               for rec in upstream.requests), upstream.requests


def test_get_without_key_is_401(gateway, upstream, key):
    r = send_raw(gateway, "openai", [], method="GET", path="/v1/models")
    check(r, "missing_key", "openai")
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("ctype", ["text/plain",
                                   "multipart/mixed; boundary=xyz",
                                   "application/x-www-form-urlencoded",
                                   "application/xml"])
def test_non_json_content_type_415(gateway, upstream, key, protocol, ctype):
    kid, k = key
    h = [(n, v) for n, v in base_headers(protocol) if n != "Content-Type"]
    h += [("Content-Type", ctype), ("Authorization", "Bearer " + k)]
    r = send_raw(gateway, protocol, h)
    check(r, "unsupported_media_type", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("ctype", [None, "application/json; charset=utf-8",
                                   "Application/JSON"])
def test_json_content_types_accepted(gateway, upstream, key, protocol, ctype):
    """JSON, with parameters or in another case, or no Content-Type at all
    (SPEC 4.3), is inspected and forwarded."""
    kid, k = key
    h = [(n, v) for n, v in base_headers(protocol) if n != "Content-Type"]
    if ctype:
        h.append(("Content-Type", ctype))
    h.append(("Authorization", "Bearer " + k))
    r = send_raw(gateway, protocol, h)
    assert r.status == 200, r.raw[:300]
    assert len(upstream.requests) == 1
    assert upstream.last.body == body_of(protocol)


def test_many_bad_requests_on_one_connection(gateway, upstream, key):
    """Refusals on a kept-alive connection do not confuse the next request
    on it (the refused body is consumed or the connection closed)."""
    kid, k = key
    s = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    try:
        f = s.makefile("rb")
        statuses = []
        for body, auth in ((b'{"model":1}', k), (body_of("openai"), None),
                           (b"[1,2,3]", k), (body_of("openai"), k)):
            h = [("Host", "x"), ("Content-Type", "application/json"),
                 ("Content-Length", str(len(body)))]
            if auth:
                h.append(("Authorization", "Bearer " + auth))
            s.sendall(http_request_bytes("POST", OPENAI_PATH, h + [("Connection", "keep-alive")], body))
            status_line = f.readline()
            if not status_line:
                break   # the gateway chose to close: acceptable
            statuses.append(int(status_line.split()[1]))
            length = 0
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
        assert statuses[:3] == [400, 401, 400][:len(statuses)]
    finally:
        s.close()
    assert all(r.body == body_of("openai") for r in upstream.requests)
