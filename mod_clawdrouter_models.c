/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_models.c: GET /models and GET /models/{id} answered by
 * the gateway itself, per key (SPEC section 10).
 *
 * The names come from each upstream's own GET {url}/models, fetched by the
 * gateway with that upstream's credential, and from ClawdRouterModel.  The
 * fetched lists are kept per child process for ClawdRouterModelsCacheTTL:
 * one fetch per upstream, process and TTL, made by the first request that
 * finds the list due while no other thread of the process fetches it (the
 * others answer from what the process has).  A fetch is a plain HTTP/1.1
 * GET on APR sockets, bounded by CR_MODELS_FETCH_TIMEOUT (connect, send
 * and read, shared by every upstream one request fetches) and by
 * CR_MODELS_MAX_RESPONSE; a failed fetch is not tried again for
 * CR_MODELS_RETRY_AFTER, and meanwhile the upstream contributes its
 * declared names only.  http:// and https:// upstreams are fetched (TLS
 * by OpenSSL, the certificate verified against the system's trusted
 * certificates); balancer:// ones contribute their declared names.
 */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"

#include "apr_strings.h"
#include "apr_network_io.h"
#if APR_HAS_THREADS
#include "apr_thread_mutex.h"
#endif

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_models.h"
#include "cr_key.h"
#include "cr_models.h"

/* An upstream's list as this process last fetched it. */
typedef struct {
    apr_pool_t *pool;                 /* unmanaged; holds models */
    apr_array_header_t *models;       /* of cr_model_t; NULL = none */
    apr_time_t next_fetch;            /* due from then on (0: at once) */
    apr_time_t fetch_started;         /* while fetching */
    int fetching;                     /* a thread fetches it now */
} models_entry;

/* A fetch that has not ended after this long (it cannot, short of a
 * resolver that hangs) no longer stops another. */
#define FETCH_STALE apr_time_from_sec(60)

/* The process's cache: every member is touched under cache_mutex only. */
static apr_pool_t *cache_pool;
static apr_hash_t *cache;
#if APR_HAS_THREADS
static apr_thread_mutex_t *cache_mutex;
#endif
/* The process's TLS client context (https:// upstreams); NULL: none. */
static SSL_CTX *tls_ctx;

static void cache_lock(void)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(cache_mutex);
#endif
}

static void cache_unlock(void)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(cache_mutex);
#endif
}

/* ------------------------------------------------------------------ */
/* The fetch                                                           */
/* ------------------------------------------------------------------ */

/* Time left before deadline, at least 1 ms; 0 once it has passed. */
static apr_interval_time_t time_left(apr_time_t deadline)
{
    apr_time_t now = apr_time_now();

    if (now >= deadline) {
        return 0;
    }
    return deadline - now < 1000 ? 1000 : deadline - now;
}

static const char *status_text(apr_pool_t *p, apr_status_t rv)
{
    char buf[128];

    if (APR_STATUS_IS_TIMEUP(rv)) {
        return "timed out";
    }
    return apr_pstrdup(p, apr_strerror(rv, buf, sizeof(buf)));
}

/* A connection to an upstream: plain (APR socket timeouts) or TLS
 * (OpenSSL on the socket made non-blocking, waits bounded by poll). */
typedef struct {
    apr_socket_t *sock;
    int fd;
    SSL *ssl;                         /* NULL: plain http */
    apr_time_t deadline;
    const char *tls_error;            /* why a TLS call failed */
} fetch_conn;

/* Wait until the socket can be read (or written) or the deadline. */
static apr_status_t conn_wait(fetch_conn *c, int for_write)
{
    for (;;) {
        struct pollfd pfd;
        apr_interval_time_t left = time_left(c->deadline);
        int n;

        if (left == 0) {
            return APR_TIMEUP;
        }
        pfd.fd = c->fd;
        pfd.events = for_write ? POLLOUT : POLLIN;
        pfd.revents = 0;
        n = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (n > 0) {
            return APR_SUCCESS;
        }
        if (n == 0) {
            return APR_TIMEUP;
        }
        if (errno != EINTR) {
            return APR_FROM_OS_ERROR(errno);
        }
    }
}

/* After a TLS call returned rc: APR_EAGAIN to call it again (the socket
 * is ready), APR_EOF at the peer's end, or the error. */
