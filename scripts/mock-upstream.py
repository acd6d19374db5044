#!/usr/bin/env python3
"""A local stand-in for the OpenAI and Anthropic APIs, for the demo.

It is the test suite's mock (tests/harness/mock_upstream.py): it answers
POST .../chat/completions and POST .../messages, streamed or not, with
canned text.  It writes its port to --port-file and runs until killed.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests"))
from harness.mock_upstream import MockUpstream  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    mock = MockUpstream().start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % mock.port)
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        while True:
            time.sleep(30)
            mock.clear()    # the demo does not need the recorded requests
    except KeyboardInterrupt:
        pass
    mock.stop()


if __name__ == "__main__":
    main()
