#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0.
"""Benchmarks of mod_clawdrouter against plain mod_proxy in the same run.

Every figure is a ratio or a difference against a plain `ProxyPass` location
of the same Apache, to the same upstream, measured in interleaved runs
(medians).  These print figures; they assert nothing about speed.

  bench.py --build-dir DIR [--smoke] [--only NAME,...] [--work DIR]

Benchmarks (NAME): throughput, keys, body, rate, streams, callgrind.
docs/BENCHMARKS.md describes the method and records the figures.
"""

import argparse
import asyncio
import resource
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HTTPD = os.environ.get("CR_HTTPD", "/usr/sbin/apache2")
MODULES = os.environ.get("CR_HTTPD_MODULES", "/usr/lib/apache2/modules")
WRK = os.environ.get("CR_WRK", "wrk")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import agent_bodies                                          # noqa: E402
IS_ROOT = os.geteuid() == 0
UPSTREAM_CREDENTIAL = "bench-upstream-credential"
MODEL = "gpt-4o-mini"
NGINX = os.environ.get("CR_NGINX", "/usr/sbin/nginx")
HIGH_RPM = 6000000          # 100,000 a second: checked, never reached

# Sizes of the full run and of the smoke (seconds, counts).
FULL = dict(duration=10, rounds=7, connections=32, big_store=1000000,
            body_mib=32, streams=10000, stream_seconds=30,
            callgrind_requests=200, callgrind_bodies=4)
SMOKE = dict(duration=1, rounds=1, connections=8, big_store=5000,
             body_mib=4, streams=100, stream_seconds=3, callgrind_requests=5,
             callgrind_bodies=2)


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def out(msg=""):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def traversable(path):
    """httpd's children run as www-data when we are root."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)


def chat_body(size, stream=False):
    """An OpenAI chat request of about `size` bytes."""
    base = {"model": MODEL, "stream": stream, "max_tokens": 64,
            "messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": ""}]}
    pad = size - len(json.dumps(base, separators=(",", ":")))
    base["messages"][1]["content"] = "x" * max(pad, 0)
    return json.dumps(base, separators=(",", ":")).encode()


def median(values):
    return statistics.median(values) if values else float("nan")


# ---------------------------------------------------------------------------
# Apache instances

class Httpd:
    """A private Apache: ServerRoot in work/NAME, a free loopback port."""

    def __init__(self, work, name, body, mpm="event", mpm_conf=None,
                 modules=(), log_level="warn"):
        self.root = os.path.join(work, name)
        shutil.rmtree(self.root, ignore_errors=True)
        for d in ("", "run", "logs", "htdocs"):
            traversable(os.path.join(self.root, d))
        self.name = name
        self.port = free_port()
        self.mpm = mpm
        self.conf = os.path.join(self.root, "httpd.conf")
        self.pidfile = os.path.join(self.root, "run", "httpd.pid")
        self.error_log = os.path.join(self.root, "logs", "error.log")
        self.allowed_log = []
        lines = [
            'ServerRoot "%s"' % self.root,
            "ServerName 127.0.0.1",
            "Listen 127.0.0.1:%d" % self.port,
            'PidFile "%s"' % self.pidfile,
            'DefaultRuntimeDir "%s/run"' % self.root,
            "Mutex file:%s/run default" % self.root,
            'DocumentRoot "%s/htdocs"' % self.root,
            "LoadModule mpm_%s_module %s/mod_mpm_%s.so" % (mpm, MODULES, mpm),
            "LoadModule authz_core_module %s/mod_authz_core.so" % MODULES,
        ]
        for mod, path in modules:
            lines.append("LoadModule %s %s" % (mod, path))
        if IS_ROOT:
            lines += ["User www-data", "Group www-data"]
        lines += [
            mpm_conf or "",
            "Timeout 120",
            "KeepAlive On",
            "MaxKeepAliveRequests 0",
            "KeepAliveTimeout 30",
            "ListenBacklog 4096",
            'ErrorLog "%s"' % self.error_log,
            "LogLevel %s" % log_level,
            # as in Debian's apache2.conf: no .htaccess files anywhere
            "<Directory />", "    AllowOverride None",
            "    Require all denied", "</Directory>",
            body,
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def command(self, *args):
        return [HTTPD, "-d", self.root, "-f", self.conf] + list(args)

    def start(self, timeout=30):
        p = subprocess.run(self.command("-k", "start"), capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError("%s: apache2 failed: %s%s\n%s" % (
                self.name, p.stdout, p.stderr, self.log_tail()))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("%s did not come up\n%s" % (self.name,
                                                       self.log_tail()))

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return 0

    def children(self):
        parent = self.pid()
        kids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                kids.append(int(entry))
        return kids

    def stop(self):
        pid = self.pid()
        if not pid:
            return
        subprocess.run(self.command("-k", "stop"), capture_output=True)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def log_tail(self, n=20):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def log_problems(self):
        """Error-log lines at error level or worse (a benchmark whose
        requests failed has no figure worth printing)."""
        try:
            with open(self.error_log, errors="replace") as f:
                return [l for l in f if re.search(
                    r"\[[a-z_]*:(error|crit|alert|emerg)\]", l)
                    and not any(a in l for a in self.allowed_log)]
        except OSError:
            return []


def event_mpm(workers, threads_per_child=64):
    servers = max(1, math.ceil(workers / threads_per_child))
    total = servers * threads_per_child
    return """StartServers %d
