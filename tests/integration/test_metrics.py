# Licensed under the Apache License, Version 2.0.
"""Prometheus metrics (SPEC section 13): after a known mix of requests the
counters equal what was sent, summed over every child (prefork with
several children, and event); they survive a graceful restart; the series
bound counts new label sets as _other; label values chosen by clients are
escaped; the page is refused without the configured access; promtool
accepts the page, and a real Prometheus server scrapes it."""

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from harness import chat_body, messages_body, openai_headers, post
from harness import anthropic_headers
from harness.gateway import MODULES_DIR, closed_port, free_port

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

METRICS_CONF = """
LoadModule authz_host_module %s/mod_authz_host.so
<Location /metrics>
    SetHandler clawdrouter-metrics
    Require ip 127.0.0.1
</Location>
<Location /metrics-denied>
    SetHandler clawdrouter-metrics
    Require ip 192.0.2.1
</Location>
""" % MODULES_DIR

LINE_RE = re.compile(r'^([a-z_]+)(\{.*\})? (\S+)$')
LABEL_RE = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of (label, value)): float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        assert m, "not an exposition line: %r" % line
        labels = frozenset(
            (k, v.encode().decode("unicode_escape"))
            for k, v in LABEL_RE.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in out, "label set shown twice: %r" % line
        out[key] = float(m.group(3))
    return out


def value(page, name, **labels):
    want = frozenset(labels.items())
    total = 0.0
    for (n, ls), v in page.items():
        if n == name and want <= ls:
            total += v
    return total


def scrape(gw):
    r = requests.get(gw.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return r.text


def dead_upstream_conf():
    return ("ClawdRouterUpstream dead openai http://127.0.0.1:%d/v1 x\n"
            "ClawdRouterRoute dead-* dead\n" % closed_port())


@pytest.fixture(scope="module", params=["prefork", "event"])
def gw(request, make_module_gateway):
    g = make_module_gateway(mpm=request.param, log_level="info",
                            extra_server_conf=dead_upstream_conf()
                            + METRICS_CONF)
    return g


def make_key(gw, *args):
    p = gw.keys("create", "--json", *[str(a) for a in args], check=True)
    doc = json.loads(p.stdout)
    return doc["id"], doc["key"]


def chat(gw, key, model="gpt-4o-mini", usage="9,5", **kw):
    h = openai_headers(key)
    h["X-Mock-Usage"] = usage
    return post(gw, "/v1/chat/completions", chat_body(model), h, **kw)


@pytest.mark.allow_log("[proxy_http:error]", "[proxy:error]")
def test_counters_equal_what_was_sent(gw):
    kid, key = make_key(gw, "--name", "metrics", "--models",
                        "gpt-*,dead-*", "--rpm", "3")
    other_id, other = make_key(gw, "--name", "other", "--models", "gpt-*")
    before = parse(scrape(gw))
    # Several connections, so that prefork's several children count.
    sent = {"200": 0, "401": 0, "403": 0, "404": 0, "429": 0, "502": 0}
    for _ in range(3):
        assert chat(gw, other, usage="10,4").status_code == 200
    for _ in range(2):
        assert post(gw, "/v1/chat/completions", chat_body(),
                    openai_headers(None)).status_code == 401
        assert post(gw, "/v1/chat/completions", chat_body(),
                    openai_headers("sk-" + "Z" * 48)).status_code == 401
    assert chat(gw, other, model="claude-3-opus").status_code == 403
    assert chat(gw, key, model="gpt-4o").status_code == 200
    assert chat(gw, key, model="gpt-4.1").status_code == 200
    r = chat(gw, key, model="dead-model")
    assert r.status_code == 502, r.text
    r = chat(gw, key)
    assert r.status_code == 429, r.text
    r = post(gw, "/v1/messages", messages_body("gpt-4o"),
             anthropic_headers(key))
    assert r.status_code == 404, r.text
    # The access log line of the last request is written after it.
    time.sleep(0.3)
    after = parse(scrape(gw))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    req = "clawdrouter_requests_total"
    assert delta(req, key_id=other_id, model="gpt-4o-mini",
                 upstream="openai", code="200") == 3
    assert delta(req, key_id="", model="", upstream="", code="401") == 4
    assert delta(req, key_id=other_id, model="claude-3-opus",
                 upstream="", code="403") == 1
    assert delta(req, key_id=kid, model="gpt-4o", code="200") == 1
    assert delta(req, key_id=kid, model="dead-model", upstream="dead",
                 code="502") == 1
    assert delta(req, key_id=kid, model="gpt-4o-mini", upstream="openai",
                 code="429") == 1
    assert delta(req, key_id=kid, model="gpt-4o", upstream="",
                 code="404") == 1
    ref = "clawdrouter_refusals_total"
    assert delta(ref, reason="missing_api_key") == 2
    assert delta(ref, reason="invalid_api_key") == 2
    assert delta(ref, reason="model_not_permitted") == 1
    assert delta(ref, reason="model_not_found") == 1
    assert delta(ref, reason="rate_limit_requests") == 1
    tok = "clawdrouter_tokens_total"
    assert delta(tok, key_id=other_id, model="gpt-4o-mini",
                 direction="input") == 30
    assert delta(tok, key_id=other_id, model="gpt-4o-mini",
                 direction="output") == 12
    # Every forwarded request that got an answer has a latency.
    assert delta("clawdrouter_upstream_seconds_count", upstream="openai") == 5
    assert delta("clawdrouter_upstream_seconds_bucket", upstream="openai",
                 le="+Inf") == 5
    assert delta("clawdrouter_upstream_seconds_count", upstream="dead") == 0


@pytest.mark.allow_log("CR0201", "CR0102", "CR0100")
def test_store_errors_counted(make_gateway):
    """A dead rate store (Redis on a closed port) and an unreadable key
    store are counted per store, one for every request that met them."""
    g = make_gateway(log_level="info", extra_server_conf=METRICS_CONF,
                     rate_store="redis://127.0.0.1:%d" % closed_port(),
                     rate_store_failure="closed")
    _, key = make_key(g, "--models", "gpt-*", "--rpm", "100")
    before = parse(scrape(g))
    for _ in range(3):
        r = chat(g, key)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "rate_store_unavailable"
    time.sleep(0.3)
    page = parse(scrape(g))
    err = "clawdrouter_store_errors_total"
    assert value(page, err, store="rate") - value(before, err,
                                                   store="rate") == 3
    assert value(page, err, store="key") == value(before, err, store="key")
    # (as root the children run as www-data: mode 0 keeps them out)
    for f in g.store_files():
        os.chmod(f, 0)
    for _ in range(2):
        r = chat(g, "sk-" + "Q" * 48)
        assert r.status_code == 500, r.text
        assert r.json()["error"]["code"] == "key_store_unavailable"
    time.sleep(0.3)
    after = parse(scrape(g))
    assert value(after, err, store="key") - value(page, err,
                                                  store="key") == 2
    assert value(after, err, store="rate") == value(page, err, store="rate")


def test_latency_lands_in_its_bucket(gw):
    """An upstream that takes 0.3 s is counted in le="0.5" and above,
    never in le="0.25" or below; the sum grows by about 0.3."""
    _, key = make_key(gw, "--models", "gpt-*")
    before = parse(scrape(gw))
    for _ in range(2):
        h = openai_headers(key)
        h["X-Mock-Delay"] = "0.3"
        r = post(gw, "/v1/chat/completions", chat_body(), h)
        assert r.status_code == 200, r.text
    time.sleep(0.3)
    after = parse(scrape(gw))

    def delta(name, **labels):
        return value(after, name, upstream="openai", **labels) - value(
            before, name, upstream="openai", **labels)

    b = "clawdrouter_upstream_seconds_bucket"
    for le in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25"):
        assert delta(b, le=le) == 0, le
    for le in ("0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"):
        assert delta(b, le=le) == 2, le
    assert delta("clawdrouter_upstream_seconds_count") == 2
    assert 0.6 <= delta("clawdrouter_upstream_seconds_sum") < 1.0


def test_counts_survive_graceful_restart(gw):
    _, key = make_key(gw, "--models", "gpt-*")
    for _ in range(2):
        assert chat(gw, key).status_code == 200
    time.sleep(0.3)
    before = parse(scrape(gw))
    total = value(before, "clawdrouter_requests_total")
    assert total >= 2
    gw.graceful()
    after = parse(scrape(gw))
    assert value(after, "clawdrouter_requests_total") == total
    assert chat(gw, key).status_code == 200
    time.sleep(0.3)
    assert value(parse(scrape(gw)), "clawdrouter_requests_total") == total + 1


@pytest.mark.allow_log("AH01630")
def test_page_refused_without_access(gw):
    r = requests.get(gw.url + "/metrics-denied", timeout=10)
    assert r.status_code == 403
    assert "clawdrouter_requests_total" not in r.text


def test_promtool_accepts_the_page(gw):
    _, key = make_key(gw, "--models", "*")
    chat(gw, key, model='gpt-"quoted"\\back')
    text = scrape(gw)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    for family in ("clawdrouter_requests_total", "clawdrouter_tokens_total",
                   "clawdrouter_refusals_total",
                   "clawdrouter_upstream_seconds",
                   "clawdrouter_store_errors_total"):
        assert "# HELP %s " % family in text
        assert re.search(r"^# TYPE %s (counter|histogram)$" % family, text,
                         re.M)


def test_hostile_label_values_escaped(gw):
    _, key = make_key(gw, "--models", "*")
    evil = 'gpt-x"} 99\nclawdrouter_fake_total{a="\\'
    r = chat(gw, key, model=evil)
    assert r.status_code == 200, r.text
    time.sleep(0.3)
    text = scrape(gw)
    assert "\nclawdrouter_fake_total" not in text
    page = parse(text)
    assert value(page, "clawdrouter_requests_total", model=evil) == 1


def test_series_bound(make_gateway):
    g = make_gateway(log_level="info", extra_server_conf=METRICS_CONF
                     + "ClawdRouterMetricsSeries 3\n")
    keys = [make_key(g, "--models", "gpt-*") for _ in range(6)]
    for _, key in keys:
        assert chat(g, key).status_code == 200
    time.sleep(0.3)
    page = parse(scrape(g))
    req = [ls for (n, ls) in page if n == "clawdrouter_requests_total"]
    named = [dict(ls)["key_id"] for ls in req]
    assert len([k for k in named if k != "_other"]) == 3
    assert value(page, "clawdrouter_requests_total", key_id="_other",
                 model="_other", upstream="openai", code="200") == 3
    # For tokens the bound is on (key_id, model) pairs: three pairs keep
    # their labels with both directions, the other three are _other.
    tok = [dict(ls) for (n, ls) in page if n == "clawdrouter_tokens_total"]
    assert len(tok) == 8
    named = {(t["key_id"], t["model"]) for t in tok if t["key_id"] != "_other"}
    assert len(named) == 3
    for kid, model in named:
        assert value(page, "clawdrouter_tokens_total", key_id=kid,
                     model=model, direction="input") == 9
        assert value(page, "clawdrouter_tokens_total", key_id=kid,
                     model=model, direction="output") == 5
    assert value(page, "clawdrouter_tokens_total", key_id="_other",
                 model="_other", direction="input") == 3 * 9
    assert value(page, "clawdrouter_tokens_total", key_id="_other",
                 model="_other", direction="output") == 3 * 5
    # Series already counted keep their labels.
    assert chat(g, keys[0][1]).status_code == 200
    time.sleep(0.3)
    page = parse(scrape(g))
    assert value(page, "clawdrouter_requests_total",
                 key_id=keys[0][0]) == 2


@pytest.mark.parametrize("bad", ["-1", "ten", "1000001", "+5"])
def test_bad_series_directive_refused(make_gateway, bad):
    g = make_gateway(start=False, extra_server_conf=(
        "ClawdRouterMetricsSeries %s\n" % bad))
    p = g.configtest()
    assert p.returncode != 0
    assert "ClawdRouterMetricsSeries" in p.stderr + p.stdout


def test_series_zero_keeps_no_metrics(make_gateway):
    g = make_gateway(log_level="info", extra_server_conf=METRICS_CONF
                     + "ClawdRouterMetricsSeries 0\n")
    _, key = make_key(g, "--models", "gpt-*")
    assert chat(g, key).status_code == 200
    r = requests.get(g.url + "/metrics", timeout=10)
    assert r.status_code == 404
    assert "clawdrouter_requests_total" not in r.text


def _as_nobody(path):
    nobody = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(path):
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), nobody.pw_uid, nobody.pw_gid)


