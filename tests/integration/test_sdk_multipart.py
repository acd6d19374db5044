# Licensed under the Apache License, Version 2.0.
"""Uploads with the official OpenAI SDK (tests/js/multipart.test.mjs):
audio.transcriptions.create, audio.translations.create and images.edit
through the gateway, the file reaching the upstream unchanged; the SDK's
PermissionDeniedError and NotFoundError for a refused upload.  Then what
the mock upstream received from those calls."""

import os
import re
import shutil
import subprocess

import pytest

from harness import OPENAI_CREDENTIAL
from harness.mock_upstream import multipart_fields

JS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "js")
TEST_FILE = os.path.join(JS_DIR, "multipart.test.mjs")

FORWARDED = {
    "mp-transcription": ("/openai/v1/audio/transcriptions",
                         "gpt-4o-transcribe"),
    "mp-translation": ("/openai/v1/audio/translations",
                       "gpt-4o-mini-transcribe"),
    "mp-image-edit": ("/openai/v1/images/edits", "gpt-image-1"),
}


@pytest.mark.mpm("event")
def test_openai_sdk_uploads(gateway, upstream):
    node = shutil.which("node")
    assert node, "node (Node.js 20 or later) is not on PATH"
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "openai")), \
        "run `npm ci --prefix tests/js`"
    _, key = gateway.create_key(name="sdk-mp")
    _, limited = gateway.create_key(name="sdk-mp-limited",
                                    models="gpt-4o-mini")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "NODE_OPTIONS"))}
    env.update({"CR_GATEWAY_URL": gateway.url, "CR_KEY": key,
                "CR_LIMITED_KEY": limited, "NO_COLOR": "1"})
    run = subprocess.run([node, "--test", "--test-reporter=spec", TEST_FILE],
                         cwd=JS_DIR, env=env, capture_output=True, text=True,
                         timeout=180)
    out = (run.stdout + run.stderr).replace(key, "<key>").replace(
        limited, "<key>")
    assert run.returncode == 0, out + gateway.error_log_tail()
    with open(TEST_FILE, encoding="utf-8") as f:
        declared = len(re.findall(r"^test\(", f.read(), re.M))
    passed = re.search(r"^\S* ?pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) == declared == 5, out

    # Only the three uploads reached the upstream, as the SDK built them.
    seen = {}
    for rec in upstream.requests:
        seen.setdefault(rec.headers.get("X-Sdk-Test"), []).append(rec)
    assert set(seen) == set(FORWARDED), sorted(seen)
    for name, (path, model) in FORWARDED.items():
        assert len(seen[name]) == 1, name
        rec = seen[name][0]
        assert rec.path == path
        assert rec.headers.get("Authorization") == "Bearer " + OPENAI_CREDENTIAL
        assert rec.headers.get("Content-Type", "").startswith(
            "multipart/form-data; boundary=")
        fields = multipart_fields(rec.headers.get("Content-Type"), rec.body)
        assert fields is not None, name
        assert [f[2] for f in fields if f[0] == "model"] == [model.encode()]
        assert key not in rec.body.decode("latin-1")
