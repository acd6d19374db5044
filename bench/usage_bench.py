#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0.
"""Token usage accounting (SPEC section 11): CPU cost per response and per
streamed event (bench/cr_bench_usage.c over cr_usage.c, -O2), and time to
the first event of a stream through a real gateway, with the usage chunk
taken out (ClawdRouterStreamUsage On: include_usage is added and each
event's first bytes are held until its "choices" is seen) and without
(Off: the stream passes as it comes).  Prints figures; asserts nothing.

    /usr/bin/python3 bench/usage_bench.py [--requests N]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from harness import Gateway, MockUpstream  # noqa: E402


def cpu_costs():
    d = tempfile.mkdtemp(prefix="cr-usage-bench-")
    exe = os.path.join(d, "cr_bench_usage")
    def pkg(what):
        return subprocess.run(["pkg-config", what, "apr-util-1", "apr-1"],
                              capture_output=True, text=True,
                              check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-I" + REPO] + pkg("--cflags") +
                   ["-o", exe, os.path.join(REPO, "bench", "cr_bench_usage.c"),
                    os.path.join(REPO, "cr_usage.c")] + pkg("--libs"),
                   check=True)
    print(subprocess.run([exe], capture_output=True, text=True,
                         check=True).stdout, end="")


def first_event_ms(gw, key, path, n):
    body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]})
    req = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
           "application/json\r\nAuthorization: Bearer %s\r\n"
           "X-Mock-Event-Delay: 0.02\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
           % (path, key, len(body), body)).encode()
    times = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        s.sendall(req)
        buf = b""
        while b"data: " not in buf:
            data = s.recv(65536)
            if not data:
                break
            buf += data
        times.append((time.perf_counter() - t0) * 1000)
        while s.recv(65536):
            pass
        s.close()
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    cpu_costs()
    up = MockUpstream().start()
    gw = Gateway(upstream=up, mpm="event", log_level="warn",
                 name="usage-bench",
                 after_location_conf="<Location /v1/off>\n"
                 "    ClawdRouterStreamUsage Off\n</Location>")
    gw.start()
    try:
        _, key = gw.create_key(name="bench")
        # warm up both paths
        first_event_ms(gw, key, "/v1/chat/completions", 5)
        first_event_ms(gw, key, "/v1/off/chat/completions", 5)
        for label, path in (("on", "/v1/chat/completions"),
                            ("off", "/v1/off/chat/completions")):
            med, low = first_event_ms(gw, key, path, args.requests)
            print("first_event_ms_stream_usage_%s median %.3f min %.3f (n=%d)"
                  % (label, med, low, args.requests))
    finally:
        gw.stop()
        up.stop()


if __name__ == "__main__":
    main()
