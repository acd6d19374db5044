# Licensed under the Apache License, Version 2.0.
"""The per-process key record cache (ClawdRouterKeyCache, README): records
are served from a child's cache once the store has settled, and a change
made with clawdrouter-keys still takes effect on the very next request
(SPEC 3: "a revoked key is refused at once").  Also: the gateway's URL
space maps to no file, so .htaccess files there do not apply."""

import os
import time

import pytest
import requests

from harness import (assert_error, chat_body, messages_body,
                     anthropic_headers, openai_headers, post)

# The module caches a record only once the store's files are 2 s old.
SETTLE = 2.0


def _settle(gw):
    """Wait until the store's files are older than the settle time."""
    newest = max(os.stat(f).st_ctime for f in gw.store_files())
    time.sleep(max(0.0, newest + SETTLE + 0.3 - time.time()))


def _sources(gw, key_id, offset):
    """CR0107 lines for this key since offset: 'cache' or 'store' each."""
    out = []
    for line in gw.error_log_text(offset).splitlines():
        if "CR0107" in line and key_id in line:
            out.append("cache" if "process's cache" in line else "store")
    return out


def _openai(session, gw, key, model="gpt-4o-mini"):
    return session.post(gw.url + "/v1/chat/completions",
                        json=chat_body(model), headers=openai_headers(key),
                        timeout=15)


def test_cached_record_revoked_at_once(gateway, upstream):
    kid, k = gateway.create_key(name="cached-then-revoked")
    _settle(gateway)
    offset = gateway.error_log_size()
    with requests.Session() as s:        # one connection: one child
        for _ in range(5):
            assert _openai(s, gateway, k).status_code == 200
        got = _sources(gateway, kid, offset)
        assert len(got) == 5, got
        assert got[0] == "store" and got[1:] == ["cache"] * 4, got

        upstream.clear()
        gateway.revoke_key(kid)
        offset = gateway.error_log_size()
        r = _openai(s, gateway, k)
        assert_error(r, "invalid_key", "openai")
        assert "revoked" in r.json()["error"]["message"]
        assert _sources(gateway, kid, offset) == ["store"]
    # every child, on new connections too, and on the other protocol
    for _ in range(6):
        assert_error(post(gateway, "/v1/chat/completions", chat_body(),
                          openai_headers(k)), "invalid_key", "openai")
        assert_error(post(gateway, "/v1/messages", messages_body(),
                          anthropic_headers(k)), "invalid_key", "anthropic")
    assert upstream.requests == []


def test_cached_record_updated_at_once(gateway, upstream):
    kid, k = gateway.create_key(name="cached-then-narrowed",
                                models="gpt-*")
    _settle(gateway)
    offset = gateway.error_log_size()
    with requests.Session() as s:
        for _ in range(3):
            assert _openai(s, gateway, k).status_code == 200
        assert "cache" in _sources(gateway, kid, offset)
        gateway.keys("update", kid, "--models", "claude-*", check=True)
        upstream.clear()
        assert_error(_openai(s, gateway, k), "model_not_permitted", "openai")
        assert upstream.requests == []
        # and widened again
        gateway.keys("update", kid, "--models", "gpt-*", check=True)
        assert _openai(s, gateway, k).status_code == 200


def test_store_restored_from_copy_seen_at_once(gateway, upstream):
    """An old copy of the store written back over the cached one with the
    cached mtime (cp -p, rsync -t): only the change time differs, and the
    copy's revoked record wins at once."""
    kid, k = gateway.create_key(name="restored")
    files = sorted(gateway.store_files())
    active = {f: open(f, "rb").read() for f in files}
    gateway.revoke_key(kid)
    revoked = {f: open(f, "rb").read() for f in files}
    for f in files:                               # active again
        with open(f, "r+b") as fh:
            fh.write(active[f])
            fh.truncate()
    stamps = {f: os.stat(f) for f in files}
    _settle(gateway)
    offset = gateway.error_log_size()
    with requests.Session() as s:
        for _ in range(3):
            assert _openai(s, gateway, k).status_code == 200
        assert "cache" in _sources(gateway, kid, offset)
        upstream.clear()
        for f in files:                           # the revoked copy back,
            with open(f, "r+b") as fh:            # with the cached mtime
                fh.write(revoked[f])
                fh.truncate()
            os.utime(f, ns=(stamps[f].st_atime_ns, stamps[f].st_mtime_ns))
            assert os.stat(f).st_mtime_ns == stamps[f].st_mtime_ns
        assert_error(_openai(s, gateway, k), "invalid_key", "openai")
    assert upstream.requests == []


@pytest.mark.parametrize("mpm", ["event"])
def test_key_cache_off(make_gateway, upstream, mpm):
    gw = make_gateway(mpm=mpm, name="nocache",
                      extra_server_conf="ClawdRouterKeyCache 0")
    kid, k = gw.create_key(name="uncached")
    _settle(gw)
    offset = gw.error_log_size()
    with requests.Session() as s:
        for _ in range(4):
            assert _openai(s, gw, k).status_code == 200
    assert _sources(gw, kid, offset) == ["store"] * 4


