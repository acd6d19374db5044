# Licensed under the Apache License, Version 2.0.
"""Findings 3-7 of the adversarial review (issue 9, docs/HARDENING.md):
the console and DNS rebinding, a bad Transfer-Encoding, percent-encoded
gateway paths with the key in the logs, an unauthenticated large body, and
the console's language cookie.  Each under event and prefork."""

import errno
import json
import re
import socket
import time

import pytest

from harness.gateway import MODULES_DIR
from test_console_http import store_writable_by_httpd
from harness import (OPENAI_PATH, RawResponse, chat_body,
                     http_request_bytes, raw_request)

CONSOLE_NAME = "console.example"
CONSOLE_WILD = "*.console.test"
TOKEN_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="module", params=["event", "prefork"])
def gw(request, make_module_gateway):
    """A gateway whose one virtual host has a name, a wildcard alias and a
    console guarded only by Require ip (the setup of finding 3)."""
    g = make_module_gateway(mpm=request.param, name="review", start=False)
    g.after_location_conf = "\n".join([
        "LoadModule authz_host_module %s/mod_authz_host.so" % MODULES_DIR,
        "<VirtualHost 127.0.0.1:%d>" % g.port,
        "    ServerName %s" % CONSOLE_NAME,
        "    ServerAlias %s" % CONSOLE_WILD,
        "    <Location /console>",
        "        SetHandler clawdrouter-console",
        "        Require ip 127.0.0.1",
        "    </Location>",
        "</VirtualHost>",
    ])
    g.write_config()
    g.start()
    g.create_key(name="seed")
    store_writable_by_httpd(g)
    return g


def raw(gw, data, **kw):
    out, _ = raw_request(gw.port, data, **kw)
    return RawResponse(out)


def console_get(gw, host, path="/console", headers=()):
    return raw(gw, http_request_bytes("GET", path, [("Host", host)]
                                      + list(headers), port=gw.port))


def key_ids(gw):
    p = gw.keys("list", "--json", check=True)
    return sorted(k["id"] for k in json.loads(p.stdout))


# ---- 3. console and DNS rebinding ---------------------------------------

@pytest.mark.parametrize("host", [CONSOLE_NAME, "keys.console.test",
                                  "127.0.0.1", "CONSOLE.example"])
def test_console_own_names_served(gw, host):
    """ServerName, a ServerAlias wildcard and the listening address (with
    or without the port) are the console's; the page and token come."""
    for h in (host, "%s:%d" % (host, gw.port)):
        r = console_get(gw, h)
        assert r.status == 200, r.raw[:300]
        assert TOKEN_RE.search(r.body.decode())


@pytest.mark.allow_log("CR0320")
def test_console_rebinding_get_refused(gw):
    """A page of attacker.example resolving to the gateway: Host and
    Origin agree, but the Host is not a name of this server."""
    evil = "attacker.example:%d" % gw.port
    r = console_get(gw, evil, headers=[("Origin", "http://" + evil),
                                       ("Sec-Fetch-Site", "same-origin")])
    assert r.status == 421, r.raw[:300]
    text = r.body.decode()
    assert "not one of them" in text
    assert not TOKEN_RE.search(text)
    assert "csrf" not in text
    assert "CR0320" in gw.error_log_text()
    r = console_get(gw, evil, path="/console?asset=app.js")
    assert r.status == 421


@pytest.mark.allow_log("CR0320")
def test_console_rebinding_post_refused(gw):
    """Even with a valid token (read by the attacker some other way), a
    create post under the attacker's name creates no key."""
    good = console_get(gw, "127.0.0.1:%d" % gw.port)
    token = TOKEN_RE.search(good.body.decode()).group(1)
    before = key_ids(gw)
    evil = "attacker.example:%d" % gw.port
    form = ("action=create&name=rebound&models=*&rpm=&expires=&csrf=%s"
            % token).encode()
    r = raw(gw, http_request_bytes("POST", "/console", [
        ("Host", evil), ("Origin", "http://" + evil),
        ("Sec-Fetch-Site", "same-origin"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(len(form)))], form, port=gw.port))
    assert r.status == 421, r.raw[:300]
    assert not re.search(rb"sk-[A-Za-z0-9]{40,}", r.raw)
    assert key_ids(gw) == before
    # The same post under the server's own name works (the control).
    r = raw(gw, http_request_bytes("POST", "/console", [
        ("Host", "127.0.0.1:%d" % gw.port),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(len(form)))], form, port=gw.port))
    assert r.status == 200, r.raw[:300]
    assert len(key_ids(gw)) == len(before) + 1


@pytest.mark.allow_log("CR0320")
def test_console_without_host_refused(gw):
    r = raw(gw, b"GET /console HTTP/1.0\r\n\r\n")
    assert r.status == 421, r.raw[:300]


# ---- 7. the language cookie ----------------------------------------------

@pytest.mark.parametrize("path", [
    "/console?lang=zh", "/console/?lang=zh",
    "/console/;Domain=evil.example?lang=zh",
    "/console/x;Domain=evil.example;Path=/?lang=zh",
    "/console/%3BDomain=evil.example?lang=zh"])
