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
 * declared names only.  Only http:// upstreams are fetched: https:// and
 * balancer:// ones contribute their declared names.
 */

#include <stdlib.h>

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

/* GET {url}/models of one upstream, before deadline: its list (from p) or
 * an error with *why (never the credential). */
static apr_status_t fetch_list(request_rec *r, const cr_upstream_t *up,
                               apr_time_t deadline,
                               apr_array_header_t **models, const char **why)
{
    apr_pool_t *p = r->pool;
    const char *req, *host, *body = NULL;
    apr_size_t req_len, sent = 0, len = 0, cap = 0, body_len = 0;
    apr_size_t max = CR_MODELS_MAX_RESPONSE + 64 * 1024;
    apr_sockaddr_t *sa;
    apr_socket_t *sock;
    apr_status_t rv;
    cr_http_parse_e parsed = CR_HTTP_MORE;
    char *buf = NULL;
    int port = 0, status = 0, eof = 0;

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
    rv = apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP, p);
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "no socket: %s", status_text(p, rv));
        return rv;
    }
    if (time_left(deadline) == 0) {
        rv = APR_TIMEUP;
    }
    else {
        apr_socket_timeout_set(sock, time_left(deadline));
        rv = apr_socket_connect(sock, sa);
    }
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "connect: %s", status_text(p, rv));
        goto done;
    }
    req_len = strlen(req);
    while (sent < req_len) {
        apr_size_t n = req_len - sent;

        if (time_left(deadline) == 0) {
            rv = APR_TIMEUP;
            break;
        }
        apr_socket_timeout_set(sock, time_left(deadline));
        rv = apr_socket_send(sock, req + sent, &n);
        sent += n;
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "send: %s", status_text(p, rv));
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
        if (time_left(deadline) == 0) {
            rv = APR_TIMEUP;
            break;
        }
        apr_socket_timeout_set(sock, time_left(deadline));
        n = cap - len;
        rv = apr_socket_recv(sock, buf + len, &n);
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
        *why = apr_psprintf(p, "read: %s", status_text(p, rv));
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
    apr_socket_close(sock);
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
