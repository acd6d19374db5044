# Licensed under the Apache License, Version 2.0.
"""Token limits and quotas shared between hosts (SPEC sections 8 and 11):
two Apache instances, one prefork and one event, pointing at one real
Redis, then at one real memcached (started here on free ports, as in
test_rate_cluster.py).  Tokens used on one host refuse on the other;
the response that crosses a quota completes and the next one, on the
other host, is refused with insufficient_quota; with Redis, quotas
survive a full stop and start of both hosts; with the store down,
ClawdRouterRateStoreFailure decides (open: served, closed: 503)."""

import datetime
import json
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (anthropic_headers, chat_body, messages_body,
                     openai_headers, post)
from harness.client import assert_error
from test_rate_cluster import OUTAGE_TAG, CounterServer


@pytest.fixture(scope="module", params=["redis", "memcache"])
def cluster(request, make_module_gateway):
    server = CounterServer(request.param).start()
    first = make_module_gateway(mpm="prefork", rate_store=server.spec,
                                log_level="info",
                                name="tok-%s-a" % request.param)
    shared_keys = "ClawdRouterKeyStore %s\n" % first.store_spec
    second = make_module_gateway(mpm="event", rate_store=server.spec,
                                 log_level="info",
                                 extra_server_conf=shared_keys,
                                 name="tok-%s-b" % request.param)
    closed = make_module_gateway(mpm="event", rate_store=server.spec,
                                 rate_store_failure="closed",
                                 log_level="info",
                                 extra_server_conf=shared_keys,
                                 name="tok-%s-closed" % request.param)
    yield request.param, server, first, second, closed
    server.stop()


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


SEND = {"openai": chat, "anthropic": message}
PRE = {"openai": "x-ratelimit-%s-tokens",
       "anthropic": "anthropic-ratelimit-tokens-%s"}


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_tpm_shared_across_hosts(cluster, upstream, protocol):
    """tpm 1000: 600 used on A, then B admits (600 < 1000) and uses 600
    more; both hosts then refuse (1200 in the window), without forwarding,
    with a Retry-After within the two windows the count can span."""
    _, _, first, second, _ = cluster
    send, pre = SEND[protocol], PRE[protocol]
    _, k = make_key(first, "--tpm", 1000)
    r = send(first, k, "500,100")
    assert r.status_code == 200, r.text
    assert r.headers[pre % "limit"] == "1000"
    assert r.headers[pre % "remaining"] == "1000"
    r = send(second, k, "500,100")
    assert r.status_code == 200, r.text
    assert r.headers[pre % "remaining"] == "400"     # A's 600 seen on B
    n = len(upstream.requests)
    for gw in (first, second):
        r = send(gw, k, "1,1")
        assert_error(r, "tokens_limited", protocol)
        assert r.headers[pre % "remaining"] == "0"
        assert r.headers.get("x-should-retry") != "false"
        ms = int(r.headers["retry-after-ms"])
        assert 1 <= ms <= 120000, ms
    assert len(upstream.requests) == n               # none forwarded


def test_tpm_streamed_and_concurrent_hosts(cluster):
    """A streamed response's tokens (its last chunk) are charged in the
    shared window; a key at 999 of 1000 is still admitted everywhere."""
    _, _, first, second, _ = cluster
    _, k = make_key(first, "--tpm", 1000)
    r = chat(second, k, "900,99", stream=True)
    assert r.status_code == 200 and b"[DONE]" in r.content
    r = chat(first, k, "1,1")
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-remaining-tokens"] == "1"
    assert chat(second, k, "1,1").status_code == 429


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_quota_crossing_across_hosts(cluster, protocol):
    _, _, first, second, _ = cluster
    send = SEND[protocol]
    _, k = make_key(first, "--quota", 100, "--quota-period", "day")
    assert send(first, k, "60,30").status_code == 200      # 90 used on A
    r = send(second, k, "60,30", stream=True)               # crosses on B
    assert r.status_code == 200
    assert (b"[DONE]" if protocol == "openai" else b"message_stop") \
        in r.content
    for gw in (first, second):
        r = send(gw, k, "1,1")
        assert_error(r, "quota_exceeded", protocol)
        assert "quota" in r.text and "180 used" in r.text
        assert r.headers["x-should-retry"] == "false"


def test_quota_total_survives_full_restart(cluster):
    """With Redis the counts live in Redis: a full stop and start of both
    hosts keeps them (no state file).  memcached keeps them too, as long
    as it runs (here it does; it keeps nothing across its own restart)."""
    kind, _, first, second, _ = cluster
    _, k = make_key(first, "--quota", 1000, "--quota-period", "total")
    _, full = make_key(first, "--quota", 100, "--quota-period", "total")
    assert chat(first, k, "300,200").status_code == 200     # 500
    assert chat(second, full, "100,50").status_code == 200  # 150: used up
    for gw in (first, second):
        gw.stop()
    for gw in (first, second):
        gw.start()
    assert_error(chat(first, full, "1,1"), "quota_exceeded", "openai")
    assert_error(chat(second, full, "1,1"), "quota_exceeded", "openai")
    assert chat(second, k, "250,240").status_code == 200    # 990
    assert chat(first, k, "5,4").status_code == 200          # 999
    assert chat(first, k, "1,0").status_code == 200          # 1000
    r = chat(second, k, "1,1")
    assert_error(r, "quota_exceeded", "openai")
    assert "1000 used" in r.text


