# Licensed under the Apache License, Version 2.0.
"""The key management console (SPEC 9) at the HTTP level: access only with
credentials, cross-site posts refused, output escaped, security headers on
every page, create / list / revoke through plain form posts, languages;
each key's tpm, quota and tokens used in the current period (SPEC 11),
set on create and validated.

The console runs on its own <Location /console> with Basic authentication
(mod_auth_basic, mod_authn_file, mod_authn_core, mod_authz_user) and a
password made for each gateway, written with Debian's htpasswd; the server
has ClawdRouterDefaultTPM 50000, which keys without a tpm of their own get."""

import html
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from html.parser import HTMLParser

import pytest
import requests

from harness import registry
from harness.client import assert_error, call
from harness.dbstore import key_store_for
from harness.gateway import MODULES_DIR

CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; "
       "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
KEY_RE = re.compile(r"sk-[A-Za-z0-9]{40,}")
TOKEN_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
CONSOLE_PATH = "/console"
DEFAULT_TPM = 50000
USER = "admin"
OTHER_USER = "auditor"


def console_conf(htpasswd):
    """Server-level configuration text for a console at /console."""
    m = MODULES_DIR
    return "\n".join([
        "LoadModule authn_core_module %s/mod_authn_core.so" % m,
        "LoadModule authn_file_module %s/mod_authn_file.so" % m,
        "LoadModule auth_basic_module %s/mod_auth_basic.so" % m,
        "LoadModule authz_user_module %s/mod_authz_user.so" % m,
        "ClawdRouterDefaultTPM %d" % DEFAULT_TPM,
        "<Location %s>" % CONSOLE_PATH,
        "    SetHandler clawdrouter-console",
        "    AuthType Basic",
        '    AuthName "ClawdRouter console"',
        "    AuthBasicProvider file",
        '    AuthUserFile "%s"' % htpasswd,
        "    Require valid-user",
        "</Location>",
    ])


def write_htpasswd(path, users):
    """users: {name: password}; bcrypt lines made by htpasswd(1)."""
    htpasswd = shutil.which("htpasswd")
    assert htpasswd, "htpasswd (Debian apache2-utils) is not installed"
    lines = []
    for user, password in users.items():
        out = subprocess.run([htpasswd, "-nbB", user, password],
                             capture_output=True, text=True, check=True)
        lines.append(out.stdout.strip())
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)


def store_writable_by_httpd(gw):
    """The console writes the key store as httpd's user (www-data when the
    tests run as root), as an operator would arrange with chown."""
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("www-data")
    os.chown(gw.keys_dir, pw.pw_uid, pw.pw_gid)
    for fn in os.listdir(gw.keys_dir):
        os.chown(os.path.join(gw.keys_dir, fn), pw.pw_uid, pw.pw_gid)


def start_console_gateway(factory, mpm, name, key_store=None):
    """A started gateway with the console; returns (gw, {user: password}).
    key_store: None (DBM) or a harness.dbstore.DBStore."""
    users = {USER: secrets.token_urlsafe(18),
             OTHER_USER: secrets.token_urlsafe(18)}
    gw = factory(start=False, mpm=mpm, name=name, key_store=key_store)
    htpasswd = os.path.join(gw.root, "htpasswd")
    write_htpasswd(htpasswd, users)
    gw.reconfigure(extra_server_conf=console_conf(htpasswd))
    store_writable_by_httpd(gw)
    gw.start()
    return gw, users


