#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0.
"""Throughput of ClawdRouterKeyStore dbd (PostgreSQL on loopback, a table of
1,000,000 keys) against the DBM store and against plain mod_proxy (issue 14,
docs/BENCHMARKS.md).

One private PostgreSQL 15 server (tests/harness/postgres.py), the table made
by `clawdrouter-keys init` and filled with COPY (real keys: random sk-...
strings, their SHA-256 and a record as the CLI writes it; 100 of them,
spread over the table, kept for the requests), nginx answering at once as
the upstream (bench.py's), and two Apaches (event MPM, 128 workers):
  - gw-dbd: /v1 ClawdRouter on the dbd store (mod_dbd, DBDMax 64 per child:
    one connection per worker thread), /plain a plain ProxyPass to nginx;
  - gw-dbm: /v1 ClawdRouter on a DBM store of 10 keys with the default
    per-child record cache (bench.py: a 1,000,000-key sdbm store serves
    0.96 of a 10-key one).
wrk runs the three cases in turn, round after round; the paired ratio is
the median of the per-round ratios.

    make bench-dbd          full size (7 x 10 s, 32 connections)
    make bench-dbd-smoke    a few seconds (tests/integration/test_bench_smoke_dbd.py)
"""

import argparse
import hashlib
import json
import os
import string
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import bench  # noqa: E402
from bench import (MODULES, UPSTREAM_CREDENTIAL, Httpd, event_mpm,  # noqa: E402
                   interleaved, key_store, log, out, paired_ratio,
                   summary, traversable)
from harness.postgres import Postgres  # noqa: E402

FULL = dict(rows=1000000, duration=10, rounds=7, connections=32)
SMOKE = dict(rows=5000, duration=1, rounds=1, connections=8)
ALNUM = string.ascii_letters + string.digits
SAMPLE = 100


