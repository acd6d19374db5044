# Licensed under the Apache License, Version 2.0.
"""Small HTTP helpers for talking to the gateway: request bodies, headers,
raw sockets, and assertions on the gateway's own JSON errors (SPEC 5)."""

import json
import re
import socket
import time

import requests

ANTHROPIC_VERSION = "2023-06-01"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# SPEC section 5: kind -> (status, openai type, openai code, anthropic type)
ERRORS = {
    "missing_key": (401, "invalid_request_error", "missing_api_key", "authentication_error"),
    "invalid_key": (401, "invalid_request_error", "invalid_api_key", "authentication_error"),
    "missing_version": (400, None, None, "invalid_request_error"),
    "invalid_body": (400, "invalid_request_error", "invalid_body", "invalid_request_error"),
    "too_large": (413, "invalid_request_error", "request_too_large", "request_too_large"),
    "model_not_permitted": (403, "permission_error", "model_not_permitted", "permission_error"),
    "model_not_found": (404, "invalid_request_error", "model_not_found", "not_found_error"),
    "rate_limited": (429, "requests", "rate_limit_exceeded", "rate_limit_error"),
    "tokens_limited": (429, "tokens", "rate_limit_exceeded", "rate_limit_error"),
    "quota_exceeded": (429, "insufficient_quota", "insufficient_quota", "rate_limit_error"),
    "upstream_unavailable": (502, "server_error", "upstream_unavailable", "api_error"),
    "upstream_timeout": (504, "server_error", "upstream_unavailable", "api_error"),
    "key_store_unavailable": (500, "server_error", "key_store_unavailable", "api_error"),
    "rate_store_unavailable": (503, "server_error", "rate_store_unavailable", "overloaded_error"),
    # the project's choices (docs): GET and other methods, non-JSON bodies
    "method_not_allowed": (405, "invalid_request_error", "method_not_allowed", "invalid_request_error"),
    "unsupported_media_type": (415, "invalid_request_error", "unsupported_media_type", "invalid_request_error"),
    # a request httpd's own parser refuses (bad or oversized header)
    "bad_request": (400, "invalid_request_error", "bad_request", "invalid_request_error"),
    # SPEC 10: a WebSocket upgrade, refused once so the client falls back
    "websocket": (400, "invalid_request_error", "websocket_not_supported", "invalid_request_error"),
}

# SPEC 10's retry advice: x-should-retry is "true" for these kinds only.
SHOULD_RETRY = {"rate_limited", "tokens_limited", "upstream_unavailable",
                "upstream_timeout", "rate_store_unavailable"}

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


def chat_body(model="gpt-4o-mini", stream=False, **extra):
    doc = {"model": model,
           "messages": [{"role": "user", "content": "Say hello"}]}
    if stream:
        doc["stream"] = True
    doc.update(extra)
    return doc


def messages_body(model="claude-3-5-haiku-latest", stream=False, **extra):
    doc = {"model": model, "max_tokens": 64,
           "messages": [{"role": "user", "content": "Say hello"}]}
    if stream:
        doc["stream"] = True
    doc.update(extra)
    return doc


def openai_headers(key=None, **extra):
    h = {"Content-Type": "application/json"}
    if key is not None:
        h["Authorization"] = "Bearer " + key
    h.update(extra)
    return h


def anthropic_headers(key=None, version=ANTHROPIC_VERSION, **extra):
    h = {"Content-Type": "application/json"}
    if key is not None:
        h["x-api-key"] = key
    if version is not None:
        h["anthropic-version"] = version
    h.update(extra)
    return h


def post(gw, path, body=None, headers=None, data=None, timeout=15, **kw):
    """POST json (a dict) or data (bytes/str/iterator) to the gateway."""
    if data is None and body is not None:
        data = json.dumps(body).encode()
    return requests.post(gw.url + path, data=data, headers=headers or {},
                         timeout=timeout, **kw)


def call(gw, protocol, key=None, model=None, stream=False, headers=None,
         timeout=15, **kw):
    """One well-formed request on a protocol ("openai" | "anthropic")."""
    if protocol == "openai":
        h = openai_headers(key)
        body = chat_body(model or "gpt-4o-mini", stream)
        path = OPENAI_PATH
    else:
        h = anthropic_headers(key)
        body = messages_body(model or "claude-3-5-haiku-latest", stream)
        path = ANTHROPIC_PATH
    h.update(headers or {})
    return post(gw, path, body, h, timeout=timeout, **kw)


def assert_error(resp, kind, protocol):
    """Assert resp is the gateway's own error of that kind (SPEC 5 and 6)
    in the protocol's format; returns the parsed body."""
    status, otype, ocode, atype = ERRORS[kind]
    assert resp.status_code == status, (
        "expected %d, got %d: %r" % (status, resp.status_code, resp.text[:500]))
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", ctype
    doc = resp.json()
    rid = resp.headers.get("Request-Id")
    assert rid and REQUEST_ID_RE.match(rid), "Request-Id header: %r" % rid
    assert resp.headers.get("x-request-id") == rid, (
        "x-request-id %r != Request-Id %r" % (resp.headers.get("x-request-id"), rid))
    if protocol == "openai":
        assert set(doc) == {"error"}, doc
        err = doc["error"]
        assert err.get("type") == otype, doc
        assert err.get("code") == ocode, doc
        assert "param" in err and err["param"] is None, doc
        assert isinstance(err.get("message"), str) and err["message"], doc
    else:
        assert doc.get("type") == "error", doc
        assert doc["error"].get("type") == atype, doc
        assert isinstance(doc["error"].get("message"), str) and doc["error"]["message"], doc
        assert doc.get("request_id") == rid, (doc, rid)
    want = "true" if kind in SHOULD_RETRY else "false"
    assert resp.headers.get("x-should-retry") == want, (
        kind, resp.headers.get("x-should-retry"))
    if status == 401:
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), \
            resp.headers.get("WWW-Authenticate")
    return doc


def raw_request(port, data, timeout=10.0, shutdown_write=False, read_all=True):
    """Send raw bytes, return everything received until close or timeout
    (b"" if the server closed without answering).  Returns (bytes, elapsed)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not read_all and _complete_response(out):
                break
    finally:
        s.close()
    return out, time.monotonic() - t0


def _complete_response(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if m:
        return len(body) >= int(m.group(1))
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        return body.endswith(b"0\r\n\r\n")
    return False


class RawResponse:
    """A parsed raw HTTP/1.1 response (first one in the bytes)."""

    def __init__(self, data):
        self.raw = data
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0] if lines else ""
        parts = self.status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            body = _dechunk(body)
        elif "content-length" in self.headers:
            body = body[:int(self.headers["content-length"])]
        self.body = body

    def json(self):
        return json.loads(self.body)


def _dechunk(b):
    out = b""
    while b:
        line, _, rest = b.partition(b"\r\n")
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


def http_request_bytes(method, path, headers, body=b"", port=None):
    """Build a raw HTTP/1.1 request (headers: list of (name, value) or a
    dict; Host and Connection: close are added if missing)."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        headers = [("Host", "127.0.0.1:%s" % (port or 80))] + headers
    if "connection" not in names:
        headers = headers + [("Connection", "close")]
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head = head.encode("latin-1")
    for k, v in headers:
        if isinstance(v, str):
            v = v.encode("latin-1")
        head += k.encode("latin-1") + b": " + v + b"\r\n"
    return head + b"\r\n" + (body or b"")