class Console:
    """A signed-in user of the console, speaking plain HTTP like a browser
    that sends Origin on posts."""

    def __init__(self, gw, user, password, lang="en"):
        self.gw = gw
        self.url = gw.url + CONSOLE_PATH
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.session.headers["Accept-Language"] = lang

    def get(self, **kw):
        return self.session.get(self.url, timeout=15, **kw)

    def token(self):
        r = self.get()
        assert r.status_code == 200, r.text
        m = TOKEN_RE.search(r.text)
        assert m, "no CSRF token in the console page"
        return m.group(1)

    def post(self, fields, origin=True, headers=None, **kw):
        h = {"Origin": self.gw.url} if origin else {}
        h.update(headers or {})
        return self.session.post(self.url, data=fields, headers=h,
                                 allow_redirects=False, timeout=15, **kw)

    def create(self, name="", models="*", rpm="", expires="", token=None,
               **limits):
        """limits: tpm, quota, quota_period (sent only when given)."""
        fields = {"csrf": token or self.token(), "action": "create",
                  "name": name, "models": models, "rpm": rpm,
                  "expires": expires}
        fields.update(limits)
        return self.post(fields)

    def create_key(self, **kw):
        """Create through the console; returns (id, key, created page)."""
        r = self.create(**kw)
        assert r.status_code == 200, r.text
        keys = KEY_RE.findall(r.text)
        assert len(set(keys)) == 1, "the created view shows one key"
        registry.add_key(keys[0])
        m = re.search(r'<code id="new-key-id">([^<]+)</code>', r.text)
        assert m
        return m.group(1), keys[0], r


# The DBM store under both MPMs; the SQL stores through mod_dbd (the
# console's create, list and revoke as prepared statements) under event.
@pytest.fixture(scope="module", params=["event", "prefork", "event+dbd-pgsql",
                                        "event+dbd-sqlite3"])
def console_gw(request, make_module_gateway):
    mpm, _, kind = request.param.partition("+")
    gw, users = start_console_gateway(make_module_gateway, mpm,
                                      "console-http",
                                      key_store_for(request, kind))
    gw.console_users = users
    return gw


@pytest.fixture
def admin(console_gw):
    return Console(console_gw, USER, console_gw.console_users[USER])


def cli_records(gw):
    out = gw.keys("list", "--json", check=True).stdout
    store_writable_by_httpd(gw)
    doc = json.loads(out)
    return doc if isinstance(doc, list) else doc.get("keys", [])


def event_handler_attributes(page):
    """Inline event handler attributes (onclick=...) of a page."""
    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(name for name, _ in attrs if name.startswith("on"))

    Parser().feed(page)
    return found


def assert_security_headers(r):
    assert r.headers.get("Content-Security-Policy") == CSP, r.headers
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("Cache-Control") == "no-store"


# ---------------------------------------------------------------------------

@pytest.mark.allow_log("AH01617")     # mod_auth_basic: password mismatch
def test_no_access_without_credentials(console_gw):
    url = console_gw.url + CONSOLE_PATH
    for target in (url, url + "?asset=app.js", url + "/"):
        r = requests.get(target, timeout=10)
        assert r.status_code == 401, target
        assert r.headers.get("WWW-Authenticate", "").startswith("Basic ")
        assert "csrf" not in r.text and "key_" not in r.text
    r = requests.get(url, auth=(USER, "not-the-password"), timeout=10)
    assert r.status_code == 401
    r = requests.post(url, data={"action": "create", "name": "x",
                                 "models": "*"}, timeout=10)
    assert r.status_code == 401
    r = requests.get(url, auth=(USER, console_gw.console_users[USER]),
                     timeout=10)
    assert r.status_code == 200
    assert "ClawdRouter" in r.text


def test_security_headers_on_every_page(admin, console_gw):
    pages = {
        "list": admin.get(),
        "css": admin.session.get(admin.url + "?asset=app.css", timeout=10),
        "js": admin.session.get(admin.url + "?asset=app.js", timeout=10),
        "unknown asset": admin.session.get(admin.url + "?asset=x.js",
                                           timeout=10),
        "refused post": admin.post({"action": "create"}, origin=False,
                                   headers={"Origin": "http://evil.example"}),
        "bad request": admin.post({"csrf": admin.token(), "action": "nope"}),
    }
    _, _, created = admin.create_key(name="headers")
    pages["created"] = created
    for what, r in pages.items():
        assert_security_headers(r), what
    assert pages["list"].headers["Content-Type"].startswith("text/html")
    assert pages["css"].status_code == 200
    assert pages["css"].headers["Content-Type"].startswith("text/css")
    assert pages["js"].status_code == 200
    assert pages["js"].headers["Content-Type"].startswith("text/javascript")
    assert pages["unknown asset"].status_code == 404
    assert pages["refused post"].status_code == 403
    assert pages["bad request"].status_code == 400
    # The page loads nothing from outside and runs no inline code.
    page = pages["list"].text
    assert "<style" not in page and "style=" not in page
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="%s?asset=app.js" defer>' % CONSOLE_PATH]
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert not event_handler_attributes(page)


