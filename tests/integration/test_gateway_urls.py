"""URL mapping with escaped and non-ASCII paths, normalised paths, and the
gateway leaving other URLs' credentials alone (SPEC 2 and 7)."""
import pytest
import requests

from harness.client import chat_body, openai_headers

MODULES = "/usr/lib/apache2/modules"


@pytest.fixture(scope="module")
def key(gateway):
    return gateway.create_key(name="urls")


@pytest.mark.parametrize("path,expected", [
    ("/v1/a%20b/caf%C3%A9", "/openai/v1/a%20b/caf%C3%A9"),
    ("/v1/x%25y", "/openai/v1/x%25y"),
    ("/v1/chat/comp%6cetions", "/openai/v1/chat/completions"),
    ("/v1/a+b;c", "/openai/v1/a+b;c"),
], ids=["space-utf8", "percent", "escaped-letter", "sub-delims"])
def test_path_is_escaped_once(gateway, upstream, key, path, expected):
    """The path below the <Location> reaches the upstream escaped exactly
    once, like ProxyPass does it, and the query string is kept as sent."""
    kid, k = key
    r = requests.post(gateway.url + path + "?q=%20a&b=1",
                      json=chat_body(), headers=openai_headers(k), timeout=15)
    assert r.status_code == 200, r.text
    assert len(upstream.requests) == 1
    rec = upstream.requests[0]
    assert rec.path.lower() == expected.lower()
    assert rec.query == "q=%20a&b=1"


def test_dot_segments_are_normalised(gateway, upstream, key):
    """A path that only reaches the gateway's <Location> once httpd has
    removed its dot segments is served, and the upstream gets the clean
    path; the key is still taken from the request."""
    kid, k = key
    import socket
    body = b'{"model":"gpt-4o-mini","messages":[]}'
    req = (b"POST /x/../v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Authorization: Bearer " + k.encode() +
           b"\r\nContent-Type: application/json\r\nContent-Length: " +
           str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert [rec.path for rec in upstream.requests] == ["/openai/v1/chat/completions"]
    assert k not in upstream.requests[0].headers.get("Authorization", "")


def _other_app_conf(setenvif):
    conf = """
LoadModule rewrite_module %(m)s/mod_rewrite.so
RewriteEngine On
RewriteRule ^/other - [E=RWAUTH:%%{HTTP:Authorization}]
LogFormat "%%r rw=%%{RWAUTH}e se=%%{SEAUTH}e au=%%{Authorization}i xk=%%{x-api-key}i" creds
CustomLog logs/creds.log creds
<Location /other>
    Require all granted
</Location>
""" % {"m": MODULES}
    if setenvif:
        conf += """
LoadModule setenvif_module %s/mod_setenvif.so
SetEnvIf Authorization "(.+)" SEAUTH=$1
""" % MODULES
    return conf


@pytest.fixture
def other_app_gateway(make_gateway, upstream):
    """A gateway whose server also runs other URLs that read Authorization
    before the location walk (server-level mod_rewrite and SetEnvIf)."""
    return make_gateway(extra_server_conf=_other_app_conf(True))


@pytest.fixture
def logging_gateway(make_gateway, upstream):
    """A gateway whose LogFormat names the credential headers.  Below
    trace4: httpd's own dump of every request's headers shows any header of
    a URL the gateway does not serve (README, "Logging")."""
    return make_gateway(extra_server_conf=_other_app_conf(False),
                        log_level="debug")


def _creds_log(gw):
    with open(gw.logs_dir + "/creds.log") as f:
        return f.read()


def test_other_urls_keep_their_authorization(other_app_gateway):
    """Loading the module does not take Authorization away from URLs the
    gateway does not serve: server-level rewrite rules and SetEnvIf still
    see it (the PHP-FPM recipe)."""
    gw = other_app_gateway
    requests.get(gw.url + "/other",
                 headers={"Authorization": "Basic dXNlcjpwYXNz"}, timeout=10)
    gw.wait_access_log(lambda lines: any("/other" in l for l in lines))
    line = [l for l in _creds_log(gw).splitlines() if "/other" in l][-1]
    assert "rw=Basic dXNlcjpwYXNz" in line
    assert "se=Basic dXNlcjpwYXNz" in line


@pytest.mark.allow_log("AH01630")   # /chat/... is outside every <Location>
def test_key_sent_to_a_wrong_url_is_not_logged(logging_gateway):
    """A client with a wrong base URL still sends its key: a LogFormat that
    names the credential headers does not write it, nor does the error log
    below trace4."""
    gw = logging_gateway
    kid, k = gw.create_key(name="wrong-url")
    requests.post(gw.url + "/chat/completions", json=chat_body(),
                  headers=openai_headers(k), timeout=10)
    requests.post(gw.url + "/other", json=chat_body(),
                  headers={"x-api-key": k}, timeout=10)
    gw.wait_access_log(lambda lines: sum("/other" in l or "/chat/" in l
                                         for l in lines) >= 2)
    text = _creds_log(gw)
    assert "/chat/completions" in text and "POST /other" in text
    assert k not in text
    for f in gw.log_files():
        with open(f, errors="replace") as fh:
            assert k not in fh.read(), f
