# Licensed under the Apache License, Version 2.0.
"""Helpers shared by the rate-limit tests (no tests here): concurrent
bursts from many connections and checks of the rate-limit headers in both
protocols' styles (SPEC sections 4 and 5)."""

import datetime
import re
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from harness.client import (assert_error, chat_body, messages_body,
                            openai_headers, anthropic_headers, OPENAI_PATH,
                            ANTHROPIC_PATH)
import json

DURATION_RE = re.compile(r"^(?:\d+h)?(?:\d+m)?\d+s$|^\d+ms$")


def duration_seconds(text):
    """An OpenAI style duration ("6s", "1m0s", "250ms") in seconds."""
    assert DURATION_RE.match(text), text
    if text.endswith("ms"):
        return int(text[:-2]) / 1000.0
    total = 0
    for value, unit in re.findall(r"(\d+)([hms])", text):
        total += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def one(url, protocol, key, model=None, extra_headers=None, body=None):
    """One request on its own connection (a fresh Session)."""
    if protocol == "openai":
        path, h = OPENAI_PATH, openai_headers(key)
        doc = body if body is not None else chat_body(model or "gpt-4o-mini")
    else:
        path, h = ANTHROPIC_PATH, anthropic_headers(key)
        doc = body if body is not None else messages_body(
            model or "claude-3-5-haiku-latest")
    h.update(extra_headers or {})
    with requests.Session() as s:
        return s.post(url + path, data=json.dumps(doc).encode(), headers=h,
                      timeout=30)


def burst(urls, protocol, key, count, model=None):
    """count concurrent requests, each on its own connection, spread over
    the given gateway URLs in turn.  Returns the responses."""
    if isinstance(urls, str):
        urls = [urls]
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one, urls[i % len(urls)], protocol, key, model)
                   for i in range(count)]
        return [f.result() for f in futures]


def statuses(responses):
    out = {}
    for r in responses:
        out[r.status_code] = out.get(r.status_code, 0) + 1
    return out


def rate_headers(resp, protocol):
    """(limit, remaining, reset in seconds from now) from the response's
    rate-limit headers in the protocol's style; asserts the other style is
    absent."""
    h = resp.headers
    if protocol == "openai":
        assert "anthropic-ratelimit-requests-limit" not in h
        reset = duration_seconds(h["x-ratelimit-reset-requests"])
        return (int(h["x-ratelimit-limit-requests"]),
                int(h["x-ratelimit-remaining-requests"]), reset)
    assert "x-ratelimit-limit-requests" not in h
    text = h["anthropic-ratelimit-requests-reset"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", text), text
    at = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    reset = at.timestamp() - time.time()
    return (int(h["anthropic-ratelimit-requests-limit"]),
            int(h["anthropic-ratelimit-requests-remaining"]), reset)


def has_rate_headers(resp):
    return any(k.lower() in ("x-ratelimit-limit-requests",
                             "anthropic-ratelimit-requests-limit")
               for k in resp.headers)


def check_burst(responses, protocol, rpm):
    """Exactly rpm admitted out of the burst, with remaining counting down
    rpm-1 .. 0; every refusal a proper 429 saying when to come back."""
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(admitted) == rpm, statuses(responses)
    assert len(refused) == len(responses) - rpm, statuses(responses)
    interval = 60.0 / rpm
    remaining = sorted(rate_headers(r, protocol)[1] for r in admitted)
    assert remaining == list(range(rpm)), remaining
    for r in admitted:
        limit, _, reset = rate_headers(r, protocol)
        assert limit == rpm
        assert 0 < reset <= 61, reset
    for r in refused:
        assert_error(r, "rate_limited", protocol)
        limit, remaining, reset = rate_headers(r, protocol)
        assert (limit, remaining) == (rpm, 0)
        assert 0 < reset <= 62, reset
        secs = int(r.headers["Retry-After"])
        ms = int(r.headers["retry-after-ms"])
        assert 1 <= secs <= interval + 1, secs
        assert 0 < ms <= interval * 1000 + 1, ms
        assert secs == max(1, -(-ms // 1000)), (secs, ms)
    return admitted, refused