def test_cross_site_post_refused(admin, console_gw):
    before = {r["id"] for r in cli_records(console_gw)}
    token = admin.token()
    fields = {"csrf": token, "action": "create", "name": "csrf-victim",
              "models": "*"}
    refused = {
        "foreign Origin": admin.post(fields, origin=False,
                                     headers={"Origin": "http://evil.example"}),
        "Origin null": admin.post(fields, origin=False,
                                  headers={"Origin": "null"}),
        "same host, other port": admin.post(
            fields, origin=False,
            headers={"Origin": "http://127.0.0.1:%d" % (console_gw.port + 1)}),
        "Sec-Fetch-Site cross-site": admin.post(
            fields, headers={"Sec-Fetch-Site": "cross-site"}),
        "foreign Referer": admin.post(
            fields, origin=False,
            headers={"Referer": "http://evil.example/console"}),
        "no token": admin.post({k: v for k, v in fields.items()
                                if k != "csrf"}),
        "wrong token": admin.post(dict(fields, csrf="0" * 64)),
        "JSON body": admin.session.post(
            admin.url, json=fields, headers={"Origin": console_gw.url},
            timeout=10),
    }
    # A token is bound to its user: another user's token does not work.
    other = Console(console_gw, OTHER_USER,
                    console_gw.console_users[OTHER_USER])
    other_token = other.token()
    assert other_token != token
    refused["another user's token"] = admin.post(dict(fields,
                                                      csrf=other_token))
    for what, r in refused.items():
        assert r.status_code == 403, what
        assert not KEY_RE.search(r.text), what
        assert "Request refused" in r.text, what
    assert {r["id"] for r in cli_records(console_gw)} == before
    log = console_gw.error_log_text()
    assert "CR0302" in log and "CR0311" in log

    # The same post from the console's own page is accepted.
    _, key, _ = admin.create_key(name="csrf-ok")
    assert KEY_RE.fullmatch(key)


def test_key_name_is_escaped(admin, console_gw):
    evil = "<script>alert(1)</script>"
    key_id, _, created = admin.create_key(name=evil)
    escaped = html.escape(evil, quote=True)
    assert evil not in created.text
    assert escaped.replace("&#x27;", "&#39;") in created.text
    # In an attribute too (the revoke confirmation text), via the CLI.
    attr = '"><img src=x onerror=alert(2)>'
    console_gw.keys("create", "--name", attr, check=True)
    store_writable_by_httpd(console_gw)
    page = admin.get().text
    assert evil not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert 'data-id="%s"' % key_id in page
    # The console's own URL is reflected in links and forms: escaped too.
    r = admin.session.get(admin.url + '/%22%3E%3Cscript%3Ealert(3)%3C/script%3E',
                          timeout=10)
    assert r.status_code == 200
    assert "<script>alert(3)" not in r.text
    assert 'href="/console/%22%3e%3cscript%3ealert(3)%3c/script%3e?lang=zh"' in r.text
    assert not event_handler_attributes(r.text)


