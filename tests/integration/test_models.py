# Licensed under the Apache License, Version 2.0.
"""SPEC 10: GET /models and GET /models/{id}, answered by the gateway per
key, from the upstreams' own /models (fetched with the upstream's
credential, kept for ClawdRouterModelsCacheTTL) and ClawdRouterModel,
filtered by the key's globs and by the routes of the request's protocol.

The cache is per child process: the tests that count fetches send their
requests on one kept-alive connection, which one process serves."""

import re
import time

import pytest
import requests

from harness import (ANTHROPIC_CREDENTIAL, ANTHROPIC_VERSION, OPENAI_CREDENTIAL,
                     REQUEST_ID_RE, assert_error, call, closed_port)

TTL = 2                 # ClawdRouterModelsCacheTTL of the test gateway
FETCH_TIMEOUT = 2.0     # CR_MODELS_FETCH_TIMEOUT (README)
PROTOCOLS = ["openai", "anthropic"]

OPENAI_LIST = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "o1-mini"]
OTHER_LIST = ["o1-mini", "o1-preview", "gpt-4o"]
ANTHROPIC_LIST = ["claude-3-5-haiku-latest", "claude-sonnet-4-5"]

# What a key allowed every model sees (fetched lists, then declared names).
ALL_OPENAI = ["gpt-4o", "gpt-4o-mini", "gpt-declared", "o1-mini",
              "o1-preview", "o1-declared", "dead-model", "tls-model"]
ALL_ANTHROPIC = ["claude-3-5-haiku-latest", "claude-sonnet-4-5",
                 "claude-declared"]
RESTRICTED_GLOBS = "gpt-4o*,claude-3-5-*,dead-*"
RESTRICTED_OPENAI = ["gpt-4o", "gpt-4o-mini", "dead-model"]
RESTRICTED_ANTHROPIC = ["claude-3-5-haiku-latest"]


def upstreams_block(mock):
    up = mock.url
    return "\n".join([
        "ClawdRouterUpstream openai openai %s/openai/v1 %s"
        % (up, OPENAI_CREDENTIAL),
        "ClawdRouterUpstream other openai %s/other/v1 %s"
        % (up, OPENAI_CREDENTIAL),
        "ClawdRouterUpstream anthropic anthropic %s/anthropic/v1 "
        "env:CR_TEST_ANTHROPIC_CREDENTIAL" % up,
        # connection refused
        "ClawdRouterUpstream dead openai http://127.0.0.1:%d/v1"
        % closed_port(),
        # https, connection refused
        "ClawdRouterUpstream secure openai https://127.0.0.1:%d/v1"
        % closed_port(),
        "ClawdRouterRoute gpt-* openai",
        "ClawdRouterRoute o1-* other",
        "ClawdRouterRoute claude-* anthropic",
        "ClawdRouterRoute dead-* dead",
        "ClawdRouterRoute tls-* secure",
        "ClawdRouterModel gpt-declared openai",
        "ClawdRouterModel gpt-4o openai",          # also fetched: listed once
        "ClawdRouterModel unrouted-x openai",      # no route: never listed
        "ClawdRouterModel o1-declared other",
        "ClawdRouterModel dead-model dead",
        "ClawdRouterModel tls-model secure",
        "ClawdRouterModel claude-declared anthropic",
        "ClawdRouterModelsCacheTTL %d" % TTL,
    ])


def serve_lists(mock, **changes):
    """The mock's /models lists; changes: prefix -> set_models kwargs."""
    lists = {"/openai/v1": OPENAI_LIST, "/other/v1": OTHER_LIST,
             "/anthropic/v1": ANTHROPIC_LIST}
    for prefix, ids in lists.items():
        kw = dict(changes.get(prefix, {}))
        mock.set_models(prefix, kw.pop("ids", ids), **kw)