static apr_status_t tls_outcome(apr_pool_t *p, fetch_conn *c, int rc)
{
    int err = SSL_get_error(c->ssl, rc);
    unsigned long e;
    char buf[256];

    switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: {
        apr_status_t rv = conn_wait(c, err == SSL_ERROR_WANT_WRITE);
        return rv == APR_SUCCESS ? APR_EAGAIN : rv;
    }
    case SSL_ERROR_ZERO_RETURN:
        return APR_EOF;
    default:
        break;
    }
    if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
        c->tls_error = apr_psprintf(p, "certificate: %s",
                                    X509_verify_cert_error_string(
                                        SSL_get_verify_result(c->ssl)));
    }
    else if ((e = ERR_peek_last_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        c->tls_error = apr_pstrdup(p, buf);
    }
    else {
        c->tls_error = "the TLS connection failed";
    }
    ERR_clear_error();
    return APR_EGENERAL;
}

/* The TLS handshake, with the host's name (or address) verified against
 * the system's trusted certificates (OpenSSL's default paths, which
 * SSL_CERT_FILE and SSL_CERT_DIR can change). */
static apr_status_t tls_start(apr_pool_t *p, fetch_conn *c, const char *host)
{
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1
                || inet_pton(AF_INET6, host, addr) == 1;
    apr_status_t rv;

    if (tls_ctx == NULL) {
        c->tls_error = "no TLS context in this process";
        return APR_EGENERAL;
    }
    if (apr_os_sock_get(&c->fd, c->sock) != APR_SUCCESS
        || apr_socket_timeout_set(c->sock, 0) != APR_SUCCESS) {
        c->tls_error = "the socket cannot be used for TLS";
        return APR_EGENERAL;
    }
    ERR_clear_error();
    c->ssl = SSL_new(tls_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1
        || (is_ip
            ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
            : (SSL_set_tlsext_host_name(c->ssl, host)
               && SSL_set1_host(c->ssl, host))) != 1) {
        c->tls_error = "a TLS connection cannot be set up";
        return APR_EGENERAL;
    }
    do {
        int rc = SSL_connect(c->ssl);

        rv = rc == 1 ? APR_SUCCESS : tls_outcome(p, c, rc);
    } while (rv == APR_EAGAIN);
    return rv == APR_EOF ? APR_ECONNRESET : rv;
}

static apr_status_t conn_send(apr_pool_t *p, fetch_conn *c, const char *data,
                              apr_size_t len)
{
    apr_size_t sent = 0;
    apr_status_t rv = APR_SUCCESS;

    while (sent < len && rv == APR_SUCCESS) {
        apr_size_t n = len - sent;

        if (time_left(c->deadline) == 0) {
            return APR_TIMEUP;
        }
        if (c->ssl) {
            int rc = SSL_write(c->ssl, data + sent, (int)n);

            if (rc > 0) {
                sent += (apr_size_t)rc;
                continue;
            }
            rv = tls_outcome(p, c, rc);
            if (rv == APR_EAGAIN) {
                rv = APR_SUCCESS;
            }
            else if (rv == APR_EOF) {
                rv = APR_ECONNRESET;
            }
            continue;
        }
        apr_socket_timeout_set(c->sock, time_left(c->deadline));
        rv = apr_socket_send(c->sock, data + sent, &n);
        sent += n;
    }
    return rv;
}

/* Read up to *len bytes: APR_SUCCESS with *len set, APR_EOF at the end. */
static apr_status_t conn_recv(apr_pool_t *p, fetch_conn *c, char *buf,
                              apr_size_t *len)
{
    apr_status_t rv;

    if (time_left(c->deadline) == 0) {
        *len = 0;
        return APR_TIMEUP;
    }
    if (!c->ssl) {
        apr_socket_timeout_set(c->sock, time_left(c->deadline));
        return apr_socket_recv(c->sock, buf, len);
    }
    do {
        int rc = SSL_read(c->ssl, buf, *len > INT_MAX ? INT_MAX : (int)*len);

        if (rc > 0) {
            *len = (apr_size_t)rc;
            return APR_SUCCESS;
        }
        rv = tls_outcome(p, c, rc);
    } while (rv == APR_EAGAIN);
    *len = 0;
    return rv;
}

static const char *conn_error(apr_pool_t *p, const fetch_conn *c,
                              const char *what, apr_status_t rv)
{
    return apr_psprintf(p, "%s: %s", what,
                        c->tls_error ? c->tls_error : status_text(p, rv));
}

/* GET {url}/models of one upstream, before deadline: its list (from p) or
 * an error with *why (never the credential). */