def test_create_use_revoke_over_http(admin, console_gw, upstream):
    key_id, key, created = admin.create_key(
        name="http-flow", models="gpt-*, claude-*", rpm="100",
        expires="+30d")
    assert "only time this key is shown" in created.text
    assert 'id="copy-key"' in created.text
    # The key works at once, for the models given.
    r = call(console_gw, "openai", key, model="gpt-4o-mini")
    assert r.status_code == 200, r.text
    r = call(console_gw, "anthropic", key, model="claude-3-5-haiku-latest")
    assert r.status_code == 200, r.text
    assert_error(call(console_gw, "openai", key, model="o1-mini"),
                 "model_not_permitted", "openai")

    # The list shows the record, never the key.
    page = admin.get().text
    assert key not in page and key[3:] not in page
    assert not KEY_RE.search(page)
    row = re.search(r'<tr data-id="%s">(.*?)</tr>' % key_id, page, re.S)
    assert row, "the new key is listed"
    for text in ("http-flow", "gpt-*", "claude-*", "100", "Active"):
        assert text in row.group(1), text
    record = [r for r in cli_records(console_gw) if r["id"] == key_id][0]
    assert record["name"] == "http-flow"
    assert record["models"] == ["gpt-*", "claude-*"]
    assert record["rpm"] == 100
    assert record["expires_at"]

    # Revoke: without confirm=1 the server asks first (no JavaScript).
    token = admin.token()
    ask = admin.post({"csrf": token, "action": "revoke", "id": key_id})
    assert ask.status_code == 200
    assert "Revoke this key?" in ask.text and 'name="confirm" value="1"' in ask.text
    assert call(console_gw, "openai", key, model="gpt-4o-mini").status_code == 200
    done = admin.post({"csrf": token, "action": "revoke", "id": key_id,
                       "confirm": "1"})
    assert done.status_code == 303
    assert done.headers["Location"].endswith(CONSOLE_PATH + "?done=revoked")
    assert_error(call(console_gw, "openai", key, model="gpt-4o-mini"),
                 "invalid_key", "openai")
    page = admin.get(params={"done": "revoked"}).text
    assert "The key was revoked." in page
    row = re.search(r'<tr data-id="%s" class="inactive">(.*?)</tr>' % key_id,
                    page, re.S)
    assert row and "Revoked" in row.group(1)
    assert 'name="id" value="%s"' % key_id not in page
    log = console_gw.error_log_text()
    assert re.search(r"CR0306: console: user %s created key %s" % (USER, key_id), log)
    assert re.search(r"CR0310: console: user %s revoked key %s" % (USER, key_id), log)


def test_invalid_form_values(admin, console_gw):
    before = len(cli_records(console_gw))
    for fields, message in (
            ({"models": ""}, "Allowed models: give one"),
            ({"rpm": "-5"}, "whole number"),
            ({"rpm": "ten"}, "whole number"),
            ({"expires": "yesterday"}, "expiry is not valid"),
            ({"name": "x" * 200}, "name is too long")):
        args = dict(name="bad", models="*", rpm="", expires="")
        args.update(fields)
        r = admin.create(**args)
        assert r.status_code == 400, fields
        assert message in r.text, fields
        assert not KEY_RE.search(r.text)
        assert "<details class=\"create\" id=\"new\" open>" in r.text
    assert len(cli_records(console_gw)) == before
    r = admin.post({"csrf": admin.token(), "action": "revoke",
                    "id": "key_doesnotexist0", "confirm": "1"})
    assert r.status_code == 404
    r = admin.session.put(admin.url, data="x", timeout=10)
    assert r.status_code == 405
    assert "POST" in r.headers.get("Allow", "")


@pytest.mark.parametrize("accept, lang", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR, en;q=0.5, zh;q=0.7", "zh"),
    ("zh-TW;q=0.2, en-GB", "en"),
    ("de", "en"),
    ("", "en"),
])
def test_language_from_accept_language(admin, accept, lang):
    r = admin.get(headers={"Accept-Language": accept})
    assert r.status_code == 200
    if lang == "zh":
        assert '<html lang="zh-CN">' in r.text
        assert "新增密钥" in r.text and "API 密钥" in r.text
        assert "New key" not in r.text
    else:
        assert '<html lang="en">' in r.text
        assert "New key" in r.text and "新增密钥" not in r.text


def test_language_switch_is_remembered(admin):
    admin.session.headers["Accept-Language"] = "zh-CN"
    r = admin.get(params={"lang": "en"})
    assert '<html lang="en">' in r.text
    cookie = r.headers.get("Set-Cookie", "")
    assert cookie.startswith("clawdrouter_console_lang=en;")
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
    # The cookie now wins over Accept-Language, until switched back.
    assert '<html lang="en">' in admin.get().text
    r = admin.get(params={"lang": "zh"})
    assert '<html lang="zh-CN">' in r.text
    assert '<html lang="zh-CN">' in admin.get(
        headers={"Accept-Language": "en"}).text
    # Refusals speak the chosen language too.
    r = admin.post({"action": "create"})
    assert r.status_code == 403 and "请求被拒绝" in r.text


# --- tpm, quota and tokens used (SPEC 11) -----------------------------------

