# Licensed under the Apache License, Version 2.0.
"""Browser tests of the key management console: runs tests/js/console.test.mjs
(node's test runner, playwright-core driving Debian's chromium headless, the
official OpenAI SDK) against a gateway with a console at /console, then
checks the store and the error log for what the browser did.

Needs Node.js 20+, `npm ci --prefix tests/js` (playwright-core, openai) and
Debian's chromium.  Screenshots land in tests/artifacts/."""

import json
import os
import shutil
import subprocess

import pytest

from harness import registry
from test_console_http import (USER, cli_records, start_console_gateway,
                               store_writable_by_httpd)

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS_DIR = os.path.join(TESTS_DIR, "js")
ARTIFACTS = os.path.join(TESTS_DIR, "artifacts")
CONSOLE_TEST = os.path.join(JS_DIR, "console.test.mjs")
CHROMIUM = os.environ.get("CR_CHROMIUM", "/usr/bin/chromium")
PACKAGES = ("playwright-core", "openai")


def _require_tools():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js 20 or later) is not on PATH", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s not found: apt-get install chromium" % CHROMIUM,
                    pytrace=False)
    missing = [p for p in PACKAGES
               if not os.path.isfile(os.path.join(JS_DIR, "node_modules", p,
                                                  "package.json"))]
    if missing:
        pytest.fail("npm packages %s are not installed in tests/js/node_modules:"
                    " run `npm ci --prefix tests/js`" % ", ".join(missing),
                    pytrace=False)
    return node


def test_console_in_a_browser(make_gateway, upstream):
    node = _require_tools()
    gw, users = start_console_gateway(make_gateway, "event", "console-browser")
    # Keys the browser sees elsewhere, not to be shown by the console.
    gw.create_key(name="cli-made", models="claude-*", rpm=5)
    store_writable_by_httpd(gw)
    keys_out = os.path.join(gw.root, "browser-keys.jsonl")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "NODE_OPTIONS"))}
    env.update({
        "CR_GATEWAY_URL": gw.url,
        "CR_CONSOLE_PATH": "/console",
        "CR_CONSOLE_USER": USER,
        "CR_CONSOLE_PASSWORD": users[USER],
        "CR_CHROMIUM": CHROMIUM,
        "CR_ARTIFACTS_DIR": ARTIFACTS,
        "CR_KEYS_OUT": keys_out,
        "NO_COLOR": "1",
    })
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", "--test-concurrency=1",
         CONSOLE_TEST],
        cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=300)

    made = []
    if os.path.exists(keys_out):
        with open(keys_out) as f:
            made = [json.loads(line) for line in f if line.strip()]
        os.unlink(keys_out)
    output = run.stdout + run.stderr
    for k in made:
        registry.add_key(k["key"])      # the session's secret scan checks them
        output = output.replace(k["key"], "<client key>")
    assert run.returncode == 0, (
        "node --test tests/js/console.test.mjs failed (exit %d):\n%s\n%s"
        % (run.returncode, output, gw.error_log_tail()))

    # Three keys made in the browser (zh, en, no JavaScript), all revoked in
    # the browser, as the store says; the first two with the token limits
    # typed in the form, the last with none.
    assert len(made) == 3, made
    records = {r["id"]: r for r in cli_records(gw)}
    for k in made:
        assert records[k["id"]]["status"] == "revoked", records[k["id"]]
    limits = [(records[k["id"]]["tpm"], records[k["id"]]["quota"],
               records[k["id"]]["quota_period"]) for k in made]
    assert limits == [(6000, 50000, "total"), (9000, 100000, "day"),
                      (None, None, None)], limits
    assert sum(1 for r in records.values() if r["status"] == "active") == 1
    log = gw.error_log_text()
    for k in made:
        assert "created key %s" % k["id"] in log
        assert "revoked key %s" % k["id"] in log
    for shot in ("console-list-zh.png", "console-created-zh.png",
                 "console-list-en.png", "console-created-en.png",
                 "console-invalid-tpm-en.png",
                 "console-revoked-zh.png", "console-list-mobile-zh.png"):
        path = os.path.join(ARTIFACTS, shot)
        assert os.path.getsize(path) > 10000, path
