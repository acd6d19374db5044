#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0.
"""Benchmark (not a test): the cost of the rate check per request.

Starts the mock upstream, a memcached and a Redis on free ports, and four
event-MPM gateways that differ only in the rate limit: none (rpm 0), shm,
memcache:// and redis:// (rpm 60000000, so nothing is refused).  Sends the
same requests to each one connection per request and prints the mean time
per request and its ratio against the gateway with no limit.

    CR_BUILD_DIR=/tmp/build /usr/bin/python3 bench/ratecheck.py [REQUESTS] [CLIENTS]
"""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import requests                                            # noqa: E402
from harness.gateway import Gateway                        # noqa: E402
from harness.mock_upstream import MockUpstream             # noqa: E402
from harness.client import chat_body, openai_headers, OPENAI_PATH  # noqa: E402
from test_rate_cluster import CounterServer                # noqa: E402
import json                                                # noqa: E402


def run(gw, key, total, clients):
    body = json.dumps(chat_body()).encode()
    per = total // clients
    errors = []

    def worker():
        # A new connection per request: requests' keep-alive POSTs meet
        # delayed ACKs (40 ms) that would hide everything else.
        for _ in range(per):
            r = requests.post(gw.url + OPENAI_PATH, data=body,
                              headers=openai_headers(key), timeout=30)
            if r.status_code != 200:
                errors.append(r.status_code)

    # warm up every child and connection
    for _ in range(50):
        requests.post(gw.url + OPENAI_PATH, data=body,
                      headers=openai_headers(key), timeout=30)
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit("non-200 answers: %r" % errors[:10])
    return elapsed / (per * clients) * 1e6 * clients   # us of latency


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    up = MockUpstream().start()
    mc = CounterServer("memcache").start()
    rd = CounterServer("redis").start()
    setups = [("no limit", None, 0), ("shm", None, 60000000),
              ("memcache", mc.spec, 60000000), ("redis", rd.spec, 60000000)]
    results = []
    try:
        for name, store, rpm in setups:
            gw = Gateway(mpm="event", upstream=up, log_level="warn",
                         rate_store=store, name="bench-" + name.replace(" ", ""))
            gw.start()
            try:
                _, key = gw.create_key(rpm=rpm)
                results.append((name, run(gw, key, total, clients)))
            finally:
                gw.cleanup()
    finally:
        mc.stop()
        rd.stop()
        up.stop()
    base = results[0][1]
    print("%d requests, %d clients (a connection per request), event MPM, mock upstream"
          % (total, clients))
    print("%-10s %14s %10s %16s" % ("store", "us/request", "ratio",
                                     "rate check (us)"))
    for name, us in results:
        print("%-10s %14.0f %10.2f %16.0f" % (name, us, us / base, us - base))


if __name__ == "__main__":
    main()