def key_row(page, key_id):
    m = re.search(r'<tr data-id="%s"[^>]*>(.*?)</tr>' % key_id, page, re.S)
    assert m, "key %s is listed" % key_id
    return m.group(1)


def cell(row, cls):
    """The text of a row's cell (tpm, quota, used) and the numbers in it,
    as the <data> elements give them."""
    m = re.search(r'<td data-label="[^"]*" class="%s">(.*?)</td>' % cls, row,
                  re.S)
    assert m, "no %s cell in %r" % (cls, row)
    numbers = {c: int(v) for c, v in
               re.findall(r'<data class="(\w+)" value="(\d+)">', m.group(1))}
    text = html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()
    return text, numbers


def used_tokens(admin, key_id, want, timeout=5.0):
    """The list's used-token count of a key, once it is want."""
    end = time.monotonic() + timeout
    while True:
        text, numbers = cell(key_row(admin.get().text, key_id), "used")
        if numbers.get("used") == want or time.monotonic() > end:
            return text, numbers
        time.sleep(0.1)


def test_token_limits_set_on_create_and_listed(admin, console_gw, upstream):
    key_id, key, created = admin.create_key(
        name="tokens", tpm="6000", quota="100000", quota_period="day")
    assert re.search(r'<span id="new-key-tpm"><data class="tpm" '
                     r'value="6000">6,000</data></span>', created.text)
    assert re.search(r'<span id="new-key-quota"><data class="quota" '
                     r'value="100000">100,000</data> <span class="period">'
                     r'per day \(UTC\)</span>', created.text)
    rec = {r["id"]: r for r in cli_records(console_gw)}[key_id]
    assert (rec["tpm"], rec["quota"], rec["quota_period"]) == (6000, 100000,
                                                               "day")
    # Nothing set: the server's default tpm, no quota.
    plain_id, plain, _ = admin.create_key(name="tokens-plain")
    rec = {r["id"]: r for r in cli_records(console_gw)}[plain_id]
    assert (rec["tpm"], rec["quota"], rec["quota_period"]) == (None, None,
                                                               None)
    # 0: no limit, whatever the default.
    zero_id, _, _ = admin.create_key(name="tokens-zero", tpm="0", quota="0",
                                     quota_period="total")
    rec = {r["id"]: r for r in cli_records(console_gw)}[zero_id]
    assert (rec["tpm"], rec["quota"], rec["quota_period"]) == (0, 0, "total")

    page = admin.get().text
    assert "<th scope=\"col\">Tokens per minute</th>" in page
    row = key_row(page, key_id)
    assert cell(row, "tpm") == ("6,000", {"tpm": 6000})
    assert cell(row, "quota") == ("100,000 per day (UTC)", {"quota": 100000})
    assert cell(row, "used") == ("0 today 0%", {"used": 0})
    row = key_row(page, plain_id)
    assert cell(row, "tpm") == ("Default 50,000",
                                {"tpm": DEFAULT_TPM})
    assert cell(row, "quota") == ("No limit", {})
    assert cell(row, "used") == ("0 this month", {"used": 0})
    row = key_row(page, zero_id)
    assert cell(row, "tpm") == ("No limit", {})
    assert cell(row, "quota") == ("No limit", {})
    assert cell(row, "used") == ("0 in total", {"used": 0})

    # The limits are the gateway's: its token headers say the same.
    r = call(console_gw, "openai", key, headers={"X-Mock-Usage": "31,7"})
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-limit-tokens"] == "6000"
    r = call(console_gw, "anthropic", plain, stream=True,
             headers={"X-Mock-Usage": "12,40"})
    assert r.status_code == 200, r.text
    assert b"message_stop" in r.content
    assert r.headers["anthropic-ratelimit-tokens-limit"] == str(DEFAULT_TPM)

    # Used tokens: the responses' usage, in the key's period.
    text, numbers = used_tokens(admin, key_id, 38)
    assert numbers == {"used": 38} and text == "38 today 0%", text
    r = call(console_gw, "anthropic", key, stream=True,
             headers={"X-Mock-Usage": "1000,62"})
    assert r.status_code == 200 and b"message_stop" in r.content
    text, numbers = used_tokens(admin, key_id, 1100)
    assert numbers == {"used": 1100} and text == "1,100 today 1%", text
    text, numbers = used_tokens(admin, plain_id, 52)
    assert numbers == {"used": 52} and text == "52 this month", text
    # In Chinese too.
    row = key_row(admin.get(headers={"Accept-Language": "zh-CN"}).text, key_id)
    assert cell(row, "quota") == ("100,000 每天（UTC）", {"quota": 100000})
    assert cell(row, "used")[0] == "1,100 今天 1%"


