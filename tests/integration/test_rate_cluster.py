# Licensed under the Apache License, Version 2.0.
"""Rate limits shared between hosts (SPEC section 8): two Apache instances
on two ports, one prefork and one event, both pointing at one real
memcached, then at one real Redis, started here on free ports."""

import os
import subprocess
import time

import pytest

from harness.client import assert_error
from harness.gateway import free_port
from test_rate_helpers import (burst, check_burst, has_rate_headers, one,
                               statuses)

OUTAGE_TAG = "CR0201"


class CounterServer:
    """memcached or redis-server on 127.0.0.1:<free port>; stop() and
    start() again keep the port."""

    def __init__(self, kind):
        self.kind = kind
        self.port = free_port()
        self.proc = None

    @property
    def spec(self):
        return "%s://127.0.0.1:%d" % (self.kind, self.port)

    def start(self):
        if self.kind == "memcache":
            cmd = ["/usr/bin/memcached", "-l", "127.0.0.1", "-p",
                   str(self.port), "-U", "0", "-m", "16"]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
        else:
            cmd = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port",
                   str(self.port), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            import socket
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("%s did not start" % self.kind)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module", params=["memcache", "redis"])
def cluster(request, make_module_gateway):
    server = CounterServer(request.param).start()
    first = make_module_gateway(mpm="prefork", rate_store=server.spec,
                                name="rate-%s-a" % request.param)
    shared_keys = "ClawdRouterKeyStore %s\n" % first.store_spec
    second = make_module_gateway(mpm="event", rate_store=server.spec,
                                 extra_server_conf=shared_keys,
                                 name="rate-%s-b" % request.param)
    closed = make_module_gateway(mpm="event", rate_store=server.spec,
                                 rate_store_failure="closed",
                                 extra_server_conf=shared_keys,
                                 name="rate-%s-closed" % request.param)
    yield server, first, second, closed
    server.stop()


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_burst_split_across_hosts_admits_exactly_rpm(cluster, protocol):
    server, first, second, _ = cluster
    _, key = first.create_key(rpm=10)
    responses = burst([first.url, second.url], protocol, key, 30)
    admitted, _ = check_burst(responses, protocol, 10)


def test_refill_is_shared(cluster):
    server, first, second, _ = cluster
    _, key = first.create_key(rpm=10)
    check_burst(burst([first.url, second.url], "openai", key, 30),
                "openai", 10)
    burst_end = time.time()
    time.sleep(12.2)
    responses = burst([second.url, first.url], "openai", key, 10)
    assert statuses(responses) == {200: 2, 429: 8}
    assert time.time() - burst_end < 17.5


def count_outage_lines(gw):
    return sum(1 for line in gw.error_log_text().splitlines()
               if OUTAGE_TAG in line)


@pytest.mark.allow_log(OUTAGE_TAG)
def test_store_down_open_closed_and_recovery(cluster):
    server, first, second, closed = cluster
    _, key = first.create_key(rpm=5)
    before = count_outage_lines(second)
    server.stop()
    try:
        # open: served, without limits or rate-limit headers.
        responses = [one(second.url, "openai", key) for _ in range(20)]
        assert statuses(responses) == {200: 20}
        assert not any(has_rate_headers(r) for r in responses)
        # One error-log line per interval and process, not per request.
        logged = count_outage_lines(second) - before
        assert 1 <= logged <= 4, logged
        # closed: 503 in the protocol's format.
        assert_error(one(closed.url, "openai", key),
                     "rate_store_unavailable", "openai")
        assert_error(one(closed.url, "anthropic", key),
                     "rate_store_unavailable", "anthropic")
    finally:
        server.start()
    # apr-util tries a dead server again after 5 s: limits come back by
    # themselves, on every host, with no restart of Apache.
    time.sleep(5.5)
    deadline = time.time() + 20
    while True:
        r = one(closed.url, "openai", key)
        if r.status_code == 200:
            break
        assert time.time() < deadline, r.text
        time.sleep(0.5)
    _, fresh = first.create_key(rpm=5)
    check_burst(burst([first.url, second.url, closed.url], "anthropic",
                      fresh, 15), "anthropic", 5)
