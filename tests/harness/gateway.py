# Licensed under the Apache License, Version 2.0.
"""Generate an httpd.conf for mod_clawdrouter, start, reload and stop a
private Apache on a free loopback port, and manage its key store."""

import atexit
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from . import registry

HTTPD = os.environ.get("CR_HTTPD", "/usr/sbin/apache2")
MODULES_DIR = os.environ.get("CR_HTTPD_MODULES", "/usr/lib/apache2/modules")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("CR_BUILD_DIR", os.path.join(REPO, "build"))

# The upstream credentials of the test configuration: distinctive strings
# the secret checks look for in every log and store file.
OPENAI_CREDENTIAL = "upstream-openai-secret-7Qx2Lm9Vb4"
ANTHROPIC_CREDENTIAL = "upstream-anthropic-secret-Kd81Zr5Tw0"   # via env:
FILE_CREDENTIAL = "upstream-file-secret-Hy63Pn2Js7"             # via file:
ANTHROPIC_CREDENTIAL_ENV = "CR_TEST_ANTHROPIC_CREDENTIAL"
UPSTREAM_CREDENTIALS = (OPENAI_CREDENTIAL, ANTHROPIC_CREDENTIAL,
                        FILE_CREDENTIAL)

IS_ROOT = os.geteuid() == 0
RUN_USER = "www-data"

ACCESS_LOG_FORMAT = (
    '%h %l %u %t \\"%r\\" %>s %b '
    'key_id=\\"%{CLAWDROUTER_KEY_ID}e\\" model=\\"%{CLAWDROUTER_MODEL}e\\" '
    'upstream=\\"%{CLAWDROUTER_UPSTREAM}e\\" '
    'request_id=\\"%{CLAWDROUTER_REQUEST_ID}e\\" '
    'resp_request_id=\\"%{Request-Id}o\\"')

MPM_CONF = {
    "event": """
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 8
MaxSpareThreads 48
""",
    "worker": """
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 8
MaxSpareThreads 48
""",
    "prefork": """
StartServers 4
MinSpareServers 2
MaxSpareServers 8
ServerLimit 24
MaxRequestWorkers 24
""",
}

_base_dir = None


def base_dir():
    """A world-traversable directory for every gateway of this run (httpd's
    children run as www-data when the tests run as root)."""
    global _base_dir
    if _base_dir is None:
        _base_dir = tempfile.mkdtemp(prefix="cr-tests-")
        os.chmod(_base_dir, 0o755)
    return _base_dir


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def closed_port():
    """A loopback port nobody listens on (for 'upstream unreachable')."""
    return free_port()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    # a zombie still answers kill(0); look at its state
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class GatewayError(Exception):
    pass


