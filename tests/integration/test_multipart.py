# Licensed under the Apache License, Version 2.0.
"""SPEC 10, multipart/form-data uploads (OpenAI audio/transcriptions,
audio/translations, images/edits): the model is the form field `model`
(checked against the key's globs and routed like a JSON body's), the body
reaches the upstream byte for byte, ClawdRouterMaxBodySize applies,
malformed forms and bodies that are neither JSON nor multipart are refused,
and a large upload does not make the child's memory grow with it."""

import hashlib
import os
import subprocess
import time

import pytest
import requests

from harness import (OPENAI_CREDENTIAL, RawResponse, assert_error,
                     http_request_bytes, raw_request)
from harness.mock_upstream import multipart_fields

TRANSCRIBE = "/v1/audio/transcriptions"
TRANSLATE = "/v1/audio/translations"
EDITS = "/v1/images/edits"
BOUNDARY = "----formdata-undici-043786712412"
CTYPE = "multipart/form-data; boundary=" + BOUNDARY
MB = 1024 * 1024


def field(name, value, boundary=BOUNDARY):
    return (b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s"
            b"\r\n" % (boundary.encode(), name.encode(), value))


def file_field(name, filename, content, ctype="application/octet-stream",
               boundary=BOUNDARY):
    return (b"--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
            b"filename=\"%s\"\r\nContent-Type: %s\r\n\r\n%s\r\n"
            % (boundary.encode(), name.encode(), filename.encode(),
               ctype.encode(), content))


def end(boundary=BOUNDARY):
    return b"--%s--\r\n" % boundary.encode()


def binary(n, seed=7):
    """n bytes that look like a compressed file: every byte value, CRLFs,
    dashes and near-boundaries included, but not the boundary itself."""
    out = bytearray()
    h = hashlib.sha256(b"%d" % seed).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    data = bytes(out[:n])
    lookalike = b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n--\r\n"
    data = lookalike + data[len(lookalike):]
    assert b"--" + BOUNDARY.encode() not in data
    return data


def upload(gw, path, key, body, ctype=CTYPE, timeout=60, **headers):
    h = {"Content-Type": ctype}
    if key is not None:
        h["Authorization"] = "Bearer " + key
    h.update(headers)
    return requests.post(gw.url + path, data=body, headers=h,
                         timeout=timeout)


def audio_form(model, content, model_first=True, extra=b""):
    parts = [field("model", model.encode()),
             file_field("file", "speech.mp3", content, "audio/mpeg")]
    if not model_first:
        parts.reverse()
    return b"".join(parts) + extra + end()


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="multipart")[1]


@pytest.fixture(scope="module")
def limited_key(gateway):
    return gateway.create_key(name="mp-limited", models="gpt-4o-mini")[1]


@pytest.fixture(scope="module")
def big():
    return binary(3 * MB)


def assert_forwarded(upstream, body, path, model, fields):
    rec = upstream.last
    assert rec is not None, "nothing reached the upstream"
    assert len(upstream.requests) == 1
    assert rec.path == "/openai" + path
    assert rec.sha256 == hashlib.sha256(body).hexdigest(), (
        "the body changed on its way: %d bytes sent, %d received"
        % (len(body), len(rec.body)))
    assert rec.headers.get("Content-Type") == CTYPE
    assert rec.headers.get("Authorization") == "Bearer " + OPENAI_CREDENTIAL
    return rec


# ---- forwarded byte for byte ------------------------------------------

@pytest.mark.parametrize("model_first", [True, False],
                         ids=["model-first", "model-last"])
def test_transcription_upload_forwarded_unchanged(gateway, upstream, key,
                                                  big, model_first):
    body = audio_form("gpt-4o-transcribe", big, model_first,
                      extra=field("response_format", b"json"))
    r = upload(gateway, TRANSCRIBE, key, body)
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {"text": "Hello from the mock."}
    assert r.headers["X-Mock-Model"] == "gpt-4o-transcribe"
    assert r.headers["X-Mock-Upload-Sha256"] == hashlib.sha256(
        big).hexdigest()
    assert_forwarded(upstream, body, TRANSCRIBE, "gpt-4o-transcribe", None)
    line = gateway.wait_access_log(
        lambda l: TRANSCRIBE in l and '" 200 ' in l)
    assert 'model="gpt-4o-transcribe"' in line and 'upstream="openai"' in line


