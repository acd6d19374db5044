# Licensed under the Apache License, Version 2.0.
"""The dbd key store benchmark's smoke run (`make bench-dbd-smoke`):
bench/dbd_bench.py with small numbers (5,000 keys copied into PostgreSQL,
1 s per case) completes and prints every figure, and no request failed
(wrk's non-2xx count stops the benchmark).  Speed is not asserted here:
docs/BENCHMARKS.md records the full-size figures."""

import glob
import os
import re
import subprocess
import sys
import tempfile

from harness.gateway import BUILD_DIR, REPO, base_dir

BENCH = os.path.join(REPO, "bench", "dbd_bench.py")
GENKEYS = os.path.join(BUILD_DIR, "bench", "cr_bench_genkeys")
NUM = r"[-+]?\d+(?:\.\d+)?"
FIGURES = [
    r"5000 keys in the table",
    r"plain ProxyPass\s+%s req/s\s+p50\s+%s ms\s+p99\s+%s ms" % (NUM, NUM, NUM),
    r"ClawdRouter DBM store\s+%s req/s" % NUM,
    r"ClawdRouter dbd store\s+%s req/s" % NUM,
    r"paired ratio dbd/dbm: %s \(medians %s\)" % (NUM, NUM),
    r"paired ratio dbd/plain: %s \(medians %s\)" % (NUM, NUM),
    r"added time per request dbd vs dbm \(1/rps\): %s us" % NUM,
    r"database connections held by gw-dbd: [1-9]\d*",
]


def test_dbd_bench_smoke_prints_every_figure():
    if not os.path.exists(GENKEYS):
        subprocess.run(["make", "-C", BUILD_DIR, "bench/cr_bench_genkeys"],
                       check=True, capture_output=True)
    top = tempfile.mkdtemp(prefix="bench-dbd-", dir=base_dir())
    os.chmod(top, 0o755)
    work = os.path.join(top, "work")
    p = subprocess.run([sys.executable, BENCH, "--build-dir", BUILD_DIR,
                        "--genkeys", GENKEYS, "--work", work, "--smoke"],
                       capture_output=True, text=True, timeout=240)
    sys.stdout.write(p.stdout)
    assert p.returncode == 0, "bench-dbd-smoke failed:\n%s\n%s" % (
        p.stdout, p.stderr[-3000:])
    missing = [f for f in FIGURES if not re.search(f, p.stdout)]
    assert not missing, "figures missing: %r\n%s" % (missing, p.stdout)
    assert "nan" not in p.stdout.lower()
    # the sample keys reached no log of the benchmark's Apaches
    with open(os.path.join(work, "dbd-sample-keys")) as f:
        keys = [k.strip() for k in f if k.strip()]
    assert len(keys) == 100
    for log in glob.glob(os.path.join(work, "*", "logs", "*")):
        with open(log, errors="replace") as f:
            text = f.read()
        assert not [k for k in keys if k in text], log