def test_one_slot_never_answers_for_another_key(make_gateway, upstream):
    """ClawdRouterKeyCache 1: every key falls in the one slot, which is
    checked by a keyed 128-bit tag of the presented key (not its SHA-256).
    Each key is answered with its own record (its own rpm), a key one
    character away from the cached one is refused, and the cached record
    survives that refusal."""
    gw = make_gateway(mpm="event", name="oneslot",
                      extra_server_conf="ClawdRouterKeyCache 1")
    a_id, a = gw.create_key(name="a", rpm=1000)
    b_id, b = gw.create_key(name="b", rpm=999)
    near = a[:-1] + ("b" if a[-1] == "a" else "a")
    _settle(gw)
    offset = gw.error_log_size()

    def limit(r):
        assert r.status_code == 200, r.text
        return r.headers["x-ratelimit-limit-requests"]

    with requests.Session() as s:        # one connection: one child
        assert limit(_openai(s, gw, a)) == "1000"
        assert limit(_openai(s, gw, a)) == "1000"
        r = _openai(s, gw, near)
        assert_error(r, "invalid_key", "openai")
        assert "Invalid API key" in r.json()["error"]["message"]
        assert limit(_openai(s, gw, a)) == "1000"
        assert limit(_openai(s, gw, b)) == "999"
        assert limit(_openai(s, gw, b)) == "999"
        assert limit(_openai(s, gw, a)) == "1000"
    assert _sources(gw, a_id, offset) == ["store", "cache", "cache", "store"]
    assert _sources(gw, b_id, offset) == ["store", "cache"]
    assert len(upstream.requests) == 6


@pytest.mark.parametrize("bad", ["-1", "lots", "2000000"])
def test_key_cache_bad_value(make_gateway, upstream, bad):
    gw = make_gateway(start=False, mpm="event", name="badcache",
                      extra_server_conf="ClawdRouterKeyCache %s" % bad)
    p = gw.configtest()
    assert p.returncode != 0
    assert "ClawdRouterKeyCache" in p.stdout + p.stderr


def test_key_cache_not_in_virtual_host(make_gateway, upstream):
    gw = make_gateway(start=False, mpm="event", name="vhostcache",
                      extra_server_conf="<VirtualHost 127.0.0.1:1>\n"
                                        "ClawdRouterKeyCache 5\n"
                                        "</VirtualHost>")
    p = gw.configtest()
    assert p.returncode != 0
    assert "ClawdRouterKeyCache" in p.stdout + p.stderr


def test_htaccess_does_not_apply_to_gateway(make_gateway, upstream):
    """A broken .htaccess where the gateway URL would map on disk: the
    gateway's requests never read it (no directory walk), as ProxyPass's
    do not; a URL outside the gateway still gets httpd's 500 for it."""
    gw = make_gateway(
        start=False, mpm="event", name="htaccess",
        extra_server_conf='<Directory "%s">\n    AllowOverride All\n'
                          '</Directory>' % os.path.join("__ROOT__", "htdocs"))
    gw.extra_server_conf = gw.extra_server_conf.replace("__ROOT__", gw.root)
    gw.after_location_conf = "<Location /static>\n    Require all granted\n</Location>"
    gw.write_config()
    for d in ("v1", "static"):
        os.makedirs(os.path.join(gw.root, "htdocs", d), exist_ok=True)
        with open(os.path.join(gw.root, "htdocs", d, ".htaccess"), "w") as f:
            f.write("ThisIsNotADirective at all\n")
        os.chmod(os.path.join(gw.root, "htdocs", d, ".htaccess"), 0o644)
        os.chmod(os.path.join(gw.root, "htdocs", d), 0o755)
    gw.allowed_log.append("ThisIsNotADirective")
    gw.start()
    kid, k = gw.create_key(name="htaccess")
    r = post(gw, "/v1/chat/completions", chat_body(), openai_headers(k))
    assert r.status_code == 200, r.text
    r = requests.get(gw.url + "/static/x", timeout=10)
    assert r.status_code == 500
    assert "ThisIsNotADirective" in gw.error_log_text()


@pytest.mark.parametrize("cache", ["16", "0"])
def test_key_hash_failure_is_internal_error(make_gateway, upstream,
                                            monkeypatch, cache):
    """The key's SHA-256 cannot be computed (an OpenSSL that offers no
    SHA-256: here a configuration whose default properties no algorithm
    has): the store cannot be read by it, so the request is the gateway's
    500 internal_error, never a 401 or a forwarded request, with the cache
    (a miss) and without it (CR_KEYSTORE_HASH_FAILED)."""
    gw = make_gateway(start=False, mpm="event", name="nosha" + cache,
                      extra_server_conf="ClawdRouterKeyCache %s" % cache)
    _, k = gw.create_key(name="nosha")       # the CLI still has SHA-256
    conf = os.path.join(gw.root, "openssl-no-sha256.cnf")
    with open(conf, "w") as f:
        f.write("openssl_conf = init\n[init]\nalg_section = evp\n"
                "[evp]\ndefault_properties = fips=yes\n")
    monkeypatch.setenv("OPENSSL_CONF", conf)
    gw.start()
    monkeypatch.delenv("OPENSSL_CONF")
    _settle(gw)
    with requests.Session() as s:
        for _ in range(2):
            r = _openai(s, gw, k)
            assert r.status_code == 500, r.text
            err = r.json()["error"]
            assert (err["type"], err["code"]) == ("server_error",
                                                  "internal_error"), err
            assert r.headers["x-should-retry"] == "false"
            assert k not in r.text
    assert upstream.requests == []