static apr_status_t fetch_list(request_rec *r, const cr_upstream_t *up,
                               apr_time_t deadline,
                               apr_array_header_t **models, const char **why)
{
    apr_pool_t *p = r->pool;
    const char *req, *host, *body = NULL;
    apr_size_t len = 0, cap = 0, body_len = 0;
    apr_size_t max = CR_MODELS_MAX_RESPONSE + 64 * 1024;
    apr_sockaddr_t *sa;
    apr_status_t rv;
    cr_http_parse_e parsed = CR_HTTP_MORE;
    fetch_conn c;
    char *buf = NULL;
    int port = 0, status = 0, eof = 0;

    memset(&c, 0, sizeof(c));
    c.deadline = deadline;
    req = cr_models_http_request(p, up, &host, &port);
    if (req == NULL) {
        *why = "its URL cannot be parsed";
        return APR_EINVAL;
    }
    rv = apr_sockaddr_info_get(&sa, host, APR_UNSPEC, (apr_port_t)port, 0,
                               p);
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "cannot resolve %s: %s", host,
                            status_text(p, rv));
        return rv;
    }
    /* Each of the name's addresses in turn, while time is left. */
    for (;;) {
        rv = apr_socket_create(&c.sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, p);
        if (rv != APR_SUCCESS) {
            *why = apr_psprintf(p, "no socket: %s", status_text(p, rv));
            return rv;
        }
        if (time_left(deadline) == 0) {
            rv = APR_TIMEUP;
        }
        else {
            apr_socket_timeout_set(c.sock, time_left(deadline));
            rv = apr_socket_connect(c.sock, sa);
        }
        if (rv == APR_SUCCESS || APR_STATUS_IS_TIMEUP(rv) || !sa->next) {
            break;
        }
        apr_socket_close(c.sock);
        sa = sa->next;
    }
    if (rv != APR_SUCCESS) {
        *why = conn_error(p, &c, "connect", rv);
        goto done;
    }
    if (cr_models_tls(up) && (rv = tls_start(p, &c, host)) != APR_SUCCESS) {
        *why = conn_error(p, &c, "TLS", rv);
        goto done;
    }
    rv = conn_send(p, &c, req, strlen(req));
    if (rv != APR_SUCCESS) {
        *why = conn_error(p, &c, "send", rv);
        goto done;
    }
    while (parsed == CR_HTTP_MORE) {
        apr_size_t n;

        if (len == cap) {
            char *bigger;

            if (cap >= max) {
                parsed = CR_HTTP_INVALID;
                break;
            }
            cap = cap ? cap * 2 : 64 * 1024;
            if (cap > max) {
                cap = max;
            }
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                rv = APR_ENOMEM;
                break;
            }
            buf = bigger;
        }
        n = cap - len;
        rv = conn_recv(p, &c, buf + len, &n);
        len += n;
        if (APR_STATUS_IS_EOF(rv)) {
            eof = 1;
            rv = APR_SUCCESS;
        }
        else if (rv != APR_SUCCESS) {
            break;
        }
        parsed = cr_models_http_parse(p, buf, len, eof, &status, &body,
                                      &body_len);
        if (parsed == CR_HTTP_MORE && eof) {
            parsed = CR_HTTP_INVALID;
        }
    }
    if (rv != APR_SUCCESS) {
        *why = conn_error(p, &c, "read", rv);
        goto done;
    }
    if (parsed != CR_HTTP_COMPLETE) {
        *why = "the answer is not HTTP/1.1 or larger than 4 MiB";
        rv = APR_EINVAL;
        goto done;
    }
    if (status != 200) {
        *why = apr_psprintf(p, "it answered %d", status);
        rv = APR_EINVAL;
        goto done;
    }
    rv = cr_models_parse_list(p, body, body_len, up->name, models, why);
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "its list cannot be read: %s", *why);
    }

done:
    if (c.ssl) {
        SSL_free(c.ssl);      /* no close_notify: the answer is complete */
    }
    apr_socket_close(c.sock);
    free(buf);
    return rv;
}

/* ------------------------------------------------------------------ */
/* The per-process cache                                               */
/* ------------------------------------------------------------------ */

/* The upstream's fetched list (from r->pool), or NULL when it has none
 * (not fetchable, TTL 0, its last fetch failed, not fetched yet while
 * another thread fetches it, or no time left). */
