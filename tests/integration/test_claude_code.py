# Licensed under the Apache License, Version 2.0.
"""The Claude Code CLI (npm `@anthropic-ai/claude-code`, pinned in
tests/js/package.json and package-lock.json) against the gateway, as a user
would run it: `claude -p "say hello"` with ANTHROPIC_BASE_URL pointing at
the gateway in front of the mock upstream, HOME in a fresh directory and no
network needed.

What Claude Code sends (seen with 2.1.197): one streamed
`POST /v1/messages?beta=true` of about 120 KB (25 tools, a large system
prompt, `anthropic-beta` flags) per `-p` turn; with a gateway key in
ANTHROPIC_API_KEY it sends `x-api-key`, with ANTHROPIC_AUTH_TOKEN
`Authorization: Bearer`. Without a proxy configured it also starts with a
`HEAD` of the base URL (a connection warm-up; httpd answers it outside the
gateway's <Location>). Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 it
also tries api.anthropic.com:443 (telemetry, event logging, feature flags),
six connections in a `-p` run; DISABLE_TELEMETRY alone leaves three of
them, DISABLE_AUTOUPDATER and DISABLE_ERROR_REPORTING alone none fewer.
The test points HTTPS_PROXY/HTTP_PROXY at a trap that records and drops
every connection (NO_PROXY for 127.0.0.1), so any traffic to another host
fails at once, never needs the internet, and fails the test.

A wrong key: the gateway's 401 carries `x-should-retry: false`, so Claude
Code gives up after one request. (Against a 401 without that header it
retries: seven requests in the first 60 s, still going.)

Needs the pinned packages: `npm ci --prefix tests/js`."""

import json
import os
import re
import secrets
import socket
import string
import subprocess
import threading
import time

import pytest

from harness import ANTHROPIC_CREDENTIAL, registry

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS_DIR = os.path.join(TESTS_DIR, "js")
README = os.path.join(os.path.dirname(TESTS_DIR), "README.md")
CLAUDE = os.path.join(JS_DIR, "node_modules", ".bin", "claude")
PACKAGE = "@anthropic-ai/claude-code"

MODEL = "claude-sonnet-4-5"
FAST_MODEL = "claude-haiku-4-5"
MOCK_TEXT = "Hello from the mock."
KEY_VARS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")

# The settings README's "Clients" section shows for Claude Code, besides
# ANTHROPIC_BASE_URL and the key (test_readme_shows_these_settings checks
# that the README shows exactly these).
SETTINGS = {
    "ANTHROPIC_MODEL": MODEL,
    "ANTHROPIC_SMALL_FAST_MODEL": FAST_MODEL,
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": FAST_MODEL,
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
}

GOOD_KEY_TIMEOUT = 90
WRONG_KEY_TIMEOUT = 60
WRONG_KEY_MAX_SECONDS = 15