@pytest.fixture(scope="module", params=["event", "prefork"])
def gw(request, upstream, make_module_gateway):
    g = make_module_gateway(mpm=request.param, upstreams=upstreams_block(upstream),
                            name="models")
    # The dead upstream's failed fetch is a warning by design.
    g.allowed_log.append("CR0601")
    return g


@pytest.fixture(scope="module")
def keys(gw):
    return {"all": gw.create_key(name="models-all")[1],
            "restricted": gw.create_key(name="models-restricted",
                                        models=RESTRICTED_GLOBS)[1]}


@pytest.fixture(autouse=True)
def _lists(upstream):
    serve_lists(upstream)


def headers(protocol, key=None, bearer=False):
    h = {}
    if protocol == "anthropic":
        h["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            h["Authorization" if bearer else "x-api-key"] = (
                "Bearer " + key if bearer else key)
    elif key:
        h["Authorization"] = "Bearer " + key
    return h


def get(gw, path, protocol, key=None, session=None, **kw):
    s = session or requests
    return s.get(gw.url + path, headers=headers(protocol, key, **kw),
                 timeout=15)


def ids_of(resp):
    return [m["id"] for m in resp.json()["data"]]


def check_list(resp, protocol, want):
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["Content-Type"].startswith("application/json")
    assert REQUEST_ID_RE.match(resp.headers.get("Request-Id", ""))
    doc = resp.json()
    if protocol == "openai":
        assert set(doc) == {"object", "data"}, doc
        assert doc["object"] == "list"
        for m in doc["data"]:
            assert set(m) == {"id", "object", "created", "owned_by"}, m
            assert m["object"] == "model"
            assert isinstance(m["created"], int)
    else:
        assert set(doc) == {"data", "has_more", "first_id", "last_id"}, doc
        assert doc["has_more"] is False
        for m in doc["data"]:
            assert set(m) == {"type", "id", "display_name", "created_at"}, m
            assert m["type"] == "model"
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                            m["created_at"]), m
        if want:
            assert doc["first_id"] == want[0]
            assert doc["last_id"] == want[-1]
        else:
            assert doc["first_id"] is None and doc["last_id"] is None
    assert ids_of(resp) == want
    return doc


def wait_ttl():
    time.sleep(TTL + 0.3)


# ---- formats, filters ----------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_list_everything_routed(gw, upstream, keys, protocol):
    wait_ttl()
    r = get(gw, "/v1/models", protocol, keys["all"])
    want = ALL_OPENAI if protocol == "openai" else ALL_ANTHROPIC
    doc = check_list(r, protocol, want)
    by_id = {m["id"]: m for m in doc["data"]}
    if protocol == "openai":
        assert by_id["gpt-4o"]["owned_by"] == "openai"
        assert by_id["o1-mini"]["owned_by"] == "other"
        assert by_id["gpt-4o"]["created"] == 1700000000   # the upstream's
        assert by_id["dead-model"]["owned_by"] == "dead"
    else:
        # the upstream's own display name and time
        assert by_id["claude-sonnet-4-5"]["display_name"] == \
            "Display claude-sonnet-4-5"
        assert by_id["claude-sonnet-4-5"]["created_at"] == \
            "2025-02-19T00:00:00Z"
        assert by_id["claude-declared"]["display_name"] == "claude-declared"
    # nothing was forwarded: the upstreams saw their /models fetches only
    assert all(rec.path.endswith("/models") and rec.method == "GET"
               for rec in upstream.requests), upstream.requests


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_list_restricted_key(gw, keys, protocol):
    r = get(gw, "/v1/models", protocol, keys["restricted"])
    check_list(r, protocol, RESTRICTED_OPENAI if protocol == "openai"
               else RESTRICTED_ANTHROPIC)


def test_anthropic_format_with_bearer(gw, keys):
    """Claude Code sends its key as Bearer, with anthropic-version."""
    r = get(gw, "/v1/models", "anthropic", keys["all"], bearer=True)
    check_list(r, "anthropic", ALL_ANTHROPIC)


