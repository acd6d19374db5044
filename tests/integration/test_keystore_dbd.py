# Licensed under the Apache License, Version 2.0.
"""ClawdRouterKeyStore dbd (SPEC section 12): two Apache hosts, host A
under prefork and host B under event, on one PostgreSQL database through
mod_dbd.  A key made with the CLI works on both at once; revoked in host
A's console it is refused by host B at its very next request, and the same
for `update --models` and `--rpm`; a connection the database dropped is
replaced without a refused request; the database stopped (500 JSON
key_store_unavailable, nothing forwarded, one log line per 10 s per child)
and started again (served again within 10 s, no restart); hostile names
and ids reach the database only as bound parameters; httpd refuses to start
without mod_dbd or a DBDriver; the two-host example configuration parses.

This module has a PostgreSQL server of its own (it stops and starts it)."""

import json
import os
import re
import secrets
import subprocess
import time

import pytest

from harness.client import assert_error, call
from harness.dbstore import DBStore
from harness.gateway import HTTPD, MODULES_DIR, REPO, BUILD_DIR
from harness.postgres import Postgres
from test_console_http import (CONSOLE_PATH, USER, Console, console_conf,
                               write_htpasswd)

HOSTILE = "o'brien \\ 100% \"x\"; DROP TABLE clawdrouter_keys; --"
HOSTILE_IDS = ["x' OR '1'='1", "key_\\'; DELETE FROM clawdrouter_keys; --",
               "%", "key_%' --", "a\x00b"]
# mod_dbd's own messages while the database is down (not ours)
DBD_DOWN_LOG = ("[dbd:error]", "[dbd:crit]", "CR0904")


@pytest.fixture(scope="module")
def pg():
    server = Postgres().init().start().create_db()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def db(pg):
    return DBStore("dbd-pgsql", pg=pg)


@pytest.fixture(scope="module")
def hosts(db, make_module_gateway):
    """(A, B): A prefork with the console, B event; one database."""
    password = secrets.token_urlsafe(18)
    a = make_module_gateway(start=False, mpm="prefork", name="dbd-host-a",
                            key_store=db)
    htpasswd = os.path.join(a.root, "htpasswd")
    write_htpasswd(htpasswd, {USER: password})
    a.reconfigure(extra_server_conf=console_conf(htpasswd))
    a.start()
    a.console = Console(a, USER, password)
    b = make_module_gateway(mpm="event", name="dbd-host-b", key_store=db)
    return a, b


def record_in_db(db, key_id):
    rows = db.sql("SELECT record FROM clawdrouter_keys WHERE id = '%s'"
                  % key_id.replace("'", "''"))
    assert len(rows) == 1, rows
    return json.loads(rows[0][0])


def test_cli_key_works_on_both_hosts_at_once(hosts, upstream):
    a, b = hosts
    key_id, key = a.create_key(name="both", models="gpt-*")
    # no wait, no reload: each host reads the row at the request
    for gw in (b, a):
        r = call(gw, "openai", key)
        assert r.status_code == 200, r.text
    assert len(upstream.requests) == 2
    assert_error(call(b, "anthropic", key), "model_not_permitted",
                 "anthropic")
    # the row is the CLI's: hash and record, never the key
    rows = db_rows = a.key_store.sql(
        "SELECT key_hash, id, record FROM clawdrouter_keys")
    assert any(r[1] == key_id for r in db_rows)
    assert not any(key in "\t".join(r) for r in rows)


def test_revoked_in_console_of_a_refused_by_b_next_request(hosts, upstream):
    a, b = hosts
    key_id, key = a.create_key(name="to-revoke")
    assert call(b, "openai", key).status_code == 200
    token = a.console.token()
    done = a.console.post({"csrf": token, "action": "revoke", "id": key_id,
                           "confirm": "1"})
    assert done.status_code == 303, done.text
    upstream.clear()
    # the very next request on B (and on A)
    assert_error(call(b, "openai", key), "invalid_key", "openai")
    assert_error(call(a, "anthropic", key), "invalid_key", "anthropic")
    assert upstream.requests == []
    assert record_in_db(a.key_store, key_id)["status"] == "revoked"


def test_key_made_in_console_of_a_works_on_b(hosts):
    a, b = hosts
    key_id, key, _ = a.console.create_key(name="from-console",
                                          models="claude-*")
    r = call(b, "anthropic", key)
    assert r.status_code == 200, r.text
    assert record_in_db(a.key_store, key_id)["name"] == "from-console"
    # and it is in the CLI's list of the database
    listed = json.loads(a.keys("list", "--json", check=True).stdout)
    listed = listed if isinstance(listed, list) else listed.get("keys", [])
    assert key_id in [k["id"] for k in listed]


