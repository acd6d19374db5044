# Licensed under the Apache License, Version 2.0.
"""The gateway's own answers (SPEC 4 and 5): every refusal is the exact
JSON error of the protocol and nothing reaches the upstream."""

import os
import re
import secrets
import shutil
import socket
import string
import time

import pytest

from harness import (ANTHROPIC_PATH, OPENAI_PATH, anthropic_headers,
                     assert_error, call, chat_body, closed_port,
                     http_request_bytes, messages_body, openai_headers, post,
                     raw_request, RawResponse)

# Also against the SQL key stores (dbd-pgsql, dbd-sqlite3; event MPM).
pytestmark = pytest.mark.keystores()

PROTOCOLS = ["openai", "anthropic"]


def random_key():
    alphabet = string.ascii_letters + string.digits
    return "sk-" + "".join(secrets.choice(alphabet) for _ in range(48))


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="errors")


def request(gw, protocol, key=None, model=None, headers=None, body=None,
            data=None, version=True, **kw):
    if protocol == "openai":
        h = openai_headers(key)
        path = OPENAI_PATH
        b = chat_body(model or "gpt-4o-mini")
    else:
        h = anthropic_headers(key, **({} if version else {"version": None}))
        path = ANTHROPIC_PATH
        b = messages_body(model or "claude-3-5-haiku-latest")
    h.update(headers or {})
    if data is None and body is None:
        body = b
    return post(gw, path, body, h, data=data, **kw)