def test_prometheus_scrapes_the_gateway(gw):
    kid, key = make_key(gw, "--models", "gpt-*")
    for _ in range(4):
        assert chat(gw, key, usage="7,3").status_code == 200
    time.sleep(0.3)
    work = tempfile.mkdtemp(prefix="prometheus-")
    port = free_port()
    conf = os.path.join(work, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: clawdrouter\n"
                "    metrics_path: /metrics\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % gw.port)
    os.makedirs(os.path.join(work, "data"))
    kw = {}
    if os.geteuid() == 0:
        _as_nobody(work)
        nobody = pwd.getpwnam("nobody")
        kw = {"user": nobody.pw_uid, "group": nobody.pw_gid}
    log = open(os.path.join(work, "prometheus.log"), "w")
    proc = subprocess.Popen(
        [PROMETHEUS, "--config.file=" + conf,
         "--storage.tsdb.path=" + os.path.join(work, "data"),
         "--web.listen-address=127.0.0.1:%d" % port],
        stdout=log, stderr=subprocess.STDOUT, cwd=work, **kw)
    try:
        query = ('sum(clawdrouter_tokens_total{key_id="%s",'
                 'direction="input"})' % kid)
        deadline = time.time() + 60
        got = None
        while time.time() < deadline:
            try:
                r = requests.get("http://127.0.0.1:%d/api/v1/query" % port,
                                 params={"query": query}, timeout=5)
                res = r.json()["data"]["result"]
                if res:
                    got = float(res[0]["value"][1])
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.5)
        assert got == 28, open(os.path.join(work, "prometheus.log")).read()
        r = requests.get("http://127.0.0.1:%d/api/v1/query" % port,
                         params={"query": 'sum(clawdrouter_requests_total'
                                 '{key_id="%s",code="200"})' % kid},
                         timeout=5)
        assert float(r.json()["data"]["result"][0]["value"][1]) == 4
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def test_grafana_dashboard_queries_the_metrics():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "conf", "grafana-dashboard.json")
    with open(path) as f:
        dash = json.load(f)
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for family in ("clawdrouter_requests_total", "clawdrouter_tokens_total",
                   "clawdrouter_refusals_total",
                   "clawdrouter_upstream_seconds_bucket"):
        assert family in exprs
    assert "histogram_quantile" in exprs