class ProxyTrap:
    """A listener on 127.0.0.1 given to Claude Code as its HTTP(S) proxy:
    records the first line of every connection (`CONNECT host:443 ...`)
    and closes it, so that a request to any host but the gateway fails at
    once and is seen."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.seen = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                except OSError as e:
                    first = repr(e).encode()
                self.seen.append(first.decode("latin-1"))

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def claude():
    """Path of the pinned `claude` executable, checked to be that version."""
    with open(os.path.join(JS_DIR, "package.json"), encoding="utf-8") as f:
        pinned = json.load(f)["dependencies"][PACKAGE]
    if not os.path.isfile(CLAUDE):
        pytest.fail("%s is not installed in tests/js/node_modules: run "
                    "`npm ci --prefix tests/js`" % PACKAGE, pytrace=False)
    run = subprocess.run([CLAUDE, "--version"], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split()[0] == pinned, (run.stdout, pinned)
    return CLAUDE


@pytest.fixture(scope="module")
def trap():
    t = ProxyTrap()
    yield t
    t.close()


@pytest.fixture(scope="module")
def cc_key(gateway):
    """A key allowed exactly the two models Claude Code is told to use."""
    _, key = gateway.create_key(name="claude-code",
                                models="%s,%s" % (MODEL, FAST_MODEL))
    return key


def _unknown_key():
    alphabet = string.ascii_letters + string.digits
    key = "sk-" + "".join(secrets.choice(alphabet) for _ in range(48))
    registry.add_key(key)     # the harness's secret scan looks for it too
    return key


def _run_claude(claude, gateway, trap, tmp_path, key_var, key, timeout):
    """Runs `claude -p "say hello"`; returns (CompletedProcess or None on
    timeout, seconds, the gateway's new access log lines for /v1/messages)."""
    home = tmp_path / "home"
    work = tmp_path / "work"          # an empty project directory
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        # anything not for the gateway goes to the trap, never out
        "HTTPS_PROXY": trap.url, "HTTP_PROXY": trap.url,
        "https_proxy": trap.url, "http_proxy": trap.url,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "ANTHROPIC_BASE_URL": gateway.url,
        key_var: key,
    }
    env.update(SETTINGS)
    before = len(gateway.access_log_lines())
    trap.seen.clear()
    start = time.monotonic()
    try:
        run = subprocess.run([claude, "-p", "say hello"], cwd=str(work),
                             env=env, capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        run = None
    elapsed = time.monotonic() - start

    def messages_lines():
        return [l for l in gateway.access_log_lines()[before:]
                if '"POST /v1/messages' in l]
    # httpd writes the access line after the response: let it land
    gateway.wait_access_log(lambda _l: bool(messages_lines()), timeout=5)
    time.sleep(0.3)
    return run, elapsed, messages_lines()


def _output(run, *keys):
    out = "" if run is None else run.stdout + run.stderr
    for k in keys:
        out = out.replace(k, "<client key>")
    return out


@pytest.mark.parametrize("key_var", KEY_VARS)
def test_claude_code_answers_through_gateway(claude, gateway, upstream, trap,
                                              cc_key, tmp_path, key_var):
    run, elapsed, lines = _run_claude(claude, gateway, trap, tmp_path,
                                      key_var, cc_key, GOOD_KEY_TIMEOUT)
    out = _output(run, cc_key)
    assert run is not None, "claude -p did not finish in %d s" % GOOD_KEY_TIMEOUT
    assert run.returncode == 0, "exit %d after %.1f s:\n%s\n%s" % (
        run.returncode, elapsed, out, gateway.error_log_tail())
    assert run.stdout.strip() == MOCK_TEXT, out
    assert cc_key not in run.stdout + run.stderr

    # nothing went anywhere but the gateway
    assert trap.seen == [], trap.seen

    # the gateway served every /v1/messages call with this key
    assert lines, "no /v1/messages in the access log"
    for line in lines:
        assert '" 200 ' in line, line
        assert 'upstream="anthropic"' in line, line
        assert re.search(r'model="(%s|%s)"' % (MODEL, FAST_MODEL), line), line

    # what the upstream received: Claude Code's streamed agent requests,
    # with the provider credential in place of the client key
    assert len(upstream.requests) == len(lines), (upstream.requests, lines)
    models = []
    for rec in upstream.requests:
        assert rec.method == "POST", rec
        assert rec.path in ("/anthropic/v1/messages",
                            "/anthropic/v1/messages/count_tokens"), rec
        assert rec.headers.get("x-api-key") == ANTHROPIC_CREDENTIAL, rec
        assert "Authorization" not in rec.headers, rec
        headers = "\n".join("%s: %s" % hv for hv in rec.header_list)
        assert cc_key not in headers and cc_key.encode() not in rec.body, rec
        assert rec.headers.get("anthropic-version"), rec
        assert "claude-cli/" in (rec.headers.get("User-Agent") or ""), rec
        doc = rec.json()
        models.append(doc.get("model"))
        if rec.path.endswith("/messages"):
            assert doc.get("stream") is True, rec
            assert doc.get("tools"), "no tools in Claude Code's request"
    assert MODEL in models, models
    assert set(models) <= {MODEL, FAST_MODEL}, models


@pytest.mark.parametrize("key_var", KEY_VARS)
def test_claude_code_wrong_key_fails_at_once(claude, gateway, upstream, trap,
                                             cc_key, tmp_path, key_var):
    assert cc_key                     # the key store holds a key, not this one
    wrong = _unknown_key()
    run, elapsed, lines = _run_claude(claude, gateway, trap, tmp_path,
                                      key_var, wrong, WRONG_KEY_TIMEOUT)
    out = _output(run, wrong)
    print("claude -p with a wrong key (%s, %s MPM): exit %s after %.2f s, "
          "%d request(s) at /v1/messages"
          % (key_var, gateway.mpm, None if run is None else run.returncode,
             elapsed, len(lines)))
    assert run is not None, (
        "claude -p with a wrong key still running after %d s; %d requests "
        "at /v1/messages:\n%s" % (WRONG_KEY_TIMEOUT, len(lines), "\n".join(lines)))
    assert run.returncode != 0, out
    assert elapsed < WRONG_KEY_MAX_SECONDS, "%.1f s" % elapsed
    # exactly one request, refused by the gateway with x-should-retry: false
    assert len(lines) == 1, "\n".join(lines)
    assert '" 401 ' in lines[0], lines[0]
    assert "401" in out, out
    assert wrong not in run.stdout + run.stderr
    assert upstream.requests == [], upstream.requests
    assert trap.seen == [], trap.seen


def test_readme_shows_these_settings():
    """README's Claude Code settings are the ones this test runs with."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## Clients\n", 1)[1].split("\n## ", 1)[0]
    part = section.split("**Claude Code**", 1)[1].split("\n- **", 1)[0]
    block = re.search(r"```sh\n(.*?)```", part, re.S)
    assert block, "no ```sh block in README's Claude Code item"
    shown = dict(re.findall(r"^\s*export (\w+)=(\S+)", block.group(1), re.M))
    expected = dict(SETTINGS, ANTHROPIC_BASE_URL="https://gateway.example",
                    ANTHROPIC_AUTH_TOKEN="sk-...")
    assert shown == expected
    # the other key variable is mentioned as the alternative
    assert "ANTHROPIC_API_KEY=sk-..." in block.group(1)