# ---- 401 -------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_missing_key(gateway, upstream, key, protocol):
    r = request(gateway, protocol, None)
    assert_error(r, "missing_key", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
def test_unknown_key(gateway, upstream, key, protocol, header):
    bad = random_key()
    h = {header: ("Bearer " + bad) if header == "Authorization" else bad}
    r = request(gateway, protocol, None, headers=h)
    doc = assert_error(r, "invalid_key", protocol)
    assert bad not in r.text and bad[3:] not in r.text
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_both_headers_different_keys(gateway, upstream, key, protocol):
    kid, k = key
    other = random_key()
    for a, b in ((k, other), (other, k)):
        r = request(gateway, protocol, None,
                    headers={"Authorization": "Bearer " + a, "x-api-key": b})
        assert_error(r, "invalid_key", protocol)
        assert k not in r.text and other not in r.text
    assert upstream.requests == []


def test_revoked_key_refused_at_once(gateway, upstream):
    kid, k = gateway.create_key(name="to-revoke")
    for protocol in PROTOCOLS:
        assert request(gateway, protocol, k).status_code == 200
    upstream.clear()
    gateway.revoke_key(kid)
    for protocol in PROTOCOLS:
        r = request(gateway, protocol, k)
        assert_error(r, "invalid_key", protocol)
        assert k not in r.text
    assert upstream.requests == []


def test_expired_key(gateway, upstream):
    kid, k = gateway.create_key(name="short-lived", expires="+2s")
    t0 = time.monotonic()
    for protocol in PROTOCOLS:
        assert request(gateway, protocol, k).status_code == 200
    upstream.clear()
    time.sleep(max(0.0, 3.2 - (time.monotonic() - t0)))
    for protocol in PROTOCOLS:
        r = request(gateway, protocol, k)
        assert_error(r, "invalid_key", protocol)
    assert upstream.requests == []


# ---- 400 -------------------------------------------------------------

def test_missing_anthropic_version(gateway, upstream, key):
    kid, k = key
    r = request(gateway, "anthropic", k, version=False)
    assert_error(r, "missing_version", "anthropic")
    assert upstream.requests == []


def test_anthropic_version_not_needed_on_openai_paths(gateway, upstream, key):
    kid, k = key
    r = request(gateway, "openai", k)
    assert r.status_code == 200
    assert "anthropic-version" not in upstream.last.headers


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("data", [b"{not json", b'{"messages":[]}',
                                  b'{"model":42}', b"[]", b""])
def test_invalid_body(gateway, upstream, key, protocol, data):
    kid, k = key
    r = request(gateway, protocol, k, data=data)
    assert_error(r, "invalid_body", protocol)
    assert upstream.requests == []


# ---- 403 / 404 -------------------------------------------------------

@pytest.fixture(scope="module")
def mini_key(gateway):
    return gateway.create_key(name="mini", models="gpt-4o-mini")


@pytest.mark.parametrize("protocol,model", [("openai", "gpt-4o"),
                                            ("anthropic", "claude-3-opus")])
def test_model_not_permitted(gateway, upstream, mini_key, protocol, model):
    kid, k = mini_key
    r = request(gateway, protocol, k, model=model)
    assert_error(r, "model_not_permitted", protocol)
    assert upstream.requests == []
    r = request(gateway, "openai", k, model="gpt-4o-mini")
    assert r.status_code == 200
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("protocol,model", [
    ("openai", "llama-3"), ("anthropic", "llama-3"),
    # a route exists, but its upstream speaks the other protocol
    ("openai", "claude-3-5-haiku-latest"), ("anthropic", "gpt-4o-mini")])
def test_no_route(gateway, upstream, key, protocol, model):
    kid, k = key
    r = request(gateway, protocol, k, model=model)
    assert_error(r, "model_not_found", protocol)
    assert upstream.requests == []


# ---- 413 -------------------------------------------------------------

@pytest.fixture(scope="module")
def small_gw(gateway, make_module_gateway):
    gw = make_module_gateway(mpm=gateway.mpm, max_body=1024, name="smallbody")
    return gw, gw.create_key(name="small")


def _padded(protocol, size):
    model = "gpt-4o-mini" if protocol == "openai" else "claude-3-5-haiku-latest"
    head = b'{"model":"%s","max_tokens":5,"messages":[{"role":"user","content":"' % model.encode()
    tail = b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_over_configured_limit(small_gw, upstream, protocol):
    gw, (kid, k) = small_gw
    ok = _padded(protocol, 1024)
    r = request(gw, protocol, k, data=ok)
    assert r.status_code == 200, r.text
    upstream.clear()
    r = request(gw, protocol, k, data=_padded(protocol, 1025))
    assert_error(r, "too_large", protocol)
    # chunked, so the size is only known while reading
    big = _padded(protocol, 4000)
    r = request(gw, protocol, k,
                data=(big[i:i + 500] for i in range(0, len(big), 500)))
    assert_error(r, "too_large", protocol)
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_over_default_limit(gateway, upstream, key, protocol):
    """Default ClawdRouterMaxBodySize is 32 MiB: a declared 32 MiB + 1 body
    is refused (the gateway need not read it all)."""
    kid, k = key
    size = 32 * 1024 * 1024 + 1
    h = (openai_headers(k) if protocol == "openai" else anthropic_headers(k))
    h = dict(h, **{"Content-Length": str(size)})
    path = OPENAI_PATH if protocol == "openai" else ANTHROPIC_PATH
    s = socket.create_connection(("127.0.0.1", gateway.port), timeout=20)
    try:
        s.sendall(http_request_bytes("POST", path, h, port=gateway.port))
        sent = 0
        chunk = b"x" * 65536
        s.settimeout(0.05)
        data = b""
        # keep sending until the gateway answers or stops reading
        while sent < size:
            try:
                data += s.recv(65536)
                if data:
                    break
            except socket.timeout:
                pass
            try:
                s.settimeout(2)
                sent += s.send(chunk[:min(len(chunk), size - sent)])
                s.settimeout(0.05)
            except OSError:
                break
        s.settimeout(20)
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
                if b"\r\n\r\n" in data and len(data.partition(b"\r\n\r\n")[2]) >= 10 \
                        and data.rstrip().endswith(b"}"):
                    break
        except OSError:
            pass
    finally:
        s.close()
    resp = RawResponse(data)
    assert resp.status == 413, data[:300]
    assert resp.headers.get("content-type", "").startswith("application/json")
    doc = resp.json()
    if protocol == "openai":
        assert doc["error"]["code"] == "request_too_large"
    else:
        assert doc["error"]["type"] == "request_too_large"
    assert upstream.requests == []


# ---- 500: key store unusable ----------------------------------------

@pytest.mark.keystores("dbm")     # breaks DBM files (dbd: test_keystore_dbd)
@pytest.mark.allow_log("CR0102", "CR0103")
@pytest.mark.parametrize("breakage", ["missing", "not-a-directory",
                                      "unreadable"])
def test_key_store_unusable_fails_closed(gateway, make_gateway, upstream,
                                         breakage):
    gw = make_gateway(mpm=gateway.mpm, name="brokenstore")
    kid, k = gw.create_key(name="victim")
    assert call(gw, "openai", k).status_code == 200
    upstream.clear()
    if breakage == "missing":
        for f in gw.store_files():
            os.unlink(f)
    elif breakage == "not-a-directory":
        shutil.rmtree(gw.keys_dir)
        with open(gw.keys_dir, "w") as f:
            f.write("not a key store\n")
    else:
        # (as root the children run as www-data: mode 0 keeps them out)
        for f in gw.store_files():
            os.chmod(f, 0)
    for _ in range(6):
        for protocol in PROTOCOLS:
            r = call(gw, protocol, k)
            assert_error(r, "key_store_unavailable", protocol)
            assert k not in r.text
    assert upstream.requests == []
    # the refusal was logged (tagged), never with the key
    text = gw.error_log_text()
    assert "CR010" in text
    assert k not in text
    # a store that is down fails every request: one CR0102 line per child
    # per 10 s, not one per request (the twelve came within seconds)
    per_pid = {}
    for line in text.splitlines():
        if "CR0102" in line:
            m = re.search(r"\[pid (\d+)", line)
            assert m, line
            per_pid[m.group(1)] = per_pid.get(m.group(1), 0) + 1
    assert all(n == 1 for n in per_pid.values()), per_pid


# ---- 502 / 504 ----------------------------------------------------------

@pytest.fixture(scope="module")
def dead_gw(gateway, make_module_gateway):
    port = closed_port()
    gw = make_module_gateway(mpm=gateway.mpm, name="deadup", upstreams="\n".join([
        "ClawdRouterUpstream openai openai http://127.0.0.1:%d/v1 upstream-openai-secret-7Qx2Lm9Vb4" % port,
        "ClawdRouterUpstream anthropic anthropic http://127.0.0.1:%d/v1 upstream-anthropic-secret-Kd81Zr5Tw0" % port,
        "ClawdRouterRoute gpt-* openai",
        "ClawdRouterRoute claude-* anthropic"]))
    # mod_proxy reports the failed connects (AH00957 ... AH01114)
    gw.allowed_log += ["[proxy:error]", "[proxy_http:error]"]
    return gw, gw.create_key(name="dead")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upstream_unreachable_502(dead_gw, protocol):
    gw, (kid, k) = dead_gw
    for _ in range(2):   # the second one finds the worker in error state
        r = call(gw, protocol, k)
        assert_error(r, "upstream_unavailable", protocol)


@pytest.fixture(scope="module")
def timeout_gw(gateway, make_module_gateway):
    gw = make_module_gateway(mpm=gateway.mpm, name="timeout",
                             extra_server_conf="ProxyTimeout 1")
    gw.allowed_log += ["[proxy_http:error]", "[proxy:error]"]
    return gw, gw.create_key(name="timeout")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upstream_timeout_504(timeout_gw, upstream, protocol):
    gw, (kid, k) = timeout_gw
    t0 = time.monotonic()
    r = call(gw, protocol, k, headers={"X-Mock-Delay": "3"})
    assert time.monotonic() - t0 < 2.9
    assert_error(r, "upstream_timeout", protocol)
    assert len(upstream.requests) == 1
    # a prompt upstream answer on the same gateway still works
    r = call(gw, protocol, k)
    assert r.status_code == 200


@pytest.mark.allow_log("[proxy_http:error]", "[proxy:error]")
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upstream_closes_without_answer_502(gateway, upstream, key, protocol):
    """The upstream accepts the request and closes the connection without a
    response: the client gets the protocol's JSON 502."""
    kid, k = key
    r = call(gateway, protocol, k, headers={"X-Mock-Close": "1"})
    assert_error(r, "upstream_unavailable", protocol)
    assert len(upstream.requests) >= 1
    # the gateway recovers at once for the next request
    r = call(gateway, protocol, k)
    assert r.status_code == 200
