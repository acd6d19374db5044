# Licensed under the Apache License, Version 2.0.
"""clawdrouter-keys, the key management command line tool (SPEC section 3),
run as a user would run it against a private key store."""

import datetime
import hashlib
import json
import os
import re
import subprocess
import threading

import pytest

BUILD_DIR = os.environ.get("CR_BUILD_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build"))
CLI = os.path.join(BUILD_DIR, "clawdrouter-keys")
KEY_RE = re.compile(r"^sk-[A-Za-z0-9]{48}$")
ID_RE = re.compile(r"^key_[A-Za-z0-9]{16}$")
ANY_KEY_RE = re.compile(r"sk-[A-Za-z0-9]{40,}")
RECORD_FIELDS = {"id", "name", "models", "rpm", "created_at", "expires_at",
                 "status", "hint", "tpm", "quota", "quota_period"}


def run(*args, store=None, env_store=None, check=None):
    env = dict(os.environ)
    env.pop("CLAWDROUTER_KEY_STORE", None)
    if env_store is not None:
        env["CLAWDROUTER_KEY_STORE"] = env_store
    argv = [CLI]
    if store is not None:
        argv += ["--store", store]
    argv += list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                          timeout=30)
    if check is not None:
        assert proc.returncode == check, (argv, proc.returncode, proc.stdout,
                                          proc.stderr)
    return proc