class Gateway:
    """A private Apache with mod_clawdrouter in front of a MockUpstream.

    upstream:  a started MockUpstream (its .url is used) or None.
    mpm:       "event", "prefork" or "worker".
    extra_server_conf / extra_location_conf: text added at server level
               before the main <Location> / inside <Location /v1>.
    after_location_conf: server-level text after the main <Location> (for
               sub-locations that must merge after it).
    max_body:  ClawdRouterMaxBodySize (None = module default).
    default_rpm: ClawdRouterDefaultRPM (None = unset).
    rate_store, rate_store_failure: ClawdRouterRateStore(Failure), None = unset.
    upstreams: replace the default upstream/route block (text), or None.
    module:    False builds a plain ProxyPass config (harness self-test only).
    key_store: None (a DBM store in keys/) or a harness.dbstore.DBStore
               (ClawdRouterKeyStore dbd through mod_dbd; the CLI calls go to
               the same database).
    """

    def __init__(self, workdir=None, mpm="event", upstream=None,
                 extra_server_conf="", extra_location_conf="",
                 log_level="trace8", rate_store=None, rate_store_failure=None,
                 max_body=None, default_rpm=None, upstreams=None,
                 location="/v1", module=True, build_dir=None, name=None,
                 after_location_conf="", key_store=None):
        self.mpm = mpm
        self.key_store = key_store
        self.upstream = upstream
        self.extra_server_conf = extra_server_conf
        self.extra_location_conf = extra_location_conf
        self.after_location_conf = after_location_conf
        self.log_level = log_level
        self.rate_store = rate_store
        self.rate_store_failure = rate_store_failure
        self.max_body = max_body
        self.default_rpm = default_rpm
        self.upstreams_conf = upstreams
        self.location = location
        self.module = module
        self.build_dir = build_dir or BUILD_DIR
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="gw-%s-%s-" % (name or "gw", mpm),
                                       dir=base_dir())
        else:
            workdir = str(workdir)
            os.makedirs(workdir, exist_ok=True)
            if IS_ROOT:
                _make_traversable(workdir)
        self.root = workdir
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.conf_path = os.path.join(self.root, "httpd.conf")
        self.pid_path = os.path.join(self.root, "run", "httpd.pid")
        self.logs_dir = os.path.join(self.root, "logs")
        self.error_log_path = os.path.join(self.logs_dir, "error.log")
        self.access_log_path = os.path.join(self.logs_dir, "access.log")
        self.keys_dir = os.path.join(self.root, "keys")
        self.store_path = os.path.join(self.keys_dir, "store")
        self.store_spec = ("sdbm:" + self.store_path if key_store is None
                           else key_store.cli_spec)
        self.credential_file = os.path.join(self.root, "upstream-credential")
        self.allowed_log = []         # patterns allowed for this gateway's life
        if key_store is not None:
            self.allowed_log += list(key_store.allowed_log)
        self.log_checked_offset = 0   # error log bytes already checked
        self.running = False
        for d in ("run", "logs", "keys", "htdocs"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
            os.chmod(os.path.join(self.root, d), 0o755)
        with open(self.credential_file, "w") as f:
            f.write(FILE_CREDENTIAL + "\n")
        os.chmod(self.credential_file, 0o644)
        self.write_config()
        registry.add_gateway(self)

    # ---- configuration -------------------------------------------------

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def module_path(self):
        return os.path.join(self.build_dir, ".libs", "mod_clawdrouter.so")

    @property
    def keys_tool(self):
        return os.path.join(self.build_dir, "clawdrouter-keys")

    def upstream_block(self):
        if self.upstreams_conf is not None:
            return self.upstreams_conf
        up = self.upstream.url if self.upstream else "http://127.0.0.1:%d" % closed_port()
        return "\n".join([
            "ClawdRouterUpstream openai openai %s/openai/v1 %s"
            % (up, OPENAI_CREDENTIAL),
            "ClawdRouterUpstream anthropic anthropic %s/anthropic/v1 env:%s"
            % (up, ANTHROPIC_CREDENTIAL_ENV),
            "ClawdRouterUpstream filecred openai %s/filecred/v1 file:%s"
            % (up, self.credential_file),
            "ClawdRouterRoute gpt-* openai",
            "ClawdRouterRoute o1-* filecred",
            "ClawdRouterRoute claude-* anthropic",
        ])

    def config_text(self):
        m = MODULES_DIR
        lines = [
            "# generated by tests/harness/gateway.py",
            'ServerRoot "%s"' % self.root,
            "ServerName 127.0.0.1",
            "Listen 127.0.0.1:%d" % self.port,
            'PidFile "%s"' % self.pid_path,
            'DefaultRuntimeDir "%s/run"' % self.root,
            'Mutex file:%s/run default' % self.root,
            'DocumentRoot "%s/htdocs"' % self.root,
            "LoadModule mpm_%s_module %s/mod_mpm_%s.so" % (self.mpm, m, self.mpm),
            "LoadModule authz_core_module %s/mod_authz_core.so" % m,
            "LoadModule proxy_module %s/mod_proxy.so" % m,
            "LoadModule proxy_http_module %s/mod_proxy_http.so" % m,
        ]
        if self.module and self.key_store is not None:
            lines.append(self.key_store.load_conf())
        if self.module:
            lines.append("LoadModule clawdrouter_module %s" % self.module_path)
        if IS_ROOT:
            lines += ["User %s" % RUN_USER, "Group %s" % RUN_USER]
        lines += [
            MPM_CONF[self.mpm],
            "Timeout 30",
            "KeepAlive On",
            "MaxKeepAliveRequests 1000",
            "KeepAliveTimeout 5",
            'ErrorLog "%s"' % self.error_log_path,
            "LogLevel %s" % self.log_level,
            'LogFormat "%s" clawdrouter' % ACCESS_LOG_FORMAT,
            'CustomLog "%s" clawdrouter' % self.access_log_path,
            "<Directory />",
            "    Require all denied",
            "</Directory>",
        ]
        if self.module:
            if self.key_store is None:
                lines.append("ClawdRouterKeyStore %s" % self.store_spec)
            else:
                lines.append(self.key_store.server_conf())
            lines.append(self.upstream_block())
            if self.max_body is not None:
                lines.append("ClawdRouterMaxBodySize %d" % self.max_body)
            if self.default_rpm is not None:
                lines.append("ClawdRouterDefaultRPM %d" % self.default_rpm)
            if self.rate_store is not None:
                lines.append("ClawdRouterRateStore %s" % self.rate_store)
            if self.rate_store_failure is not None:
                lines.append("ClawdRouterRateStoreFailure %s"
                             % self.rate_store_failure)
        lines.append(self.extra_server_conf)
        lines.append("<Location %s>" % self.location)
        if self.module:
            lines.append("    ClawdRouter On")
        else:
            up = self.upstream.url if self.upstream else "http://127.0.0.1:9"
            lines.append("    ProxyPass %s/openai/v1" % up)
        lines.append("    Require all granted")
        lines.append("    " + self.extra_location_conf.replace("\n", "\n    "))
        lines.append("</Location>")
        # after the main <Location>, so that sections merged later (e.g. a
        # sub-location with ClawdRouter Off) take precedence
        lines.append(self.after_location_conf)
        return "\n".join(lines) + "\n"

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        os.chmod(self.conf_path, 0o644)

    def reconfigure(self, **changes):
        """Change constructor settings and rewrite the config (then call
        graceful() or restart())."""
        for k, v in changes.items():
            if k == "upstreams":
                k = "upstreams_conf"
            if not hasattr(self, k):
                raise AttributeError(k)
            setattr(self, k, v)
        self.write_config()

    # ---- process control ----------------------------------------------

    def _env(self):
        env = dict(os.environ)
        env[ANTHROPIC_CREDENTIAL_ENV] = ANTHROPIC_CREDENTIAL
        env.setdefault("LANG", "C")
        return env

    def _httpd(self, *args, check=True):
        p = subprocess.run([HTTPD, "-d", self.root, "-f", self.conf_path] + list(args),
                           env=self._env(), capture_output=True, text=True,
                           timeout=60)
        if check and p.returncode != 0:
            raise GatewayError("apache2 %s failed (%d): %s%s\n%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr,
                self.error_log_tail()))
        return p

    def configtest(self):
        """apache2 -t: returns the CompletedProcess (returncode, stderr)."""
        return self._httpd("-t", check=False)

    def start(self, timeout=20):
        if self.module and not os.path.exists(self.module_path):
            raise GatewayError(
                "mod_clawdrouter.so not found at %s: build out of tree and set "
                "CR_BUILD_DIR (see tests/README.md)" % self.module_path)
        self._fix_store_permissions()
        self._httpd("-k", "start")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pid() and self._port_open():
                self.running = True
                return self
            time.sleep(0.05)
        self.stop()
        raise GatewayError("httpd did not come up on port %d\n%s"
                           % (self.port, self.error_log_tail()))

    def pid(self):
        try:
            with open(self.pid_path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _port_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout=15):
        pid = self.pid()
        if pid and _pid_alive(pid):
            self._httpd("-k", "stop", check=False)
            end = time.monotonic() + timeout
            while time.monotonic() < end and _pid_alive(pid):
                time.sleep(0.05)
            if _pid_alive(pid):
                # httpd made itself a process group leader: end that group
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.running = False

    def _generation_marks(self):
        return self.error_log_text().count("resuming normal operations")

    def _reload(self, how, timeout):
        before = self._generation_marks()
        self._fix_store_permissions()
        self._httpd("-k", how)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._generation_marks() > before and self._port_open():
                time.sleep(0.2)   # let the new children come up
                return self
            time.sleep(0.05)
        raise GatewayError("httpd %s did not complete\n%s"
                           % (how, self.error_log_tail()))

    def graceful(self, timeout=20):
        """apache2 -k graceful; waits for the new generation (needs LogLevel
        notice or more verbose, which every harness config has by default)."""
        return self._reload("graceful", timeout)

    def restart(self, timeout=20):
        return self._reload("restart", timeout)

    # ---- key store ------------------------------------------------------

    def _fix_store_permissions(self):
        """The CLI runs as root in CI; httpd's children (www-data) must be
        able to read the store, as an operator would arrange with chown."""
        if not IS_ROOT or not os.path.isdir(self.keys_dir):
            return
        os.chmod(self.keys_dir, 0o755)
        for fn in os.listdir(self.keys_dir):
            p = os.path.join(self.keys_dir, fn)
            try:
                if os.path.isfile(p):
                    os.chmod(p, 0o644)
            except OSError:
                pass

    def keys(self, *args, store=None, check=False, env=None):
        """Run clawdrouter-keys --store STORE ARGS...; CompletedProcess."""
        e = dict(os.environ)
        if env:
            e.update(env)
        cmd = [self.keys_tool]
        if store is not False:
            cmd += ["--store", store or self.store_spec]
        p = subprocess.run(cmd + [str(a) for a in args], capture_output=True,
                           text=True, timeout=30, env=e)
        self._fix_store_permissions()
        if self.key_store is not None:
            self.key_store.fix_permissions()
        for k in re.findall(r"sk-[A-Za-z0-9]{20,}", p.stdout):
            registry.add_key(k)
        if check and p.returncode != 0:
            raise GatewayError("clawdrouter-keys %s failed (%d): %s"
                               % (" ".join(map(str, args)), p.returncode,
                                  p.stderr))
        return p

    def create_key(self, name=None, models=None, rpm=None, expires=None):
        """Create a key with the CLI; returns (id, key)."""
        args = ["create", "--json"]
        if name is not None:
            args += ["--name", name]
        if models is not None:
            if not isinstance(models, str):
                models = ",".join(models)
            args += ["--models", models]
        if rpm is not None:
            args += ["--rpm", str(rpm)]
        if expires is not None:
            args += ["--expires", expires]
        p = self.keys(*args, check=True)
        doc = json.loads(p.stdout)
        return doc["id"], doc["key"]

    def revoke_key(self, key_id):
        self.keys("revoke", key_id, check=True)

    # ---- logs -----------------------------------------------------------

    def error_log_text(self, offset=0):
        try:
            with open(self.error_log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def error_log_size(self):
        try:
            return os.path.getsize(self.error_log_path)
        except OSError:
            return 0

    def error_log_tail(self, n=30):
        lines = self.error_log_text().splitlines()
        return "--- error log tail (%s):\n%s" % (self.error_log_path,
                                                  "\n".join(lines[-n:]))

    def access_log_lines(self):
        try:
            with open(self.access_log_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    def wait_access_log(self, predicate, timeout=5.0):
        """First access log line for which predicate(line) is true, waiting
        for it (httpd writes the line after the response is sent)."""
        end = time.monotonic() + timeout
        while True:
            for line in self.access_log_lines():
                if predicate(line):
                    return line
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def log_files(self):
        out = []
        for d, _, files in os.walk(self.logs_dir):
            out += [os.path.join(d, f) for f in files]
        return out

    def store_files(self):
        return [os.path.join(self.keys_dir, f) for f in os.listdir(self.keys_dir)]

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<Gateway %s %s %s%s>" % (
            self.mpm, self.url, self.root,
            "" if self.key_store is None else " " + self.key_store.kind)


def _make_traversable(path):
    """Add o+x to path and its ancestors so www-data can reach it."""
    path = os.path.abspath(path)
    while path and path != "/":
        try:
            st = os.stat(path)
            if not st.st_mode & 0o001:
                os.chmod(path, st.st_mode | 0o001)
        except OSError:
            pass
        path = os.path.dirname(path)


@atexit.register
def _stop_all_gateways():
    """Never leave an httpd behind, even when a script or test run dies."""
    for gw in registry.GATEWAYS:
        try:
            if gw.pid() and _pid_alive(gw.pid()):
                gw.stop()
        except Exception:   # best effort at exit
            pass
