# Licensed under the Apache License, Version 2.0.
"""Soak (docs/HARDENING.md): many mixed requests (valid, 401, 403, 429,
413) over many kept-alive connections.  Every answer is the one its kind
calls for, no 5xx at all (the test causes none), only the valid ones reach
the upstream, and the httpd children's memory stays flat.

The CI smoke runs a few thousand requests; `make soak` runs several
hundred thousand through the same test:
  CR_SOAK_REQUESTS (default 4000), CR_SOAK_CONNECTIONS (default 32),
  CR_SOAK_MPM (default event), CR_SOAK_RSS_GROWTH_MB (default 16): the
  largest growth of the children's summed RSS accepted between the end of
  the warm-up and the end of the run."""

import http.server
import json
import os
import random
import re
import socket
import socketserver
import threading
import time

import pytest

from harness import OPENAI_PATH, ANTHROPIC_PATH, Gateway

REQUESTS = int(os.environ.get("CR_SOAK_REQUESTS", "4000"))
CONNECTIONS = int(os.environ.get("CR_SOAK_CONNECTIONS", "32"))
MPM = os.environ.get("CR_SOAK_MPM", "event")
RSS_GROWTH_MB = float(os.environ.get("CR_SOAK_RSS_GROWTH_MB", "16"))
# More server configuration, e.g. "ClawdRouterKeyCache 0" to compare.
EXTRA_CONF = os.environ.get("CR_SOAK_SERVER_CONF", "")
# Under make check-sanitize each child's ASan holds back up to this much
# freed memory (fuzz/sanitize-httpd.sh): allowed on top, per child.
ASAN_QUARANTINE_MB = float(os.environ.get("CR_SANITIZE_QUARANTINE_MB", "0"))
WARMUP = max(1000, REQUESTS // 10)
MAX_BODY = 4096
LIMITED_RPM = 30

# Share of each kind of request (out of 100).
MIX = [("valid", 40), ("anthropic", 10), ("bad_key", 13),
       ("forbidden", 13), ("limited", 12), ("too_large", 12)]
EXPECTED = {"valid": {200}, "anthropic": {200}, "bad_key": {401},
            "forbidden": {403}, "limited": {200, 429}, "too_large": {413}}

COMPLETION = json.dumps({
    "id": "chatcmpl-soak", "object": "chat.completion", "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1,
              "total_tokens": 2}}).encode()


