# Licensed under the Apache License, Version 2.0.
"""clawdrouter-keys on an SQL key store (SPEC section 12): a real
PostgreSQL server (the session's `postgres` fixture) and an sqlite3 file;
init, every command, import from a DBM store, and values with quotes,
backslashes and % stored exactly as given (bound parameters only)."""

import json
import os
import sqlite3
import subprocess

import pytest

BUILD_DIR = os.environ.get("CR_BUILD_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build"))
CLI = os.path.join(BUILD_DIR, "clawdrouter-keys")
HOSTILE = "o'brien \\\\ 100% \"x\"; DROP TABLE clawdrouter_keys; --"


def run(store, *args):
    env = dict(os.environ)
    env.pop("CLAWDROUTER_KEY_STORE", None)
    return subprocess.run([CLI, "--store", store] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=30,
                          env=env)


def ok(store, *args):
    p = run(store, *args)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


class SQLStore:
    def __init__(self, kind, spec, rows):
        self.kind = kind
        self.spec = spec
        self.rows = rows       # () -> [(key_hash, id, record)]


@pytest.fixture(params=["pgsql", "sqlite3"])
def store(request, tmp_path):
    if request.param == "pgsql":
        pg = request.getfixturevalue("postgres")
        pg.psql("DROP TABLE IF EXISTS clawdrouter_keys")

        def rows():
            return [tuple(r) for r in pg.psql(
                "SELECT key_hash, id, record FROM clawdrouter_keys")]
        return SQLStore("pgsql", pg.spec, rows)
    path = str(tmp_path / "keys.sqlite3")

    def rows():
        con = sqlite3.connect(path)
        try:
            return con.execute(
                "SELECT key_hash, id, record FROM clawdrouter_keys").fetchall()
        finally:
            con.close()
    return SQLStore("sqlite3", "sqlite3:" + path, rows)


def test_init_creates_the_table_and_is_idempotent(store):
    p = run(store.spec, "list")
    assert p.returncode == 1
    assert "init" in p.stderr and len(p.stderr.splitlines()) == 1
    ok(store.spec, "init")
    assert store.rows() == []
    ok(store.spec, "init")
    assert json.loads(ok(store.spec, "list", "--json").stdout) == []


def test_every_command(store):
    import hashlib
    ok(store.spec, "init")
    doc = json.loads(ok(store.spec, "create", "--name", "alpha", "--models",
                        "gpt-*", "--rpm", "7", "--json").stdout)
    key, kid = doc["key"], doc["id"]
    (h, rid, rec), = store.rows()
    assert h == hashlib.sha256(key.encode()).hexdigest()
    assert rid == kid
    assert key not in rec
    assert json.loads(rec)["rpm"] == 7

    shown = json.loads(ok(store.spec, "show", kid, "--json").stdout)
    assert shown["name"] == "alpha" and shown["models"] == ["gpt-*"]
    ok(store.spec, "update", kid, "--models", "claude-*", "--rpm", "default",
       "--tpm", "1000")
    rec = json.loads(store.rows()[0][2])
    assert rec["models"] == ["claude-*"] and rec["rpm"] is None
    assert rec["tpm"] == 1000
    assert "revoked %s" % kid in ok(store.spec, "revoke", kid).stdout
    assert json.loads(store.rows()[0][2])["status"] == "revoked"
    listed = json.loads(ok(store.spec, "list", "--json").stdout)
    assert [r["id"] for r in listed] == [kid]
    p = run(store.spec, "show", "key_AAAAAAAAAAAAAAAA")
    assert p.returncode == 1 and "no key with id" in p.stderr


def test_hostile_values_are_stored_as_given(store):
    ok(store.spec, "init")
    doc = json.loads(ok(store.spec, "create", "--name", HOSTILE,
                        "--json").stdout)
    (_, _, rec), = store.rows()
    assert json.loads(rec)["name"] == HOSTILE
    shown = json.loads(ok(store.spec, "show", doc["id"], "--json").stdout)
    assert shown["name"] == HOSTILE
    # An id with quotes and % is only ever a parameter: not found, table
    # intact.
    p = run(store.spec, "show", "key_' OR '1'='1%")
    assert p.returncode == 1
    p = run(store.spec, "revoke", "x'; DELETE FROM clawdrouter_keys; --")
    assert p.returncode == 1
    assert len(store.rows()) == 1


def test_import_from_dbm(store, tmp_path):
    dbm = "sdbm:" + str(tmp_path / "dbm" / "keys")
    os.makedirs(str(tmp_path / "dbm"))
    made = {}
    for name in ("one", HOSTILE):
        doc = json.loads(ok(dbm, "create", "--name", name, "--rpm", "3",
                            "--json").stdout)
        made[doc["id"]] = doc["key"]
    ok(dbm, "revoke", sorted(made)[0])
    ok(store.spec, "init")
    assert "imported 2 records" in ok(store.spec, "import", "--from",
                                      dbm).stdout
    out = ok(store.spec, "import", "--from", dbm).stdout
    assert "imported 0 records, 2 already there" in out
    import hashlib
    rows = {r[1]: (r[0], json.loads(r[2])) for r in store.rows()}
    assert set(rows) == set(made)
    for kid, key in made.items():
        assert rows[kid][0] == hashlib.sha256(key.encode()).hexdigest()
        assert rows[kid][1] == json.loads(ok(dbm, "show", kid,
                                             "--json").stdout)


def test_init_and_import_need_an_sql_store(tmp_path):
    dbm = "sdbm:" + str(tmp_path / "keys")
    assert run(dbm, "init").returncode == 2
    p = run("sqlite3:" + str(tmp_path / "k.db"), "import")
    assert p.returncode == 2 and "--from" in p.stderr


def test_unreachable_database_fails_in_one_line(tmp_path):
    from harness.gateway import closed_port
    p = run("pgsql:host=127.0.0.1 port=%d dbname=x user=x password=hunter2 "
            "connect_timeout=2" % closed_port(), "list")
    assert p.returncode == 1
    assert len(p.stderr.splitlines()) == 1
    assert "hunter2" not in p.stderr


def test_sqlite3_cli_waits_for_a_lock(tmp_path):
    """A writer holding the sqlite3 file (a gateway child opening it, a
    checkpoint) for a moment: the CLI waits for it instead of failing
    with "database is locked"."""
    import threading
    import time
    path = str(tmp_path / "keys.db")
    ok("sqlite3:" + path, "init")
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("BEGIN EXCLUSIVE")
    released = []

    def release():
        # longer than apr_dbd's own retries of a busy step (15 x 0.1 s)
        time.sleep(3.0)
        released.append(time.monotonic())
        db.execute("COMMIT")
    t = threading.Thread(target=release)
    t.start()
    try:
        p = ok("sqlite3:" + path, "create", "--name", "locked", "--json")
        done = time.monotonic()
    finally:
        t.join()
        db.close()
    # It got through only once the lock was gone, and the key is there.
    assert released and done >= released[0]
    doc = json.loads(p.stdout)
    rows = sqlite3.connect(path).execute(
        "SELECT id, record FROM clawdrouter_keys").fetchall()
    assert [(i, json.loads(r)["name"]) for i, r in rows] == [
        (doc["id"], "locked")]
