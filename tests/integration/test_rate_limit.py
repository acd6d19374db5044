# Licensed under the Apache License, Version 2.0.
"""Per-key rate limits on one host (ClawdRouterRateStore shm, the default),
under the prefork (4+ children) and event MPMs, and the exact burst also
under worker and with the pthread mutex the README advises: SPEC sections
4 and 5."""

import os
import time

import pytest

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


@pytest.mark.parametrize("mpm", ["prefork", "worker", "event"])
def test_burst_exact_with_pthread_mutex(make_gateway, mpm):
    """The README's "Mutex pthread clawdrouter-ratestore" (a process-shared
    pthread mutex in place of Debian's fcntl() default): still one exact
    sequence of decisions across every child and thread, and across a
    graceful restart."""
    gw = make_gateway(mpm=mpm, name="pthread-" + mpm,
                      extra_server_conf="Mutex pthread clawdrouter-ratestore")
    if mpm == "prefork":
        deadline = time.time() + 10
        while len(child_pids(gw)) < 4 and time.time() < deadline:
            time.sleep(0.1)
        assert len(child_pids(gw)) >= 4
    _, key = gw.create_key(rpm=10)
    check_burst(burst(gw.url, "openai", key, 30), "openai", 10)
    _, other = gw.create_key(rpm=4)
    check_burst(burst(gw.url, "anthropic", other, 12), "anthropic", 4)
    gw.graceful()
    assert_error(one(gw.url, "openai", key), "rate_limited", "openai")