def test_update_models_honoured_by_b_next_request(hosts):
    a, b = hosts
    key_id, key = a.create_key(name="models", models="gpt-*")
    assert call(b, "openai", key).status_code == 200
    assert_error(call(b, "anthropic", key), "model_not_permitted",
                 "anthropic")
    a.keys("update", key_id, "--models", "claude-*", check=True)
    assert call(b, "anthropic", key).status_code == 200
    assert_error(call(b, "openai", key), "model_not_permitted", "openai")
    assert call(a, "anthropic", key).status_code == 200


def test_update_rpm_honoured_by_b_next_request(hosts):
    a, b = hosts
    key_id, key = a.create_key(name="rpm")
    for _ in range(3):   # no limit yet (B's counters are B's own)
        assert call(a, "openai", key).status_code == 200
    a.keys("update", key_id, "--rpm", "2", check=True)
    assert call(b, "openai", key).status_code == 200
    assert call(b, "openai", key).status_code == 200
    assert_error(call(b, "openai", key), "rate_limited", "openai")
    a.keys("update", key_id, "--rpm", "1000", check=True)
    assert call(b, "openai", key).status_code == 200


def test_hostile_values_are_bound_parameters(hosts):
    a, b = hosts
    before = a.key_store.sql("SELECT count(*) FROM clawdrouter_keys")[0][0]
    # a name with quotes, a backslash and % through host A's console
    # (the module's prepared INSERT) and through the CLI
    key_id, key, _ = a.console.create_key(name=HOSTILE, models="*")
    assert record_in_db(a.key_store, key_id)["name"] == HOSTILE
    cli_id, cli_key = a.create_key(name=HOSTILE + " (cli)")
    assert record_in_db(a.key_store, cli_id)["name"] == HOSTILE + " (cli)"
    # psql shows the name as given (the record is JSON; the quote is there)
    rows = a.key_store.sql("SELECT record FROM clawdrouter_keys "
                           "WHERE record LIKE '%o''brien%'")
    assert len(rows) == 2
    # ids that would be SQL if pasted into a string: nothing found, nothing
    # changed, every key still works
    token = a.console.token()
    for bad in HOSTILE_IDS:
        r = a.console.post({"csrf": token, "action": "revoke", "id": bad,
                            "confirm": "1"})
        assert r.status_code in (303, 400, 404), (bad, r.status_code)
        assert r.status_code != 303 or "revoked" not in r.headers.get(
            "Location", ""), bad
    assert a.key_store.sql(
        "SELECT count(*) FROM clawdrouter_keys")[0][0] == str(int(before) + 2)
    for k in (key, cli_key):
        assert call(b, "openai", k).status_code == 200
    # a hostile bearer key is only ever hashed
    for bad in ("sk-' OR '1'='1", "sk-%%%\\\\", 'sk-"; DROP TABLE x; --'):
        r = call(b, "openai", bad)
        assert r.status_code == 401, r.text
    assert a.key_store.sql("SELECT count(*) FROM clawdrouter_keys")[0][0] \
        == str(int(before) + 2)


def test_select_only_role_serves_requests(hosts, db, pg, make_gateway):
    """The Apache user needs SELECT only (INSERT and UPDATE for a
    console): mod_dbd prepares every statement, PostgreSQL checks the
    privileges when one runs."""
    a, _ = hosts
    pg.psql_db(db.dbname, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles "
               "WHERE rolname = 'cr_reader') THEN CREATE ROLE cr_reader "
               "LOGIN; END IF; END $$")
    pg.psql_db(db.dbname, "GRANT SELECT ON clawdrouter_keys TO cr_reader")
    reader = DBStore("dbd-pgsql", pg=pg, dbname=db.dbname, user="cr_reader")
    gw = make_gateway(mpm="event", name="dbd-reader", key_store=reader)
    key_id, key = a.create_key(name="reader")
    assert call(gw, "openai", key).status_code == 200
    a.revoke_key(key_id)
    assert_error(call(gw, "openai", key), "invalid_key", "openai")
    # the role cannot write (what a console on this host would need)
    p = reader.cli("create", "--name", "nope")
    assert p.returncode != 0 and "permission denied" in p.stderr


def test_dropped_connections_replaced_without_refusal(hosts, pg):
    a, b = hosts
    key_id, key = a.create_key(name="dropped")
    for _ in range(8):    # every child of both hosts holds a connection
        for gw in (a, b):
            assert call(gw, "openai", key).status_code == 200
    killed = pg.psql_db(a.key_store.dbname,
                        "SELECT count(pg_terminate_backend(pid)) FROM "
                        "pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")
    assert int(killed[0][0]) >= 2
    for _ in range(8):
        for gw in (a, b):
            r = call(gw, "openai", key)
            assert r.status_code == 200, r.text
    # a restart of the database between two requests: the same
    pg.stop()
    pg.start()
    for _ in range(8):
        for gw in (a, b):
            r = call(gw, "openai", key)
            assert r.status_code == 200, r.text
    for gw in (a, b):
        assert "CR0904" not in gw.error_log_text()
        assert "CR0903" in gw.error_log_text()   # reconnected, re-prepared


