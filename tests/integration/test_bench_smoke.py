# Licensed under the Apache License, Version 2.0.
"""The benchmarks' smoke run (`make bench-smoke`): every benchmark of
bench/bench.py runs with small numbers, completes and prints its figures.
Speed is not asserted here: docs/BENCHMARKS.md records the figures."""

import glob
import os
import re
import subprocess
import sys
import tempfile

from harness.gateway import BUILD_DIR, REPO, base_dir

BENCH = os.path.join(REPO, "bench", "bench.py")
GENKEYS = os.path.join(BUILD_DIR, "bench", "cr_bench_genkeys")

# One pattern per figure the smoke must print (a number where a figure is).
NUM = r"[-+]?\d+(?:\.\d+)?"
FIGURES = [
    r"plain ProxyPass\s+%s req/s\s+p50\s+%s ms\s+p99\s+%s ms" % (NUM, NUM, NUM),
    r"ClawdRouter\s+%s req/s" % NUM,
    r"throughput ratio gateway/plain: %s" % NUM,
    r"paired ratio gateway/plain: %s" % NUM,
    r"added latency: p50 %s ms, p99 %s ms" % (NUM, NUM),
    r"store of 10\s+%s req/s" % NUM,
    r"throughput ratio big/small: %s \(ratio of the medians\); paired %s"
    % (NUM, NUM),
    r"-- ClawdRouterKeyCache 0",
    r"gateway\s+RSS before\s+%s MiB, peak\s+%s MiB" % (NUM, NUM),
    r"gateway: peak RSS / body size %s, growth / body size %s" % (NUM, NUM),
    r"shm\s+%s req/s.*ratio %s \(paired %s\)\s+added per request %s us"
    % (NUM, NUM, NUM, NUM),
    r"memcache\s+%s req/s.*ratio %s" % (NUM, NUM),
    r"plain\s+100/100 complete",
    r"gateway\s+100/100 complete .*: %s KiB per stream" % NUM,
    r"ClawdRouter request\s+%s\s+\(%s, ratio %s\)" % (NUM, NUM, NUM),
    r"clawdrouter_fixups\s+%s" % NUM,
    r"module hooks, total\s+%s" % NUM,
    # agent-shaped bodies against nginx, and in callgrind
    r"body claude_code\s+\d+ B  plain\s+%s  gateway\s+%s  paired %s" % (
        NUM, NUM, NUM),
    r"body codex_responses\s+\d+ B  plain\s+%s  gateway\s+%s  paired %s"
    % (NUM, NUM, NUM),
    r"body plain_string\s+\d+ B  plain\s+%s  gateway\s+%s  paired %s" % (
        NUM, NUM, NUM),
    r"callgrind chat_1k\s+1024 B  plain\s+%s \(%s/B\)  gateway\s+%s  "
    r"module\s+%s \(%s/B\)  less body read\s+%s \(%s/B\)"
    % (NUM, NUM, NUM, NUM, NUM, NUM, NUM),
    r"callgrind claude_code\s+\d+ B  plain\s+%s \(%s/B\)  gateway\s+%s  "
    r"module\s+%s \(%s/B\)  less body read\s+%s \(%s/B\)"
    % (NUM, NUM, NUM, NUM, NUM, NUM, NUM),
    r"less the body read\s+%s\s+\(%s per body byte\)" % (NUM, NUM),
    r"clawdrouter_proxy_fixups\s+%s" % NUM,
    r"first event gateway/plain: %s" % NUM,
]


def test_bench_smoke_prints_every_figure():
    if not os.path.exists(GENKEYS):
        # the generator is an on-demand program of the build (bench.am)
        subprocess.run(["make", "-C", BUILD_DIR, "bench/cr_bench_genkeys"],
                       check=True, capture_output=True)
    top = tempfile.mkdtemp(prefix="bench-", dir=base_dir())
    os.chmod(top, 0o755)
    work = os.path.join(top, "work")
    p = subprocess.run([sys.executable, BENCH, "--build-dir", BUILD_DIR,
                        "--genkeys", GENKEYS, "--work", work, "--smoke"],
                       capture_output=True, text=True, timeout=300)
    sys.stdout.write(p.stdout)
    assert p.returncode == 0, "bench-smoke failed:\n%s\n%s" % (
        p.stdout, p.stderr[-3000:])
    missing = [f for f in FIGURES if not re.search(f, p.stdout)]
    assert not missing, "figures missing from the output: %r\n%s" % (
        missing, p.stdout)
    # no figure is a NaN (wrk or /proc gave nothing to parse)
    assert "nan" not in p.stdout.lower()

    # the benchmark's keys reached no log of its Apaches
    keys = []
    for path in glob.glob(os.path.join(top, "stores", "*", "sample-keys")):
        with open(path) as f:
            keys += [k.strip() for k in f if k.strip()]
    assert keys
    for log in glob.glob(os.path.join(work, "*", "logs", "*")):
        with open(log, errors="replace") as f:
            text = f.read()
        assert not [k for k in keys if k in text], log