@pytest.mark.parametrize("model_first", [True, False],
                         ids=["model-first", "model-last"])
def test_image_edit_upload_forwarded_unchanged(gateway, upstream, key, big,
                                               model_first):
    image = b"\x89PNG\r\n\x1a\n" + big[:2 * MB]
    mask = b"\x89PNG\r\n\x1a\n" + big[2 * MB:]
    parts = [field("model", b"gpt-image-1"),
             file_field("image[]", "a.png", image, "image/png"),
             file_field("image[]", "b.png", mask, "image/png"),
             field("prompt", "a red hat, \xe2\x80\x94 --".encode("latin-1"))]
    if not model_first:
        parts.append(parts.pop(0))
    body = b"".join(parts) + end()
    r = upload(gateway, EDITS, key, body)
    assert r.status_code == 200, r.text[:500]
    assert r.json()["data"][0]["b64_json"]
    assert r.headers["X-Mock-Model"] == "gpt-image-1"
    assert r.headers["X-Mock-Upload-Sha256"] == hashlib.sha256(
        image).hexdigest()
    assert_forwarded(upstream, body, EDITS, "gpt-image-1", None)


def test_chunked_upload_forwarded_unchanged(gateway, upstream, key, big):
    """A body sent chunked (no Content-Length), in odd-sized pieces that
    cut the boundaries anywhere."""
    body = audio_form("gpt-4o-mini-transcribe", big, model_first=False)

    def pieces():
        i, n = 0, 1
        while i < len(body):
            yield body[i:i + n]
            i += n
            n = n * 7 % 65521 + 1
    r = upload(gateway, TRANSLATE, key, pieces())
    assert r.status_code == 200, r.text[:500]
    assert r.headers["X-Mock-Model"] == "gpt-4o-mini-transcribe"
    rec = assert_forwarded(upstream, body, TRANSLATE,
                           "gpt-4o-mini-transcribe", None)
    assert rec.sha256 == hashlib.sha256(body).hexdigest()


def test_quoted_boundary_and_curl_shape(gateway, upstream, key):
    """curl -F's shape (a long dashed boundary, no CRLF after the close
    delimiter) with the boundary quoted in the Content-Type."""
    b = "------------------------d74496d66958873e"
    body = (file_field("file", "a.wav", b"RIFF\x00\x01", "audio/wav", b)
            + field("model", b"gpt-4o-transcribe", b)
            + end(b)[:-2])
    ctype = 'multipart/form-data; boundary="%s"' % b
    r = upload(gateway, TRANSCRIBE, key, body, ctype=ctype)
    assert r.status_code == 200, r.text[:500]
    assert upstream.last.body == body
    assert upstream.last.headers.get("Content-Type") == ctype