ServerLimit %d
ThreadsPerChild %d
ThreadLimit %d
MaxRequestWorkers %d
MinSpareThreads %d
MaxSpareThreads %d
""" % (servers, servers, threads_per_child, threads_per_child, total,
       threads_per_child, total)


PREFORK_ONE = """StartServers 1
MinSpareServers 1
MaxSpareServers 1
ServerLimit 1
MaxRequestWorkers 1
"""


def fast_upstream(work):
    """A second Apache serving a static chat.completion for POST (core's
    default handler serves files to GET and POST alike)."""
    completion = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion",
        "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Hello from the bench upstream."}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7,
                  "total_tokens": 19}}).encode()
    up = Httpd(work, "upstream", """
TypesConfig /dev/null
<Directory "%s/htdocs">
    Require all granted
    ForceType application/json
</Directory>
""" % os.path.join(work, "upstream"), mpm_conf=event_mpm(256),
               modules=[("mime_module", MODULES + "/mod_mime.so")])
    for prefix in ("gw", "plain"):
        d = os.path.join(up.root, "htdocs", prefix, "v1", "chat")
        for part in (os.path.join(up.root, "htdocs", prefix),
                     os.path.join(up.root, "htdocs", prefix, "v1"), d):
            traversable(part)
        with open(os.path.join(d, "completions"), "wb") as f:
            f.write(completion)
        os.chmod(os.path.join(d, "completions"), 0o644)
    return up.start()


class Nginx:
    """nginx-light on a spare loopback port answering every request with a
    static JSON body (the upstream that does almost no work: what is left
    is the cost of the proxy in front of it)."""

    def __init__(self, work):
        self.root = os.path.join(work, "nginx")
        shutil.rmtree(self.root, ignore_errors=True)
        for d in ("", "logs", "tmp"):
            traversable(os.path.join(self.root, d))
        self.port = free_port()
        answer = json.dumps({
            "id": "chatcmpl-bench", "object": "chat.completion",
            "created": 1700000000, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant",
                "content": "Hello from the bench upstream."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7,
                      "total_tokens": 19}}, separators=(",", ":"))
        self.conf = os.path.join(self.root, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""worker_processes 1;
daemon off;
pid %(root)s/nginx.pid;
error_log %(root)s/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(root)s/tmp;
    client_max_body_size 0;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            default_type application/json;
            return 200 '%(answer)s';
        }
    }
}
""" % {"root": self.root, "port": self.port, "answer": answer})
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen([NGINX, "-p", self.root, "-c",
                                      self.conf], stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None


def gateway(work, name, build_dir, upstream_url, store_spec, rpm=HIGH_RPM,
            rate_store=None, mpm="event", mpm_conf=None, max_body=None,
            key_cache=None, extra=""):
    """One Apache, two locations side by side: /plain is plain ProxyPass,
    /v1 is ClawdRouter; both to the same upstream server."""
    so = os.path.join(build_dir, ".libs", "mod_clawdrouter.so")
    body = [
        "ClawdRouterKeyStore %s" % store_spec,
        "ClawdRouterUpstream openai openai %s/gw/v1 %s"
        % (upstream_url, UPSTREAM_CREDENTIAL),
        "ClawdRouterUpstream anthropic anthropic %s/gw/v1 %s"
        % (upstream_url, UPSTREAM_CREDENTIAL),
        "ClawdRouterRoute gpt-* openai",
        "ClawdRouterRoute claude-* anthropic",
        "ClawdRouterDefaultRPM %d" % rpm,
    ]
    # No Mutex line: Debian's "Mutex file:... default" (Httpd's config has
    # it) is what the shm rate table runs with.
    if rate_store:
        body.append("ClawdRouterRateStore %s" % rate_store)
    if max_body:
        body.append("ClawdRouterMaxBodySize %d" % max_body)
    if key_cache is not None:
        body.append("ClawdRouterKeyCache %d" % key_cache)
    if extra:
        body.append(extra)
    body += [
        "<Location /v1>", "    ClawdRouter On", "    Require all granted",
        "</Location>",
        "<Location /plain>", "    ProxyPass %s/plain/v1" % upstream_url,
        "    Require all granted", "</Location>",
    ]
    return Httpd(work, name, "\n".join(body), mpm=mpm,
                 mpm_conf=mpm_conf or event_mpm(128),
                 modules=[("proxy_module", MODULES + "/mod_proxy.so"),
                          ("proxy_http_module",
                           MODULES + "/mod_proxy_http.so"),
                          ("clawdrouter_module", so)])


# ---------------------------------------------------------------------------
# Key stores

def key_store(work, genkeys, count):
    """A store of `count` keys (cached: the big one takes minutes), and a
    file of sample keys from all over it."""
    d = os.path.join(work, "..", "stores", "keys-%d" % count)
    d = os.path.normpath(d)
    spec = "sdbm:" + os.path.join(d, "store")
    keyfile = os.path.join(d, "sample-keys")
    done = os.path.join(d, "done")
    if not os.path.exists(done):
        shutil.rmtree(d, ignore_errors=True)
        traversable(d)
        log("generating a key store of %d keys in %s" % (count, d))
        t0 = time.monotonic()
        subprocess.run([genkeys, spec, str(count), keyfile,
                        str(min(count, 100))], check=True,
                       stdout=subprocess.DEVNULL)
        log("  %.1f s" % (time.monotonic() - t0))
        for f in os.listdir(d):
            if f != "sample-keys":       # the store, read by www-data
                os.chmod(os.path.join(d, f), 0o644)
        open(done, "w").close()
    return spec, keyfile


# ---------------------------------------------------------------------------
# wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_latency(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def wrk(url, body_file, keys_file, connections, duration, threads=2):
    """One wrk run: requests/s, p50 and p99 in ms, non-2xx count."""
    env = dict(os.environ, CR_BENCH_BODY=body_file, CR_BENCH_KEYS=keys_file)
    p = subprocess.run([WRK, "-t%d" % min(threads, connections),
                        "-c%d" % connections, "-d%ds" % duration,
                        "--latency", "-s", os.path.join(HERE, "post.lua"),
                        url], capture_output=True, text=True, env=env,
                       timeout=duration + 60)
    if p.returncode != 0:
        raise RuntimeError("wrk failed: %s%s" % (p.stdout, p.stderr))
    text = p.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    total = int(re.search(r"(\d+) requests in", text).group(1))
    return {"rps": rps, "p50": parse_latency(lat.get("50", "")),
            "p99": parse_latency(lat.get("99", "")),
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "",
            "requests": total}


def interleaved(cases, body_file, connections, size):
    """cases: [(label, url, keys_file)].  Rounds of one run of each case in
    turn; returns label -> list of results."""
    results = {label: [] for label, _, _ in cases}
    for r in range(size["rounds"]):
        for label, url, keys in cases:
            res = wrk(url, body_file, keys, connections, size["duration"])
            if res["non2xx"] or res["socket_errors"]:
                raise RuntimeError("%s: %d non-2xx responses, socket errors "
                                   "%r: the figures would be wrong"
                                   % (label, res["non2xx"],
                                      res["socket_errors"]))
            results[label].append(res)
            log("round %d %-14s %8.0f req/s  p50 %.3f ms  p99 %.3f ms" % (
                r + 1, label, res["rps"], res["p50"], res["p99"]))
    return results


def paired_ratio(results, base, other):
    """Median of the per-round throughput ratios other/base.  Each round
    runs the cases back to back, so a ratio within a round is taken under
    (nearly) the same machine load; the median of those is steadier than
    the ratio of the medians when the load drifts between rounds."""
    return median([o["rps"] / b["rps"]
                   for b, o in zip(results[base], results[other])])


def summary(results):
    return {label: {k: median([x[k] for x in runs])
                    for k in ("rps", "p50", "p99")}
            for label, runs in results.items()}


# ---------------------------------------------------------------------------
# The benchmarks

class Bench:
    def __init__(self, args):
        self.args = args
        self.size = dict(SMOKE if args.smoke else FULL)
        for item in args.set:
            name, _, value = item.partition("=")
            if name not in self.size:
                raise SystemExit("bench: unknown size %r" % name)
            self.size[name] = int(value)
        self.build_dir = os.path.abspath(args.build_dir)
        self.genkeys = args.genkeys or os.path.join(self.build_dir, "bench",
                                                    "cr_bench_genkeys")
        self.work = os.path.abspath(args.work or os.path.join(
            self.build_dir, "bench", "work"))
        traversable(self.work)
        traversable(os.path.dirname(self.work))
        self.instances = []
        self.upstream = None
        self.body_file = os.path.join(self.work, "body-1k.json")
        with open(self.body_file, "wb") as f:
            f.write(chat_body(1024))
        self.small_store = None
        self.nginx = None
        self.bodies = agent_bodies.make_bodies(os.path.join(self.work,
                                                            "bodies"))

    def start(self, h):
        self.instances.append(h)
        return h.start()

    def stop(self, h):
        h.stop()
        self.instances.remove(h)
        problems = h.log_problems()
        if problems:
            raise RuntimeError("%s logged errors:\n%s" % (
                h.name, "".join(problems[:10])))

    def cleanup(self):
        for h in list(self.instances):
            h.stop()
        if self.upstream:
            self.upstream.stop()
        if self.nginx:
            self.nginx.stop()

    def nginx_upstream(self):
        if not self.nginx:
            self.nginx = Nginx(self.work).start()
        return self.nginx

    def fast_upstream(self):
        if not self.upstream:
            self.upstream = fast_upstream(self.work)
        return self.upstream

    def store10(self):
        if not self.small_store:
            self.small_store = key_store(self.work, self.genkeys, 10)
        return self.small_store

    # -- metrics: their cost on the request path -------------------------

    def metrics(self):
        """The gateway with its Prometheus counting (the default) against
        the same gateway with ClawdRouterMetricsSeries 0 (nothing counted),
        interleaved, against nginx: the paired throughput ratio on/off."""
        up = self.nginx_upstream()
        spec, keys = self.store10()
        on = self.start(gateway(self.work, "gw-metrics-on", self.build_dir,
                                up.url, spec, extra=(
                                    "<Location /metrics>\n"
                                    "    SetHandler clawdrouter-metrics\n"
                                    "    Require all granted\n"
                                    "</Location>")))
        off = self.start(gateway(self.work, "gw-metrics-off",
                                 self.build_dir, up.url, spec,
                                 extra="ClawdRouterMetricsSeries 0"))
        c = self.size["connections"]
        try:
            out("== metrics: gateway with metrics on / off, %d connections, "
                "nginx upstream, %d x %d s interleaved"
                % (c, self.size["rounds"], self.size["duration"]))
            for name in ("chat_1k", "claude_code"):
                path = agent_bodies.BODIES[name][0]
                runs = interleaved([
                    ("metrics off", off.url + "/v1" + path, keys),
                    ("metrics on", on.url + "/v1" + path, keys)],
                    self.bodies[name], c, self.size)
                res = summary(runs)
                out("body %-12s off %8.0f req/s  on %8.0f req/s  "
                    "paired ratio on/off %.3f" % (
                        name, res["metrics off"]["rps"],
                        res["metrics on"]["rps"],
                        paired_ratio(runs, "metrics off", "metrics on")))
            page = urllib.request.urlopen(on.url + "/metrics",
                                          timeout=10).read().decode()
            counted = sum(float(line.rsplit(" ", 1)[1])
                          for line in page.splitlines()
                          if line.startswith("clawdrouter_requests_total{"))
            out("metrics on: the page counts %d requests" % counted)
        finally:
            self.stop(on)
            self.stop(off)

    # -- 1. throughput and latency -------------------------------------

    def throughput(self):
        """Each body against nginx answering at once (almost no upstream
        work), plain ProxyPass and the gateway interleaved in one Apache."""
        up = self.nginx_upstream()
        spec, keys = self.store10()
        gw = self.start(gateway(self.work, "gw", self.build_dir, up.url, spec))
        c = self.size["connections"]
        res, ratios = {}, {}
        try:
            for name, (path, _) in agent_bodies.BODIES.items():
                runs = interleaved([
                    ("plain", gw.url + "/plain" + path, keys),
                    ("gateway", gw.url + "/v1" + path, keys)],
                    self.bodies[name], c, self.size)
                res[name] = summary(runs)
                ratios[name] = paired_ratio(runs, "plain", "gateway")
        finally:
            self.stop(gw)
        p, g = res["chat_1k"]["plain"], res["chat_1k"]["gateway"]
        out("== throughput: %d connections, nginx upstream (static answer), "
            "%d x %d s interleaved, medians" % (c, self.size["rounds"],
                                                self.size["duration"]))
        out("-- chat_1k (1 KiB JSON body)")
        out("plain ProxyPass     %10.0f req/s   p50 %7.3f ms   p99 %7.3f ms"
            % (p["rps"], p["p50"], p["p99"]))
        out("ClawdRouter         %10.0f req/s   p50 %7.3f ms   p99 %7.3f ms"
            % (g["rps"], g["p50"], g["p99"]))
        out("throughput ratio gateway/plain: %.3f (ratio of the medians)"
            % (g["rps"] / p["rps"]))
        out("paired ratio gateway/plain: %.3f (median of the %d per-round "
            "ratios)" % (ratios["chat_1k"], self.size["rounds"]))
        out("added latency: p50 %+.3f ms, p99 %+.3f ms"
            % (g["p50"] - p["p50"], g["p99"] - p["p99"]))
        out("added time per request (1/rps): %+.1f us"
            % ((1 / g["rps"] - 1 / p["rps"]) * 1e6))
        out("-- every body: req/s plain, gateway, paired ratio, added us")
        for name in agent_bodies.BODIES:
            p, g = res[name]["plain"], res[name]["gateway"]
            out("body %-16s %7d B  plain %8.0f  gateway %8.0f  paired %.3f"
                "  added %+.1f us" % (
                    name, os.path.getsize(self.bodies[name]), p["rps"],
                    g["rps"], ratios[name],
                    (1 / g["rps"] - 1 / p["rps"]) * 1e6))
        out()

    # -- 2. a big key store ---------------------------------------------

    def keys(self):
        """10 keys vs a big store, with each child's record cache (the
        default) and without it (ClawdRouterKeyCache 0: every request
        reads the store)."""
        up = self.fast_upstream()
        n = self.size["big_store"]
        small_spec, small_keys = self.store10()
        big_spec, big_keys = key_store(self.work, self.genkeys, n)
        c = self.size["connections"]
        res, runs = {}, {}
        for label, cache in (("cache", None), ("no cache", 0)):
            gw_small = self.start(gateway(self.work, "gw-10", self.build_dir,
                                          up.url, small_spec,
                                          key_cache=cache))
            gw_big = self.start(gateway(self.work, "gw-big", self.build_dir,
                                        up.url, big_spec, key_cache=cache))
            runs[label] = interleaved([
                ("store 10", gw_small.url + "/v1/chat/completions",
                 small_keys),
                ("store %d" % n, gw_big.url + "/v1/chat/completions",
                 big_keys)], self.body_file, c, self.size)
            res[label] = summary(runs[label])
            self.stop(gw_small)
            self.stop(gw_big)
        # sdbm's .pag is sparse: its blocks, not its length
        pag = os.stat(big_spec[5:] + ".pag").st_blocks * 512
        out("== key store size: 10 keys vs %d keys (sdbm, %.0f MiB on "
            "disk), %d connections, requests cycle over %d keys of each store"
            % (n, pag / 1048576.0, c, 100))
        for label in ("cache", "no cache"):
            s, b = res[label]["store 10"], res[label]["store %d" % n]
            what = ("ClawdRouterKeyCache 1024 (default)" if label == "cache"
                    else "ClawdRouterKeyCache 0")
            out("-- %s" % what)
            out("store of 10         %10.0f req/s   p50 %7.3f ms   p99 "
                "%7.3f ms" % (s["rps"], s["p50"], s["p99"]))
            out("store of %-10d %10.0f req/s   p50 %7.3f ms   p99 %7.3f ms"
                % (n, b["rps"], b["p50"], b["p99"]))
            out("throughput ratio big/small: %.3f (ratio of the medians); "
                "paired %.3f (target >= 0.95)"
                % (b["rps"] / s["rps"],
                   paired_ratio(runs[label], "store 10", "store %d" % n)))
        out()

    # -- 3. a large body --------------------------------------------------

    def body(self):
        up = self.fast_upstream()
        spec, keys = self.store10()
        with open(keys) as f:
            key = f.readline().strip()
        size = self.size["body_mib"] * 1048576
        big = chat_body(size)
        small = chat_body(1024)
        out("== one %d MiB body, prefork with one child: peak RSS (VmHWM) "
            "of the child" % self.size["body_mib"])
        figures = {}
        for label, path in (("plain", "/plain/chat/completions"),
                            ("gateway", "/v1/chat/completions")):
            gw = self.start(gateway(self.work, "gw-body-" + label,
                                    self.build_dir, up.url, spec,
                                    mpm="prefork", mpm_conf=PREFORK_ONE,
                                    max_body=2 * size))
            # its one child is busy with the body: prefork says so
            gw.allowed_log.append("AH00161")
            status = http_post(gw.port, path, key, small)[0]
            kids = gw.children()
            if status != 200 or len(kids) != 1:
                raise RuntimeError("body: warm-up %d, %d children"
                                   % (status, len(kids)))
            before = proc_status(kids[0])
            status = http_post(gw.port, path, key, big)[0]
            after = proc_status(kids[0])
            if status != 200:
                raise RuntimeError("body: %s answered %d" % (label, status))
            self.stop(gw)
            figures[label] = (before, after)
            out("%-8s RSS before %7.1f MiB, peak %7.1f MiB, growth %7.1f MiB;"
                " peak/body %.2f, growth/body %.2f" % (
                    label, before["VmRSS"] / 1024.0, after["VmHWM"] / 1024.0,
                    (after["VmHWM"] - before["VmRSS"]) / 1024.0,
                    after["VmHWM"] * 1024.0 / size,
                    (after["VmHWM"] - before["VmRSS"]) * 1024.0 / size))
        g = figures["gateway"]
        out("gateway: peak RSS / body size %.2f, growth / body size %.2f "
            "(target: within 2 x the body size)"
            % (g[1]["VmHWM"] * 1024.0 / size,
               (g[1]["VmHWM"] - g[0]["VmRSS"]) * 1024.0 / size))
        out()

    # -- 4. rate-check cost -------------------------------------------------

    def rate(self):
        up = self.fast_upstream()
        spec, keys = self.store10()
        mc_port = free_port()
        cmd = ["memcached", "-l", "127.0.0.1", "-p", str(mc_port), "-U", "0",
               "-t", "1", "-m", "64"]
        if IS_ROOT:
            cmd += ["-u", "nobody"]
        mc = subprocess.Popen(cmd)
        try:
            wait_port(mc_port)
            gws = [
                ("no rate limit", self.start(gateway(
                    self.work, "gw-norate", self.build_dir, up.url, spec,
                    rpm=0))),
                ("shm", self.start(gateway(
                    self.work, "gw-shm", self.build_dir, up.url, spec,
                    rate_store="shm"))),
                ("memcache", self.start(gateway(
                    self.work, "gw-memcache", self.build_dir, up.url, spec,
                    rate_store="memcache://127.0.0.1:%d" % mc_port))),
            ]
            c = self.size["connections"]
            runs = interleaved(
                [(label, gw.url + "/v1/chat/completions", keys)
                 for label, gw in gws], self.body_file, c, self.size)
            res = summary(runs)
            for _, gw in gws:
                self.stop(gw)
        finally:
            mc.terminate()
            mc.wait()
        base = res["no rate limit"]
        out("== rate-check cost, %d connections (rpm %d: every request is "
            "checked, none refused)" % (c, HIGH_RPM))
        for label in ("no rate limit", "shm", "memcache"):
            r = res[label]
            out("%-14s %10.0f req/s   p50 %7.3f ms   p99 %7.3f ms   "
                "ratio %.3f (paired %.3f)   added per request %+.1f us" % (
                    label, r["rps"], r["p50"], r["p99"],
                    r["rps"] / base["rps"],
                    paired_ratio(runs, "no rate limit", label),
                    (1 / r["rps"] - 1 / base["rps"]) * 1e6))
        out()

    # -- 5. many slow streams --------------------------------------------

    def streams(self):
        n = self.size["streams"]
        seconds = self.size["stream_seconds"]
        spec, keys = self.store10()
        with open(keys) as f:
            key = f.readline().strip()
        slow_port = free_port()
        slow = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                 "--serve-slow", str(slow_port),
                                 "--events", str(seconds)])
        try:
            wait_port(slow_port)
            threads = 250 if n > 250 else 64
            # room for the streams plus MinSpareThreads (one child's worth):
            # with less, httpd logs AH10159 once the streams hold nearly
            # every thread
            # every proxied stream holds one worker thread (mod_proxy_http
            # waits on the backend), so MaxRequestWorkers must cover the
            # streams; AsyncRequestWorkerFactor (default 2) only governs
            # idle keep-alive connections, which these are not
            mpm_conf = event_mpm(n + 2 * threads, threads) \
                + "AsyncRequestWorkerFactor 2\n"
            out("== %d concurrent streamed responses (an event every second "
                "for %d s), event MPM, ulimit -n %d:" % (
                    n, seconds, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
            for line in mpm_conf.strip().splitlines():
                out("   " + line)
            first = {}
            for label, path in (("plain", "/plain/chat/completions"),
                                ("gateway", "/v1/chat/completions")):
                gw = self.start(gateway(
                    self.work, "gw-streams-" + label, self.build_dir,
                    "http://127.0.0.1:%d" % slow_port, spec,
                    mpm_conf=mpm_conf))
                time.sleep(1.0)
                idle = memory(gw)
                result = asyncio.run(stream_clients(
                    gw.port, path, key, n, seconds, lambda: memory(gw)))
                self.stop(gw)
                busy = result["memory"]
                per_stream = (busy["pss"] - idle["pss"]) / n
                out("%-8s %d/%d complete (%d events each) in %.1f s, first "
                    "event after %.3f s (median); httpd PSS idle %.1f MiB, "
                    "with %d open %.1f MiB: %.0f KiB per stream (RSS %.0f "
                    "KiB)" % (
                        label, result["complete"], n, seconds + 1,
                        result["elapsed"], result["first_event"],
                        idle["pss"] / 1024.0, n,
                        busy["pss"] / 1024.0, per_stream,
                        (busy["rss"] - idle["rss"]) / n))
                if result["failures"]:
                    out("   failures: %r" % result["failures"][:5])
                first[label] = result["first_event"]
            out("first event gateway/plain: %.3f (medians %.3f s / %.3f s)"
                % (first["gateway"] / first["plain"], first["gateway"],
                   first["plain"]))
        finally:
            slow.terminate()
            slow.wait()
        out()

    # -- 6. callgrind ----------------------------------------------------

    def callgrind_one(self, label, path, body, key, hooks, n):
        """One Apache under callgrind, n requests of body to path (after
        a warm-up); the parsed figures."""
        up = self.nginx_upstream()
        spec, _ = self.store10()
        gw = gateway(self.work, "gw-callgrind-" + label, self.build_dir,
                     up.url, spec, mpm="prefork", mpm_conf=PREFORK_ONE)
        outfile = os.path.join(gw.root, "run", "callgrind.out")
        os.chmod(os.path.join(gw.root, "run"), 0o777)
        # valgrind creates the file now, as root, and writes it at exit,
        # after httpd has become www-data: give it to www-data first
        open(outfile, "w").close()
        os.chmod(outfile, 0o666)
        if IS_ROOT:
            import pwd
            pw = pwd.getpwnam("www-data")
            os.chown(outfile, pw.pw_uid, pw.pw_gid)
        vg = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file="
             + outfile, "--collect-atstart=no",
             "--toggle-collect=ap_run_process_connection",
             "--zero-before=ap_send_error_response"]
            + gw.command("-X"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            wait_port(gw.port, 120)
            sock = socket.create_connection(("127.0.0.1", gw.port))
            # warm up (OpenSSL and Jansson initialise on first use,
            # mod_proxy opens its upstream connection), then a request
            # httpd refuses zeroes the counters (--zero-before): the
            # figures are those of a steady state
            for _ in range(3):
                http_post(gw.port, path, key, body, sock=sock)
            http_post(gw.port, "/refused", key, b"{}", sock=sock)
            for _ in range(n):
                status = http_post(gw.port, path, key, body, sock=sock)[0]
                if status != 200:
                    raise RuntimeError("callgrind: %s answered %d"
                                       % (label, status))
            sock.close()
        finally:
            time.sleep(0.5)
            vg.send_signal(signal.SIGTERM)
            vg.wait(120)
        figures = parse_callgrind(outfile, hooks)
        if figures["total"] == 0:
            raise RuntimeError("callgrind: no data for %s in %s (did "
                               "httpd exit cleanly?)" % (label, outfile))
        return figures

    def callgrind(self):
        spec, keys = self.store10()
        with open(keys) as f:
            key = f.readline().strip()
        n = self.size["callgrind_requests"]
        hooks = set()
        for src in os.listdir(os.path.join(HERE, "..")):
            if src.startswith("mod_clawdrouter") and src.endswith(".c"):
                hooks |= module_entry_points(os.path.join(HERE, "..", src))
        # the 1 KiB chat first (its figures are the headline), then the
        # agents' bodies
        names = sorted(agent_bodies.BODIES, key=lambda x: x != "chat_1k")
        names = names[:self.size["callgrind_bodies"]]
        summary_rows = []
        for name in names:
            path = "/v1" + agent_bodies.BODIES[name][0]
            with open(self.bodies[name], "rb") as f:
                body = f.read()
            per = {
                "plain": self.callgrind_one("plain", "/plain" + path[3:],
                                            body, key, hooks, n),
                "gateway": self.callgrind_one("gateway", path, body, key,
                                              hooks, n)}
            plain = per["plain"]["total"] / n
            gwt = per["gateway"]["total"] / n
            out("== callgrind, instructions per request (prefork -X, %d "
                "requests on one connection, body %s, %d bytes)"
                % (n, name, len(body)))
            out("plain ProxyPass request       %10.0f   (%.2f per body byte)"
                % (plain, plain / len(body)))
            out("ClawdRouter request           %10.0f   (%+.0f, ratio %.2f)"
                % (gwt, gwt - plain, gwt / plain))
            mod = 0
            for hook, cost in sorted(per["gateway"]["entries"].items(),
                                     key=lambda x: -x[1]):
                mod += cost
                out("  %-28s %10.0f" % (hook, cost / n))
            out("  %-28s %10.0f   (%.1f%% of the request; %.2f per body "
                "byte)" % ("module hooks, total", mod / n,
                           100.0 * mod / n / gwt, mod / n / len(body)))
            net = mod - per["gateway"]["body_read"]
            out("  %-28s %10.0f   (%.2f per body byte)"
                % ("  less the body read", net / n, net / n / len(body)))
            out("  of which (inclusive):")
            for part, cost in per["gateway"]["parts"]:
                out("    %-26s %10.0f" % (part, cost / n))
            out()
            summary_rows.append((name, len(body), plain, gwt, mod / n,
                                 net / n))
        out("== callgrind summary: instructions per request (per body byte)")
        for name, size, plain, gwt, mod, net in summary_rows:
            out("callgrind %-16s %7d B  plain %9.0f (%.2f/B)  gateway %9.0f"
                "  module %9.0f (%.2f/B)  less body read %9.0f (%.2f/B)"
                % (name, size, plain, plain / size, gwt, mod, mod / size,
                   net, net / size))
        out()


def wait_port(port, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on port %d" % port)


def http_post(port, path, key, body, sock=None):
    """A keep-alive POST over a raw socket; returns (status, body)."""
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(120)
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s"
            "\r\nanthropic-version: 2023-06-01\r\nContent-Type: application/json"
            "\r\nContent-Length: %d\r\n\r\n"
            % (path, key, len(body))).encode()
    sock.sendall(head + body)
    f = sock.makefile("rb")
    status = int(f.readline().split()[1])
    length, chunked = None, False
    while True:
        line = f.readline().strip()
        if not line:
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value:
            chunked = True
    data = b""
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            data += f.read(size)
            f.readline()
    elif length is not None:
        data = f.read(length)
    f.close()
    if own:
        sock.close()
    return status, data


def proc_status(pid):
    figures = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                figures[name] = int(value.split()[0])   # KiB
    return figures


def memory(h):
    """PSS and RSS (KiB) of an Apache: parent and children."""
    pss = rss = 0
    for pid in [h.pid()] + h.children():
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            pass
    return {"pss": pss, "rss": rss}


# ---------------------------------------------------------------------------
# Streams: a slow SSE upstream and many clients (asyncio)

async def slow_upstream(port, events):
    """Answer every POST with `events` SSE events one second apart, then
    [DONE] (chunked, keep-alive)."""
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m:
                    await reader.readexactly(int(m.group(1)))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: "
                             b"text/event-stream\r\nCache-Control: no-cache\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                for i in range(events):
                    ev = ('data: {"id":"chatcmpl-bench","object":'
                          '"chat.completion.chunk","choices":[{"index":0,'
                          '"delta":{"content":"tok%d"}}]}\n\n' % i).encode()
                    writer.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                    await writer.drain()
                    await asyncio.sleep(1.0)
                done = b"data: [DONE]\n\n"
                writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port,
                                        backlog=4096)
    async with server:
        await server.serve_forever()


async def stream_clients(port, path, key, n, seconds, measure):
    """n concurrent streamed requests; counts those that end with [DONE]
    after every event; measures memory halfway through."""
    body = chat_body(1024, stream=True)
    request = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
               "Bearer %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\nConnection: close\r\n\r\n"
               % (path, key, len(body))).encode() + body
    failures = []
    first_event = []
    opened = 0

    async def one(i):
        nonlocal opened
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            started = time.monotonic()
            status = await reader.readline()
            opened += 1
            data = b""
            while b"data: " not in data:
                chunk = await asyncio.wait_for(reader.read(4096), seconds + 60)
                if not chunk:
                    break
                data += chunk
            first_event.append(time.monotonic() - started)
            data += await asyncio.wait_for(reader.read(-1), seconds + 60)
            writer.close()
            events = data.count(b"data: ")
            if b" 200 " not in status or b"data: [DONE]" not in data \
                    or events != seconds + 1:
                failures.append((i, status.strip()[:40], events))
                return 0
            return 1
        except Exception as e:            # noqa: BLE001 a failure to count
            failures.append((i, type(e).__name__, str(e)[:60]))
            return 0

    t0 = time.monotonic()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.ensure_future(one(i)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)      # do not flood the listen queue
    # measure when every stream has its status line, halfway through
    while opened + len(failures) < n and time.monotonic() - t0 < seconds:
        await asyncio.sleep(0.1)
    await asyncio.sleep(max(0.0, seconds / 2.0 - (time.monotonic() - t0)))
    mem = measure()
    results = await asyncio.gather(*tasks)
    return {"complete": sum(results), "failures": failures, "memory": mem,
            "first_event": median(first_event),
            "elapsed": time.monotonic() - t0}


