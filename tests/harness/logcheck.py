# Licensed under the Apache License, Version 2.0.
"""Error-log level checks and secret scans."""

import os
import re

# httpd's default ErrorLogFormat: "[date] [module:level] [pid ...] ..."
# (the module part is absent for some core lines: "[level]").
_LEVEL_RE = re.compile(r"^\[[^\]]*\] \[(?:[A-Za-z0-9_.-]+:)?([a-z]+[0-9]?)\]")

BAD_LEVELS = ("emerg", "alert", "crit", "error", "warn")


def line_level(line):
    """The level field of an error-log line ('error', 'trace8'...) or None."""
    m = _LEVEL_RE.match(line)
    return m.group(1) if m else None


def bad_lines(text, allowed=()):
    """Lines at warn or worse not matching any allowed substring."""
    out = []
    for line in text.splitlines():
        if line_level(line) in BAD_LEVELS:
            if not any(a in line for a in allowed):
                out.append(line)
    return out


def find_secrets(paths, secrets):
    """[(path, secret_prefix)] for every secret found in any of the files
    (read as bytes; directories are walked)."""
    hits = []
    secrets = [s for s in secrets if s]
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, fs in os.walk(p):
                files += [os.path.join(d, f) for f in fs]
        elif os.path.exists(p):
            files.append(p)
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for s in secrets:
            if s.encode() in data:
                hits.append((f, s[:8] + "..."))
    return hits