def _down_lines(gw, offset):
    text = gw.error_log_text(offset)
    return [ln for ln in text.splitlines() if "CR0904" in ln]


@pytest.mark.allow_log(*DBD_DOWN_LOG)
def test_database_down_fails_closed_and_comes_back(hosts, pg, upstream):
    a, b = hosts
    key_id, key = a.create_key(name="outage")
    for gw in (a, b):
        assert call(gw, "openai", key).status_code == 200
    pids = {gw: gw.pid() for gw in (a, b)}
    marks = {gw: gw._generation_marks() for gw in (a, b)}
    offsets = {gw: gw.error_log_size() for gw in (a, b)}
    pg.stop()
    try:
        upstream.clear()
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 3:
            for gw in (a, b):
                for protocol in ("openai", "anthropic"):
                    r = call(gw, protocol, key)
                    assert_error(r, "key_store_unavailable", protocol)
                    assert key not in r.text
                    n += 1
        assert n >= 20
        assert upstream.requests == []
        time.sleep(0.1)
        for gw in (a, b):
            lines = _down_lines(gw, offsets[gw])
            assert lines, "the refusal is logged (%r)" % gw
            per_pid = {}
            for ln in lines:
                m = re.search(r"\[pid (\d+)", ln)
                per_pid[m.group(1)] = per_pid.get(m.group(1), 0) + 1
            # in 3 s: at most one line per child
            assert max(per_pid.values()) == 1, lines
            assert key not in gw.error_log_text(offsets[gw])
    finally:
        pg.start()
    back = time.monotonic()
    for gw in (a, b):
        while True:
            r = call(gw, "openai", key)
            if r.status_code == 200:
                break
            assert time.monotonic() - back < 10, r.text
            time.sleep(0.2)
    # every child serves again; no restart happened
    for _ in range(10):
        for gw in (a, b):
            assert call(gw, "openai", key).status_code == 200
    for gw in (a, b):
        assert gw.pid() == pids[gw]
        assert gw._generation_marks() == marks[gw]


# ---- startup refusal ----------------------------------------------------

def _start_output(gw):
    p = gw._httpd("-k", "start", check=False)
    time.sleep(0.3)
    return p


def test_refuses_to_start_without_mod_dbd(db, make_gateway):
    gw = make_gateway(start=False, name="dbd-nomod", key_store=db)
    with open(gw.conf_path) as f:
        text = f.read()
    text = text.replace(db.load_conf() + "\n", "")
    text = re.sub(r"^DBD(river|Params) .*\n", "", text, flags=re.M)
    with open(gw.conf_path, "w") as f:
        f.write(text)
    p = _start_output(gw)
    assert p.returncode != 0
    assert "ClawdRouterKeyStore dbd needs mod_dbd" in p.stderr
    assert not gw._port_open()
    t = gw.configtest()
    assert t.returncode != 0 and "needs mod_dbd" in t.stderr


def test_refuses_to_start_without_dbdriver(db, make_gateway):
    gw = make_gateway(start=False, name="dbd-nodriver", key_store=db)
    gw.allowed_log += ["CR0901", "AH00016"]
    with open(gw.conf_path) as f:
        text = f.read()
    text = re.sub(r"^DBD(river|Params) .*\n", "", text, flags=re.M)
    with open(gw.conf_path, "w") as f:
        f.write(text)
    p = _start_output(gw)
    assert p.returncode != 0, p.stderr
    assert not gw._port_open()
    log = gw.error_log_text()
    assert "CR0901" in log and "no DBDriver is configured" in log, log


# ---- the example configuration -----------------------------------------

def test_two_host_example_configuration_parses(tmp_path):
    src = os.path.join(REPO, "conf", "clawdrouter-dbd-two-hosts.conf.example")
    with open(src) as f:
        text = f.read()
    assert "ClawdRouterKeyStore dbd" in text and "DBDriver pgsql" in text
    text = text.replace("/usr/lib/apache2/modules/mod_clawdrouter.so",
                        os.path.join(BUILD_DIR, ".libs",
                                     "mod_clawdrouter.so"))
    text = text.replace("/usr/lib/apache2/modules", MODULES_DIR)
    for name in ("openai", "anthropic"):
        cred = tmp_path / (name + ".key")
        cred.write_text("not-a-real-credential\n")
        text = text.replace("/etc/clawdrouter/%s.key" % name, str(cred))
    conf = tmp_path / "httpd.conf"
    conf.write_text("ServerRoot %s\nServerName 127.0.0.1\n"
                    "Listen 127.0.0.1:%d\nErrorLog %s/error.log\n"
                    "PidFile %s/httpd.pid\n"
                    "LoadModule mpm_event_module %s/mod_mpm_event.so\n"
                    "LoadModule authz_core_module %s/mod_authz_core.so\n"
                    % (tmp_path, 1, tmp_path, tmp_path, MODULES_DIR,
                       MODULES_DIR) + text)
    p = subprocess.run([HTTPD, "-t", "-f", str(conf)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "Syntax OK" in p.stderr