def store_get(kind, port, key):
    """(value, seconds to live; -1 = never) as the store reports them, or
    None: redis-cli GET and TTL; memcached's meta get `mg KEY v t`."""
    if kind == "redis":
        def cli(*args):
            return subprocess.run(["/usr/bin/redis-cli", "-p", str(port)]
                                  + list(args), capture_output=True,
                                  text=True, check=True).stdout.strip()
        value = cli("GET", key)
        return (value, int(cli("TTL", key))) if value else None
    with socket.create_connection(("127.0.0.1", port), 2) as s:
        s.sendall(b"mg %s v t\r\n" % key.encode())
        reply = b""
        while not reply.endswith(b"\r\n") or reply.startswith(b"VA") \
                and reply.count(b"\r\n") < 2:
            reply += s.recv(4096)
    if not reply.startswith(b"VA"):
        return None
    head, value = reply.decode().split("\r\n")[:2]
    ttl = [f for f in head.split() if f.startswith("t")][0]
    return value, int(ttl[1:])


def test_store_keys_and_lifetimes(cluster):
    """What an operator sees in the store: one counter per 60 s window and
    one per quota period, each with a lifetime (a window's: 3 minutes from
    its start; a day's: an hour past its end); a total quota has none."""
    kind, server, first, _, _ = cluster
    kid, k = make_key(first, "--tpm", 5000, "--quota", 9000,
                      "--quota-period", "day")
    tid, t = make_key(first, "--quota", 9000, "--quota-period", "total")
    mid, m = make_key(first, "--quota", 9000, "--quota-period", "month")
    assert chat(first, k, "40,2").status_code == 200
    assert chat(first, t, "7,0").status_code == 200
    assert chat(first, m, "3,3").status_code == 200
    now = time.time()
    window = store_get(kind, server.port,
                       "clawdrouter:tk:%s:%d" % (kid, now // 60))
    if window is None:                    # charged just before a minute
        window = store_get(kind, server.port,
                           "clawdrouter:tk:%s:%d" % (kid, now // 60 - 1))
    day = store_get(kind, server.port,
                    "clawdrouter:tq:%s:d%d" % (kid, now // 86400))
    total = store_get(kind, server.port, "clawdrouter:tq:%s:t0" % tid)
    assert window[0] == "42" and 110 <= window[1] <= 180, window
    day_end = (now // 86400 + 1) * 86400
    assert day[0] == "42" and abs(day[1] - (day_end + 3600 - now)) <= 5, day
    assert total == ("7", -1)
    today = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    months = (today.year - 1970) * 12 + today.month - 1
    month_end = datetime.datetime(today.year + today.month // 12,
                                  today.month % 12 + 1, 1,
                                  tzinfo=datetime.timezone.utc).timestamp()
    month = store_get(kind, server.port,
                      "clawdrouter:tq:%s:m%d" % (mid, months))
    assert month[0] == "6", month
    assert abs(month[1] - (month_end + 3600 - now)) <= 5, month


def count_outage_lines(gw):
    return sum(1 for line in gw.error_log_text().splitlines()
               if OUTAGE_TAG in line)


@pytest.mark.allow_log(OUTAGE_TAG)
def test_store_down_failure_policy(cluster):
    _, server, first, second, closed = cluster
    _, k = make_key(first, "--tpm", 1000, "--quota", 5000)
    _, plain = make_key(first)
    # Every child holds pooled connections, which the stop will close.
    with ThreadPoolExecutor(16) as pool:
        warm = list(pool.map(lambda i: chat((closed, second)[i % 2], plain,
                                            "1,1"), range(48)))
    assert all(r.status_code == 200 for r in warm)
    assert chat(second, k, "10,10").status_code == 200
    before = count_outage_lines(second)
    server.stop()
    try:
        # open: served, without token limits or headers.
        for _ in range(10):
            r = chat(second, k, "600,600")
            assert r.status_code == 200, r.text
            assert "x-ratelimit-limit-tokens" not in r.headers
        logged = count_outage_lines(second) - before
        assert 1 <= logged <= 4, logged
        # closed: 503 in the protocol's format for a key with limits...
        assert_error(chat(closed, k, "1,1"), "rate_store_unavailable",
                     "openai")
        assert_error(message(closed, k, "1,1"), "rate_store_unavailable",
                     "anthropic")
        # ...and a key with no limit at all is still served.
        assert chat(closed, plain, "1,1").status_code == 200
    finally:
        server.start()
    # Back at once, with no restart and without a refusal, although every
    # pooled connection of every child was closed by the server's restart.
    # Counts start again (memcached and this test's Redis keep nothing
    # across their own restart).
    _, fresh = make_key(first, "--tpm", 100000)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: chat((closed, second)[i % 2],
                                               fresh, "1,1"), range(48)))
    assert [r.status_code for r in results] == [200] * 48, \
        [r.text for r in results if r.status_code != 200][:2]
    r = chat(closed, k, "600,0")
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-remaining-tokens"] == "1000"
    assert chat(first, k, "500,0").status_code == 200        # 1100 now
    assert chat(second, k, "1,1").status_code == 429
