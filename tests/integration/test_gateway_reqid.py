# Licensed under the Apache License, Version 2.0.
"""Request-Id (SPEC 6): a valid client id is kept, an invalid one replaced;
every response carries it, errors also as x-request-id and in the
Anthropic body; the upstream receives Request-Id and X-Request-Id."""

import pytest

from harness import REQUEST_ID_RE, call

PROTOCOLS = ["openai", "anthropic"]
VALID_128 = ("Ab0._:-" * 19)[:128]


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="reqid")


def _forwarded(gw, upstream, protocol, key, headers):
    upstream.clear()
    r = call(gw, protocol, key, headers=headers)
    assert r.status_code == 200, r.text
    rid = r.headers.get("Request-Id")
    assert len(upstream.requests) == 1
    rec = upstream.last
    assert rec.header_values("Request-Id") == [rid]
    assert rec.header_values("X-Request-Id") == [rid]
    return rid


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("client_id", ["my-req.123:abc_X", "a", VALID_128])
def test_valid_client_id_kept(gateway, upstream, key, protocol, client_id):
    kid, k = key
    assert _forwarded(gateway, upstream, protocol, k,
                      {"Request-Id": client_id}) == client_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("bad_id", [VALID_128 + "x", "has space",
                                    "slash/y", "semi;colon", "quote\"d",
                                    "percent%41", "tab\there"])
def test_invalid_client_id_replaced(gateway, upstream, key, protocol, bad_id):
    kid, k = key
    rid = _forwarded(gateway, upstream, protocol, k, {"Request-Id": bad_id})
    assert rid != bad_id
    assert REQUEST_ID_RE.match(rid), rid
    # the invalid one does not reach the upstream either
    assert all(bad_id not in v for _, v in upstream.last.header_list)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_generated_ids_are_unique(gateway, upstream, key, protocol):
    kid, k = key
    ids = {_forwarded(gateway, upstream, protocol, k, {}) for _ in range(10)}
    assert len(ids) == 10
    assert all(REQUEST_ID_RE.match(i) for i in ids)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("header", ["X-Request-Id", "X-Client-Request-Id"])
def test_fallback_headers(gateway, upstream, key, protocol, header):
    kid, k = key
    assert _forwarded(gateway, upstream, protocol, k,
                      {header: "fallback-" + header}) == "fallback-" + header


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_precedence(gateway, upstream, key, protocol):
    kid, k = key
    assert _forwarded(gateway, upstream, protocol, k, {
        "Request-Id": "first", "X-Request-Id": "second",
        "X-Client-Request-Id": "third"}) == "first"
    assert _forwarded(gateway, upstream, protocol, k, {
        "X-Request-Id": "second", "X-Client-Request-Id": "third"}) == "second"
    # an invalid Request-Id is ignored: the next valid one is used
    assert _forwarded(gateway, upstream, protocol, k, {
        "Request-Id": "bad id", "X-Client-Request-Id": "third"}) == "third"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_carry_the_id(gateway, upstream, key, protocol):
    r = call(gateway, protocol, None, headers={"Request-Id": "err-id-1"})
    assert r.status_code == 401
    assert r.headers.get("Request-Id") == "err-id-1"
    assert r.headers.get("x-request-id") == "err-id-1"
    if protocol == "anthropic":
        assert r.json()["request_id"] == "err-id-1"
    # a generated one on errors too
    r = call(gateway, protocol, None, headers={"Request-Id": "bad id"})
    rid = r.headers.get("Request-Id")
    assert rid and rid != "bad id" and REQUEST_ID_RE.match(rid)
    assert r.headers.get("x-request-id") == rid
    if protocol == "anthropic":
        assert r.json()["request_id"] == rid
    assert upstream.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_upstream_errors_carry_the_id(gateway, upstream, key, protocol):
    """Even an upstream's own error response carries the gateway's id."""
    kid, k = key
    r = call(gateway, protocol, k, headers={"Request-Id": "up-err-1",
                                             "X-Mock-Status": "500"})
    assert r.status_code == 500
    assert r.headers.get("Request-Id") == "up-err-1"


def test_upstream_request_id_replaced(gateway, upstream, key):
    """An upstream's own Request-Id header does not replace the gateway's."""
    kid, k = key
    upstream.set_behaviour(handler=lambda rec: (
        200, [("Content-Type", "application/json"),
              ("Request-Id", "upstream-own-id")], b'{"object":"x"}'))
    r = call(gateway, "openai", k, headers={"Request-Id": "mine-1"})
    assert r.status_code == 200
    assert r.headers.get("Request-Id") == "mine-1"