def test_curl_upload_with_expect_100_continue(gateway, upstream, key, big,
                                               tmp_path):
    """curl -F, as the OpenAI docs show it: a file and the model, with
    curl's `Expect: 100-continue` for a large body."""
    path = tmp_path / "speech.mp3"
    path.write_bytes(big)
    p = subprocess.run(
        ["curl", "-sSv", "-o", "-", "-w", "\n%{http_code}",
         "-H", "Authorization: Bearer " + key,
         "-F", "file=@%s;type=audio/mpeg" % path,
         "-F", "model=gpt-4o-transcribe",
         gateway.url + TRANSCRIBE], capture_output=True, timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 0 and out.endswith("\n200"), out[-500:] + \
        p.stderr.decode()
    err = p.stderr.decode("latin-1")
    assert "> Expect: 100-continue" in err and "< HTTP/1.1 100 Continue" in err
    rec = upstream.last
    fields = {f[0]: f for f in multipart_fields(
        rec.headers.get("Content-Type"), rec.body)}
    assert fields["model"][2] == b"gpt-4o-transcribe"
    assert hashlib.sha256(fields["file"][2]).hexdigest() == hashlib.sha256(
        big).hexdigest()
    assert len(upstream.requests) == 1


# ---- the model field decides ---------------------------------------------

def test_forbidden_model_403(gateway, upstream, limited_key, big):
    body = audio_form("gpt-4o-transcribe", big[:100000])
    r = upload(gateway, TRANSCRIBE, limited_key, body)
    doc = assert_error(r, "model_not_permitted", "openai")
    assert "gpt-4o-transcribe" in doc["error"]["message"]
    assert upstream.requests == []
    # the same key with its own model is served
    body = audio_form("gpt-4o-mini", big[:100000])
    r = upload(gateway, TRANSCRIBE, limited_key, body)
    assert r.status_code == 200, r.text[:300]


def test_model_without_route_404(gateway, upstream, key):
    r = upload(gateway, TRANSCRIBE, key, audio_form("whisper-1", b"x" * 10))
    assert_error(r, "model_not_found", "openai")
    assert upstream.requests == []


def test_no_model_field_400(gateway, upstream, key, big):
    body = (file_field("file", "speech.mp3", big[:200000])
            + field("models", b"gpt-4o-transcribe") + end())
    r = upload(gateway, TRANSCRIBE, key, body)
    doc = assert_error(r, "invalid_body", "openai")
    assert '"model"' in doc["error"]["message"]
    assert upstream.requests == []


def test_no_key_401_before_body(gateway, upstream, big):
    r = upload(gateway, TRANSCRIBE, None,
               audio_form("gpt-4o-mini", big[:1000]))
    assert_error(r, "missing_key", "openai")
    assert upstream.requests == []


MALFORMED = {
    "duplicate-model": field("model", b"gpt-4o-mini")
    + field("model", b"gpt-4o") + end(),
    "duplicate-model-case": field("model", b"gpt-4o-mini")
    + field("Model", b"gpt-4o") + end(),
    "no-final-delimiter": field("model", b"gpt-4o-mini")
    + file_field("file", "a", b"xyz"),
    "preamble": b"This is a preamble.\r\n" + field("model", b"gpt-4o-mini")
    + end(),
    "epilogue": field("model", b"gpt-4o-mini") + end() + b"more\r\n",
    # a part hidden from a strict parser, seen by a lenient one
    "boundary-after-bare-lf": file_field(
        "file", "a", b"x\n--" + BOUNDARY.encode() + b"\r\nContent-"
        b"Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o")
    + field("model", b"gpt-4o-mini") + end(),
    "boundary-mid-line": file_field("file", "a", b"x--" + BOUNDARY.encode())
    + field("model", b"gpt-4o-mini") + end(),
    "padding-after-boundary": field("model", b"gpt-4o-mini").replace(
        BOUNDARY.encode() + b"\r\n", BOUNDARY.encode() + b" \r\n") + end(),
    "lf-line-ends": field("model", b"gpt-4o-mini").replace(b"\r\n", b"\n")
    + end(),
    "no-disposition": b"--" + BOUNDARY.encode() + b"\r\nContent-Type: "
    b"text/plain\r\n\r\nx\r\n" + field("model", b"gpt-4o-mini") + end(),
    "escaped-name": field("mo\\del", b"gpt-4o") + field("model", b"gpt-4o-mini")
    + end(),
    "percent-name": field("mode%6C", b"gpt-4o")
    + field("model", b"gpt-4o-mini") + end(),
    "model-is-a-file": file_field("model", "m.txt", b"gpt-4o-mini") + end(),
    "model-with-newline": field("model", b"gpt-4o-mini\r\n") + end(),
    "empty": b"",
    "json-body": b'{"model": "gpt-4o-mini"}',
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_multipart_400(gateway, upstream, key, case):
    r = upload(gateway, TRANSCRIBE, key, MALFORMED[case])
    doc = assert_error(r, "invalid_body", "openai")
    assert "multipart" in doc["error"]["message"] or "model" in \
        doc["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("ctype", [
    "multipart/form-data",
    "multipart/form-data; charset=utf-8",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=" + "b" * 71,
    'multipart/form-data; boundary="a\\b"',
    "multipart/form-data; boundary=a; boundary=b",
])
def test_bad_boundary_400(gateway, upstream, key, ctype):
    r = upload(gateway, TRANSCRIBE, key, audio_form("gpt-4o-mini", b"x"),
               ctype=ctype)
    doc = assert_error(r, "invalid_body", "openai")
    assert "boundary" in doc["error"]["message"]
    assert upstream.requests == []


def test_refusal_after_large_upload_keeps_connection(gateway, upstream,
                                                    limited_key, big):
    """A large upload refused once read (403: its model field is not
    allowed) leaves the connection usable: the next request on it is
    served.  (A 400 closes the connection, as httpd does for every 400.)"""
    bad = audio_form("gpt-4o-transcribe", big)
    good = audio_form("gpt-4o-mini", b"abc")
    data = (http_request_bytes("POST", TRANSCRIBE, [
        ("Authorization", "Bearer " + limited_key), ("Content-Type", CTYPE),
        ("Content-Length", str(len(bad))), ("Connection", "keep-alive")],
        bad, port=gateway.port)
        + http_request_bytes("POST", TRANSCRIBE, [
            ("Authorization", "Bearer " + limited_key),
            ("Content-Type", CTYPE), ("Content-Length", str(len(good)))],
            good, port=gateway.port))
    out, _ = raw_request(gateway.port, data, timeout=30)
    assert out.count(b"HTTP/1.1 ") == 2, out[:600]
    assert RawResponse(out).status == 403, out[:300]
    second = out[out.index(b"HTTP/1.1", 12):]
    assert RawResponse(second).status == 200, second[:300]
    assert len(upstream.requests) == 1
    assert upstream.last.body == good


# ---- neither JSON nor multipart -------------------------------------------

@pytest.mark.parametrize("ctype", ["text/plain", "audio/mpeg",
                                   "application/x-www-form-urlencoded",
                                   "multipart/mixed; boundary=" + BOUNDARY])
def test_other_media_types_415(gateway, upstream, key, ctype):
    r = upload(gateway, TRANSCRIBE, key, audio_form("gpt-4o-mini", b"x"),
               ctype=ctype)
    doc = assert_error(r, "unsupported_media_type", "openai")
    assert "multipart/form-data" in doc["error"]["message"]
    assert upstream.requests == []


def test_multipart_on_anthropic_path_415(gateway, upstream, key):
    """The Anthropic API has no multipart endpoint that names a model."""
    r = upload(gateway, "/v1/messages", key,
               audio_form("claude-3-5-haiku-latest", b"x"),
               **{"anthropic-version": "2023-06-01"})
    assert_error(r, "unsupported_media_type", "anthropic")
    assert upstream.requests == []


# ---- ClawdRouterMaxBodySize -----------------------------------------------

@pytest.fixture(scope="module")
def small(gateway, make_module_gateway):
    gw = make_module_gateway(mpm=gateway.mpm, max_body=1 * MB,
                             name="multipart-small")
    return gw, gw.create_key(name="mp-small")[1]


def test_over_max_body_413(small, upstream, big):
    gw, k = small
    body = audio_form("gpt-4o-mini", big[:MB])
    assert len(body) > MB
    r = upload(gw, TRANSCRIBE, k, body)
    assert_error(r, "too_large", "openai")

    def pieces():                          # chunked: no Content-Length
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]
    try:
        r = upload(gw, TRANSCRIBE, k, pieces())
        assert_error(r, "too_large", "openai")
    except requests.ConnectionError:
        pytest.fail("the gateway closed without its 413")
    assert upstream.requests == []
    # just under the limit is served
    body = audio_form("gpt-4o-mini", big[:MB - 400])
    assert len(body) <= MB
    r = upload(gw, TRANSCRIBE, k, body)
    assert r.status_code == 200, r.text[:300]
    assert upstream.last.body == body


