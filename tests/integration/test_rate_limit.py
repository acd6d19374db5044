# Licensed under the Apache License, Version 2.0.
"""Per-key rate limits on one host (ClawdRouterRateStore shm, the default),
under the prefork (4+ children) and event MPMs, and the exact burst also
under worker, with Debian's default Mutex line, across graceful restarts
and after children are killed mid-burst: SPEC sections 4 and 5."""

import os
import signal
import threading
import time

import pytest
import requests

from harness.client import assert_error
from test_rate_helpers import (burst, check_burst, has_rate_headers, one,
                               rate_headers, statuses)


def child_pids(gw):
    parent = gw.pid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/status" % entry) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == parent:
                out.append(int(entry))
    return out


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_burst_admits_exactly_rpm(gateway, protocol):
    key_id, key = gateway.create_key(rpm=10)
    if gateway.mpm == "prefork":
        # StartServers 4: wait until every child has been forked.
        deadline = time.time() + 10
        while len(child_pids(gateway)) < 4 and time.time() < deadline:
            time.sleep(0.1)
        assert len(child_pids(gateway)) >= 4
    responses = burst(gateway.url, protocol, key, 30)
    check_burst(responses, protocol, 10)


def test_refill_after_wait(gateway):
    _, key = gateway.create_key(rpm=10)
    check_burst(burst(gateway.url, "openai", key, 30), "openai", 10)
    burst_end = time.time()
    # One request comes back every 6 s: 12.2 s after the burst, two have.
    time.sleep(12.2)
    responses = burst(gateway.url, "openai", key, 10)
    assert statuses(responses) == {200: 2, 429: 8}
    # Sanity of the timing assumption: the second burst ended before a
    # third request could have come back.
    assert time.time() - burst_end < 17.5
    for r in responses:
        assert has_rate_headers(r)


def test_one_key_does_not_touch_another(gateway):
    _, first = gateway.create_key(rpm=3)
    _, second = gateway.create_key(rpm=3)
    _, unlimited = gateway.create_key(rpm=0)
    assert statuses(burst(gateway.url, "openai", first, 9)) == {200: 3, 429: 6}
    check_burst(burst(gateway.url, "anthropic", second, 9), "anthropic", 3)
    responses = burst(gateway.url, "openai", unlimited, 20)
    assert statuses(responses) == {200: 20}
    assert not any(has_rate_headers(r) for r in responses)


