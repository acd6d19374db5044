# Licensed under the Apache License, Version 2.0.
"""Token limits and quotas with the official SDKs (tests/js/tokens.test.mjs):
RateLimitError for tokens (retried) and for quota (not retried: the SDK
makes one request) in both SDKs."""

import json
import os
import re
import shutil
import subprocess

import pytest

JS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "js")
TEST_FILE = os.path.join(JS_DIR, "tokens.test.mjs")


def _key(gw, *args):
    p = gw.keys("create", "--json", *[str(a) for a in args], check=True)
    return json.loads(p.stdout)["key"]


@pytest.mark.mpm("event")
def test_sdks_see_token_limits_and_quotas(gateway, upstream):
    node = shutil.which("node")
    assert node, "node (Node.js 20 or later) is not on PATH"
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "openai")), \
        "run `npm ci --prefix tests/js`"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "NODE_OPTIONS"))}
    env.update({
        "CR_GATEWAY_URL": gateway.url,
        "CR_OPENAI_TPM_KEY": _key(gateway, "--tpm", 60000),
        "CR_ANTHROPIC_TPM_KEY": _key(gateway, "--tpm", 60000),
        "CR_OPENAI_QUOTA_KEY": _key(gateway, "--quota", 100,
                                    "--quota-period", "day"),
        "CR_ANTHROPIC_QUOTA_KEY": _key(gateway, "--quota", 100,
                                       "--quota-period", "day"),
        "NO_COLOR": "1",
    })
    run = subprocess.run([node, "--test", "--test-reporter=spec", TEST_FILE],
                         cwd=JS_DIR, env=env, capture_output=True, text=True,
                         timeout=120)
    out = run.stdout + run.stderr
    for k, v in env.items():
        if k.endswith("_KEY"):
            out = out.replace(v, "<key>")
    assert run.returncode == 0, out + gateway.error_log_tail()
    with open(TEST_FILE, encoding="utf-8") as f:
        declared = len(re.findall(r"^test\(", f.read(), re.M))
    passed = re.search(r"^\S* ?pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) == declared == 4, out
    # The quota refusals never reached the upstream: 2 + 2 forwarded.
    quota_calls = [r for r in upstream.requests
                   if r.headers.get("X-Mock-Usage") == "60,30"]
    assert len(quota_calls) == 4
