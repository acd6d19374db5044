# Licensed under the Apache License, Version 2.0.
"""A private PostgreSQL server for the tests: Debian's postgresql 15
(initdb, pg_ctl) on a spare loopback port and a temp directory, run as an
unprivileged user (postgres, or nobody) when the tests run as root, trust
authentication on 127.0.0.1 only."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

from harness.gateway import free_port

PG_BIN = "/usr/lib/postgresql/15/bin"
PSQL = "/usr/bin/psql"
DBNAME = "clawdrouter"


def _run_as():
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run PostgreSQL as")


class Postgres:
    def __init__(self):
        self.user = _run_as()
        self.dir = tempfile.mkdtemp(prefix="cr-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.log = os.path.join(self.dir, "postgres.log")
        os.chmod(self.dir, 0o755)
        if self.user:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)

    def _preexec(self):
        if self.user:
            os.setgid(self.user.pw_gid)
            os.setgroups([])
            os.setuid(self.user.pw_uid)

    def _run(self, *argv, check=True, timeout=60):
        env = dict(os.environ, LC_ALL="C")
        if self.user:
            env["HOME"] = self.dir
        return subprocess.run(list(argv), preexec_fn=self._preexec, env=env,
                              capture_output=True, text=True,
                              timeout=timeout, check=check, cwd=self.dir)

    @property
    def dbuser(self):
        return self.user.pw_name if self.user else pwd.getpwuid(
            os.geteuid()).pw_name

    @property
    def conninfo(self):
        return ("host=127.0.0.1 port=%d dbname=%s user=%s connect_timeout=2"
                % (self.port, DBNAME, self.dbuser))

    @property
    def spec(self):
        return "pgsql:" + self.conninfo

    def init(self):
        self._run(os.path.join(PG_BIN, "initdb"), "-D", self.data,
                  "--auth=trust", "-U", self.dbuser, "-E", "UTF8",
                  "--no-sync")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nfsync = off\n"
                    "max_connections = 200\n" % (self.port, self.dir))
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "host all all 127.0.0.1/32 trust\n")
        return self

    def start(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                  self.log, "-w", "-t", "30", "start")
        deadline = time.time() + 20
        while time.time() < deadline:
            p = self._run(os.path.join(PG_BIN, "pg_isready"), "-h",
                          "127.0.0.1", "-p", str(self.port), check=False)
            if p.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start: %s" % self.log)

    def create_db(self):
        self._run(os.path.join(PG_BIN, "createdb"), "-h", "127.0.0.1", "-p",
                  str(self.port), "-U", self.dbuser, DBNAME)
        return self

    def stop(self, mode="fast"):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m",
                  mode, "-w", "-t", "30", "stop", check=False)

    def psql(self, sql):
        """Run sql; the rows as lists of strings (unaligned, tab-separated)."""
        return self.psql_db(DBNAME, sql)

    def psql_db(self, dbname, sql):
        """psql() in the database dbname."""
        p = self._run(PSQL, "-X", "-q", "-A", "-t", "-F", "\t", "-v",
                      "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                      str(self.port), "-U", self.dbuser, "-d", dbname,
                      "-c", sql)
        return [line.split("\t") for line in p.stdout.splitlines() if line]

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