def one_error_line(proc):
    """Every failure: exactly one line on stderr, starting with the name."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stderr.endswith("\n")
    assert lines[0].startswith("clawdrouter-keys: "), lines[0]
    return lines[0]


def parse_time(s):
    assert s.endswith("Z"), s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def store(tmp_path):
    return "sdbm:%s" % (tmp_path / "keys")


def create(store, *args):
    proc = run("create", "--json", *args, store=store, check=0)
    obj = json.loads(proc.stdout)
    return obj


def show(store, key_id):
    return json.loads(run("show", key_id, "--json", store=store,
                          check=0).stdout)


def test_help_and_version():
    for flag in ("--help", "-h"):
        proc = run(flag, check=0)
        for word in ("create", "list", "show", "update", "revoke",
                     "--store", "--models", "--rpm", "--expires", "--json",
                     "CLAWDROUTER_KEY_STORE"):
            assert word in proc.stdout
        assert proc.stderr == ""
    proc = run("--version", check=0)
    assert re.match(r"^clawdrouter-keys .*\d+\.\d+\.\d+\n$", proc.stdout)


def test_create_prints_the_key_alone(store, tmp_path):
    proc = run("create", store=store, check=0)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stdout == lines[0] + "\n"
    key = lines[0]
    assert KEY_RE.match(key), key
    # Defaults: every model, no rpm of its own, never expires, active.
    records = json.loads(run("list", "--json", store=store, check=0).stdout)
    assert len(records) == 1
    rec = records[0]
    assert set(rec) == RECORD_FIELDS
    assert ID_RE.match(rec["id"])
    assert rec["models"] == ["*"]
    assert rec["rpm"] is None
    assert rec["expires_at"] is None
    assert rec["status"] == "active"
    assert rec["name"] == ""
    assert rec["hint"] == key[:5] + "..." + key[-4:]
    created = parse_time(rec["created_at"])
    assert abs((now_utc() - created).total_seconds()) < 60


def test_create_with_every_option_json(store):
    before = now_utc()
    obj = create(store, "--name", "ci bot", "--models", "gpt-*,claude-*",
                 "--rpm", "60", "--expires", "+2h")
    assert set(obj) == RECORD_FIELDS | {"key"}
    assert KEY_RE.match(obj["key"])
    assert ID_RE.match(obj["id"])
    assert obj["name"] == "ci bot"
    assert obj["models"] == ["gpt-*", "claude-*"]
    assert obj["rpm"] == 60
    assert obj["status"] == "active"
    expires = parse_time(obj["expires_at"])
    delta = (expires - before).total_seconds()
    assert 7200 - 5 <= delta <= 7200 + 5, delta
    # --opt=value works the same, and an RFC 3339 time with an offset is
    # stored in UTC.
    obj2 = create(store, "--name=second", "--models=gpt-4o", "--rpm=0",
                  "--expires=2030-06-30T23:59:59+02:00")
    assert obj2["name"] == "second"
    assert obj2["models"] == ["gpt-4o"]
    assert obj2["rpm"] == 0
    assert obj2["expires_at"] == "2030-06-30T21:59:59Z"
    assert obj2["key"] != obj["key"] and obj2["id"] != obj["id"]
    # The key is shown this once: show has no trace of it.
    shown = run("show", obj["id"], "--json", store=store, check=0).stdout
    assert obj["key"] not in shown
    assert "key" not in json.loads(shown)


def test_only_the_hash_is_stored(store, tmp_path):
    keys = [run("create", store=store, check=0).stdout.strip()
            for _ in range(3)]
    files = [p for p in tmp_path.iterdir() if p.name.startswith("keys")]
    assert sorted(p.name for p in files) == ["keys.dir", "keys.pag"]
    data = b"".join(p.read_bytes() for p in files)
    for key in keys:
        assert key.encode() not in data
        assert key[3:].encode() not in data
        assert key[3:27].encode() not in data
        assert hashlib.sha256(key.encode()).hexdigest().encode() in data


def test_list_table_and_json_never_show_a_key(store):
    a = create(store, "--name", "alpha", "--models", "gpt-*", "--rpm", "7")
    b = create(store, "--name", "beta", "--expires", "2031-01-01T00:00:00Z")
    proc = run("list", store=store, check=0)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header == ["ID", "NAME", "STATUS", "MODELS", "RPM", "CREATED",
                      "EXPIRES"]
    assert len(lines) == 3
    row_a = next(line for line in lines if a["id"] in line).split()
    assert row_a[1:5] == ["alpha", "active", "gpt-*", "7"]
    assert row_a[6] == "never"
    row_b = next(line for line in lines if b["id"] in line).split()
    assert row_b[1:5] == ["beta", "active", "*", "default"]
    assert row_b[6] == "2031-01-01T00:00:00Z"
    for text in (proc.stdout,
                 run("list", "--json", store=store, check=0).stdout):
        assert a["key"] not in text and b["key"] not in text
        assert not ANY_KEY_RE.search(text)
    records = json.loads(run("list", "--json", store=store, check=0).stdout)
    assert {r["id"] for r in records} == {a["id"], b["id"]}
    # Oldest first.
    order = [(r["created_at"], r["id"]) for r in records]
    assert order == sorted(order)
    for r in records:
        assert set(r) == RECORD_FIELDS


def test_list_of_an_empty_store(store):
    obj = create(store)
    run("revoke", obj["id"], store=store, check=0)
    # A store with only a revoked key still lists it, marked revoked.
    records = json.loads(run("list", "--json", store=store, check=0).stdout)
    assert [r["status"] for r in records] == ["revoked"]
    assert "revoked" in run("list", store=store, check=0).stdout


def test_show_human_and_json(store):
    obj = create(store, "--name", "gamma", "--models", "claude-*",
                 "--rpm", "30")
    human = run("show", obj["id"], store=store, check=0).stdout
    assert re.search(r"^id:\s+%s$" % obj["id"], human, re.M)
    assert re.search(r"^name:\s+gamma$", human, re.M)
    assert re.search(r"^status:\s+active$", human, re.M)
    assert re.search(r"^models:\s+claude-\*$", human, re.M)
    assert re.search(r"^rpm:\s+30$", human, re.M)
    assert re.search(r"^expires_at:\s+never$", human, re.M)
    assert obj["key"] not in human
    # Options before or after the id.
    for args in (("show", obj["id"], "--json"), ("show", "--json", obj["id"]),
                 ("--json", "show", obj["id"])):
        rec = json.loads(run(*args, store=store, check=0).stdout)
        assert rec["id"] == obj["id"] and rec["rpm"] == 30


def test_update_each_field(store):
    obj = create(store, "--name", "delta", "--rpm", "10",
                 "--expires", "+1d")
    key_id = obj["id"]

    run("update", key_id, "--name", "delta 2", store=store, check=0)
    rec = show(store, key_id)
    assert rec["name"] == "delta 2" and rec["rpm"] == 10
    assert rec["expires_at"] == obj["expires_at"]

    run("update", "--models", "gpt-4o,o1-*", key_id, store=store, check=0)
    assert show(store, key_id)["models"] == ["gpt-4o", "o1-*"]

    run("update", key_id, "--rpm", "99", store=store, check=0)
    assert show(store, key_id)["rpm"] == 99
    run("update", key_id, "--rpm", "default", store=store, check=0)
    assert show(store, key_id)["rpm"] is None

    run("update", key_id, "--expires", "never", store=store, check=0)
    assert show(store, key_id)["expires_at"] is None
    run("update", key_id, "--expires", "2029-02-28T12:00:00.75-01:00",
        store=store, check=0)
    assert show(store, key_id)["expires_at"] == "2029-02-28T13:00:00Z"
    before = now_utc()
    proc = run("update", key_id, "--expires", "+90m", "--json", store=store,
               check=0)
    delta = (parse_time(json.loads(proc.stdout)["expires_at"])
             - before).total_seconds()
    assert 5400 - 5 <= delta <= 5400 + 5

    rec = show(store, key_id)
    assert rec["name"] == "delta 2" and rec["status"] == "active"
    assert rec["created_at"] == obj["created_at"]
    assert rec["hint"] == obj["hint"]


def test_create_refuses_an_expiry_in_the_past(store):
    proc = run("create", "--expires", "2020-01-01T00:00:00Z", store=store,
               check=2)
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert "future" in proc.stderr
    assert "sk-" not in proc.stderr


def test_expired_key_is_marked(store):
    obj = create(store)
    run("update", obj["id"], "--expires", "2020-01-01T00:00:00Z", store=store,
        check=0)
    assert "expired" in run("show", obj["id"], store=store, check=0).stdout
    row = next(line for line in run("list", store=store, check=0)
               .stdout.splitlines() if obj["id"] in line)
    assert row.split()[2] == "expired"
    # The record's status stays "active"; expiry is a time, not a status.
    assert show(store, obj["id"])["status"] == "active"


def test_revoke(store):
    obj = create(store)
    other = create(store)
    proc = run("revoke", obj["id"], store=store, check=0)
    assert obj["id"] in proc.stdout and proc.stderr == ""
    assert show(store, obj["id"])["status"] == "revoked"
    assert show(store, other["id"])["status"] == "active"
    # Revoking again is harmless.
    run("revoke", obj["id"], store=store, check=0)
    assert show(store, obj["id"])["status"] == "revoked"


def test_store_from_environment(tmp_path):
    env_store = "sdbm:%s" % (tmp_path / "envkeys")
    key = run("create", env_store=env_store, check=0).stdout.strip()
    assert KEY_RE.match(key)
    assert (tmp_path / "envkeys.pag").exists()
    records = json.loads(run("list", "--json", env_store=env_store,
                             check=0).stdout)
    assert len(records) == 1
    # --store wins over the environment.
    other = "sdbm:%s" % (tmp_path / "other")
    run("create", store=other, env_store=env_store, check=0)
    assert len(json.loads(run("list", "--json", env_store=env_store,
                              check=0).stdout)) == 1
    assert len(json.loads(run("list", "--json", store=other,
                              check=0).stdout)) == 1


@pytest.mark.parametrize("dbm_type", ["gdbm", "db"])
def test_other_dbm_types(tmp_path, dbm_type):
    st = "%s:%s" % (dbm_type, tmp_path / "keys")
    obj = create(st, "--name", dbm_type)
    assert show(st, obj["id"])["name"] == dbm_type
    run("revoke", obj["id"], store=st, check=0)
    assert show(st, obj["id"])["status"] == "revoked"


USAGE_ERRORS = [
    (),
    ("frobnicate",),
    ("list", "--bogus"),
    ("create", "extra"),
    ("show",),
    ("update",),
    ("revoke",),
    ("show", "key_0000000000000000", "key_1111111111111111"),
    ("create", "--rpm", "abc"),
    ("create", "--rpm", "-1"),
    ("create", "--rpm", ""),
    ("create", "--rpm", "1.5"),
    ("create", "--rpm", "99999999999999999999"),
    ("create", "--models", ""),
    ("create", "--models", "gpt-*,,claude-*"),
    ("create", "--models", "gpt-*,"),
    ("create", "--models", "x" * 256),
    ("create", "--expires", "+5x"),
    ("create", "--expires", "+0s"),
    ("create", "--expires", "tomorrow"),
    ("create", "--expires", "2026-02-30T00:00:00Z"),
    ("create", "--expires", "+99999999999999999999d"),
    ("create", "--name", "a\nb"),
    ("create", "--name"),
    ("create", "--json=yes"),
    ("create", "--rpm", "1", "--rpm", "2"),
    ("list", "--rpm", "5"),
    ("revoke", "key_0000000000000000", "--name", "x"),
    ("update", "key_0000000000000000"),
    ("update", "key_0000000000000000", "--expires", "soon"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a)
                         or "no-args")
def test_usage_errors_exit_2(store, args):
    proc = run(*args, store=store)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    one_error_line(proc)
    # Nothing was created by a refused command.
    assert not os.path.exists(store.split(":", 1)[1] + ".pag")


def test_no_store_is_a_usage_error():
    proc = run("list")
    assert proc.returncode == 2
    assert "CLAWDROUTER_KEY_STORE" in one_error_line(proc)


@pytest.mark.parametrize("command", ["show", "update", "revoke"])
def test_unknown_id_exit_1(store, command):
    create(store)
    extra = ["--rpm", "5"] if command == "update" else []
    for key_id in ("key_0000000000000000", "nonsense"):
        proc = run(command, key_id, *extra, store=store)
        assert proc.returncode == 1
        assert proc.stdout == ""
        assert "no key with" in one_error_line(proc)


def test_missing_store_exit_1(tmp_path):
    missing = "sdbm:%s" % (tmp_path / "nothing-here")
    for args in (("list",), ("show", "key_0000000000000000"),
                 ("revoke", "key_0000000000000000"),
                 ("update", "key_0000000000000000", "--rpm", "1")):
        proc = run(*args, store=missing)
        assert proc.returncode == 1, args
        assert "does not exist" in one_error_line(proc)
    # Only create makes a new store.
    assert list(tmp_path.iterdir()) == []


def test_unwritable_store_exit_1(tmp_path):
    afile = tmp_path / "regular-file"
    afile.write_text("x")
    for st in ("sdbm:%s/keys" % afile,
               "sdbm:%s/no/such/dir/keys" % tmp_path):
        proc = run("create", store=st)
        assert proc.returncode == 1
        assert proc.stdout == ""
        line = one_error_line(proc)
        assert "cannot open key store" in line
        assert ("Not a directory" in line
                or "No such file or directory" in line)
        proc = run("list", store=st)
        assert proc.returncode == 1
        assert "does not exist" in one_error_line(proc)


def test_bad_store_spec_exit_1(tmp_path):
    proc = run("list", store="lmdbx:%s" % (tmp_path / "k"))
    assert proc.returncode == 1
    assert "unknown DBM type" in one_error_line(proc)
    proc = run("list", store="sdbm:")
    assert proc.returncode == 1
    assert "invalid key store" in one_error_line(proc)


def test_record_too_large_for_sdbm(store):
    models = ",".join("model-family-%03d-*" % i for i in range(80))
    proc = run("create", "--models", models, store=store)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "too large" in one_error_line(proc)
    obj = create(store)
    proc = run("update", obj["id"], "--models", models, store=store)
    assert proc.returncode == 1
    assert "too large" in one_error_line(proc)
    assert show(store, obj["id"])["models"] == ["*"]


def test_concurrent_updates_never_tear_a_record(store):
    obj = create(store, "--name", "start", "--models", "a-*")
    key_id = obj["id"]
    errors = []
    done = threading.Event()
    writes = 200

    def writer():
        try:
            for i in range(writes):
                # Alternate short and long records so sdbm moves bytes.
                models = ",".join("m%d-%d-*" % (i, j)
                                  for j in range(1 + (i % 2) * 25))
                proc = run("update", key_id, "--name", "name-%d" % i,
                           "--models", models, "--rpm", str(i), store=store)
                if proc.returncode != 0:
                    errors.append(("writer", i, proc.stderr))
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    seen_names = set()
    while not done.is_set() or reads < 20:
        proc = run("show", key_id, "--json", store=store)
        reads += 1
        if proc.returncode != 0:
            errors.append(("reader", proc.returncode, proc.stderr))
            continue
        rec = json.loads(proc.stdout)
        assert set(rec) == RECORD_FIELDS
        name = rec["name"]
        seen_names.add(name)
        if name != "start":
            # The record is one writer's whole record, never a mix.
            i = int(name.split("-")[1])
            assert rec["rpm"] == i
            assert rec["models"][0] == "m%d-0-*" % i
            assert len(rec["models"]) == 1 + (i % 2) * 25
        if reads > 5000:
            break
    thread.join()
    assert not errors, errors[:5]
    assert reads >= 20
    assert len(seen_names) > 2
    final = show(store, key_id)
    assert final["name"] == "name-%d" % (writes - 1)
