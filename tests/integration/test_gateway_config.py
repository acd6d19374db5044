# Licensed under the Apache License, Version 2.0.
"""Configuration directives (SPEC 2): bad directives are refused at start,
per-location settings, another Location, ClawdRouter Off, a balancer://
upstream, and the worker MPM."""

import pytest

from harness import (OPENAI_CREDENTIAL, ANTHROPIC_CREDENTIAL, Gateway,
                     GatewayError,
                     assert_error, call, chat_body, openai_headers, post)

MODULES = "/usr/lib/apache2/modules"


def _upstreams(upstream, *extra):
    return "\n".join([
        "ClawdRouterUpstream openai openai %s/openai/v1 %s"
        % (upstream.url, OPENAI_CREDENTIAL),
        "ClawdRouterUpstream anthropic anthropic %s/anthropic/v1 %s"
        % (upstream.url, ANTHROPIC_CREDENTIAL),
        "ClawdRouterRoute gpt-* openai",
        "ClawdRouterRoute claude-* anthropic"] + list(extra))


@pytest.mark.parametrize("bad", [
    "ClawdRouterUpstream x ftp http://127.0.0.1:1/v1 c",
    "ClawdRouterUpstream x openai not-a-url c",
    "ClawdRouterUpstream x openai",
    "ClawdRouterRoute gpt-* no-such-upstream",
    "ClawdRouterUpstream x openai http://127.0.0.1:1/v1 env:CR_TEST_SURELY_UNSET_VAR",
    "ClawdRouterUpstream x openai http://127.0.0.1:1/v1 file:/nonexistent/cred",
    "ClawdRouterMaxBodySize -5",
    "ClawdRouterMaxBodySize lots",
    "ClawdRouterDefaultRPM -1",
    "ClawdRouterRateStoreFailure maybe",
    "ClawdRouterKeyStore nosuchdbm:/tmp/x",
], ids=["protocol", "url", "missing-url", "route-target", "env-unset",
        "file-missing", "body-negative", "body-text", "rpm-negative",
        "failure-policy", "dbm-type"])
@pytest.mark.allow_log("[clawdrouter:")
def test_bad_directive_refused(upstream, bad):
    """httpd refuses the configuration (apache2 -t, or at the latest the
    start) and says which directive."""
    gw = Gateway(mpm="event", upstream=upstream, name="badconf",
                 upstreams=_upstreams(upstream, bad))
    p = gw.configtest()
    out = p.stdout + p.stderr
    if p.returncode == 0:
        with pytest.raises(GatewayError) as e:
            gw.start()
        gw.stop()
        out = str(e.value)
    assert "ClawdRouter" in out or "clawdrouter" in out.lower(), out
    for secret in (OPENAI_CREDENTIAL, ANTHROPIC_CREDENTIAL):
        assert secret not in out


def test_good_config_accepted(upstream):
    gw = Gateway(mpm="event", upstream=upstream, name="goodconf",
                 upstreams=_upstreams(upstream),
                 extra_server_conf="ClawdRouterDefaultRPM 0\n"
                                   "ClawdRouterMaxBodySize 1048576")
    p = gw.configtest()
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def multi_gw(make_module_gateway):
    """/v1 with a per-location body limit, /api/v1 enabled too, and
    /v1/off with ClawdRouter Off."""
    gw = make_module_gateway(
        mpm="event", name="multiloc",
        extra_location_conf="ClawdRouterMaxBodySize 2048",
        after_location_conf="\n".join([
            "<Location /api/v1>",
            "    ClawdRouter On",
            "    Require all granted",
            "</Location>",
            "<Location /v1/off>",
            "    ClawdRouter Off",
            "    Require all granted",
            "</Location>"]))
    return gw, gw.create_key(name="multi")


def _padded(size):
    head = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
    tail = b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_per_location_max_body(multi_gw, upstream):
    gw, (kid, k) = multi_gw
    r = post(gw, "/v1/chat/completions", data=_padded(2048),
             headers=openai_headers(k))
    assert r.status_code == 200
    upstream.clear()
    r = post(gw, "/v1/chat/completions", data=_padded(2049),
             headers=openai_headers(k))
    assert_error(r, "too_large", "openai")
    assert upstream.requests == []
    # the other Location keeps the server's (default) limit
    r = post(gw, "/api/v1/chat/completions", data=_padded(100000),
             headers=openai_headers(k))
    assert r.status_code == 200


def test_other_location_maps_below_it(multi_gw, upstream):
    gw, (kid, k) = multi_gw
    r = post(gw, "/api/v1/chat/completions?q=1", chat_body(),
             openai_headers(k))
    assert r.status_code == 200, r.text
    assert upstream.last.path == "/openai/v1/chat/completions"
    assert upstream.last.query == "q=1"
    r = post(gw, "/api/v1/messages", {"model": "claude-3-5-haiku-latest",
                                      "max_tokens": 5, "messages": []},
             {"x-api-key": k, "anthropic-version": "2023-06-01",
              "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert upstream.last.path == "/anthropic/v1/messages"


def test_clawdrouter_off(multi_gw, upstream):
    """Below ClawdRouter Off the gateway does not act: nothing forwarded,
    no key needed to get httpd's own answer."""
    gw, (kid, k) = multi_gw
    r = post(gw, "/v1/off/chat/completions", chat_body(), openai_headers(k))
    assert r.status_code in (403, 404, 405), r.status_code
    assert "Request-Id" not in r.headers
    assert upstream.requests == []


def test_balancer_upstream(make_gateway, upstream):
    """A balancer:// URL as the upstream (SPEC 2)."""
    conf = "\n".join([
        "LoadModule slotmem_shm_module %s/mod_slotmem_shm.so" % MODULES,
        "LoadModule proxy_balancer_module %s/mod_proxy_balancer.so" % MODULES,
        "LoadModule lbmethod_byrequests_module %s/mod_lbmethod_byrequests.so" % MODULES,
        "<Proxy balancer://llm>",
        "    BalancerMember %s/openai/v1" % upstream.url,
        "    BalancerMember %s/anthropic/v1" % upstream.url,
        "</Proxy>"])
    gw = make_gateway(mpm="event", name="balancer", extra_server_conf=conf,
                      upstreams=_upstreams(
                          upstream,
                          "ClawdRouterUpstream bal openai balancer://llm %s"
                          % OPENAI_CREDENTIAL).replace(
                              "ClawdRouterRoute gpt-* openai",
                              "ClawdRouterRoute gpt-bal-* bal\n"
                              "ClawdRouterRoute gpt-* openai"))
    kid, k = gw.create_key(name="bal")
    paths = set()
    for _ in range(4):
        r = post(gw, "/v1/chat/completions", chat_body("gpt-bal-1"),
                 openai_headers(k))
        assert r.status_code == 200, r.text
        paths.add(upstream.last.path)
        assert upstream.last.header_values("Authorization") == [
            "Bearer " + OPENAI_CREDENTIAL]
    assert paths == {"/openai/v1/chat/completions",
                     "/anthropic/v1/chat/completions"}


@pytest.mark.mpm("worker")
def test_worker_mpm(gateway, upstream):
    """The worker MPM serves both protocols, streaming included."""
    kid, k = gateway.create_key(name="worker")
    for protocol in ("openai", "anthropic"):
        assert call(gateway, protocol, k).status_code == 200
        r = call(gateway, protocol, k, stream=True)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
    gateway.revoke_key(kid)
    assert_error(call(gateway, "openai", k), "invalid_key", "openai")
    assert len(upstream.requests) == 4
