# Licensed under the Apache License, Version 2.0.
"""make lint (docs/HARDENING.md): cppcheck and clang-tidy find nothing in
the C sources beyond the justified entries of fuzz/lint.supp, and they do
find a planted bug (so a clean result means something)."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LINT = os.path.join(REPO, "fuzz", "lint.py")


def cppflags():
    """The project's include paths, as the Makefile passes them."""
    def out(*cmd):
        return subprocess.run(cmd, capture_output=True, text=True,
                               check=True).stdout.split()
    apxs = shutil.which("apxs") or shutil.which("apxs2") or "/usr/bin/apxs"
    build = os.environ.get("CR_BUILD_DIR", os.path.join(REPO, "build"))
    return (["-I" + build, "-I" + REPO]
            + out("pkg-config", "--cflags", "apr-1", "apr-util-1",
                  "jansson", "libcrypto")
            + ["-I" + out(apxs, "-q", "INCLUDEDIR")[0]]
            + out(apxs, "-q", "EXTRA_CPPFLAGS"))


def lint(srcdir):
    build = os.environ.get("CR_BUILD_DIR", os.path.join(REPO, "build"))
    return subprocess.run(["/usr/bin/python3", LINT, srcdir, build]
                          + cppflags(), capture_output=True, text=True,
                          timeout=600)


def test_sources_are_lint_clean():
    p = lint(REPO)
    print(p.stdout[-3000:])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 finding(s)" in p.stdout


PLANTED = """/* a planted bug for the lint self-test */
#include <stddef.h>
int cr_planted(int n);
int cr_planted(int n)
{
    int buf[4];
    int *p = NULL;
    buf[3] = n;
    if (n > 2) {
        return *p + buf[0];
    }
    return buf[4];
}
"""


def test_lint_finds_a_planted_bug(tmp_path):
    os.makedirs(tmp_path / "fuzz")
    for f in ("clang-tidy.yaml", "lint.supp"):
        shutil.copy(os.path.join(REPO, "fuzz", f), tmp_path / "fuzz" / f)
    (tmp_path / "cr_planted.c").write_text(PLANTED)
    p = lint(str(tmp_path))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "cppcheck:" in p.stdout and "clang-tidy:" in p.stdout, p.stdout
    assert "cr_planted.c" in p.stdout