def test_chunked_upstream_list(gw, upstream, keys):
    wait_ttl()
    serve_lists(upstream, **{"/openai/v1": {"chunked": True,
                                            "ids": ["gpt-chunked"]}})
    r = get(gw, "/v1/models", "openai", keys["all"])
    assert r.status_code == 200
    assert "gpt-chunked" in ids_of(r)
    assert "gpt-4o-mini" not in ids_of(r)


def test_fetch_carries_upstream_credential(gw, upstream, keys):
    wait_ttl()
    s = requests.Session()
    assert get(gw, "/v1/models", "openai", keys["all"], s).status_code == 200
    assert get(gw, "/v1/models", "anthropic", keys["all"], s).status_code == 200
    (o,) = upstream.models_fetches("/openai/v1")
    assert o.headers.get("Authorization") == "Bearer " + OPENAI_CREDENTIAL
    assert "x-api-key" not in o.headers
    (a,) = upstream.models_fetches("/anthropic/v1")
    assert a.headers.get("x-api-key") == ANTHROPIC_CREDENTIAL
    assert a.headers.get("anthropic-version") == ANTHROPIC_VERSION
    assert "Authorization" not in a.headers
    for rec in upstream.requests:
        for k in keys.values():
            assert k not in repr(rec.header_list)


# ---- /models/{id} --------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retrieve_found(gw, keys, protocol):
    mid = "gpt-4o-mini" if protocol == "openai" else "claude-sonnet-4-5"
    r = get(gw, "/v1/models/" + mid, protocol, keys["all"])
    assert r.status_code == 200, r.text
    doc = r.json()
    if protocol == "openai":
        assert doc == {"id": mid, "object": "model", "created": 1700000000,
                       "owned_by": "openai"}
    else:
        assert doc == {"type": "model", "id": mid,
                       "display_name": "Display " + mid,
                       "created_at": "2025-02-19T00:00:00Z"}
    # a declared name too
    mid = "o1-declared" if protocol == "openai" else "claude-declared"
    r = get(gw, "/v1/models/" + mid, protocol, keys["all"])
    assert r.status_code == 200 and r.json()["id"] == mid


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mid,who", [
    ("no-such-model", "all"),          # no route at all
    ("gpt-not-listed", "all"),         # routed, but not in any list
    ("unrouted-x", "all"),             # declared, but no route
    ("gpt-declared", "restricted"),    # listed, but not for this key
    ("claude-sonnet-4-5", "restricted"),
])
def test_retrieve_404(gw, keys, protocol, mid, who):
    if protocol == "openai" and mid.startswith("claude"):
        mid = "o1-mini"                # the key may not use it
    r = get(gw, "/v1/models/" + mid, protocol, keys[who])
    assert_error(r, "model_not_found", protocol)


def test_retrieve_other_protocol_404(gw, keys):
    """A model routed for the other protocol only is not listed."""
    r = get(gw, "/v1/models/claude-sonnet-4-5", "openai", keys["all"])
    assert_error(r, "model_not_found", "openai")
    r = get(gw, "/v1/models/gpt-4o", "anthropic", keys["all"])
    assert_error(r, "model_not_found", "anthropic")


# ---- keys ----------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/gpt-4o"])
def test_401(gw, upstream, protocol, path):
    r = get(gw, path, protocol, None)
    assert_error(r, "missing_key", protocol)
    r = get(gw, path, protocol, "sk-" + "Zz9" * 16)
    assert_error(r, "invalid_key", protocol)
    assert upstream.requests == []