static apr_array_header_t *upstream_list(request_rec *r,
                                         const cr_server_conf *sconf,
                                         const cr_upstream_t *up,
                                         apr_time_t deadline)
{
    const char *key;
    models_entry *e;
    apr_array_header_t *list = NULL, *fetched = NULL, *kept = NULL;
    apr_pool_t *old = NULL, *np = NULL;
    apr_time_t now = apr_time_now(), retry;
    apr_status_t rv;
    const char *why = NULL;
    int fetch = 0;

    if (cache == NULL || sconf->models_ttl <= 0 || !cr_models_fetchable(up)) {
        return NULL;
    }
    /* The same upstream in several virtual hosts is one entry. */
    key = apr_pstrcat(r->pool, up->name, "\n", up->url, "\n",
                      up->credential ? up->credential : "", NULL);
    cache_lock();
    e = apr_hash_get(cache, key, APR_HASH_KEY_STRING);
    if (e == NULL) {
        e = apr_pcalloc(cache_pool, sizeof(*e));
        apr_hash_set(cache, apr_pstrdup(cache_pool, key),
                     APR_HASH_KEY_STRING, e);
    }
    if (now >= e->next_fetch && time_left(deadline) > 0
        && (!e->fetching || now - e->fetch_started > FETCH_STALE)) {
        e->fetching = 1;
        e->fetch_started = now;
        fetch = 1;
    }
    else {
        list = cr_models_copy(r->pool, e->models);
    }
    cache_unlock();
    if (!fetch) {
        return list;
    }

    rv = fetch_list(r, up, deadline, &fetched, &why);
    if (rv == APR_SUCCESS
        && apr_pool_create_unmanaged_ex(&np, NULL, NULL) == APR_SUCCESS) {
        kept = cr_models_copy(np, fetched);
    }
    else if (rv == APR_SUCCESS) {
        rv = APR_ENOMEM;
        why = "out of memory";
    }
    now = apr_time_now();
    retry = apr_time_from_sec(sconf->models_ttl);
    if (rv != APR_SUCCESS && retry > CR_MODELS_RETRY_AFTER) {
        retry = CR_MODELS_RETRY_AFTER;
    }
    cache_lock();
    old = e->pool;
    e->pool = np;
    e->models = kept;
    e->next_fetch = now + retry;
    e->fetching = 0;
    cache_unlock();
    if (old) {
        apr_pool_destroy(old);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CRLOGNO(0601)
                      "upstream %s: GET %s/models failed: %s; it lists its "
                      CR_DIR_MODEL " names only, next try in %"
                      APR_TIME_T_FMT " s", up->name, up->url, why,
                      apr_time_sec(retry));
        return NULL;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0602)
                  "upstream %s: %d models fetched from %s/models, kept "
                  "%" APR_TIME_T_FMT " s", up->name, fetched->nelts,
                  up->url, apr_time_sec(retry));
    return fetched;
}

static apr_status_t tls_ctx_free(void *data)
{
    (void)data;
    SSL_CTX_free(tls_ctx);
    tls_ctx = NULL;
    return APR_SUCCESS;
}

/* A TLS 1.2+ client context that verifies the upstream's certificate
 * against the system's trusted certificates. */
static void tls_child_init(apr_pool_t *p, server_rec *s)
{
    ERR_clear_error();
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (tls_ctx == NULL
        || SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1
        || SSL_CTX_set_default_verify_paths(tls_ctx) != 1) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CRLOGNO(0606)
                     "no TLS context for the /models fetch: https:// "
                     "upstreams list their " CR_DIR_MODEL " names only");
        SSL_CTX_free(tls_ctx);
        tls_ctx = NULL;
        ERR_clear_error();
        return;
    }
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* The answer's own framing tells whether it is complete. */
    SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    apr_pool_cleanup_register(p, NULL, tls_ctx_free, apr_pool_cleanup_null);
}

void cr_models_child_init(apr_pool_t *p, server_rec *s)
{
    if (apr_pool_create(&cache_pool, p) != APR_SUCCESS) {
        cache_pool = NULL;
        return;
    }
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&cache_mutex, APR_THREAD_MUTEX_DEFAULT, p)
        != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CRLOGNO(0604)
                     "no mutex for the /models cache: this process lists "
                     CR_DIR_MODEL " names only");
        return;
    }
#else
    (void)s;
#endif
    cache = apr_hash_make(cache_pool);
    tls_child_init(p, s);
}

/* ------------------------------------------------------------------ */
/* The requests                                                        */
/* ------------------------------------------------------------------ */