# ---- memory ---------------------------------------------------------------

def _children(gw):
    """The pids of the gateway's children (not the parent)."""
    parent = gw.pid()
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            kids.append(int(d))
    return kids


def _peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_large_upload_memory_bounded(gateway, upstream, key):
    """A 20 MB upload: no child's peak RSS grows by more than the size
    of the upload once over (the body is kept in the request's brigade,
    never copied whole into one buffer, never held twice)."""
    size = 20 * MB
    content = binary(size, seed=3)
    body = audio_form("gpt-4o-transcribe", content, model_first=False)
    # warm every child up, then take each one's peak
    for _ in range(8):
        upload(gateway, TRANSCRIBE, key, audio_form("gpt-4o-mini", b"w"))
    before = {p: _peak_rss_kb(p) for p in _children(gateway)}
    r = upload(gateway, TRANSCRIBE, key, body, timeout=120)
    assert r.status_code == 200, r.text[:300]
    assert upstream.last.sha256 == hashlib.sha256(body).hexdigest()
    time.sleep(0.2)
    growth = max((_peak_rss_kb(p) - before.get(p, 0)) * 1024
                 for p in _children(gateway))
    print("peak RSS growth for a %d byte upload: %d bytes" % (len(body),
                                                             growth))
    assert growth < 1.5 * size, growth