def test_only_requests_that_pass_are_counted(gateway):
    _, key = gateway.create_key(rpm=3, models="gpt-*,mistral-*")
    # 403: model not permitted; 404: no route; 400: bad body or headers.
    for _ in range(4):
        assert_error(one(gateway.url, "openai", key, model="o1-mini"),
                     "model_not_permitted", "openai")
        assert_error(one(gateway.url, "openai", key, model="mistral-large"),
                     "model_not_found", "openai")
        r = one(gateway.url, "openai", key, body={"messages": []})
        assert_error(r, "invalid_body", "openai")
        r = one(gateway.url, "anthropic", key, model="gpt-4o",
                extra_headers={"anthropic-version": None})
        assert_error(r, "missing_version", "anthropic")
        assert_error(one(gateway.url, "openai", "sk-" + "x" * 48),
                     "invalid_key", "openai")
    responses = [one(gateway.url, "openai", key) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [rate_headers(r, "openai")[1] for r in responses] == [2, 1, 0, 0]


def test_update_rpm_takes_effect_on_next_request(gateway):
    key_id, key = gateway.create_key(rpm=2)
    assert [one(gateway.url, "openai", key).status_code
            for _ in range(3)] == [200, 200, 429]
    gateway.keys("update", key_id, "--rpm", "5", check=True)
    # The two requests already used stay used: three more of five.
    responses = [one(gateway.url, "openai", key) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert rate_headers(responses[0], "openai")[:2] == (5, 2)
    gateway.keys("update", key_id, "--rpm", "1", check=True)
    r = one(gateway.url, "anthropic", key)
    assert_error(r, "rate_limited", "anthropic")
    assert rate_headers(r, "anthropic")[:2] == (1, 0)
    assert int(r.headers["Retry-After"]) > 12


def test_graceful_restart_keeps_counts(gateway):
    _, key = gateway.create_key(rpm=3)
    assert statuses(burst(gateway.url, "openai", key, 6)) == {200: 3, 429: 3}
    gateway.graceful()
    assert_error(one(gateway.url, "openai", key), "rate_limited", "openai")
    _, other = gateway.create_key(rpm=3)
    check_burst(burst(gateway.url, "openai", other, 9), "openai", 3)


def test_default_rpm(make_gateway):
    gw = make_gateway(mpm="event", default_rpm=4)
    _, by_default = gw.create_key()
    _, own_limit = gw.create_key(rpm=6)
    _, no_limit = gw.create_key(rpm=0)
    check_burst(burst(gw.url, "openai", by_default, 12), "openai", 4)
    check_burst(burst(gw.url, "anthropic", own_limit, 12), "anthropic", 6)
    responses = burst(gw.url, "openai", no_limit, 12)
    assert statuses(responses) == {200: 12}
    assert not any(has_rate_headers(r) for r in responses)


def test_full_table_gives_way_to_new_keys(make_gateway):
    gw = make_gateway(mpm="prefork",
                      extra_server_conf="ClawdRouterRateShmEntries 4\n")
    keys = [gw.create_key(rpm=1)[1] for _ in range(8)]
    # Twice as many limited keys as entries: every new key is served.
    for key in keys:
        assert one(gw.url, "openai", key).status_code == 200
    # The most recent keys are still counted...
    assert_error(one(gw.url, "openai", keys[-1]), "rate_limited", "openai")
    # ...the least recently used gave way and start with a full bucket.
    assert one(gw.url, "openai", keys[0]).status_code == 200


def wait_children(gw, n=4):
    deadline = time.time() + 10
    while len(child_pids(gw)) < n and time.time() < deadline:
        time.sleep(0.1)
    assert len(child_pids(gw)) >= n


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_burst_exact_with_debian_mutex_default(make_gateway, mpm):
    """With Debian's "Mutex file:... default" (the harness's config has it)
    and no Mutex line of our own: the lock-free table gives one exact
    sequence of decisions across every child and thread, and across a
    graceful restart."""
    gw = make_gateway(mpm=mpm, name="mutexdefault-" + mpm)
    assert "Mutex file:" in gw.config_text()
    if mpm == "prefork":
        wait_children(gw)
    _, key = gw.create_key(rpm=10)
    check_burst(burst(gw.url, "openai", key, 30), "openai", 10)
    _, other = gw.create_key(rpm=4)
    check_burst(burst(gw.url, "anthropic", other, 12), "anthropic", 4)
    gw.graceful()
    assert_error(one(gw.url, "openai", key), "rate_limited", "openai")
    check_burst(burst(gw.url, "openai", gw.create_key(rpm=5)[1], 15),
                "openai", 5)


def test_old_mutex_line_still_accepted(make_gateway):
    """"Mutex pthread clawdrouter-ratestore", which older READMEs advised,
    still starts the server (it is no longer needed and changes nothing)."""
    gw = make_gateway(mpm="event", name="mutexline",
                      extra_server_conf="Mutex pthread clawdrouter-ratestore")
    _, key = gw.create_key(rpm=6)
    check_burst(burst(gw.url, "openai", key, 18), "openai", 6)


def test_children_killed_mid_burst_leave_the_table_working(make_gateway):
    """SIGKILL to every child, again and again, while bursts of several
    keys go on (a table of 8 entries for 16 keys, so entries are being
    claimed and taken over when the kills land): nothing hangs, and
    afterwards every burst is exact again."""
    gw = make_gateway(mpm="prefork", name="sigkill",
                      extra_server_conf="ClawdRouterRateShmEntries 8\n")
    wait_children(gw)
    busy = [gw.create_key(rpm=600)[1] for _ in range(16)]
    stop = threading.Event()

    def hammer(i):
        while not stop.is_set():
            try:
                one(gw.url, "openai", busy[i % len(busy)])
            except requests.RequestException:
                pass            # its child was killed under it
            i += 3

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    killed = 0
    try:
        end = time.time() + 4
        while time.time() < end:
            for pid in child_pids(gw):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
            time.sleep(0.15)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert killed >= 8
    assert not any(t.is_alive() for t in threads)
    wait_children(gw, 2)             # MinSpareServers 2
    # Fresh keys (claiming and taking over entries the killed children
    # were using) are exact, in both protocols, and so is a second round.
    for rpm, protocol in ((5, "openai"), (4, "anthropic"), (7, "openai"),
                          (3, "anthropic")):
        _, key = gw.create_key(rpm=rpm)
        check_burst(burst(gw.url, protocol, key, 3 * rpm), protocol, rpm)
    assert "CR0221" not in gw.error_log_text()