def test_revoked_key_401(gw):
    kid, k = gw.create_key(name="models-revoked")
    assert get(gw, "/v1/models", "openai", k).status_code == 200
    gw.revoke_key(kid)
    assert_error(get(gw, "/v1/models", "openai", k), "invalid_key", "openai")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_not_counted_against_rpm(gw, upstream, protocol):
    _, k = gw.create_key(name="models-rpm1", rpm=1)
    for _ in range(5):
        r = get(gw, "/v1/models", protocol, k)
        assert r.status_code == 200
        assert "x-ratelimit-remaining-requests" not in r.headers
        assert "anthropic-ratelimit-requests-remaining" not in r.headers
        mid = "gpt-4o" if protocol == "openai" else "claude-sonnet-4-5"
        assert get(gw, "/v1/models/" + mid, protocol, k).status_code == 200
    assert call(gw, protocol, k).status_code == 200
    assert_error(call(gw, protocol, k), "rate_limited", protocol)


# ---- cache lifetime ------------------------------------------------------

def test_cache_lifetime(gw, upstream, keys):
    wait_ttl()
    s = requests.Session()          # one connection: one process's cache
    t0 = time.monotonic()
    assert get(gw, "/v1/models", "openai", keys["all"], s).status_code == 200
    assert len(upstream.models_fetches("/openai/v1")) == 1
    assert len(upstream.models_fetches("/other/v1")) == 1
    # within the TTL: no fetch, whatever the request asks
    for path in ("/v1/models", "/v1/models/gpt-4o", "/v1/models/o1-mini"):
        assert get(gw, path, "openai", keys["all"], s).status_code == 200
    assert time.monotonic() - t0 < TTL, "too slow to test the TTL"
    assert len(upstream.models_fetches("/openai/v1")) == 1
    assert len(upstream.models_fetches("/other/v1")) == 1
    # the Anthropic list is fetched only by an Anthropic request
    assert upstream.models_fetches("/anthropic/v1") == []
    # a changed list shows after the TTL, with one new fetch
    upstream.set_models("/openai/v1", ["gpt-5"])
    wait_ttl()
    r = get(gw, "/v1/models", "openai", keys["all"], s)
    assert "gpt-5" in ids_of(r) and "gpt-4o-mini" not in ids_of(r)
    assert len(upstream.models_fetches("/openai/v1")) == 2
    assert get(gw, "/v1/models", "openai", keys["all"], s).status_code == 200
    assert len(upstream.models_fetches("/openai/v1")) == 2


def test_concurrent_requests_one_fetch_per_process(gw, upstream, keys):
    """A burst on fresh connections while the list is slow to come: each
    process fetches it once; its other threads answer without waiting
    for that fetch."""
    from concurrent.futures import ThreadPoolExecutor
    wait_ttl()
    serve_lists(upstream, **{"/openai/v1": {"delay": 1.0}})
    offset = gw.error_log_size()

    def one(_):
        t0 = time.monotonic()
        r = get(gw, "/v1/models", "openai", keys["all"])
        return r.status_code, time.monotonic() - t0

    with ThreadPoolExecutor(24) as ex:
        results = list(ex.map(one, range(48)))
    assert all(st == 200 for st, _ in results), results
    assert max(el for _, el in results) < FETCH_TIMEOUT, results
    fetches = len(upstream.models_fetches("/openai/v1"))
    time.sleep(0.2)
    pids = re.findall(r"\[pid (\d+)[^\]]*\].*CR0602: upstream openai:",
                      gw.error_log_text(offset))
    assert fetches >= 1
    assert len(pids) == fetches, (pids, fetches)
    assert len(set(pids)) == len(pids), "a process fetched twice: %r" % pids


# ---- upstream down or slow -----------------------------------------------

DECLARED_ONLY_OTHER = ["gpt-4o", "gpt-4o-mini", "gpt-declared",
                       "o1-declared", "dead-model", "tls-model"]


@pytest.mark.parametrize("how", [{"status": 500}, {"close": True},
                                 {"delay": FETCH_TIMEOUT + 3}])
