#!/usr/bin/python3
# Licensed under the Apache License, Version 2.0.
"""make lint: cppcheck and clang-tidy over the project's C sources, with
the project's include paths; exit 1 on any finding not listed (with its
reason) in fuzz/lint.supp.

usage: lint.py SRCDIR BUILDDIR [CPPFLAGS...]"""

import concurrent.futures
import glob
import os
import re
import subprocess
import sys

FINDING = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+): "
                     r"(?P<sev>warning|error|style|performance|portability|"
                     r"information): (?P<msg>.*?) \[(?P<id>[\w.,-]+)\]$")


def sources(srcdir):
    files = [os.path.join(srcdir, "mod_clawdrouter.c"),
             os.path.join(srcdir, "clawdrouter-keys.c")]
    files += sorted(glob.glob(os.path.join(srcdir, "cr_*.c")))
    files += sorted(glob.glob(os.path.join(srcdir, "fuzz", "fuzz_*.c")))
    return [f for f in files if os.path.exists(f)]


def load_suppressions(path):
    rules = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            tool, fname, check, text = line.split(None, 3)
            if "#" not in raw:
                sys.exit("lint.supp: no reason given: " + raw.strip())
            rules.append((tool, fname, check, text.replace(" ", "")))
    return rules


def suppressed(rules, tool, path, check, source_line):
    squeezed = re.sub(r"\s+", "", source_line)
    for r_tool, r_file, r_check, r_text in rules:
        if r_tool != tool or r_check != check:
            continue
        if r_file != "*" and os.path.basename(path) != r_file:
            continue
        if r_text == "*" or r_text in squeezed:
            return True
    return False


def source_line(path, n):
    try:
        with open(path, errors="replace") as f:
            for i, line in enumerate(f, 1):
                if i == n:
                    return line
    except OSError:
        pass
    return ""


def run_cppcheck(srcdir, builddir, files):
    cmd = ["cppcheck", "--quiet", "--std=c99", "--inline-suppr",
           "--enable=warning,style,performance,portability",
           "--template={file}:{line}:{column}: {severity}: {message} [{id}]",
           "-I" + srcdir, "-I" + builddir, "-I" + os.path.join(srcdir, "fuzz")]
    p = subprocess.run(cmd + files, capture_output=True, text=True)
    return "cppcheck", p.stdout + p.stderr


def run_clang_tidy(srcdir, cppflags, path):
    cmd = ["clang-tidy", "--quiet",
           "--config-file=" + os.path.join(srcdir, "fuzz", "clang-tidy.yaml"),
           path, "--", "-I" + os.path.join(srcdir, "fuzz")] + cppflags
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if p.returncode != 0 and not FINDING.search(out):
        out += "\n%s:1:1: error: clang-tidy failed (%d) [clang-tidy-run]" % (
            path, p.returncode)
    return "clang-tidy", out


def main():
    srcdir, builddir, cppflags = sys.argv[1], sys.argv[2], sys.argv[3:]
    srcdir = os.path.abspath(srcdir)
    rules = load_suppressions(os.path.join(srcdir, "fuzz", "lint.supp"))
    files = sources(srcdir)
    jobs = int(os.environ.get("LINT_JOBS", os.cpu_count() or 2))
    findings = []
    seen = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_cppcheck, srcdir, builddir, files)]
        futures += [pool.submit(run_clang_tidy, srcdir, cppflags, f)
                    for f in files]
        for fut in futures:
            tool, out = fut.result()
            for line in out.splitlines():
                m = FINDING.match(line.strip())
                if not m or m.group("sev") == "information":
                    continue
                key = (tool, m.group("file"), m.group("line"), m.group("id"))
                if key in seen:
                    continue
                seen.add(key)
                text = source_line(m.group("file"), int(m.group("line")))
                if suppressed(rules, tool, m.group("file"), m.group("id"),
                              text):
                    continue
                findings.append("%s: %s" % (tool, line.strip()))
    for f in findings:
        print(f)
    print("lint: %d file(s), %d finding(s)" % (len(files), len(findings)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