cr_models_path_e cr_models_request(request_rec *r, const cr_dir_conf *dconf,
                                   cr_request_ctx *ctx, const char **id)
{
    const char *suffix = r->uri;
    cr_models_path_e kind;

    *id = NULL;
    if (r->method_number != M_GET || suffix == NULL) {
        return CR_MODELS_PATH_NONE;
    }
    if (dconf->location) {
        apr_size_t n = cr_config_location_prefix_len(dconf->location);

        if (strncmp(suffix, dconf->location, n) != 0) {
            return CR_MODELS_PATH_NONE;
        }
        suffix += n;
    }
    kind = cr_models_path(r->pool, suffix, id);
    if (kind != CR_MODELS_PATH_NONE) {
        ctx->protocol = apr_table_get(r->headers_in, "anthropic-version")
                        ? CR_PROTO_ANTHROPIC : CR_PROTO_OPENAI;
        ctx->not_counted = 1;
    }
    return kind;
}

/* Does some route of the server lead to this upstream? */
static int routed_to(const cr_server_conf *sconf, const cr_upstream_t *up)
{
    int i;

    for (i = 0; i < sconf->routes->nelts; i++) {
        if (APR_ARRAY_IDX(sconf->routes, i, cr_route_t).upstream == up) {
            return 1;
        }
    }
    return 0;
}

static int send_json(request_rec *r, const char *body)
{
    apr_size_t len = strlen(body);

    if (ap_discard_request_body(r) != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    r->status = HTTP_OK;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return DONE;
}

int cr_models_answer(request_rec *r, cr_request_ctx *ctx,
                     const cr_server_conf *sconf, cr_models_path_e kind,
                     const char *id)
{
    apr_time_t deadline = apr_time_now() + CR_MODELS_FETCH_TIMEOUT;
    apr_array_header_t *out = apr_array_make(r->pool, 16,
                                             sizeof(cr_model_t));
    apr_hash_t *seen = apr_hash_make(r->pool);
    const char *body;
    int i;

    if (kind == CR_MODELS_PATH_ONE) {
        const cr_route_t *route = cr_route_find(sconf->routes, id,
                                                ctx->protocol);

        ctx->model = id;
        if (route && route->upstream && cr_key_model_allowed(ctx->key, id)) {
            cr_models_select(r->pool, out, seen, route->upstream,
                             upstream_list(r, sconf, route->upstream,
                                           deadline),
                             sconf->models, sconf->routes, ctx->protocol,
                             ctx->key);
        }
        for (i = 0; i < out->nelts; i++) {
            const cr_model_t *m = &APR_ARRAY_IDX(out, i, cr_model_t);

            if (strcmp(m->id, id) == 0) {
                body = cr_models_model_body(r->pool, ctx->protocol, m);
                if (body == NULL) {
                    return cr_request_send_error(r, ctx, CR_ERR_INTERNAL,
                                                 NULL);
                }
                return send_json(r, body);
            }
        }
        return cr_request_send_error(r, ctx, CR_ERR_MODEL_NOT_FOUND,
                          apr_psprintf(r->pool, "The model '%s' does not "
                                       "exist or this key may not use it.",
                                       id));
    }

    for (i = 0; i < sconf->upstreams->nelts; i++) {
        const cr_upstream_t *up = &APR_ARRAY_IDX(sconf->upstreams, i,
                                                 cr_upstream_t);

        if (up->protocol != ctx->protocol || !routed_to(sconf, up)) {
            continue;
        }
        cr_models_select(r->pool, out, seen, up,
                         upstream_list(r, sconf, up, deadline),
                         sconf->models, sconf->routes, ctx->protocol,
                         ctx->key);
    }
    body = cr_models_list_body(r->pool, ctx->protocol, out);
    if (body == NULL) {
        return cr_request_send_error(r, ctx, CR_ERR_INTERNAL, NULL);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0605)
                  "GET /models: %d models listed for key %s", out->nelts,
                  ctx->key->id);
    return send_json(r, body);
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

int cr_models_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    server_rec *vs;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    for (vs = s; vs; vs = vs->next) {
        cr_server_conf *conf = cr_config_server(vs);
        int i, j;

        for (i = 0; i < conf->models->nelts; i++) {
            const cr_model_decl_t *d = &APR_ARRAY_IDX(conf->models, i,
                                                      cr_model_decl_t);
            int found = 0;

            for (j = 0; j < conf->upstreams->nelts && !found; j++) {
                found = !strcmp(APR_ARRAY_IDX(conf->upstreams, j,
                                              cr_upstream_t).name,
                                d->upstream_name);
            }
            if (!found) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vs, CRLOGNO(0600)
                             CR_DIR_MODEL " %s %s: no " CR_DIR_UPSTREAM
                             " named '%s'", d->name, d->upstream_name,
                             d->upstream_name);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }
    return OK;
}