def test_upstream_list_fails(gw, upstream, keys, how):
    wait_ttl()
    serve_lists(upstream, **{"/other/v1": how})
    s = requests.Session()
    offset = gw.error_log_size()
    t0 = time.monotonic()
    r = get(gw, "/v1/models", "openai", keys["all"], s)
    elapsed = time.monotonic() - t0
    check_list(r, "openai", DECLARED_ONLY_OTHER)
    assert elapsed < FETCH_TIMEOUT + 0.5, elapsed
    assert len(upstream.models_fetches("/other/v1")) == 1
    assert "CR0601" in gw.error_log_text(offset)
    assert "upstream other" in gw.error_log_text(offset)
    # not tried again at once: answered quickly, from the declared names
    t0 = time.monotonic()
    r = get(gw, "/v1/models/o1-declared", "openai", keys["all"], s)
    assert r.status_code == 200
    assert_error(get(gw, "/v1/models/o1-mini", "openai", keys["all"], s),
                 "model_not_found", "openai")
    assert time.monotonic() - t0 < 0.5
    assert len(upstream.models_fetches("/other/v1")) == 1
    # back once the upstream answers again, after the retry interval
    serve_lists(upstream)
    wait_ttl()
    r = get(gw, "/v1/models", "openai", keys["all"], s)
    check_list(r, "openai", ALL_OPENAI)
    assert len(upstream.models_fetches("/other/v1")) == 2


def test_dead_upstream_does_not_slow_the_list(gw, keys):
    """The connection-refused upstreams (http and https) list their
    declared names; the list answers at once."""
    s = requests.Session()
    for _ in range(3):
        t0 = time.monotonic()
        r = get(gw, "/v1/models", "openai", keys["all"], s)
        assert time.monotonic() - t0 < FETCH_TIMEOUT
        assert {"dead-model", "tls-model"} <= set(ids_of(r))


# ---- the official SDKs -----------------------------------------------------

