# Licensed under the Apache License, Version 2.0.
"""Redis rate store: a key's grid is created by the request whose INCR of
the claim key returns 1.  If that request's process dies between its INCR
and its SETEX, the claim has no lifetime; the gateway must not wait for it
forever.

And recovery (issue 9, finding 8): with ClawdRouterRateStoreFailure closed,
once Redis or memcached is back after a restart, no request is refused for
the outage, not even a burst over many connections that meets the stale
pooled connections of every child, under event and prefork."""

import socket

import pytest

from test_rate_cluster import CounterServer
from test_rate_helpers import burst, has_rate_headers, one, statuses

OUTAGE_TAG = "CR0201"


def redis_command(port, *args):
    msg = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        msg += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(msg)
        return s.recv(4096)


@pytest.fixture
def redis_gateway(make_gateway):
    server = CounterServer("redis").start()
    gw = make_gateway(mpm="event", rate_store=server.spec)
    yield server, gw
    server.stop()


@pytest.mark.allow_log(OUTAGE_TAG)
def test_claim_without_lifetime_is_dropped(redis_gateway):
    server, gw = redis_gateway
    kid, key = gw.create_key(rpm=5)
    # What a winner that died after INCR leaves behind: the claim, no grid.
    assert redis_command(server.port, "INCR",
                         "clawdrouter:rl:%s:5:init" % kid) == b":1\r\n"
    first = one(gw.url, "openai", key)
    # Policy open: served, without rate-limit headers, while it waits.
    assert first.status_code == 200
    assert not has_rate_headers(first)
    # The stale claim is gone: the next request creates the grid and is
    # limited again.
    second = one(gw.url, "openai", key)
    assert second.status_code == 200
    assert has_rate_headers(second)
    assert second.headers["x-ratelimit-limit-requests"] == "5"
    assert redis_command(server.port, "EXISTS",
                         "clawdrouter:rl:%s:5" % kid) == b":1\r\n"


BURST = 48          # concurrent requests, each on its own connection


@pytest.fixture(params=["event", "prefork"])
def closed_gateway(request, make_gateway):
    def make(kind):
        server = CounterServer(kind).start()
        gw = make_gateway(mpm=request.param, rate_store=server.spec,
                          rate_store_failure="closed",
                          name="recover-%s" % kind)
        return server, gw
    made = []

    def factory(kind):
        made.append(make(kind))
        return made[-1]
    yield factory
    for server, _ in made:
        server.stop()


def no_503_burst(gw, key, protocol="openai"):
    got = statuses(burst(gw.url, protocol, key, BURST))
    assert got == {200: BURST}, got


@pytest.mark.allow_log(OUTAGE_TAG, "CR0202")
@pytest.mark.parametrize("kind", ["redis", "memcache"])
def test_back_after_restart_no_503(closed_gateway, kind):
    server, gw = closed_gateway(kind)
    _, key = gw.create_key(rpm=100000)
    # Fill every child's pool of connections.
    no_503_burst(gw, key)
    no_503_burst(gw, key, "anthropic")
    # A restart between two bursts: every pooled connection is stale.
    server.stop()
    server.start()
    no_503_burst(gw, key)
    no_503_burst(gw, key, "anthropic")
    # An outage seen by requests (refused: closed), then the server back:
    # the very first burst after it is back gets no 503.
    server.stop()
    try:
        down = [one(gw.url, "openai", key) for _ in range(5)]
        assert [r.status_code for r in down] == [503] * 5
        assert down[0].json()["error"]["code"] == "rate_store_unavailable"
        got = statuses(burst(gw.url, "openai", key, BURST))
        assert got == {503: BURST}, got
    finally:
        server.start()
    no_503_burst(gw, key)
    no_503_burst(gw, key, "anthropic")
    # Limits work again: a fresh key with rpm=5 is admitted exactly 5 times.
    _, small = gw.create_key(rpm=5)
    got = statuses(burst(gw.url, "openai", small, 20))
    assert got == {200: 5, 429: 15}, got