def fill_table(pg, cli, spec, rows, keyfile):
    """`init`, then COPY `rows` records; SAMPLE of the keys into keyfile."""
    p = subprocess.run([cli, "--store", spec, "init"], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError("clawdrouter-keys init: %s" % p.stderr)
    every = max(1, rows // SAMPLE)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sample = []
    t0 = time.monotonic()
    copy = subprocess.Popen(
        ["/usr/bin/psql", "-X", "-q", "-h",
         "127.0.0.1", "-p", str(pg.port), "-U", pg.dbuser, "-d", "clawdrouter",
         "-c", "COPY clawdrouter_keys (key_hash, id, record) FROM STDIN"],
        stdin=subprocess.PIPE, text=True, preexec_fn=pg._preexec,
        env=dict(os.environ, HOME=pg.dir), cwd=pg.dir)
    ids = set()
    # os.urandom, base62 by table (modulo bias is of no matter here)
    for i in range(rows):
        raw = os.urandom(48)
        key = "sk-" + "".join(ALNUM[b % 62] for b in raw)
        kid = "key_" + "".join(ALNUM[b % 62] for b in os.urandom(16))
        if kid in ids:
            continue
        ids.add(kid)
        record = json.dumps({
            "id": kid, "name": "bench-%d" % i, "models": ["*"], "rpm": None,
            "tpm": None, "quota": None, "quota_period": None,
            "created_at": created, "expires_at": None, "status": "active",
            "hint": key[:5] + "..." + key[-4:]}, separators=(",", ":"))
        copy.stdin.write("%s\t%s\t%s\n" % (
            hashlib.sha256(key.encode()).hexdigest(), kid,
            record.replace("\\", "\\\\")))
        if i % every == 0 and len(sample) < SAMPLE:
            sample.append(key)
    copy.stdin.close()
    if copy.wait() != 0:
        raise RuntimeError("COPY failed")
    pg.psql("ANALYZE clawdrouter_keys")
    with open(keyfile, "w") as f:
        f.write("\n".join(sample) + "\n")
    os.chmod(keyfile, 0o600)
    log("%d rows copied in %.1f s" % (rows, time.monotonic() - t0))


def gateway_dbd(work, build_dir, upstream_url, conninfo):
    so = os.path.join(build_dir, ".libs", "mod_clawdrouter.so")
    body = "\n".join([
        "DBDriver pgsql",
        'DBDParams "%s"' % conninfo,
        "DBDMin 8", "DBDKeep 64", "DBDMax 64", "DBDExptime 300",
        "ClawdRouterKeyStore dbd",
        "ClawdRouterUpstream openai openai %s/gw/v1 %s"
        % (upstream_url, UPSTREAM_CREDENTIAL),
        "ClawdRouterRoute gpt-* openai",
        "ClawdRouterDefaultRPM %d" % bench.HIGH_RPM,
        "<Location /v1>", "    ClawdRouter On", "    Require all granted",
        "</Location>",
        "<Location /plain>", "    ProxyPass %s/plain/v1" % upstream_url,
        "    Require all granted", "</Location>",
    ])
    return Httpd(work, "gw-dbd", body, mpm_conf=event_mpm(128),
                 modules=[("dbd_module", MODULES + "/mod_dbd.so"),
                          ("proxy_module", MODULES + "/mod_proxy.so"),
                          ("proxy_http_module",
                           MODULES + "/mod_proxy_http.so"),
                          ("clawdrouter_module", so)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("CR_BUILD_DIR"))
    ap.add_argument("--genkeys")
    ap.add_argument("--work")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=N")
    args = ap.parse_args()
    if not args.build_dir:
        ap.error("--build-dir (or CR_BUILD_DIR) is required")
    size = dict(SMOKE if args.smoke else FULL)
    for item in args.set:
        name, _, value = item.partition("=")
        size[name] = int(value)
    build_dir = os.path.abspath(args.build_dir)
    cli = os.path.join(build_dir, "clawdrouter-keys")
    genkeys = args.genkeys or os.path.join(build_dir, "bench",
                                           "cr_bench_genkeys")
    work = os.path.abspath(args.work or os.path.join(build_dir, "bench",
                                                     "work-dbd"))
    traversable(os.path.dirname(work))
    traversable(work)
    body_file = os.path.join(work, "body-1k.json")
    with open(body_file, "wb") as f:
        f.write(bench.chat_body(1024))
    bench.raise_fd_limit()
    out("mod_clawdrouter dbd key store benchmark (%s), %s, %d CPUs" % (
        "smoke" if args.smoke else "full", time.strftime("%Y-%m-%d %H:%M"),
        os.cpu_count()))
    pg = Postgres().init()
    with open(os.path.join(pg.data, "postgresql.conf"), "a") as f:
        f.write("shared_buffers = 256MB\nsynchronous_commit = off\n")
    pg.start().create_db()
    instances, nginx = [], None
    try:
        keyfile = os.path.join(work, "dbd-sample-keys")
        fill_table(pg, cli, pg.spec, size["rows"], keyfile)
        count = int(pg.psql("SELECT count(*) FROM clawdrouter_keys")[0][0])
        table_mib = int(pg.psql("SELECT pg_total_relation_size("
                                "'clawdrouter_keys')")[0][0]) / 1048576.0
        nginx = bench.Nginx(work).start()
        dbm_spec, dbm_keys = key_store(work, genkeys, 10)
        dbd = gateway_dbd(work, build_dir, nginx.url, pg.conninfo)
        dbm = bench.gateway(work, "gw-dbm", build_dir, nginx.url, dbm_spec)
        for h in (dbd, dbm):
            instances.append(h.start())
        c = size["connections"]
        path = "/v1/chat/completions"
        # warm up: mod_dbd opens its connections, PostgreSQL reads the index
        for url, keys in ((dbd.url + path, keyfile), (dbm.url + path,
                                                       dbm_keys)):
            bench.wrk(url, body_file, keys, c, 1 if args.smoke else 3)
        runs = interleaved([
            ("plain", dbd.url + "/plain" + path, keyfile),
            ("dbm", dbm.url + path, dbm_keys),
            ("dbd", dbd.url + path, keyfile)], body_file, c, size)
        res = summary(runs)
        for h in instances:
            problems = h.log_problems()
            if problems:
                raise RuntimeError("%s logged errors:\n%s"
                                   % (h.name, "".join(problems[:10])))
        out("== dbd key store: PostgreSQL 15 on loopback, %d keys in the "
            "table (%.0f MiB with its indexes), %d connections, nginx "
            "upstream, %d x %d s interleaved, medians"
            % (count, table_mib, c, size["rounds"], size["duration"]))
        for label, what in (("plain", "plain ProxyPass"),
                            ("dbm", "ClawdRouter DBM store"),
                            ("dbd", "ClawdRouter dbd store")):
            r = res[label]
            out("%-24s %9.0f req/s   p50 %7.3f ms   p99 %7.3f ms"
                % (what, r["rps"], r["p50"], r["p99"]))
        out("paired ratio dbd/dbm: %.3f (medians %.3f)" % (
            paired_ratio(runs, "dbm", "dbd"),
            res["dbd"]["rps"] / res["dbm"]["rps"]))
        out("paired ratio dbd/plain: %.3f (medians %.3f)" % (
            paired_ratio(runs, "plain", "dbd"),
            res["dbd"]["rps"] / res["plain"]["rps"]))
        out("paired ratio dbm/plain: %.3f (medians %.3f)" % (
            paired_ratio(runs, "plain", "dbm"),
            res["dbm"]["rps"] / res["plain"]["rps"]))
        out("added time per request dbd vs dbm (1/rps): %+.1f us" % (
            (1 / res["dbd"]["rps"] - 1 / res["dbm"]["rps"]) * 1e6))
        out("added latency dbd vs dbm: p50 %+.3f ms, p99 %+.3f ms" % (
            res["dbd"]["p50"] - res["dbm"]["p50"],
            res["dbd"]["p99"] - res["dbm"]["p99"]))
        backends = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                           "datname = 'clawdrouter'")[0][0]
        out("database connections held by gw-dbd: %s" % backends)
    finally:
        for h in instances:
            h.stop()
        if nginx:
            nginx.stop()
        pg.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
