# Licensed under the Apache License, Version 2.0.
"""The official OpenAI and Anthropic SDKs (npm `openai`, `@anthropic-ai/sdk`)
against the gateway: runs tests/js/sdk.test.mjs with node's test runner,
then checks what the mock upstream received from those SDK calls.

Needs Node.js 20+ and the pinned packages: `npm ci --prefix tests/js`."""

import os
import re
import secrets
import shutil
import string
import subprocess

import pytest

from harness import (ANTHROPIC_CREDENTIAL, OPENAI_CREDENTIAL, REQUEST_ID_RE,
                     registry)

JS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "js")
SDK_TEST = os.path.join(JS_DIR, "sdk.test.mjs")
PACKAGES = ("openai", "@anthropic-ai/sdk")

# The `X-Sdk-Test` names of the requests sdk.test.mjs expects the gateway to
# forward, and of those it must refuse (bad key, model not allowed, no route).
FORWARDED = {
    "openai-chat", "openai-stream", "openai-stream-timing",
    "openai-limited-ok", "openai-own-id-ok", "openai-upstream-error",
    "anthropic-message", "anthropic-stream", "anthropic-bearer",
    "anthropic-limited-ok", "anthropic-own-id-ok", "anthropic-upstream-error",
    "anthropic-count-tokens",
}
REFUSED = {
    "openai-bad-key", "openai-forbidden", "openai-no-route", "openai-own-id",
    "anthropic-bad-key", "anthropic-forbidden", "anthropic-own-id",
    "openai-bad-key-retry", "anthropic-bad-key-retry",
}


def _node():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20 or later) is not on PATH", pytrace=False)
    return node


def _require_packages():
    missing = [p for p in PACKAGES
               if not os.path.isfile(os.path.join(JS_DIR, "node_modules", p,
                                                  "package.json"))]
    if missing:
        pytest.fail("npm packages %s are not installed in tests/js/node_modules: "
                    "run `npm ci --prefix tests/js`" % ", ".join(missing),
                    pytrace=False)


def _unknown_key():
    """A well-formed key no store holds; registered with the harness so its
    secret scan also checks that a refused key is never logged."""
    alphabet = string.ascii_letters + string.digits
    key = "sk-" + "".join(secrets.choice(alphabet) for _ in range(48))
    registry.add_key(key)
    return key


def _node_env(gateway, upstream, key, limited_key, unknown_key):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "NODE_OPTIONS"))}
    env.update({
        "CR_GATEWAY_URL": gateway.url,
        "CR_KEY": key,
        "CR_LIMITED_KEY": limited_key,
        "CR_UNKNOWN_KEY": unknown_key,
        "CR_UPSTREAM_URL": upstream.url,
        "NO_COLOR": "1",
    })
    return env


def test_official_sdks_through_gateway(gateway, upstream):
    node = _node()
    _require_packages()
    _, key = gateway.create_key(name="sdk-all", models="*")
    _, limited_key = gateway.create_key(
        name="sdk-limited", models="gpt-4o-mini,claude-3-5-haiku-*")
    unknown_key = _unknown_key()
    client_keys = (key, limited_key, unknown_key)

    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", SDK_TEST],
        cwd=JS_DIR, env=_node_env(gateway, upstream, key, limited_key,
                                  unknown_key),
        capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    for k in client_keys:
        output = output.replace(k, "<client key>")
    assert run.returncode == 0, (
        "node --test tests/js/sdk.test.mjs failed (exit %d) against %r:\n%s\n%s"
        % (run.returncode, gateway, output, gateway.error_log_tail()))

    # every test of the file ran and passed (none skipped, none lost)
    with open(SDK_TEST, encoding="utf-8") as f:
        declared = len(re.findall(r"^test\(", f.read(), re.M))
    passed = re.search(r"^\S* ?pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) == declared, (
        "expected %d passing SDK tests:\n%s" % (declared, output))

    # A wrong key with the SDKs' retries on: exactly one request each
    # reached the gateway (SPEC 10, x-should-retry: false).
    for rid in ("sdk-test.retry-openai", "sdk-test.retry-anthropic"):
        lines = [l for l in gateway.access_log_lines()
                 if 'request_id="%s"' % rid in l]
        assert len(lines) == 1, (rid, lines)
        assert '" 401 ' in lines[0], lines[0]

    # What the upstream got from those SDK calls.
    seen = {}
    for rec in upstream.requests:
        name = rec.headers.get("X-Sdk-Test")
        assert name, "upstream got a request without X-Sdk-Test: %r" % rec
        seen.setdefault(name, []).append(rec)
    assert not REFUSED & set(seen), (
        "refused requests reached the upstream: %s" % sorted(REFUSED & set(seen)))
    assert set(seen) == FORWARDED, (
        "forwarded: %s, expected %s" % (sorted(seen), sorted(FORWARDED)))

    for name, recs in seen.items():
        for rec in recs:
            assert rec.method == "POST"
            headers = "\n".join("%s: %s" % hv for hv in rec.header_list)
            for k in client_keys:
                assert k not in headers, "%s: a client key went upstream" % name
            request_id = rec.headers.get("Request-Id")
            assert request_id and REQUEST_ID_RE.match(request_id), name
            assert rec.headers.get("X-Request-Id") == request_id, name
            if name.endswith("own-id-ok"):
                assert request_id.startswith("sdk-test."), (name, request_id)
            if name.startswith("openai-"):
                assert rec.path == "/openai/v1/chat/completions", name
                assert rec.headers.get("Authorization") == (
                    "Bearer " + OPENAI_CREDENTIAL), name
                assert "x-api-key" not in rec.headers, name
            else:
                assert rec.path == ("/anthropic/v1/messages/count_tokens"
                                    if name == "anthropic-count-tokens"
                                    else "/anthropic/v1/messages"), name
                assert rec.headers.get("x-api-key") == ANTHROPIC_CREDENTIAL, name
                # the Bearer the Anthropic SDK sent with authToken is gone
                assert "Authorization" not in rec.headers, name
                # passed through as the SDK sent it (1.x sends its own date)
                assert re.match(r"^\d{4}-\d{2}-\d{2}$",
                                rec.headers.get("anthropic-version") or ""), name
    assert seen["openai-stream"][0].json().get("stream") is True
    assert seen["anthropic-stream"][0].json().get("stream") is True
