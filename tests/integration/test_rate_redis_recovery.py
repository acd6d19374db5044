# Licensed under the Apache License, Version 2.0.
"""Redis rate store: a key's grid is created by the request whose INCR of
the claim key returns 1.  If that request's process dies between its INCR
and its SETEX, the claim has no lifetime; the gateway must not wait for it
forever."""

import socket

import pytest

from test_rate_cluster import CounterServer
from test_rate_helpers import has_rate_headers, one

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