# ---------------------------------------------------------------------------
# callgrind output

def module_entry_points(source):
    """The functions the module registers with httpd (hooks and filters):
    the entry points whose inclusive cost is the module's."""
    with open(source) as f:
        text = f.read()
    names = set(re.findall(r"ap_hook_\w+\(\s*(\w+)", text))
    # mod_proxy's own hooks (proxy_fixups) are registered this way
    names |= set(re.findall(r"APR_OPTIONAL_HOOK\(\s*\w+\s*,\s*\w+\s*,"
                            r"\s*(\w+)", text))
    names |= set(re.findall(r"ap_register_(?:input|output)_filter\(\s*\w+"
                            r"\s*,\s*(\w+)", text))
    return names - {"NULL"}


# Calls out of the module's filters that are the rest of httpd's filter
# chain, not the module's work.
PASS_THROUGH = {"ap_pass_brigade", "ap_get_brigade",
                "ap_pass_brigade_fchk"}
PARTS = ["check_key", "cr_body_check_request", "cr_body_scan",
         "cr_body_scan_finish", "cr_request_identify",
         "cr_request_set_rate_headers", "cr_usage_feed",
         "cr_keycache_lookup",
         "cr_store_open", "cr_store_fetch_by_hash", "cr_store_close",
         "cr_key_hash", "cr_cred_extract", "cr_body_inspect_stream",
         "cr_route_find", "cr_ratestore_take", "cr_reqid_choose",
         "ap_get_brigade", "apr_bucket_setaside"]


