# Licensed under the Apache License, Version 2.0.
"""Token limits and quotas (SPEC section 11): a tpm bucket admits while it
is above zero, takes a response's tokens when it ends (going below zero),
refuses until refilled; a quota lets the crossing response complete and
refuses the next with insufficient_quota; counts survive a graceful
restart and, with ClawdRouterStateFile, a full stop and start; prefork and
event."""

import json
import os
import time

import pytest

from harness import (anthropic_headers, chat_body, messages_body,
                     openai_headers, post)
from harness.client import assert_error


@pytest.fixture(scope="module", params=["event", "prefork"])
def gw(request, make_module_gateway):
    g = make_module_gateway(mpm=request.param, log_level="info")
    g.reconfigure(extra_server_conf="ClawdRouterStateFile %s" %
                  os.path.join(g.root, "run", "tokens.state"))
    g.stop()
    g.start()
    return g


def make_key(gw, *args):
    p = gw.keys("create", "--json", *[str(a) for a in args], check=True)
    doc = json.loads(p.stdout)
    return doc["id"], doc["key"]


def chat(gw, k, usage, stream=False):
    h = openai_headers(k)
    h["X-Mock-Usage"] = usage
    body = chat_body("gpt-4o-mini", stream=stream,
                     **({"stream_options": {"include_usage": True}}
                        if stream else {}))
    return post(gw, "/v1/chat/completions", body, h)


def message(gw, k, usage, stream=False):
    h = anthropic_headers(k)
    h["X-Mock-Usage"] = usage
    return post(gw, "/v1/messages", messages_body(stream=stream), h)


def test_record_and_cli(gw):
    kid, k = make_key(gw, "--tpm", 500, "--quota", 7000, "--quota-period",
                      "day")
    doc = json.loads(gw.keys("show", kid, "--json", check=True).stdout)
    assert (doc["tpm"], doc["quota"], doc["quota_period"]) == (500, 7000,
                                                               "day")
    gw.keys("update", kid, "--tpm", "default", "--quota-period", "total",
            check=True)
    doc = json.loads(gw.keys("show", kid, "--json", check=True).stdout)
    assert (doc["tpm"], doc["quota"], doc["quota_period"]) == (None, 7000,
                                                               "total")
    bad = gw.keys("update", kid, "--quota-period", "week")
    assert bad.returncode == 2 and "--quota-period" in bad.stderr
    bad = gw.keys("create", "--tpm", "-1")
    assert bad.returncode == 2


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_tpm_admitted_refused_refilled(gw, upstream, protocol):
    """tpm 6000 (100 a second).  The first response uses 6150 tokens: the
    bucket is 150 below zero, so the next request is refused for 1.5 s,
    then admitted again."""
    kid, k = make_key(gw, "--tpm", 6000)
    send = chat if protocol == "openai" else message
    pre = ("x-ratelimit-%s-tokens" if protocol == "openai"
           else "anthropic-ratelimit-tokens-%s")
    r = send(gw, k, "6000,150")
    assert r.status_code == 200, r.text
    assert r.headers[pre % "limit"] == "6000"
    assert r.headers[pre % "remaining"] == "6000"   # state at admission
    n = len(upstream.requests)
    refused_at = time.monotonic()      # the bucket was read after this
    r = send(gw, k, "1,1")
    assert r.status_code == 429
    assert len(upstream.requests) == n               # not forwarded
    assert_error(r, "tokens_limited", protocol)
    assert r.headers[pre % "remaining"] == "0"       # never below 0
    ms = int(r.headers["retry-after-ms"])
    assert 700 <= ms <= 1500, ms
    assert r.headers["Retry-After"] == ("2" if ms > 1000 else "1")
    assert r.headers.get("x-should-retry") != "false"
    time.sleep(ms / 1000.0 + 0.1)
    r = send(gw, k, "1,1")
    answered_at = time.monotonic()
    assert r.status_code == 200, r.text
    # The bucket was at zero ms after the refusal and refills at 100 tokens
    # a second: at most what refilled by the time this request was read
    # (about 10 tokens on a quiet machine; +1 for the rounding of ms).
    refilled = 100 * (answered_at - refused_at - ms / 1000.0)
    assert int(r.headers[pre % "remaining"]) <= refilled + 1


def test_streamed_tokens_count(gw):
    """A stream's usage (its last chunk) is charged like a JSON one."""
    kid, k = make_key(gw, "--tpm", 6000)
    r = chat(gw, k, "6000,300", stream=True)
    assert r.status_code == 200 and b"[DONE]" in r.content
    r = chat(gw, k, "1,1")
    assert r.status_code == 429, r.text


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_quota_crossing(gw, protocol):
    kid, k = make_key(gw, "--quota", 100, "--quota-period", "day")
    send = chat if protocol == "openai" else message
    assert send(gw, k, "60,30").status_code == 200        # 90 used
    r = send(gw, k, "60,30", stream=True)                  # crosses: 180
    assert r.status_code == 200
    if protocol == "openai":
        assert b"[DONE]" in r.content
    else:
        assert b"message_stop" in r.content
    r = send(gw, k, "1,1")
    assert_error(r, "quota_exceeded", protocol)
    assert "quota" in r.text
    assert r.headers["x-should-retry"] == "false"
    # The day ends at midnight UTC: Retry-After says when.
    assert 0 < int(r.headers["Retry-After"]) <= 86400


def test_quota_survives_graceful_and_full_restart(gw):
    kid, k = make_key(gw, "--quota", 50, "--quota-period", "total")
    other_id, other = make_key(gw, "--quota", 1000, "--quota-period", "total")
    assert chat(gw, k, "40,20").status_code == 200
    assert chat(gw, other, "40,20").status_code == 200   # 60 of 1000
    assert chat(gw, k, "1,1").status_code == 429
    gw.graceful()
    assert chat(gw, k, "1,1").status_code == 429
    gw.stop()
    gw.start()
    r = chat(gw, k, "1,1")
    assert r.status_code == 429, r.text
    assert "60 used" in r.text
    # Another key's count came back too, and goes on from there.
    assert chat(gw, other, "900,30").status_code == 200  # 990
    assert chat(gw, other, "1,1").status_code == 200     # 992
    assert chat(gw, other, "10,0").status_code == 200    # 1002
    assert chat(gw, other, "1,1").status_code == 429


def test_response_without_usage_charges_nothing(gw):
    kid, k = make_key(gw, "--quota", 10, "--quota-period", "day")
    h = openai_headers(k)
    h["X-Mock-Status"] = "500"
    for _ in range(3):
        assert post(gw, "/v1/chat/completions", chat_body(), h).status_code \
            == 500
    assert chat(gw, k, "1,1").status_code == 200


def test_default_tpm(make_gateway):
    g = make_gateway(extra_server_conf="ClawdRouterDefaultTPM 60")
    kid, k = make_key(g, "--name", "default-tpm")
    r = chat(g, k, "50,20")
    assert r.status_code == 200
    assert r.headers["x-ratelimit-limit-tokens"] == "60"
    assert chat(g, k, "1,1").status_code == 429
    # A key's own tpm of 0 is no limit.
    kid, k = make_key(g, "--tpm", 0)
    for _ in range(3):
        r = chat(g, k, "50,20")
        assert r.status_code == 200
        assert "x-ratelimit-limit-tokens" not in r.headers