def test_console_cookie_path(gw, path):
    r = console_get(gw, "127.0.0.1:%d" % gw.port, path=path)
    assert r.status == 200, r.raw[:300]
    cookies = [l for l in r.raw.decode("latin-1").split("\r\n")
               if l.lower().startswith("set-cookie:")]
    assert len(cookies) == 1, cookies
    attrs = [a.strip() for a in cookies[0].split(":", 1)[1].split(";")]
    assert attrs[0] == "clawdrouter_console_lang=zh"
    assert "Path=/console" in attrs
    assert not any(a.lower().startswith("domain") for a in attrs), attrs
    assert sum(a.lower().startswith("path=") for a in attrs) == 1, attrs


# ---- 4. a bad Transfer-Encoding ------------------------------------------

def chunked_request(gw, key, te_headers):
    body = json.dumps(chat_body()).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return http_request_bytes("POST", OPENAI_PATH, [
        ("Authorization", "Bearer " + key),
        ("Content-Type", "application/json")] + te_headers,
        chunked, port=gw.port)


@pytest.mark.allow_log("AH00566", "AH01095", "AH02555", "AH01097")
def test_bad_transfer_encoding(gw, upstream):
    """gzip, chunked / two chunked headers: 400 in OpenAI's JSON, nothing
    forwarded, and no rate-limit token used (a key with rpm=2 still has
    its two requests afterwards)."""
    _, key = gw.create_key(name="te", rpm=2)
    upstream.clear()
    for te in ([("Transfer-Encoding", "gzip, chunked")],
               [("Transfer-Encoding", "chunked"),
                ("Transfer-Encoding", "chunked")],
               [("Transfer-Encoding", "chunked, chunked")],
               [("Transfer-Encoding", "identity, chunked")]):
        r = raw(gw, chunked_request(gw, key, te))
        assert r.status == 400, (te, r.raw[:300])
        assert r.headers["content-type"].startswith("application/json")
        doc = r.json()
        assert doc["error"]["type"] == "invalid_request_error", doc
        assert "x-ratelimit-remaining-requests" not in r.headers
    assert upstream.requests == []
    good = chunked_request(gw, key, [("Transfer-Encoding", "chunked")])
    r = raw(gw, good)
    assert r.status == 200, r.raw[:300]
    assert r.headers["x-ratelimit-remaining-requests"] == "1"
    r = raw(gw, good)
    assert r.status == 200, r.raw[:300]
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert raw(gw, good).status == 429


# ---- 5. percent-encoded gateway paths and the logs -----------------------

ENCODED_PATHS = ["/%76%31/chat/completions", "/v%31/chat/completions",
                 "/%2e/v1/chat/completions", "/%2E/%2e/v1/chat/completions",
                 "/v1/%63hat/completions", "//v%31//chat/completions",
                 "/x/%2e%2e/v1/chat/completions", "/x/.%2e/v%31/messages"]


@pytest.mark.parametrize("path", ENCODED_PATHS)
def test_encoded_path_key_not_logged(gw, upstream, path):
    """At LogLevel trace8 (the harness's level): served by the gateway,
    and the key in no line of the error log or the access log, whether it
    came as Authorization or x-api-key."""
    assert gw.log_level == "trace8"
    _, key = gw.create_key(name="enc")
    anthropic = path.endswith("/messages")
    body = json.dumps({"model": "claude-3-5-haiku-latest" if anthropic
                       else "gpt-4o-mini", "max_tokens": 5,
                       "messages": [{"role": "user",
                                     "content": "hi"}]}).encode()
    hdrs = ([("x-api-key", key), ("anthropic-version", "2023-06-01")]
            if anthropic else [("Authorization", "Bearer " + key)])
    upstream.clear()
    r = raw(gw, http_request_bytes("POST", path, hdrs + [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body)))], body, port=gw.port))
    assert r.status == 200, r.raw[:300]
    assert len(upstream.requests) == 1
    assert gw.wait_access_log(lambda line: path in line)
    text = gw.error_log_text()
    assert "Headers received from client" in text   # trace4 is on
    assert key not in text
    assert key[8:40] not in text
    access = "\n".join(gw.access_log_lines())
    assert path in access
    assert key not in access


# ---- 6. an unauthenticated large body ------------------------------------

BIG = 300 * 1024 * 1024


def upload_until_closed(gw, headers, chunked=False, limit=60.0, total=BIG):
    """Send a total-byte body as fast as the gateway takes it, reading at the same
    time; (response bytes, body bytes sent when the connection closed)."""
    head = http_request_bytes("POST", OPENAI_PATH, [
        ("Content-Type", "application/json")] + headers, b"", port=gw.port)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    s.sendall(head)
    s.setblocking(False)
    piece = b"x" * 65536
    if chunked:
        piece = b"%x\r\n%s\r\n" % (len(piece), piece)
    sent, got, closed = 0, b"", False
    t0 = time.monotonic()
    try:
        while sent < total and time.monotonic() - t0 < limit:
            try:
                data = s.recv(65536)
                if data:
                    got += data
                else:
                    closed = True
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed = True
            if closed:
                break
            try:
                sent += s.send(piece)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        # What the gateway sent before it closed is still to be read.
        s.setblocking(True)
        s.settimeout(5)
        while True:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, socket.timeout, OSError):
                break
            if not data:
                break
            got += data
    finally:
        s.close()
    assert closed or sent < total, "the gateway read the whole body"
    return got, sent