def parse_callgrind(path, entries):
    """Total Ir, the inclusive Ir of each module entry point (without the
    filter chain below it), and of some of the module's parts."""
    names = {}

    def name_of(token):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?", token)
        if not m:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), token)

    self_cost = {}
    calls = {}            # fn -> {callee: inclusive}
    total = 0
    fn = None
    cfn = None
    pending_call = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("fn="):
                fn = name_of(line[3:])
                continue
            if line.startswith("cfn="):
                cfn = name_of(line[4:])
                continue
            if line.startswith("calls="):
                pending_call = True
                continue
            if line.startswith("summary:") or line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
                continue
            if line[0].isdigit() or line[0] in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    if cfn != fn:
                        d = calls.setdefault(fn, {})
                        d[cfn] = d.get(cfn, 0) + cost
                    pending_call = False
                else:
                    self_cost[fn] = self_cost.get(fn, 0) + cost
                continue
            if "=" in line:
                key = line.split("=", 1)[0]
                if key in ("fl", "fi", "fe", "ob", "cob", "cfi", "cfl"):
                    # name compression applies to files and objects too
                    pass

    def inclusive(name, skip=()):
        cost = self_cost.get(name, 0)
        for callee, c in calls.get(name, {}).items():
            # callgrind names a call inside a recursion cycle NAME'2
            if callee.split("'")[0] not in skip:
                cost += c
        return cost

    entry_costs = {}
    for name in entries:
        if name in self_cost or name in calls:
            entry_costs[name] = inclusive(name, PASS_THROUGH)
    parts = [(p, inclusive(p)) for p in PARTS
             if (p in self_cost or p in calls) and p != "ap_get_brigade"]
    # the body read from HTTP_IN, inside the fixup: plain mod_proxy reads
    # the body through the same filters (the gateway's mod_proxy then
    # reads it from the replay filter, which is counted)
    body_read = sum(calls.get(caller, {}).get("ap_get_brigade", 0)
                    for caller in ("clawdrouter_fixups",
                                   "cr_body_check_request", "read_body"))
    if body_read:
        parts.append(("ap_get_brigade (body read)", body_read))
    return {"total": total, "entries": entry_costs, "parts": parts,
            "body_read": body_read}