def test_quota_used_up_is_shown(admin, console_gw, upstream):
    key_id, key, _ = admin.create_key(name="tokens-small", quota="40",
                                      quota_period="total")
    for _ in range(2):      # 38, then 76: the crossing response completes
        r = call(console_gw, "openai", key, headers={"X-Mock-Usage": "31,7"})
        assert r.status_code == 200, r.text
    assert_error(call(console_gw, "openai", key), "quota_exceeded",
                 "openai")
    text, numbers = used_tokens(admin, key_id, 76)
    assert numbers == {"used": 76}, text
    assert text == "76 in total 100%"
    row = key_row(admin.get().text, key_id)
    assert '<span class="share full">100%</span>' in row
    assert cell(row, "quota") == ("40 in total", {"quota": 40})


def test_invalid_token_fields(admin, console_gw):
    before = len(cli_records(console_gw))
    bad_tpm = "Tokens per minute must be a whole number"
    bad_quota = "The token quota must be a whole number"
    for fields, field, message in (
            ({"tpm": "-1"}, "tpm", bad_tpm),
            ({"tpm": "1.5"}, "tpm", bad_tpm),
            ({"tpm": "1e3"}, "tpm", bad_tpm),
            ({"tpm": "ten"}, "tpm", bad_tpm),
            ({"tpm": "+5"}, "tpm", bad_tpm),
            ({"tpm": "1000000000001"}, "tpm", bad_tpm),
            ({"quota": "-100"}, "quota", bad_quota),
            ({"quota": "0x10"}, "quota", bad_quota),
            ({"quota": "1 000"}, "quota", bad_quota),
            ({"quota": "99999999999999999999"}, "quota", bad_quota),
            ({"quota": "100", "quota_period": "week"}, "quota_period",
             "The quota period must be day, month or total."),
            ({"quota_period": "Day"}, "quota_period",
             "The quota period must be day, month or total.")):
        r = admin.create(name="bad-tokens", **fields)
        assert r.status_code == 400, fields
        assert_security_headers(r)
        assert message in r.text, fields
        assert not KEY_RE.search(r.text)
        assert '<details class="create" id="new" open>' in r.text
        # The error is shown at the top and next to the field at fault,
        # which keeps what was typed.
        assert re.search(r'<div class="flash err" role="alert">%s'
                         % re.escape(message), r.text), fields
        assert 'aria-describedby="error-%s"' % field in r.text, fields
        assert r.text.count('aria-invalid="true"') == 1, fields
        assert re.search(r'<small class="field-error" id="error-%s">%s'
                         % (field, re.escape(message)), r.text), fields
        if field != "quota_period":
            assert 'name="%s" type="number" min="0" max="1000000000000" ' \
                   'step="1" inputmode="numeric" value="%s"' \
                   % (field, html.escape(fields[field])) in r.text
    # In Chinese.
    zh = Console(console_gw, USER, console_gw.console_users[USER], lang="zh-CN")
    r = zh.create(name="bad-tokens", quota="abc")
    assert r.status_code == 400
    assert "令牌配额必须是 0 到 1000000000000 之间的整数" in r.text
    # Markup in a number field comes back as text, never as markup.
    evil = '"><script>alert(1)</script>'
    r = admin.create(name="bad-tokens", tpm=evil)
    assert r.status_code == 400
    assert evil not in r.text and "<script>alert" not in r.text
    assert 'name="tpm" type="number" min="0" max="1000000000000" step="1" ' \
           'inputmode="numeric" value="&#34;&gt;&lt;script&gt;alert(1)' \
           '&lt;/script&gt;"' in r.text
    r = admin.create(name="bad-tokens", quota="1", quota_period=evil)
    assert r.status_code == 400
    assert evil not in r.text and "<script>alert" not in r.text
    assert len(cli_records(console_gw)) == before
