# Licensed under the Apache License, Version 2.0.
"""make fuzz-smoke (docs/HARDENING.md): every libFuzzer target of the
core's parsers of outside input builds with clang and the sanitizers and
runs for a few seconds with no crash, leak, timeout or failed invariant;
every saved reproducer in fuzz/crashes/ runs clean (regressions)."""

import glob
import os
import re
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TARGETS = ["cred", "reqid", "body", "key_record", "expires", "usage",
           "multipart", "models"]
SECONDS = int(os.environ.get("CR_FUZZ_SMOKE_SECONDS", "8"))


@pytest.fixture(scope="module")
def build_dir():
    """A configured build tree for the make targets: CR_BUILD_DIR when it
    is one, else a private configure run."""
    build = os.environ.get("CR_BUILD_DIR", os.path.join(REPO, "build"))
    if os.path.exists(os.path.join(build, "Makefile")):
        return build
    d = tempfile.mkdtemp(prefix="cr-fuzz-build-")
    subprocess.run([os.path.join(REPO, "configure"), "-q"], cwd=d,
                   check=True, timeout=300)
    return d


def test_fuzz_smoke(build_dir):
    p = subprocess.run(["make", "-s", "fuzz-smoke",
                        "FUZZ_SMOKE_SECONDS=%d" % SECONDS],
                       cwd=build_dir, capture_output=True, text=True,
                       timeout=300 + 10 * SECONDS * len(TARGETS))
    print(p.stdout[-3000:])
    assert p.returncode == 0, (p.stdout + p.stderr)[-5000:]
    for t in TARGETS:
        with open(os.path.join(build_dir, "fuzz", t + ".log")) as f:
            log = f.read()
        runs = re.search(r"^Done (\d+) runs", log, re.M)
        assert runs, log[-2000:]
        # A target that stopped after a handful of inputs tested nothing.
        assert int(runs.group(1)) > 1000, (t, runs.group(0))
        assert "ERROR: " not in log and "runtime error" not in log
    assert not glob.glob(os.path.join(build_dir, "fuzz", "artifacts", "*"))


def test_saved_reproducers_run_clean(build_dir):
    """Inputs that once broke a target stay fixed."""
    found = 0
    for t in TARGETS:
        binary = os.path.join(build_dir, "fuzz", "bin", "fuzz_" + t)
        inputs = sorted(glob.glob(os.path.join(REPO, "fuzz", "crashes",
                                               t + "-*")))
        inputs += sorted(glob.glob(os.path.join(REPO, "fuzz", "corpus", t,
                                                "*")))
        assert os.path.exists(binary), "run test_fuzz_smoke first"
        p = subprocess.run([binary, "-runs=0"] + inputs,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-3000:]
        found += len(inputs)
    assert found >= len(TARGETS)