def test_sdks_list_and_retrieve(gw, keys):
    """tests/js/models.test.mjs: models.list() and models.retrieve() of
    `openai` and `@anthropic-ai/sdk` through the gateway."""
    import os
    import shutil
    import subprocess
    js = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "js")
    script = os.path.join(js, "models.test.mjs")
    node = shutil.which("node")
    assert node, "node (Node.js 20 or later) is not on PATH"
    for pkg in ("openai", "@anthropic-ai/sdk"):
        assert os.path.isfile(os.path.join(js, "node_modules", pkg,
                                           "package.json")), (
            "run `npm ci --prefix tests/js`")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "NODE_OPTIONS"))}
    env.update({
        "CR_GATEWAY_URL": gw.url, "CR_KEY": keys["all"],
        "CR_LIMITED_KEY": keys["restricted"],
        "CR_OPENAI_IDS": ",".join(ALL_OPENAI),
        "CR_ANTHROPIC_IDS": ",".join(ALL_ANTHROPIC),
        "CR_LIMITED_OPENAI_IDS": ",".join(RESTRICTED_OPENAI),
        "CR_LIMITED_ANTHROPIC_IDS": ",".join(RESTRICTED_ANTHROPIC),
        "NO_COLOR": "1"})
    run = subprocess.run([node, "--test", "--test-reporter=spec", script],
                         cwd=js, env=env, capture_output=True, text=True,
                         timeout=120)
    out = run.stdout + run.stderr
    for k in keys.values():
        out = out.replace(k, "<client key>")
    assert run.returncode == 0, out + gw.error_log_tail()
    with open(script, encoding="utf-8") as f:
        declared = len(re.findall(r"^test\(", f.read(), re.M))
    passed = re.search(r"^\S* ?pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) == declared == 4, out


# ---- https:// upstreams -----------------------------------------------------

def _self_signed(tmpdir, name):
    import os
    import subprocess
    cert, key = str(tmpdir / (name + ".crt")), str(tmpdir / (name + ".key"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    os.chmod(cert, 0o644)
    return cert, key


@pytest.fixture(scope="module")
def tls_setup(make_module_gateway):
    """A TLS mock whose certificate the gateway trusts (SSL_CERT_FILE, as
    an operator would set it in envvars), one it does not trust, and a
    port that accepts connections but never answers the handshake."""
    import os
    import pathlib
    import socket
    import tempfile
    from harness import MockUpstream
    from harness.gateway import base_dir
    # readable by httpd's children (www-data when the tests run as root)
    d = pathlib.Path(tempfile.mkdtemp(prefix="tls-", dir=base_dir()))
    os.chmod(d, 0o755)
    trusted = MockUpstream(tls=_self_signed(d, "trusted")).start()
    untrusted = MockUpstream(tls=_self_signed(d, "untrusted")).start()
    stall = socket.socket()
    stall.bind(("127.0.0.1", 0))
    stall.listen(16)
    conf = "\n".join([
        "ClawdRouterUpstream tls openai https://127.0.0.1:%d/tls/v1 %s"
        % (trusted.port, OPENAI_CREDENTIAL),
        "ClawdRouterUpstream tlsname anthropic https://localhost:%d/anthropic/v1 "
        "env:CR_TEST_ANTHROPIC_CREDENTIAL" % trusted.port,
        "ClawdRouterUpstream untrusted openai https://127.0.0.1:%d/u/v1 %s"
        % (untrusted.port, OPENAI_CREDENTIAL),
        "ClawdRouterUpstream stall openai https://127.0.0.1:%d/s/v1 %s"
        % (stall.getsockname()[1], OPENAI_CREDENTIAL),
        "ClawdRouterRoute tls-* tls",
        "ClawdRouterRoute claude-* tlsname",
        "ClawdRouterRoute untrusted-* untrusted",
        "ClawdRouterRoute stall-* stall",
        "ClawdRouterModel untrusted-declared untrusted",
        "ClawdRouterModel stall-declared stall",
    ])
    old = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(d / "trusted.crt")
    try:
        g = make_module_gateway(mpm="event", upstreams=conf, name="models-tls")
    finally:
        if old is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = old
    g.allowed_log.append("CR0601")
    _, k = g.create_key(name="models-tls")
    yield g, k, trusted, untrusted
    trusted.stop()
    untrusted.stop()
    stall.close()


def test_https_upstreams(tls_setup):
    g, k, trusted, untrusted = tls_setup
    trusted.set_models("/tls/v1", ["tls-a", "tls-b"])
    trusted.set_models("/anthropic/v1", ["claude-over-tls"])
    untrusted.set_models("/u/v1", ["untrusted-fetched"])
    offset = g.error_log_size()
    t0 = time.monotonic()
    r = get(g, "/v1/models", "openai", k)
    elapsed = time.monotonic() - t0
    # the trusted list fetched over TLS; the untrusted certificate and the
    # silent handshake leave their declared names; within the 2 s budget
    check_list(r, "openai", ["tls-a", "tls-b", "untrusted-declared",
                             "stall-declared"])
    assert elapsed < FETCH_TIMEOUT + 0.5, elapsed
    (f,) = trusted.models_fetches("/tls/v1")
    assert f.headers.get("Authorization") == "Bearer " + OPENAI_CREDENTIAL
    assert untrusted.models_fetches() == []     # refused before any request
    log = g.error_log_text(offset)
    assert re.search(r"CR0601.*upstream untrusted.*certificate", log), log
    assert re.search(r"CR0601.*upstream stall.*timed out", log), log
    # a host name (SNI and name check) on an Anthropic upstream
    r = get(g, "/v1/models", "anthropic", k)
    check_list(r, "anthropic", ["claude-over-tls"])
    (f,) = trusted.models_fetches("/anthropic/v1")
    assert f.headers.get("x-api-key") == ANTHROPIC_CREDENTIAL
    assert f.headers.get("Host") == "localhost:%d" % trusted.port