class CountingUpstream:
    """A lean keep-alive provider that only counts what it gets (the
    harness mock records every request, too much for a soak)."""

    def __init__(self):
        owner = self
        self.count = 0
        self.leaked_keys = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                auth = self.headers.get("Authorization", "") + \
                    self.headers.get("x-api-key", "")
                with owner.lock:
                    owner.count += 1
                    if "sk-" in auth:
                        owner.leaked_keys += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(COMPLETION)))
                self.end_headers()
                self.wfile.write(COMPLETION)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def children_rss_kb(parent):
    """{pid: VmRSS kB} of httpd's children."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                text = f.read()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", text, re.M)
        rss = re.search(r"^VmRSS:\s+(\d+)", text, re.M)
        if ppid and rss and int(ppid.group(1)) == parent:
            out[int(d)] = int(rss.group(1))
    return out


def build_requests(port, keys):
    def raw(path, key_headers, body):
        head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port,
                "Content-Type: application/json",
                "Content-Length: %d" % len(body)] + key_headers
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    def chat(model="gpt-4o-mini", pad=""):
        return json.dumps({"model": model, "pad": pad, "messages": [
            {"role": "user", "content": "soak"}]}).encode()

    msg = json.dumps({"model": "claude-3-5-haiku-latest", "max_tokens": 8,
                      "messages": [{"role": "user",
                                    "content": "soak"}]}).encode()
    bad = "sk-" + "S" * 48
    return {
        "valid": raw(OPENAI_PATH, ["Authorization: Bearer " + keys["all"]],
                     chat()),
        "anthropic": raw(ANTHROPIC_PATH, ["x-api-key: " + keys["all"],
                                          "anthropic-version: 2023-06-01"],
                         msg),
        "bad_key": raw(OPENAI_PATH, ["Authorization: Bearer " + bad],
                       chat()),
        "forbidden": raw(OPENAI_PATH,
                         ["Authorization: Bearer " + keys["claude_only"]],
                         chat()),
        "limited": raw(OPENAI_PATH,
                       ["Authorization: Bearer " + keys["limited"]],
                       chat()),
        "too_large": raw(OPENAI_PATH, ["Authorization: Bearer " + keys["all"]],
                         chat(pad="x" * (MAX_BODY * 2))),
    }


class Conn:
    """One kept-alive client connection speaking just enough HTTP/1.1."""

    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def request(self, data):
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port),
                                                     timeout=30)
                self.buf = b""
            try:
                self.sock.sendall(data)
                return self._response()
            except (ConnectionError, BrokenPipeError) as e:
                # The server may close an idle kept-alive connection between
                # our requests; retry once on a fresh one.
                self.close()
                if attempt:
                    raise e
        return None

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                self._fill()
            self.buf = self.buf[n:]
        elif "chunked" in headers.get("transfer-encoding", ""):
            while not re.search(rb"(^|\r\n)0\r\n\r\n", self.buf):
                self._fill()
            end = re.search(rb"(^|\r\n)0\r\n\r\n", self.buf).end()
            self.buf = self.buf[end:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_load(port, requests, total, connections, seed):
    """Send `total` requests of the MIX over `connections` connections;
    returns {kind: {status: count}}."""
    kinds = [k for k, w in MIX for _ in range(w)]
    results = {}
    lock = threading.Lock()
    errors = []
    per_thread = [total // connections + (1 if i < total % connections
                                          else 0)
                  for i in range(connections)]

    def worker(i):
        rnd = random.Random(seed * 1000 + i)
        conn = Conn(port)
        mine = {}
        try:
            for _ in range(per_thread[i]):
                kind = rnd.choice(kinds)
                status = conn.request(requests[kind])
                mine.setdefault(kind, {}).setdefault(status, 0)
                mine[kind][status] += 1
        except Exception as e:          # reported below, fails the test
            errors.append(repr(e))
        finally:
            conn.close()
        with lock:
            for kind, counts in mine.items():
                for status, n in counts.items():
                    results.setdefault(kind, {}).setdefault(status, 0)
                    results[kind][status] += n

    threads = [threading.Thread(target=worker, args=(i,))
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    return results


@pytest.fixture(scope="module")
def soak_gateway():
    upstream = CountingUpstream()
    # All children up from the start and none retired, so the RSS sum
    # compares the same processes.
    # Enough threads for every client connection plus the CLI's checks.
    threaded = ("StartServers 4\nServerLimit 4\nThreadsPerChild 64\n"
                "MaxRequestWorkers 256\nMinSpareThreads 1\n"
                "MaxSpareThreads 256\nMaxConnectionsPerChild 0")
    conf = {"event": threaded, "worker": threaded,
            "prefork": "StartServers 24\nMinSpareServers 1\n"
                       "MaxSpareServers 24\nMaxConnectionsPerChild 0"}[MPM]
    gw = Gateway(mpm=MPM, upstream=upstream, name="soak", log_level="info",
                 max_body=MAX_BODY, extra_server_conf=conf + "\nKeepAliveTimeout 30\n"
                 + EXTRA_CONF)
    gw.start()
    yield gw, upstream
    gw.stop()
    upstream.stop()


def test_soak(soak_gateway):
    gw, upstream = soak_gateway
    keys = {
        "all": gw.create_key(name="soak-all")[1],
        "claude_only": gw.create_key(name="soak-claude",
                                     models="claude-*")[1],
        "limited": gw.create_key(name="soak-limited", rpm=LIMITED_RPM)[1],
    }
    requests = build_requests(gw.port, keys)
    t0 = time.monotonic()

    warm = run_load(gw.port, requests, WARMUP, CONNECTIONS, seed=1)
    time.sleep(0.5)
    start = children_rss_kb(gw.pid())
    up_before = upstream.count

    t1 = time.monotonic()
    results = run_load(gw.port, requests, REQUESTS, CONNECTIONS, seed=2)
    elapsed = time.monotonic() - t1
    time.sleep(0.5)
    end = children_rss_kb(gw.pid())

    total = sum(n for c in results.values() for n in c.values())
    print("\nsoak: %d requests (+%d warm-up) over %d connections, %s MPM, "
          "%.1f s (%.0f req/s)" % (total, WARMUP, CONNECTIONS, MPM, elapsed,
                                   total / elapsed))
    for kind, counts in sorted(results.items()):
        print("soak:   %-10s %s" % (kind, dict(sorted(counts.items()))))
    print("soak: children RSS start %d kB %s" % (sum(start.values()),
                                                 sorted(start.values())))
    print("soak: children RSS end   %d kB %s" % (sum(end.values()),
                                                 sorted(end.values())))

    assert total == REQUESTS
    # Every answer is the one its kind calls for; no 5xx anywhere.
    for kind, counts in list(results.items()) + list(warm.items()):
        assert set(counts) <= EXPECTED[kind], (kind, counts)
    # The limited key: no more than its bucket plus the refill over the
    # whole run passed (warm-up included).
    run_minutes = (time.monotonic() - t0) / 60
    passed = (results.get("limited", {}).get(200, 0)
              + warm.get("limited", {}).get(200, 0))
    assert passed <= LIMITED_RPM + LIMITED_RPM * run_minutes + 1, passed
    assert results.get("limited", {}).get(429, 0) > 0
    # Only what was answered 200 reached the upstream, never with a
    # client key.
    ok = sum(c.get(200, 0) for c in results.values())
    assert upstream.count - up_before == ok
    assert upstream.leaked_keys == 0
    # Same children at the end, and their memory flat.
    assert set(end) == set(start), (start, end)
    growth_mb = (sum(end.values()) - sum(start.values())) / 1024
    bound = RSS_GROWTH_MB + ASAN_QUARANTINE_MB * len(end)
    print("soak: RSS growth %.1f MB (bound %.1f MB)" % (growth_mb, bound))
    assert growth_mb <= bound
    text = gw.error_log_text()
    assert "exit signal" not in text
    for line in text.splitlines():
        assert not re.search(r"\[[a-z_0-9]+:(warn|error|crit|alert|emerg)\]",
                             line), line
