# Licensed under the Apache License, Version 2.0.
"""SQL key stores for the gateway tests (SPEC section 12): a database of
its own on the session's PostgreSQL server (dbd-pgsql), or an sqlite3 file
(dbd-sqlite3), with the table made by `clawdrouter-keys init`, and the
server configuration that points a gateway at it through mod_dbd
(`ClawdRouterKeyStore dbd`).  A Gateway given `key_store=DBStore(...)` runs
its CLI calls (create_key, keys()) against the same database."""

import os
import pwd
import subprocess
import tempfile
import uuid

from .gateway import BUILD_DIR, IS_ROOT, MODULES_DIR, RUN_USER, base_dir

KINDS = ("dbm", "dbd-pgsql", "dbd-sqlite3")
TABLE = "clawdrouter_keys"


class DBStore:
    """kind "dbd-pgsql" (needs pg, a harness.postgres.Postgres) or
    "dbd-sqlite3".  persist: DBDPersist (None: mod_dbd's default, On)."""

    def __init__(self, kind, pg=None, dbname=None, dbd_conf="", user=None):
        """dbname: an existing database of pg (made by another DBStore);
        user: connect as that PostgreSQL role instead of the owner."""
        assert kind in ("dbd-pgsql", "dbd-sqlite3"), kind
        self.kind = kind
        self.pg = pg
        self.dbd_conf = dbd_conf
        self.user = user
        # Error-log lines a gateway on this store may write: mod_dbd opens
        # sqlite3 without a busy timeout, so a child starting while the CLI
        # writes finds the file locked and says so; mod_dbd opens the
        # connection again at the first request (no request refused).
        self.allowed_log = (["database is locked", "AH00633", "AH00636"]
                            if kind == "dbd-sqlite3" else [])
        if kind == "dbd-pgsql":
            assert pg is not None, "dbd-pgsql needs the postgres fixture"
            self.path = None
            if dbname is not None:
                self.dbname = dbname
                return
            self.dbname = "cr_" + uuid.uuid4().hex[:12]
            pg.psql('CREATE DATABASE "%s"' % self.dbname)
        else:
            self.dir = tempfile.mkdtemp(prefix="sqlite-", dir=base_dir())
            self.path = os.path.join(self.dir, "keys.sqlite3")
            self.dbname = None
        self.init()

    # ---- what clawdrouter-keys and mod_dbd are given ------------------

    @property
    def conninfo(self):
        """DBDParams / the CLI's parameters."""
        if self.kind == "dbd-pgsql":
            info = self.pg.conninfo.replace("dbname=clawdrouter",
                                            "dbname=%s" % self.dbname)
            if self.user:
                info = info.replace("user=%s" % self.pg.dbuser,
                                    "user=%s" % self.user)
            return info
        return self.path

    @property
    def cli_spec(self):
        if self.kind == "dbd-pgsql":
            return "pgsql:" + self.conninfo
        return "sqlite3:" + self.path

    @property
    def driver(self):
        return "pgsql" if self.kind == "dbd-pgsql" else "sqlite3"

    def server_conf(self):
        """Server-level configuration: mod_dbd and the store (the
        LoadModule is in load_conf())."""
        return "\n".join([
            "DBDriver %s" % self.driver,
            'DBDParams "%s"' % self.conninfo,
            self.dbd_conf,
            "ClawdRouterKeyStore dbd",
        ])

    @staticmethod
    def load_conf():
        return "LoadModule dbd_module %s/mod_dbd.so" % MODULES_DIR

    # ---- the database -------------------------------------------------

    def cli(self, *args):
        p = subprocess.run([os.path.join(BUILD_DIR, "clawdrouter-keys"),
                            "--store", self.cli_spec] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=30)
        self.fix_permissions()
        return p

    def init(self):
        p = self.cli("init")
        assert p.returncode == 0, p.stderr
        return self

    def fix_permissions(self):
        """httpd's children (www-data when the tests run as root) write the
        sqlite3 file and its journal next to it (the console)."""
        if self.kind != "dbd-sqlite3" or not IS_ROOT:
            return
        pw = pwd.getpwnam(RUN_USER)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        for fn in os.listdir(self.dir):
            try:
                os.chown(os.path.join(self.dir, fn), pw.pw_uid, pw.pw_gid)
            except OSError:
                pass

    def sql(self, query):
        """Rows of an SQL query as lists of strings."""
        if self.kind == "dbd-pgsql":
            return self.pg.psql_db(self.dbname, query)
        import sqlite3
        con = sqlite3.connect(self.path)
        try:
            return [[("" if v is None else str(v)) for v in row]
                    for row in con.execute(query).fetchall()]
        finally:
            con.close()

    def __repr__(self):
        return "<DBStore %s %s>" % (self.kind, self.dbname or self.path)


def key_store_for(request, kind):
    """For a fixture: None (a DBM store) for "" or "dbm", else a DBStore of
    that kind (dbd-pgsql on the session's `postgres` fixture)."""
    if not kind or kind == "dbm":
        return None
    pg = request.getfixturevalue("postgres") if kind == "dbd-pgsql" else None
    return DBStore(kind, pg=pg)