# ---------------------------------------------------------------------------

BENCHMARKS = ["throughput", "keys", "body", "rate", "streams", "callgrind",
              "metrics"]


def raise_fd_limit():
    """The streams benchmark holds two sockets per stream in this process
    and its slow upstream, and Apache's children inherit the limit: the
    soft limit of open files up to the hard one (ulimit -n)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1048576
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("CR_BUILD_DIR"))
    ap.add_argument("--genkeys")
    ap.add_argument("--work")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", default=",".join(BENCHMARKS))
    ap.add_argument("--set", action="append", default=[],
                    metavar="NAME=N", help="override a size: "
                    + ", ".join(sorted(FULL)))
    ap.add_argument("--serve-slow", type=int)
    ap.add_argument("--events", type=int, default=30)
    args = ap.parse_args()
    if args.serve_slow:
        try:
            asyncio.run(slow_upstream(args.serve_slow, args.events))
        except KeyboardInterrupt:
            pass
        return 0
    if not args.build_dir:
        ap.error("--build-dir (or CR_BUILD_DIR) is required")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    raise_fd_limit()
    b = Bench(args)
    out("mod_clawdrouter benchmarks (%s), %s, %d CPUs, %s" % (
        "smoke" if args.smoke else "full", time.strftime("%Y-%m-%d %H:%M"),
        os.cpu_count(), subprocess.run([HTTPD, "-v"], capture_output=True,
                                       text=True).stdout.splitlines()[0]))
    out()
    failed = []
    try:
        for name in args.only.split(","):
            if name not in BENCHMARKS:
                ap.error("unknown benchmark %r" % name)
            t0 = time.monotonic()
            try:
                getattr(b, name)()
            except Exception as e:     # noqa: BLE001 report, go on
                failed.append(name)
                out("== %s FAILED: %s" % (name, e))
                out()
            log("%s took %.1f s" % (name, time.monotonic() - t0))
    finally:
        b.cleanup()
    if failed:
        out("benchmarks that failed: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
