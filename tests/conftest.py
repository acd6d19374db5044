# Licensed under the Apache License, Version 2.0.
"""pytest fixtures of the mod_clawdrouter integration tests: a mock LLM
upstream, private Apache instances with the module, and an error-log check
after every test.  See tests/README.md."""

import os
import shutil
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import registry                                  # noqa: E402
from harness.gateway import (Gateway, base_dir, UPSTREAM_CREDENTIALS)  # noqa: E402
from harness.logcheck import bad_lines, find_secrets           # noqa: E402
from harness.mock_upstream import MockUpstream                 # noqa: E402
from harness.dbstore import key_store_for                      # noqa: E402

DEFAULT_MPMS = ("event", "prefork")
# The SQL key stores a suite marked @pytest.mark.keystores runs against
# too, besides the DBM store: under the event MPM only (CI time).
SQL_KEYSTORES = ("dbd-pgsql", "dbd-sqlite3")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "allow_log(*patterns): allowed error-log substrings")
    config.addinivalue_line(
        "markers", "mpm(*names): MPMs for the gateway fixture")
    config.addinivalue_line(
        "markers", "keystores(*kinds): key stores for the gateway fixture "
        "besides DBM (default dbd-pgsql and dbd-sqlite3; 'dbm' alone: none)")


def gateway_params(node, mpms):
    """The `gateway` fixture's parameters: "MPM" (DBM store) for each MPM,
    and "event+KIND" for each SQL key store of a keystores marker."""
    params = list(mpms)
    marker = node.get_closest_marker("keystores")
    if marker is not None:
        kinds = marker.args or SQL_KEYSTORES
        params += ["event+" + k for k in kinds if k != "dbm"]
    return params


def pytest_generate_tests(metafunc):
    """Parametrise the `gateway` fixture over the MPMs (default event and
    prefork; @pytest.mark.mpm("worker") or a module-level
    `pytestmark = pytest.mark.mpm(...)` changes that), and with
    @pytest.mark.keystores over the SQL key stores too (event only)."""
    if "gateway" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("mpm")
        mpms = marker.args if marker else DEFAULT_MPMS
        metafunc.parametrize("gateway",
                             gateway_params(metafunc.definition, mpms),
                             indirect=True, scope="module")


@pytest.fixture(scope="session", autouse=True)
def _harness_session(request):
    yield
    # Final secret scan: no client key and no upstream credential in any
    # log file or key store file of any gateway of the session.
    paths = []
    for gw in registry.GATEWAYS:
        gw.stop()
        paths += [gw.logs_dir, gw.keys_dir]
    hits = find_secrets(paths, list(registry.CLIENT_KEYS) +
                        list(UPSTREAM_CREDENTIALS))
    failed = request.session.testsfailed
    if not hits and not failed and not os.environ.get("CR_KEEP_TMP"):
        shutil.rmtree(base_dir(), ignore_errors=True)
    else:
        sys.stderr.write("\nharness: gateway directories kept in %s\n"
                         % base_dir())
    assert not hits, "secrets found in logs or key stores: %r" % hits


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL 15 server (harness/postgres.py) with the
    database `clawdrouter`, shared by the whole session."""
    from harness.postgres import Postgres
    pg = Postgres().init().start().create_db()
    yield pg
    pg.destroy()


@pytest.fixture(scope="module")
def upstream():
    """A started MockUpstream shared by the tests of a module (cleared
    before every test)."""
    m = MockUpstream().start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def gateway(request, upstream):
    """A started Gateway with the default configuration, one per MPM (and
    key store, see gateway_params) and test module."""
    mpm, _, kind = request.param.partition("+")
    gw = Gateway(mpm=mpm, upstream=upstream,
                 name=request.module.__name__.rsplit(".", 1)[-1],
                 key_store=key_store_for(request, kind))
    gw.start()
    yield gw
    gw.stop()
    _check_shutdown_log(gw)


def _check_shutdown_log(gw):
    text = gw.error_log_text(gw.log_checked_offset)
    gw.log_checked_offset += len(text.encode("utf-8", "replace"))
    bad = bad_lines(text, gw.allowed_log)
    assert not bad, "unexpected error-log lines at shutdown of %r:\n%s" % (
        gw, "\n".join(bad))


def _gateway_factory(upstream, made):
    """factory(start=True, **Gateway kwargs) -> Gateway on upstream (started
    unless start=False), remembered in made for the fixture to stop."""
    def factory(start=True, **kw):
        kw.setdefault("upstream", upstream)
        gw = Gateway(**kw)
        made.append(gw)
        if start:
            gw.start()
        return gw
    return factory


@pytest.fixture
def make_gateway(upstream):
    """Factory: make_gateway(**Gateway kwargs) -> started Gateway (not
    started if start=False), stopped at the end of the test."""
    made = []
    yield _gateway_factory(upstream, made)
    for gw in made:
        gw.stop()


@pytest.fixture(scope="module")
def make_module_gateway(upstream):
    """Like make_gateway, but the gateways live for the whole module."""
    made = []
    yield _gateway_factory(upstream, made)
    for gw in made:
        gw.stop()
    for gw in made:
        _check_shutdown_log(gw)


@pytest.fixture(autouse=True)
def _per_test(request):
    """Clear the mock's records before the test; after it, fail on any new
    error-log line at warn or worse in any gateway not allowed by
    @pytest.mark.allow_log(...)."""
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").clear()
    yield
    allowed = []
    for m in request.node.iter_markers("allow_log"):
        allowed += list(m.args)
    # httpd writes some lines just after the response: let them land
    time.sleep(0.03)
    problems = []
    for gw in registry.GATEWAYS:
        raw = b""
        try:
            with open(gw.error_log_path, "rb") as f:
                f.seek(gw.log_checked_offset)
                raw = f.read()
        except OSError:
            continue
        gw.log_checked_offset += len(raw)
        bad = bad_lines(raw.decode("utf-8", "replace"),
                        allowed + list(gw.allowed_log))
        if bad:
            problems.append("%r:\n  %s" % (gw, "\n  ".join(bad[:20])))
    if problems:
        pytest.fail("unexpected error-log lines (warn or worse); allow with "
                    "@pytest.mark.allow_log(...):\n" + "\n".join(problems),
                    pytrace=False)