@pytest.mark.allow_log("AH01095", "AH01102")
@pytest.mark.parametrize("how", ["content_length", "chunked"])
@pytest.mark.parametrize("cred", ["none", "bad"])
def test_unauthenticated_large_body_not_read(gw, upstream, how, cred):
    headers = []
    if cred == "bad":
        headers.append(("Authorization", "Bearer sk-" + "Z" * 48))
    if how == "content_length":
        headers.append(("Content-Length", str(BIG)))
    else:
        headers.append(("Transfer-Encoding", "chunked"))
    upstream.clear()
    got, sent = upload_until_closed(gw, headers, chunked=how == "chunked")
    r = RawResponse(got)
    assert r.status == 401, got[:300]
    assert r.json()["error"]["code"] in ("invalid_api_key", "missing_api_key"), r.body
    assert r.headers.get("connection", "").lower() == "close"
    # Kernel buffers on both sides hold a few MB; the body is 300 MB.
    assert sent < 24 * 1024 * 1024, "%d bytes sent before the close" % sent
    assert upstream.requests == []
    print("%s %s: %d bytes of %d sent before the close"
          % (how, cred, sent, BIG))


def test_small_refused_body_keeps_connection(gw, upstream):
    """A refused body of at most 1 MiB (Content-Length) is dropped, not a
    reason to close: the next request on the connection is served."""
    _, key = gw.create_key(name="after-refusal")
    body = json.dumps(chat_body(user="x" * 1000000)).encode()
    assert len(body) <= 1024 * 1024
    keep = [("Content-Type", "application/json"),
            ("Connection", "keep-alive"),
            ("Content-Length", str(len(body)))]
    data = (http_request_bytes("POST", OPENAI_PATH, [
        ("Authorization", "Bearer sk-" + "Y" * 48)] + keep, body,
        port=gw.port)
        + http_request_bytes("POST", OPENAI_PATH, [
            ("Authorization", "Bearer " + key),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body)))], body, port=gw.port))
    upstream.clear()
    out, _ = raw_request(gw.port, data, timeout=15)
    first = RawResponse(out)
    assert first.status == 401, out[:300]
    assert first.headers.get("connection", "").lower() != "close"
    assert b"HTTP/1.1 200" in out
    assert len(upstream.requests) == 1 and upstream.requests[0].body == body


@pytest.mark.allow_log("AH01095", "AH01102")
def test_refused_body_over_1mib_closes(gw, upstream):
    """Just over the drop limit, with a bad key: answered, then closed
    before the body was read."""
    total = 1024 * 1024 + 1
    got, sent = upload_until_closed(gw, [
        ("Authorization", "Bearer sk-" + "Y" * 48),
        ("Content-Length", str(total))], total=total)
    r = RawResponse(got)
    assert r.status == 401, got[:300]
    assert r.headers.get("connection", "").lower() == "close"
    assert sent < total


@pytest.mark.allow_log("AH01095", "AH01102")
def test_refused_with_a_key_large_body_answer_readable(gw, upstream):
    """A client with a valid key whose large body is refused unread (415
    here) gets httpd's lingering close: it can send on and still read its
    answer."""
    _, key = gw.create_key(name="linger")
    total = 8 * 1024 * 1024
    head = http_request_bytes("POST", OPENAI_PATH, [
        ("Authorization", "Bearer " + key), ("Content-Type", "text/plain"),
        ("Content-Length", str(total))], b"", port=gw.port)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=20)
    try:
        s.sendall(head + b"x" * total)
        out = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            out += data
    finally:
        s.close()
    r = RawResponse(out)
    assert r.status == 415, out[:300]
    assert r.headers.get("connection", "").lower() == "close"
    assert upstream.requests == []


def test_refusal_after_body_read_keeps_connection(gw, upstream):
    """A refusal that comes after the body was read (model not permitted)
    closes nothing, however large the body: the next request on the same
    connection is served."""
    _, limited = gw.create_key(name="claude-only", models="claude-*")
    _, key = gw.create_key(name="after-read")
    body = json.dumps(chat_body(user="x" * 200000)).encode()
    data = (http_request_bytes("POST", OPENAI_PATH, [
        ("Authorization", "Bearer " + limited),
        ("Content-Type", "application/json"),
        ("Connection", "keep-alive"),
        ("Content-Length", str(len(body)))], body, port=gw.port)
        + http_request_bytes("POST", OPENAI_PATH, [
            ("Authorization", "Bearer " + key),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body)))], body, port=gw.port))
    upstream.clear()
    out, _ = raw_request(gw.port, data, timeout=15)
    first = RawResponse(out)
    assert first.status == 403, out[:300]
    assert first.headers.get("connection", "").lower() != "close"
    assert b"HTTP/1.1 200" in out
    assert len(upstream.requests) == 1 and upstream.requests[0].body == body
