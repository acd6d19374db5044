# Licensed under the Apache License, Version 2.0.
"""Logging (SPEC 7): %u is the key id, the CLAWDROUTER_* variables are set
for the access log, and no key (client or upstream) is ever written to a
log at LogLevel trace8 or to the key store."""

import secrets
import string

import pytest

from harness import (UPSTREAM_CREDENTIALS, anthropic_headers, call,
                     chat_body, find_secrets, messages_body, openai_headers,
                     post, registry)

PROTOCOLS = ["openai", "anthropic"]


def random_key():
    alphabet = string.ascii_letters + string.digits
    k = "sk-" + "".join(secrets.choice(alphabet) for _ in range(48))
    registry.add_key(k)   # the session's secret scan looks for it too
    return k


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="logging")


def _access_line(gw, rid):
    line = gw.wait_access_log(lambda l: 'request_id="%s"' % rid in l)
    assert line, "no access log line for %s" % rid
    return line


@pytest.mark.parametrize("protocol,model,upstream_name", [
    ("openai", "gpt-4o-mini", "openai"),
    ("openai", "o1-mini", "filecred"),
    ("anthropic", "claude-3-5-haiku-latest", "anthropic")])
def test_access_log_of_forwarded_request(gateway, key, protocol, model,
                                         upstream_name):
    kid, k = key
    rid = "log-%s-%s" % (protocol, model)
    r = call(gateway, protocol, k, model=model, headers={"Request-Id": rid})
    assert r.status_code == 200
    line = _access_line(gateway, rid)
    fields = line.split(" ")
    assert fields[2] == kid, line                       # %u
    assert 'key_id="%s"' % kid in line
    assert 'model="%s"' % model in line
    assert 'upstream="%s"' % upstream_name in line
    assert 'resp_request_id="%s"' % rid in line
    assert k not in line


def test_access_log_of_refusals(gateway, key):
    kid, k = key
    r = call(gateway, "openai", None, headers={"Request-Id": "log-refused-401"})
    assert r.status_code == 401
    line = _access_line(gateway, "log-refused-401")
    assert line.split(" ")[2] == "-" and 'key_id="-"' in line
    # a 404 after the key was checked: key and model known, no upstream
    r = call(gateway, "openai", k, model="llama-3",
             headers={"Request-Id": "log-refused-404"})
    assert r.status_code == 404
    line = _access_line(gateway, "log-refused-404")
    assert line.split(" ")[2] == kid
    assert 'key_id="%s"' % kid in line and 'model="llama-3"' in line
    assert 'upstream="-"' in line


def test_no_secret_in_logs_or_store(gateway, upstream, key):
    """Exercise every path with keys at LogLevel trace8, then look for every
    key and upstream credential in every log file and the DBM files."""
    kid, k = key
    assert "trace8" in gateway.config_text()
    rid_kid, revoked = gateway.create_key(name="revoked-for-scan")
    gateway.revoke_key(rid_kid)
    mini_id, mini = gateway.create_key(name="mini", models="gpt-4o-mini")
    unknown = random_key()
    bad_shape = "sk-short-" + secrets.token_hex(8)
    registry.add_key(bad_shape)
    cases = []
    for p in PROTOCOLS:
        for key_used in (k, revoked, mini, unknown, bad_shape):
            cases.append((p, {"Authorization": "Bearer " + key_used}))
            cases.append((p, {"x-api-key": key_used}))
        cases.append((p, {"Authorization": "Bearer " + k, "x-api-key": unknown}))
        cases.append((p, {"Authorization": "Bearer " + k, "x-api-key": k}))
        cases.append((p, {"Authorization": "Basic " + k}))
    for p, h in cases:
        for model in (None, "llama-3", "gpt-4o"):
            if p == "openai":
                hh = dict(openai_headers(), **h)
                post(gateway, "/v1/chat/completions",
                     chat_body(model or "gpt-4o-mini"), hh)
            else:
                hh = dict(anthropic_headers(), **h)
                post(gateway, "/v1/messages",
                     messages_body(model or "claude-3-5-haiku-latest"), hh)
    # streamed and body-less ones too
    call(gateway, "openai", k, stream=True)
    call(gateway, "anthropic", k, stream=True)
    post(gateway, "/v1/chat/completions", data=b"{bad",
         headers=openai_headers(k))
    assert len(upstream.requests) > 0
    secrets_to_find = [k, revoked, mini, unknown, bad_shape] + list(UPSTREAM_CREDENTIALS)
    # the key without its prefix must not be there either
    secrets_to_find += [s[3:] for s in (k, revoked, mini, unknown)]
    gateway.wait_access_log(lambda l: "/v1/chat/completions" in l and " 400 " in l)
    hits = find_secrets([gateway.logs_dir, gateway.keys_dir], secrets_to_find)
    assert not hits, hits
    # and the upstream credentials reached the upstream (so the scan above
    # looked for strings that were really in play)
    sent = {v for r in upstream.requests for _, v in r.header_list}
    assert any(c in v for v in sent for c in UPSTREAM_CREDENTIALS)
