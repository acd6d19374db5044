/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter.c: an LLM API gateway as an httpd module.
 *
 * A request to a URL space with "ClawdRouter On" is checked in the fixups
 * phase, in the order of SPEC section 4: the client's key (from
 * Authorization: Bearer or x-api-key) against the DBM key store, the
 * protocol's headers, the body (read once, replayed to mod_proxy byte for
 * byte), the key's model globs, the model's route and the key's rate limit.
 * A valid request is then handed to mod_proxy the way mod_rewrite's [P]
 * flag does it, with the client's credential removed and the upstream's
 * credential put in its place only in the headers sent to the backend
 * (mod_proxy's proxy_fixups hook).  Every refusal is the protocol's own
 * JSON error, and so are mod_proxy's own 502/503/504.
 *
 * This file is httpd glue only; the decisions live in the cr_*.c core.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_DEFAULT */
#endif
#include <dlfcn.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "mod_proxy.h"

#include "apr_strings.h"
#include "apr_lib.h"

#include <errno.h>

#include "mod_clawdrouter.h"
#include "cr_body.h"
#include "cr_console.h"
#include "cr_cred.h"
#include "cr_error.h"
#include "cr_key.h"
#include "cr_keycache.h"
#include "cr_rate.h"
#include "cr_ratestore.h"
#include "cr_reqid.h"
#include "cr_route.h"
#include "cr_store.h"
#include "cr_time.h"

/* Directive names, defined once. */
#define CR_DIR_KEY_STORE      "ClawdRouterKeyStore"
#define CR_DIR_UPSTREAM       "ClawdRouterUpstream"
#define CR_DIR_ROUTE          "ClawdRouterRoute"
#define CR_DIR_ENABLE         "ClawdRouter"
#define CR_DIR_RATE_STORE     "ClawdRouterRateStore"
#define CR_DIR_RATE_FAILURE   "ClawdRouterRateStoreFailure"
#define CR_DIR_DEFAULT_RPM    "ClawdRouterDefaultRPM"
#define CR_DIR_MAX_BODY       "ClawdRouterMaxBodySize"
#define CR_DIR_KEY_CACHE      "ClawdRouterKeyCache"

/* Filter names. */
#define CR_FILTER_BODY_REPLAY "CLAWDROUTER_BODY_REPLAY"
#define CR_FILTER_HEADERS     "CLAWDROUTER_HEADERS"
#define CR_FILTER_ERROR       "CLAWDROUTER_ERROR"

/* Environment variables for LogFormat "%{...}e" (SPEC section 7). */
#define CR_ENV_KEY_ID         "CLAWDROUTER_KEY_ID"
#define CR_ENV_MODEL          "CLAWDROUTER_MODEL"
#define CR_ENV_UPSTREAM       "CLAWDROUTER_UPSTREAM"
#define CR_ENV_REQUEST_ID     "CLAWDROUTER_REQUEST_ID"

/* How much the body reader asks for at a time. */
#define CR_READ_CHUNK         (64 * 1024)

/* Per-request state of a gateway request. */
typedef struct {
    /* The client's credential headers, taken out of headers_in as soon as
     * the request is read (see clawdrouter_post_read_request). */
    const char *authorization;
    const char *x_api_key;
    cr_protocol_e protocol;
    const char *request_id;
    const cr_key_record_t *key;
    const char *model;
    const cr_upstream_t *upstream;
    int forwarded;                    /* handed to mod_proxy */
    int rate_headers;                 /* rate-limit headers were set */
} cr_request_ctx;

/* mod_proxy's worker API, looked up at configuration time: the module is
 * not linked against mod_proxy.so, so it loads whatever the LoadModule
 * order (Debian's a2enmod sorts clawdrouter before proxy). */
typedef proxy_worker *(*cr_proxy_get_worker_fn)(apr_pool_t *,
                                                proxy_balancer *,
                                                proxy_server_conf *,
                                                const char *);
typedef char *(*cr_proxy_define_worker_fn)(apr_pool_t *, proxy_worker **,
                                           proxy_balancer *,
                                           proxy_server_conf *,
                                           const char *, int);

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

static void *create_clawdrouter_server_config(apr_pool_t *p, server_rec *s)
{
    cr_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)s;
    conf->upstreams = apr_array_make(p, 4, sizeof(cr_upstream_t));
    conf->routes = apr_array_make(p, 8, sizeof(cr_route_t));
    conf->locations = apr_array_make(p, 2, sizeof(const char *));
    conf->max_body = CR_DEFAULT_MAX_BODY;
    conf->rate_failure = CR_RATE_FAIL_OPEN;
    conf->key_cache_entries = -1;
    return conf;
}

static void *merge_clawdrouter_server_config(apr_pool_t *p, void *basev,
                                             void *addv)
{
    cr_server_conf *base = basev;
    cr_server_conf *add = addv;
    cr_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->key_store = add->key_store ? add->key_store : base->key_store;
    /* A virtual host's own upstreams and routes come first, then the main
     * server's: its routes win, and it may still use the main server's. */
    conf->upstreams = apr_array_append(p, add->upstreams, base->upstreams);
    conf->routes = apr_array_append(p, add->routes, base->routes);
    conf->locations = apr_array_append(p, add->locations, base->locations);
    conf->default_rpm = add->default_rpm_set ? add->default_rpm
                                             : base->default_rpm;
    conf->default_rpm_set = add->default_rpm_set || base->default_rpm_set;
    conf->max_body = add->max_body_set ? add->max_body : base->max_body;
    conf->max_body_set = add->max_body_set || base->max_body_set;
    /* The rate store is server-wide: always the main server's. */
    conf->rate_store = base->rate_store;
    conf->rate_failure = base->rate_failure;
    conf->rate_failure_set = base->rate_failure_set;
    conf->rate_store_data = base->rate_store_data;
    conf->key_cache_entries = base->key_cache_entries;
    return conf;
}

static void *create_clawdrouter_dir_config(apr_pool_t *p, char *path)
{
    cr_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = -1;
    conf->location = path;
    return conf;
}

static void *merge_clawdrouter_dir_config(apr_pool_t *p, void *basev,
                                          void *addv)
{
    cr_dir_conf *base = basev;
    cr_dir_conf *add = addv;
    cr_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = (add->enabled != -1) ? add->enabled : base->enabled;
    /* The URL mapping is relative to the section that said "On". */
    conf->location = (add->enabled != -1) ? add->location : base->location;
    conf->max_body = add->max_body_set ? add->max_body : base->max_body;
    conf->max_body_set = add->max_body_set || base->max_body_set;
    return conf;
}

static const char *cmd_key_store(cmd_parms *cmd, void *dummy,
                                 const char *arg)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    const char *type, *path;

    (void)dummy;
    if (cr_store_parse_spec(cmd->pool, arg, &type, &path) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not TYPE:PATH "
                            "(e.g. sdbm:/var/lib/clawdrouter/keys)",
                            cmd->cmd->name, arg);
    }
    conf->key_store = apr_pstrcat(cmd->pool, type, ":",
                                  ap_server_root_relative(cmd->pool, path),
                                  NULL);
    return NULL;
}

int cr_directive_number(const char *arg, apr_int64_t min, apr_int64_t max,
                        apr_int64_t *n)
{
    char *end;

    if (!apr_isdigit(*arg)) {
        return 0;
    }
    errno = 0;
    *n = apr_strtoi64(arg, &end, 10);
    return *end == '\0' && errno != ERANGE && *n >= min && *n <= max;
}

static const char *cmd_key_cache(cmd_parms *cmd, void *dummy,
                                 const char *arg)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_int64_t n;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!cr_directive_number(arg, 0, CR_KEYCACHE_MAX_ENTRIES, &n)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of records "
                            "from 0 (no cache) to %d", cmd->cmd->name, arg,
                            CR_KEYCACHE_MAX_ENTRIES);
    }
    conf->key_cache_entries = (int)n;
    return NULL;
}

/* Give an upstream its own mod_proxy worker, as ProxyPass would, so that
 * backend connections are kept alive and reused.  balancer:// upstreams
 * use the balancer the administrator defines. */
static const char *define_upstream_worker(cmd_parms *cmd, const char *url)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    cr_proxy_get_worker_fn get_worker;
    cr_proxy_define_worker_fn define_worker;
    proxy_server_conf *pconf;
    proxy_worker *worker;
    char *err;

    if (!proxy) {
        return apr_psprintf(cmd->pool, "%s needs mod_proxy and mod_proxy_http"
                            " (LoadModule proxy_module, proxy_http_module)",
                            cmd->cmd->name);
    }
    if (strncasecmp(url, "balancer://", 11) == 0) {
        return NULL;
    }
    get_worker = (cr_proxy_get_worker_fn)dlsym(RTLD_DEFAULT,
                                               "ap_proxy_get_worker");
    define_worker = (cr_proxy_define_worker_fn)dlsym(RTLD_DEFAULT,
                                                     "ap_proxy_define_worker");
    if (!get_worker || !define_worker) {
        return apr_psprintf(cmd->pool, "%s: mod_proxy's worker API was not "
                            "found", cmd->cmd->name);
    }
    pconf = ap_get_module_config(cmd->server->module_config, proxy);
    worker = get_worker(cmd->temp_pool, NULL, pconf, url);
    if (worker) {
        return NULL;    /* a ProxyPass or <Proxy> already defines it */
    }
    err = define_worker(cmd->pool, &worker, NULL, pconf, url, 0);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    /* An unreachable upstream is answered 502 on every request, not 503
     * for a minute after one failure. */
    worker->s->retry = 0;
    worker->s->retry_set = 1;
    return NULL;
}

static const char *cmd_upstream(cmd_parms *cmd, void *dummy, int argc,
                                char *const argv[])
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    cr_upstream_t *up;
    const char *err;
    int proto, i;

    (void)dummy;
    if (argc < 3 || argc > 4) {
        return apr_psprintf(cmd->pool, "%s takes NAME PROTOCOL URL "
                            "[CREDENTIAL]", cmd->cmd->name);
    }
    for (i = 0; i < conf->upstreams->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(conf->upstreams, i, cr_upstream_t).name,
                    argv[0])) {
            return apr_psprintf(cmd->pool, "%s: upstream '%s' is defined "
                                "twice", cmd->cmd->name, argv[0]);
        }
    }
    proto = cr_route_parse_protocol(argv[1]);
    if (proto < 0) {
        return apr_psprintf(cmd->pool, "%s: protocol '%s' is not openai or "
                            "anthropic", cmd->cmd->name, argv[1]);
    }
    up = apr_array_push(conf->upstreams);
    up->name = apr_pstrdup(cmd->pool, argv[0]);
    up->protocol = (cr_protocol_e)proto;
    up->url = cr_route_normalize_url(cmd->pool, argv[2]);
    if (!up->url) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an http://, "
                            "https:// or balancer:// URL", cmd->cmd->name,
                            argv[2]);
    }
    up->credential = NULL;
    if (argc == 4) {
        /* Resolved now, while httpd still runs as root: a file: secret
         * may be readable by root only. */
        up->credential = cr_route_resolve_credential(cmd->pool, argv[3],
                                                     &err);
        if (!up->credential) {
            return apr_psprintf(cmd->pool, "%s %s: %s", cmd->cmd->name,
                                argv[0], err);
        }
    }
    return define_upstream_worker(cmd, up->url);
}

static const char *cmd_route(cmd_parms *cmd, void *dummy, const char *glob,
                             const char *name)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    cr_route_t *route;

    (void)dummy;
    if (!*glob) {
        return apr_psprintf(cmd->pool, "%s: empty model glob",
                            cmd->cmd->name);
    }
    route = apr_array_push(conf->routes);
    route->glob = glob;
    route->upstream_name = name;
    route->upstream = NULL;     /* resolved in post_config */
    return NULL;
}

static const char *cmd_enable(cmd_parms *cmd, void *dconf, int flag)
{
    cr_dir_conf *conf = dconf;
    const ap_directive_t *section = cmd->directive->parent;

    if (flag && (!section || strcasecmp(section->directive, "<Location")
                 || !cmd->path || *cmd->path != '/')) {
        return apr_psprintf(cmd->pool, "%s On belongs in a <Location> with "
                            "a plain path (the path below it is appended to "
                            "the upstream URL)", cmd->cmd->name);
    }
    conf->enabled = flag;
    conf->location = cmd->path;
    if (flag) {
        cr_server_conf *sconf =
            ap_get_module_config(cmd->server->module_config,
                                 &clawdrouter_module);
        APR_ARRAY_PUSH(sconf->locations, const char *) = cmd->path;
    }
    return NULL;
}

static const char *cmd_default_rpm(cmd_parms *cmd, void *dummy,
                                   const char *arg)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    apr_int64_t rpm;

    (void)dummy;
    if (!cr_directive_number(arg, 0, 100000000, &rpm)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from 0 to 100000000", cmd->cmd->name, arg);
    }
    conf->default_rpm = rpm;
    conf->default_rpm_set = 1;
    return NULL;
}

static const char *cmd_max_body(cmd_parms *cmd, void *dconf,
                                const char *arg)
{
    apr_off_t size;

    if (apr_strtoff(&size, arg, NULL, 10) != APR_SUCCESS || size <= 0
        || !apr_isdigit(*arg)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive number "
                            "of bytes", cmd->cmd->name, arg);
    }
    if (cmd->path) {
        cr_dir_conf *conf = dconf;
        conf->max_body = size;
        conf->max_body_set = 1;
    }
    else {
        cr_server_conf *conf =
            ap_get_module_config(cmd->server->module_config,
                                 &clawdrouter_module);
        conf->max_body = size;
        conf->max_body_set = 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

static cr_request_ctx *get_ctx(request_rec *r)
{
    return ap_get_module_config(r->request_config, &clawdrouter_module);
}

static cr_request_ctx *get_or_make_ctx(request_rec *r)
{
    cr_request_ctx *ctx = get_ctx(r);

    if (!ctx) {
        ctx = apr_pcalloc(r->pool, sizeof(*ctx));
        ap_set_module_config(r->request_config, &clawdrouter_module, ctx);
    }
    return ctx;
}

/* The request's protocol (by path) and its Request-Id (SPEC section 6). */
static void identify_request(request_rec *r, cr_request_ctx *ctx)
{
    ctx->protocol = cr_protocol_from_path(r->uri ? r->uri : "/");
    ctx->request_id = cr_reqid_choose(
        r->pool, apr_table_get(r->headers_in, "Request-Id"),
        apr_table_get(r->headers_in, "X-Request-Id"),
        apr_table_get(r->headers_in, "X-Client-Request-Id"));
}

/* Rate-limit headers of SPEC section 5, in the protocol's style. */
static void set_rate_headers(request_rec *r, cr_request_ctx *ctx,
                             const cr_rate_result_t *res)
{
    apr_table_t *h = r->err_headers_out;

    if (ctx->protocol == CR_PROTO_ANTHROPIC) {
        apr_table_setn(h, "anthropic-ratelimit-requests-limit",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    res->limit));
        apr_table_setn(h, "anthropic-ratelimit-requests-remaining",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    res->remaining));
        apr_table_setn(h, "anthropic-ratelimit-requests-reset",
                       cr_time_format_rfc3339(r->pool, apr_time_now()
                                              + res->reset
                                              + apr_time_from_sec(1) - 1));
    }
    else {
        apr_table_setn(h, "x-ratelimit-limit-requests",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    res->limit));
        apr_table_setn(h, "x-ratelimit-remaining-requests",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    res->remaining));
        apr_table_setn(h, "x-ratelimit-reset-requests",
                       cr_time_format_duration(r->pool, res->reset));
    }
    ctx->rate_headers = 1;
}

/* Answer a request with one of the gateway's own errors (SPEC section 5)
 * and end its processing: the caller returns what this returns. */
static int send_error(request_rec *r, cr_request_ctx *ctx, cr_error_e kind,
                      const char *message)
{
    const char *body = cr_error_body(r->pool, ctx->protocol, kind, message,
                                     ctx->request_id);
    apr_size_t len = strlen(body);
    int status = cr_error_status(kind);

    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0100)
                  "refused with %d %s: %s (key %s, model %s)", status,
                  cr_error_openai_code(kind),
                  message ? message : cr_error_default_message(kind),
                  ctx->key ? ctx->key->id : "-",
                  ctx->model ? ctx->model : "-");

    apr_table_setn(r->err_headers_out, "x-request-id", ctx->request_id);
    if (status == HTTP_UNAUTHORIZED) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer");
    }
    else if (status == HTTP_METHOD_NOT_ALLOWED) {
        apr_table_setn(r->err_headers_out, "Allow", "POST");
    }
    /* Whatever of the body is still unread is not wanted: drop it, or
     * close the connection if it is too large to be worth reading.  The
     * status comes first: with an error status httpd does not invite an
     * "Expect: 100-continue" client to send the body at all. */
    r->status = status;
    if (status == HTTP_REQUEST_ENTITY_TOO_LARGE
        || ap_discard_request_body(r) != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return DONE;
}

/* ------------------------------------------------------------------ */
/* The request body                                                    */
/* ------------------------------------------------------------------ */

/* Read the whole body into a brigade (setaside in the request pool), at
 * most limit bytes.  *too_large is set when it is larger. */
static apr_status_t read_body(request_rec *r, apr_off_t limit,
                              apr_bucket_brigade **body, apr_off_t *total,
                              int *too_large)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    apr_bucket_brigade *kept = apr_brigade_create(r->pool,
                                                  r->connection->bucket_alloc);
    int seen_eos = 0;

    *total = 0;
    *too_large = 0;
    while (!seen_eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb,
                                         AP_MODE_READBYTES, APR_BLOCK_READ,
                                         CR_READ_CHUNK);
        if (rv != APR_SUCCESS) {
            apr_brigade_destroy(bb);
            return rv;
        }
        while (!APR_BRIGADE_EMPTY(bb)) {
            apr_bucket *e = APR_BRIGADE_FIRST(bb);

            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
                apr_bucket_delete(e);
                continue;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                apr_bucket_delete(e);
                continue;
            }
            if (e->length == (apr_size_t)-1) {
                const char *data;
                apr_size_t len;
                rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
                if (rv != APR_SUCCESS) {
                    apr_brigade_destroy(bb);
                    return rv;
                }
            }
            *total += (apr_off_t)e->length;
            if (*total > limit) {
                *too_large = 1;
                apr_brigade_destroy(bb);
                return APR_SUCCESS;
            }
            rv = apr_bucket_setaside(e, r->pool);
            if (rv != APR_SUCCESS) {
                apr_brigade_destroy(bb);
                return rv;
            }
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(kept, e);
        }
    }
    apr_brigade_destroy(bb);
    *body = kept;
    return APR_SUCCESS;
}

/* cr_json_read_fn over a brigade, for cr_body_inspect_stream: the body is
 * inspected where it lies, never copied into one buffer. */
typedef struct {
    apr_bucket_brigade *bb;
    apr_bucket *bucket;
    apr_size_t offset;
} cr_brigade_reader;

static apr_size_t brigade_read(void *buf, apr_size_t len, void *baton)
{
    cr_brigade_reader *rd = baton;
    apr_size_t copied = 0;

    while (copied < len && rd->bucket != APR_BRIGADE_SENTINEL(rd->bb)) {
        const char *data;
        apr_size_t avail, n;

        if (apr_bucket_read(rd->bucket, &data, &avail, APR_BLOCK_READ)
            != APR_SUCCESS) {
            return (apr_size_t)-1;
        }
        if (rd->offset >= avail) {
            rd->bucket = APR_BUCKET_NEXT(rd->bucket);
            rd->offset = 0;
            continue;
        }
        n = avail - rd->offset;
        if (n > len - copied) {
            n = len - copied;
        }
        memcpy((char *)buf + copied, data + rd->offset, n);
        copied += n;
        rd->offset += n;
    }
    return copied;
}

/* Input filter that hands mod_proxy the body the gateway already read,
 * then end-of-stream.  It sits above HTTP_IN, which is at its end. */
static apr_status_t body_replay_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                       ap_input_mode_t mode,
                                       apr_read_type_e block,
                                       apr_off_t readbytes)
{
    apr_bucket_brigade *kept = f->ctx;
    apr_bucket *e;
    apr_status_t rv;

    (void)block;
    if (mode != AP_MODE_READBYTES && mode != AP_MODE_SPECULATIVE
        && mode != AP_MODE_EXHAUSTIVE) {
        return APR_ENOTIMPL;
    }
    if (APR_BRIGADE_EMPTY(kept)) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                    f->c->bucket_alloc));
        return APR_SUCCESS;
    }
    if (mode == AP_MODE_EXHAUSTIVE) {
        APR_BRIGADE_CONCAT(bb, kept);
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                    f->c->bucket_alloc));
        return APR_SUCCESS;
    }
    rv = apr_brigade_partition(kept, readbytes, &e);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        return rv;
    }
    if (mode == AP_MODE_SPECULATIVE) {
        apr_bucket *b;
        for (b = APR_BRIGADE_FIRST(kept); b != e; b = APR_BUCKET_NEXT(b)) {
            apr_bucket *copy;
            rv = apr_bucket_copy(b, &copy);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            APR_BRIGADE_INSERT_TAIL(bb, copy);
        }
        return APR_SUCCESS;
    }
    while (APR_BRIGADE_FIRST(kept) != e) {
        apr_bucket *b = APR_BRIGADE_FIRST(kept);
        APR_BUCKET_REMOVE(b);
        APR_BRIGADE_INSERT_TAIL(bb, b);
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* The gateway                                                         */
/* ------------------------------------------------------------------ */

static apr_off_t max_body_size(const cr_dir_conf *dconf,
                               const cr_server_conf *sconf)
{
    return dconf->max_body_set ? dconf->max_body : sconf->max_body;
}

/* The part of a <Location> path that prefixes the URLs below it:
 * "/v1/" and "/v1" both prefix "/v1/chat/completions" as "/v1". */
static apr_size_t location_prefix_len(const char *loc)
{
    apr_size_t n = strlen(loc);

    while (n > 0 && loc[n - 1] == '/') {
        n--;
    }
    return n;
}

/* The upstream URL for a request: the path below the enabling <Location>
 * (decoded and normalized by httpd) appended to the upstream's URL.
 * mod_proxy's canonicalisation escapes it once again, as for ProxyPass,
 * and adds the query string. */
static const char *upstream_url(request_rec *r, const cr_dir_conf *dconf,
                                const cr_upstream_t *up)
{
    const char *suffix = r->uri;
    const char *loc = dconf->location;

    if (loc) {
        apr_size_t n = location_prefix_len(loc);
        if (strncmp(r->uri, loc, n) == 0) {
            suffix = r->uri + n;
        }
    }
    if (*suffix && *suffix != '/') {
        suffix = apr_pstrcat(r->pool, "/", suffix, NULL);
    }
    return apr_pstrcat(r->pool, up->url, suffix, NULL);
}

/* Steps 1-2 of SPEC section 4: the key and the protocol's headers. */
static int check_key(request_rec *r, cr_request_ctx *ctx,
                     const cr_server_conf *sconf)
{
    const char *key = NULL, *hash;
    cr_key_record_t *rec = NULL;
    cr_keycache_result_e result;
    cr_cred_status_e cs;
    int hit = 0;
    apr_status_t rv;
    char errbuf[256];

    cs = cr_cred_extract(r->pool, ctx->authorization, ctx->x_api_key, &key);
    switch (cs) {
    case CR_CRED_OK:
        break;
    case CR_CRED_MISSING:
        return send_error(r, ctx, CR_ERR_MISSING_KEY, NULL);
    case CR_CRED_CONFLICT:
        return send_error(r, ctx, CR_ERR_INVALID_KEY,
                          "Authorization and x-api-key carry different "
                          "keys; send one key.");
    default:
        return send_error(r, ctx, CR_ERR_INVALID_KEY, NULL);
    }

    if (!sconf->key_store) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CRLOGNO(0101)
                      "no " CR_DIR_KEY_STORE " is configured for this "
                      "server; refusing");
        return send_error(r, ctx, CR_ERR_KEY_STORE_UNAVAILABLE, NULL);
    }
    hash = cr_key_hash(r->pool, key);
    if (!hash) {
        return send_error(r, ctx, CR_ERR_INTERNAL, NULL);
    }
    errbuf[0] = '\0';
    result = cr_keycache_lookup(sconf->key_cache, r->pool, hash, &rec, &hit,
                                &rv, errbuf, sizeof(errbuf));
    switch (result) {
    case CR_KEYCACHE_FOUND:
        break;
    case CR_KEYCACHE_NOT_FOUND:
        return send_error(r, ctx, CR_ERR_INVALID_KEY,
                          apr_psprintf(r->pool, "Invalid API key: %s.",
                                       cr_cred_mask(r->pool, key)));
    case CR_KEYCACHE_OPEN_FAILED:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0102)
                      "key store %s cannot be read: %s", sconf->key_store,
                      errbuf);
        return send_error(r, ctx, CR_ERR_KEY_STORE_UNAVAILABLE, NULL);
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0103)
                      "key store %s: a record cannot be read",
                      sconf->key_store);
        return send_error(r, ctx, CR_ERR_KEY_STORE_UNAVAILABLE, NULL);
    }
    ctx->key = rec;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0107)
                  "key %s: record read from the %s", rec->id,
                  hit ? "process's cache" : "key store");
    switch (cr_key_usability(rec, apr_time_now())) {
    case CR_KEY_USABLE:
        break;
    case CR_KEY_IS_REVOKED:
        return send_error(r, ctx, CR_ERR_INVALID_KEY,
                          apr_psprintf(r->pool, "API key %s has been "
                                       "revoked.", rec->hint));
    default:
        return send_error(r, ctx, CR_ERR_INVALID_KEY,
                          apr_psprintf(r->pool, "API key %s has expired.",
                                       rec->hint));
    }
    r->user = (char *)rec->id;
    apr_table_setn(r->subprocess_env, CR_ENV_KEY_ID, rec->id);

    if (ctx->protocol == CR_PROTO_ANTHROPIC
        && !apr_table_get(r->headers_in, "anthropic-version")) {
        return send_error(r, ctx, CR_ERR_MISSING_VERSION,
                          "anthropic-version: header is required.");
    }
    return OK;
}

/* Step 3: read and inspect the body; the model is the result. */
static int check_body(request_rec *r, cr_request_ctx *ctx,
                      apr_off_t limit, apr_bucket_brigade **body)
{
    const char *clen = apr_table_get(r->headers_in, "Content-Length");
    cr_body_info_t info;
    cr_body_status_e bs;
    cr_brigade_reader reader;
    apr_off_t total;
    apr_status_t rv;
    int too_large;

    if (r->method_number != M_POST) {
        return send_error(r, ctx, CR_ERR_METHOD_NOT_ALLOWED,
                          apr_psprintf(r->pool, "Method %s is not "
                                       "supported here; use POST.",
                                       r->method));
    }
    if (!cr_body_content_type_is_json(apr_table_get(r->headers_in,
                                                    "Content-Type"))) {
        return send_error(r, ctx, CR_ERR_UNSUPPORTED_MEDIA_TYPE,
                          "The request body must be JSON "
                          "(Content-Type: application/json).");
    }
    if (clen) {
        apr_off_t declared;
        if (apr_strtoff(&declared, clen, NULL, 10) == APR_SUCCESS
            && declared > limit) {
            return send_error(r, ctx, CR_ERR_TOO_LARGE,
                              apr_psprintf(r->pool, "Request body is larger "
                                           "than %" APR_OFF_T_FMT " bytes.",
                                           limit));
        }
    }
    rv = read_body(r, limit, body, &total, &too_large);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, CRLOGNO(0104)
                      "reading the request body failed");
        if (rv == AP_FILTER_ERROR) {
            /* HTTP_IN already judged it (e.g. LimitRequestBody); answer
             * in JSON all the same. */
            return send_error(r, ctx, CR_ERR_TOO_LARGE, NULL);
        }
        r->connection->keepalive = AP_CONN_CLOSE;
        return send_error(r, ctx, CR_ERR_INVALID_BODY,
                          "The request body could not be read "
                          "completely.");
    }
    if (too_large) {
        return send_error(r, ctx, CR_ERR_TOO_LARGE,
                          apr_psprintf(r->pool, "Request body is larger than "
                                       "%" APR_OFF_T_FMT " bytes.", limit));
    }

    reader.bb = *body;
    reader.bucket = APR_BRIGADE_FIRST(*body);
    reader.offset = 0;
    memset(&info, 0, sizeof(info));
    bs = cr_body_inspect_stream(r->pool, brigade_read, &reader, &info);
    if (bs != CR_BODY_OK) {
        return send_error(r, ctx, CR_ERR_INVALID_BODY,
                          info.detail ? info.detail
                                      : "The request body must be a JSON "
                                        "object with a string \"model\".");
    }
    ctx->model = info.model;
    apr_table_setn(r->subprocess_env, CR_ENV_MODEL, info.model);
    return OK;
}

/* Step 6: the key's rate limit. */
static int check_rate(request_rec *r, cr_request_ctx *ctx,
                      const cr_server_conf *sconf)
{
    apr_int64_t rpm = ctx->key->rpm;
    cr_rate_result_t res;
    apr_status_t rv;

    if (rpm == CR_KEY_RPM_UNSET) {
        rpm = sconf->default_rpm;
    }
    if (rpm <= 0) {
        return OK;
    }
    memset(&res, 0, sizeof(res));
    rv = cr_ratestore_take(r, ctx->key->id, rpm, &res);
    if (rv != APR_SUCCESS) {
        /* cr_ratestore_take has logged the outage (once per interval). */
        /* The merge gives every server the main server's policy. */
        if (sconf->rate_failure == CR_RATE_FAIL_CLOSED) {
            return send_error(r, ctx, CR_ERR_RATE_STORE_UNAVAILABLE, NULL);
        }
        return OK;
    }
    set_rate_headers(r, ctx, &res);
    if (!res.allowed) {
        apr_interval_time_t wait = res.retry_after > 0 ? res.retry_after : 1;
        apr_int64_t ms = (wait + 999) / 1000;
        apr_int64_t secs = (wait + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;

        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    secs < 1 ? 1 : secs));
        apr_table_setn(r->err_headers_out, "retry-after-ms",
                       apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                    ms < 1 ? 1 : ms));
        return send_error(r, ctx, CR_ERR_RATE_LIMITED,
                          apr_psprintf(r->pool, "Rate limit of %"
                                       APR_INT64_T_FMT " requests per minute "
                                       "reached for key %s; retry in %"
                                       APR_INT64_T_FMT " ms.", rpm,
                                       ctx->key->id, ms < 1 ? 1 : ms));
    }
    return OK;
}

static int clawdrouter_fixups(request_rec *r)
{
    cr_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &clawdrouter_module);
    cr_server_conf *sconf = ap_get_module_config(r->server->module_config,
                                                 &clawdrouter_module);
    apr_bucket_brigade *body = NULL;
    const cr_route_t *route;
    cr_request_ctx *ctx;
    int rc;

    ctx = get_ctx(r);
    if (dconf->enabled != 1 || r->main || r->prev || !ctx) {
        return DECLINED;
    }

    identify_request(r, ctx);
    apr_table_setn(r->err_headers_out, "Request-Id", ctx->request_id);
    apr_table_setn(r->subprocess_env, CR_ENV_REQUEST_ID, ctx->request_id);

    if ((rc = check_key(r, ctx, sconf)) != OK) {
        return rc;
    }
    if ((rc = check_body(r, ctx, max_body_size(dconf, sconf), &body))
        != OK) {
        return rc;
    }
    if (!cr_key_model_allowed(ctx->key, ctx->model)) {
        return send_error(r, ctx, CR_ERR_MODEL_NOT_PERMITTED,
                          apr_psprintf(r->pool, "API key %s may not use "
                                       "model '%s'.", ctx->key->id,
                                       ctx->model));
    }
    route = cr_route_find(sconf->routes, ctx->model, ctx->protocol);
    if (!route || !route->upstream) {
        return send_error(r, ctx, CR_ERR_MODEL_NOT_FOUND,
                          apr_psprintf(r->pool, "The model '%s' is not "
                                       "served here.", ctx->model));
    }
    ctx->upstream = route->upstream;
    apr_table_setn(r->subprocess_env, CR_ENV_UPSTREAM, ctx->upstream->name);
    if ((rc = check_rate(r, ctx, sconf)) != OK) {
        return rc;
    }

    /* Step 7: hand over to mod_proxy, as mod_rewrite's [P] does. */
    ap_add_input_filter(CR_FILTER_BODY_REPLAY, body, r, r->connection);
    apr_table_setn(r->headers_in, "Request-Id", ctx->request_id);
    apr_table_setn(r->headers_in, "X-Request-Id", ctx->request_id);
    r->filename = apr_pstrcat(r->pool, "proxy:",
                              upstream_url(r, dconf, ctx->upstream), NULL);
    r->handler = "proxy-server";
    r->proxyreq = PROXYREQ_REVERSE;
    ctx->forwarded = 1;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0105)
                  "key %s model %s -> upstream %s", ctx->key->id,
                  ctx->model, ctx->upstream->name);
    return OK;
}

/* Does r->uri fall under a <Location> where the gateway is On?  Used
 * before httpd's location walk, when the per-directory configuration
 * cannot say yet. */
static int uri_in_gateway_location(request_rec *r)
{
    cr_server_conf *sconf = ap_get_module_config(r->server->module_config,
                                                 &clawdrouter_module);
    char *uri;
    int i;

    if (!r->uri || *r->uri != '/' || sconf->locations->nelts == 0) {
        return 0;
    }
    /* Judge the path as the location walk will see it. */
    uri = apr_pstrdup(r->pool, r->uri);
    ap_getparents(uri);
    ap_no2slash(uri);
    for (i = 0; i < sconf->locations->nelts; i++) {
        const char *loc = APR_ARRAY_IDX(sconf->locations, i, const char *);
        apr_size_t n = location_prefix_len(loc);
        if (strncmp(uri, loc, n) == 0 && (uri[n] == '/' || uri[n] == '\0')) {
            return 1;
        }
    }
    return 0;
}

/* Is this a request of the gateway's URL space?  After the location walk
 * the per-directory configuration says; an error httpd makes before it
 * (while reading the headers) is judged by the enabling <Location> paths. */
static int is_gateway_request(request_rec *r)
{
    cr_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &clawdrouter_module);

    if (dconf && dconf->enabled != -1) {
        return dconf->enabled == 1;
    }
    return r->per_dir_config == r->server->lookup_defaults
           && uri_in_gateway_location(r);
}

/* Move the client's credential headers from headers_in into the request's
 * context. */
static void take_credentials(request_rec *r)
{
    cr_request_ctx *ctx = get_or_make_ctx(r);

    ctx->authorization = apr_table_get(r->headers_in, "Authorization");
    ctx->x_api_key = apr_table_get(r->headers_in, "x-api-key");
    apr_table_unset(r->headers_in, "Authorization");
    apr_table_unset(r->headers_in, "x-api-key");
}

/* The client's key must not reach even httpd's own trace4 dump of the
 * request headers, which comes before any per-directory hook: take the
 * credential headers out now for the gateway's URLs. */
static int clawdrouter_post_read_request(request_rec *r)
{
    if (r->main || r->prev || !uri_in_gateway_location(r)) {
        return DECLINED;
    }
    take_credentials(r);
    return DECLINED;
}

/* The file name of a gateway request until the fixup sets the proxy:
 * URL: the gateway's URL space maps to no file, as ProxyPass's does not. */
#define CR_FILENAME_PREFIX "clawdrouter:"

/* A gateway URL is not a file: map it to no file, as mod_proxy does for
 * ProxyPass, so that the directory walk (a stat of every path component,
 * .htaccess lookups) is not paid by each request.  Location sections are
 * already walked at this point (httpd walks them before translate_name and
 * again after map_to_storage); <Directory> sections and .htaccess files do
 * not apply to the gateway's URL space. */
static int clawdrouter_translate_name(request_rec *r)
{
    cr_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &clawdrouter_module);

    if (dconf->enabled != 1 || r->main || r->prev) {
        return DECLINED;
    }
    r->filename = apr_pstrcat(r->pool, CR_FILENAME_PREFIX, r->uri, NULL);
    return OK;
}

/* ... and skip the directory and file walks for it. */
static int clawdrouter_map_to_storage(request_rec *r)
{
    if (r->filename && strncmp(r->filename, CR_FILENAME_PREFIX,
                               sizeof(CR_FILENAME_PREFIX) - 1) == 0) {
        return OK;
    }
    return DECLINED;
}

/* After the location walk: the gateway's requests keep their credential
 * in the context (taking it now if the raw URI did not match a gateway
 * <Location> before it was normalized); any other request gets back what
 * post_read_request took. */
static int clawdrouter_header_parser(request_rec *r)
{
    cr_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &clawdrouter_module);
    cr_request_ctx *ctx = get_ctx(r);

    if (dconf->enabled == 1) {
        if (!ctx) {
            take_credentials(r);
        }
        return DECLINED;
    }
    if (ctx) {
        if (ctx->authorization) {
            apr_table_setn(r->headers_in, "Authorization",
                           ctx->authorization);
        }
        if (ctx->x_api_key) {
            apr_table_setn(r->headers_in, "x-api-key", ctx->x_api_key);
        }
        ap_set_module_config(r->request_config, &clawdrouter_module, NULL);
    }
    return DECLINED;
}

/* mod_proxy's proxy_fixups hook: runs on the copy of the headers that is
 * sent to the backend, so the upstream's credential exists only there. */
static int clawdrouter_proxy_fixups(request_rec *r)
{
    cr_request_ctx *ctx = get_ctx(r);

    if (!ctx || !ctx->forwarded) {
        return OK;
    }
    apr_table_unset(r->headers_in, "Authorization");
    apr_table_unset(r->headers_in, "x-api-key");
    if (ctx->upstream->credential) {
        if (ctx->upstream->protocol == CR_PROTO_ANTHROPIC) {
            apr_table_setn(r->headers_in, "x-api-key",
                           ctx->upstream->credential);
        }
        else {
            apr_table_setn(r->headers_in, "Authorization",
                           apr_pstrcat(r->pool, "Bearer ",
                                       ctx->upstream->credential, NULL));
        }
    }
    return OK;
}

/* On the upstream's response: the gateway's Request-Id and rate-limit
 * headers (in err_headers_out) replace the upstream's of the same name. */
static apr_status_t headers_out_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    cr_request_ctx *ctx = get_ctx(r);

    apr_table_unset(r->headers_out, "Request-Id");
    if (ctx && ctx->rate_headers) {
        static const char *const names[] = {
            "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests", "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset", NULL
        };
        int i;
        for (i = 0; names[i]; i++) {
            apr_table_unset(r->headers_out, names[i]);
        }
    }
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

/* Which of the gateway's errors an error page of httpd's stands for.  For
 * a forwarded request that is mod_proxy speaking of the upstream; before
 * that, httpd itself refused the request (a header too large, say). */
static cr_error_e error_kind_for_status(request_rec *r,
                                        const cr_request_ctx *ctx)
{
    switch (r->status) {
    case HTTP_GATEWAY_TIME_OUT:
        return CR_ERR_UPSTREAM_TIMEOUT;
    case HTTP_BAD_GATEWAY:
    case HTTP_SERVICE_UNAVAILABLE:
        if (!ctx->forwarded) {
            break;
        }
        /* mod_proxy_http answers 502 when the backend timed out, and says
         * so in a note. */
        return apr_table_get(r->notes, "proxy_timedout")
               ? CR_ERR_UPSTREAM_TIMEOUT : CR_ERR_UPSTREAM_UNAVAILABLE;
    case HTTP_REQUEST_ENTITY_TOO_LARGE:
        return CR_ERR_TOO_LARGE;
    case HTTP_METHOD_NOT_ALLOWED:
        return CR_ERR_METHOD_NOT_ALLOWED;
    case HTTP_UNSUPPORTED_MEDIA_TYPE:
        return CR_ERR_UNSUPPORTED_MEDIA_TYPE;
    case HTTP_UNAUTHORIZED:
        return CR_ERR_INVALID_KEY;
    default:
        break;
    }
    return ap_is_HTTP_CLIENT_ERROR(r->status) ? CR_ERR_BAD_REQUEST
                                              : CR_ERR_INTERNAL;
}

/* On an error page httpd makes for a gateway request (mod_proxy's 502 and
 * 504, or httpd's own 400 for a malformed header): swallow the HTML and
 * send the protocol's JSON error instead.  The status stays what httpd
 * chose, but for mod_proxy's 503, which is "upstream unavailable" (502). */
static apr_status_t error_json_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    cr_request_ctx *ctx = f->ctx;
    apr_bucket *e;
    cr_error_e kind;
    const char *body;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
         e = APR_BUCKET_NEXT(e)) {
        if (APR_BUCKET_IS_EOS(e)) {
            break;
        }
    }
    if (e == APR_BRIGADE_SENTINEL(bb)) {
        apr_brigade_cleanup(bb);   /* more HTML to come */
        return APR_SUCCESS;
    }
    kind = error_kind_for_status(r, ctx);
    if (kind == CR_ERR_UPSTREAM_UNAVAILABLE
        || kind == CR_ERR_UPSTREAM_TIMEOUT) {
        r->status = cr_error_status(kind);
        r->status_line = NULL;
    }
    body = cr_error_body(r->pool, ctx->protocol, kind, NULL,
                         ctx->request_id);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0106)
                  "answered %d %s (upstream %s)", r->status,
                  cr_error_openai_code(kind),
                  ctx->upstream ? ctx->upstream->name : "-");
    /* ap_send_error_response has moved err_headers_out to headers_out. */
    apr_table_unset(r->err_headers_out, "Request-Id");
    apr_table_unset(r->err_headers_out, "x-request-id");
    apr_table_setn(r->headers_out, "Request-Id", ctx->request_id);
    apr_table_setn(r->headers_out, "x-request-id", ctx->request_id);
    apr_table_unset(r->headers_out, "Content-Length");
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)strlen(body));
    apr_brigade_cleanup(bb);
    if (!r->header_only) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(
                                    body, strlen(body), r->pool,
                                    f->c->bucket_alloc));
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(f->c->bucket_alloc));
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void clawdrouter_insert_filter(request_rec *r)
{
    cr_request_ctx *ctx = get_ctx(r);

    if (ctx && ctx->forwarded) {
        ap_add_output_filter(CR_FILTER_HEADERS, NULL, r, r->connection);
    }
}

static void clawdrouter_insert_error_filter(request_rec *r)
{
    cr_request_ctx *ctx = get_ctx(r);

    if (!(ctx && ctx->forwarded) && (r->main || !is_gateway_request(r))) {
        return;
    }
    ctx = get_or_make_ctx(r);
    if (!ctx->request_id) {
        identify_request(r, ctx);
    }
    ap_add_output_filter(CR_FILTER_ERROR, ctx, r, r->connection);
}

/* Last line of defence for the logs: before mod_log_config formats the
 * line, no credential header that carries a ClawdRouter-shaped key is
 * left, on the gateway's URLs or any other (a client with a wrong base
 * URL still sends its key). */
static int clawdrouter_log_transaction(request_rec *r)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");
    const char *xkey = apr_table_get(r->headers_in, "x-api-key");
    int gateway = get_ctx(r) != NULL;

    if (auth && (gateway || strstr(auth, CR_KEY_PREFIX))) {
        apr_table_unset(r->headers_in, "Authorization");
    }
    if (xkey && (gateway || strstr(xkey, CR_KEY_PREFIX))) {
        apr_table_unset(r->headers_in, "x-api-key");
    }
    return DECLINED;
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

static int clawdrouter_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp)
{
    return cr_ratestore_pre_config(pconf, plog, ptemp);
}

/* Resolve every route's upstream by name, per server. */
static int clawdrouter_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                   apr_pool_t *ptemp, server_rec *s)
{
    server_rec *vs;

    for (vs = s; vs; vs = vs->next) {
        cr_server_conf *conf = ap_get_module_config(vs->module_config,
                                                    &clawdrouter_module);
        int i, j;

        for (i = 0; i < conf->routes->nelts; i++) {
            cr_route_t *route = &APR_ARRAY_IDX(conf->routes, i, cr_route_t);

            route->upstream = NULL;
            for (j = 0; j < conf->upstreams->nelts; j++) {
                const cr_upstream_t *up =
                    &APR_ARRAY_IDX(conf->upstreams, j, cr_upstream_t);
                if (!strcmp(up->name, route->upstream_name)) {
                    route->upstream = up;
                    break;
                }
            }
            if (!route->upstream) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, 0, vs, CRLOGNO(0001)
                             CR_DIR_ROUTE " %s %s: no " CR_DIR_UPSTREAM
                             " named '%s'", route->glob,
                             route->upstream_name, route->upstream_name);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }
    return cr_ratestore_post_config(pconf, plog, ptemp, s);
}

/* One key record cache per key store in each child, shared by the
 * virtual hosts that use that store. */
static void key_cache_child_init(apr_pool_t *p, server_rec *main_server)
{
    cr_server_conf *main_conf = ap_get_module_config(
        main_server->module_config, &clawdrouter_module);
    int entries = main_conf->key_cache_entries >= 0
                  ? main_conf->key_cache_entries
                  : CR_KEYCACHE_DEFAULT_ENTRIES;
    apr_hash_t *by_store = apr_hash_make(p);
    server_rec *s;

    for (s = main_server; s; s = s->next) {
        cr_server_conf *sconf = ap_get_module_config(s->module_config,
                                                     &clawdrouter_module);
        cr_keycache_t *cache;
        apr_status_t rv;

        if (!sconf->key_store) {
            continue;
        }
        cache = apr_hash_get(by_store, sconf->key_store, APR_HASH_KEY_STRING);
        if (!cache) {
            rv = cr_keycache_create(p, sconf->key_store, entries,
                                    CR_KEYCACHE_SETTLE, &cache);
            if (rv != APR_SUCCESS) {
                /* A cache of no records, which reads the store for every
                 * lookup (and cannot fail to be made). */
                ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CRLOGNO(0002)
                             "key store %s: no record cache in this "
                             "process", sconf->key_store);
                (void)cr_keycache_create(p, sconf->key_store, 0, 0, &cache);
            }
            apr_hash_set(by_store, sconf->key_store, APR_HASH_KEY_STRING,
                         cache);
        }
        sconf->key_cache = cache;
    }
}

static void clawdrouter_child_init(apr_pool_t *p, server_rec *s)
{
    cr_ratestore_child_init(p, s);
    key_cache_child_init(p, s);
}

static const command_rec clawdrouter_cmds[] = {
    AP_INIT_TAKE1(CR_DIR_KEY_STORE, cmd_key_store, NULL, RSRC_CONF,
                  "the DBM key store, TYPE:PATH (e.g. sdbm:/var/lib/clawdrouter/keys)"),
    AP_INIT_TAKE_ARGV(CR_DIR_UPSTREAM, cmd_upstream, NULL, RSRC_CONF,
                      "an upstream: NAME openai|anthropic URL [CREDENTIAL]"),
    AP_INIT_TAKE2(CR_DIR_ROUTE, cmd_route, NULL, RSRC_CONF,
                  "route models matching a glob to a named upstream"),
    AP_INIT_FLAG(CR_DIR_ENABLE, cmd_enable, NULL, ACCESS_CONF,
                 "On to serve this URL space as the gateway"),
    AP_INIT_TAKE1(CR_DIR_RATE_STORE, cr_ratestore_cmd_store, NULL, RSRC_CONF,
                  "where rate counters live: shm, memcache://H:P[,H:P] or redis://H:P"),
    AP_INIT_TAKE1(CR_DIR_RATE_FAILURE, cr_ratestore_cmd_failure, NULL,
                  RSRC_CONF,
                  "open or closed: serve or refuse while a shared rate store is down"),
    AP_INIT_TAKE1(CR_DIR_DEFAULT_RPM, cmd_default_rpm, NULL, RSRC_CONF,
                  "requests per minute for keys whose record sets none (0 = no limit)"),
    AP_INIT_TAKE1(CR_DIR_MAX_BODY, cmd_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "largest request body inspected and forwarded, in bytes"),
    AP_INIT_TAKE1(CR_DIR_KEY_CACHE, cmd_key_cache, NULL, RSRC_CONF,
                  "key records each child keeps between requests (0 = read the store every time)"),
    CR_RATESTORE_COMMANDS
    {NULL}
};

static void register_hooks(apr_pool_t *p)
{
    /* The fixup runs before mod_proxy's, which canonicalises the proxy:
     * URL ours sets (mod_rewrite orders itself after it instead, because
     * its URL is canonical already; ours is not). */
    static const char *const before_proxy[] = { "mod_proxy.c", NULL };
    static const char *const after_rewrite[] = { "mod_rewrite.c", NULL };
    static const char *const before_proxy_alias[] = { "mod_proxy.c",
                                                      "mod_alias.c", NULL };

    (void)p;
    /* Take the client's credential headers out of the request at once. */
    ap_hook_post_read_request(clawdrouter_post_read_request, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
    /* ... and give them back where the gateway is not On. */
    ap_hook_header_parser(clawdrouter_header_parser, NULL, NULL,
                          APR_HOOK_REALLY_FIRST);
    /* Gateway URLs map to no file (mod_rewrite may rewrite them first;
     * a ProxyPass or Alias for the same URL does not get them)... */
    ap_hook_translate_name(clawdrouter_translate_name, after_rewrite,
                           before_proxy_alias, APR_HOOK_FIRST);
    /* ... so no directory walk (before core's and mod_proxy's). */
    ap_hook_map_to_storage(clawdrouter_map_to_storage, NULL, NULL,
                           APR_HOOK_FIRST);
    /* Register the rate store's mutex type. */
    ap_hook_pre_config(clawdrouter_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* Resolve routes, create the rate store. */
    ap_hook_post_config(clawdrouter_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* The console's CSRF secret, made once in the parent. */
    ap_hook_post_config(cr_console_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* Attach to the rate store in each child. */
    ap_hook_child_init(clawdrouter_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* The gateway: key, body, permission, route, rate, hand-over. */
    ap_hook_fixups(clawdrouter_fixups, NULL, before_proxy, APR_HOOK_FIRST);
    /* The upstream's credential, in the backend request only. */
    APR_OPTIONAL_HOOK(proxy, fixups, clawdrouter_proxy_fixups, NULL, NULL,
                      APR_HOOK_MIDDLE);
    /* Our headers on forwarded responses; JSON for httpd's error pages. */
    ap_hook_insert_filter(clawdrouter_insert_filter, NULL, NULL,
                          APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(clawdrouter_insert_error_filter, NULL, NULL,
                                APR_HOOK_MIDDLE);
    /* The key management console (SetHandler clawdrouter-console). */
    ap_hook_handler(cr_console_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_log_config: no credential header left to log. */
    ap_hook_log_transaction(clawdrouter_log_transaction, NULL, NULL,
                            APR_HOOK_REALLY_FIRST);

    ap_register_input_filter(CR_FILTER_BODY_REPLAY, body_replay_filter, NULL,
                             AP_FTYPE_RESOURCE);
    ap_register_output_filter(CR_FILTER_HEADERS, headers_out_filter, NULL,
                              AP_FTYPE_CONTENT_SET);
    ap_register_output_filter(CR_FILTER_ERROR, error_json_filter, NULL,
                              AP_FTYPE_CONTENT_SET);
}

AP_DECLARE_MODULE(clawdrouter) = {
    STANDARD20_MODULE_STUFF,
    create_clawdrouter_dir_config,      /* create per-directory config */
    merge_clawdrouter_dir_config,       /* merge per-directory config */
    create_clawdrouter_server_config,   /* create per-server config */
    merge_clawdrouter_server_config,    /* merge per-server config */
    clawdrouter_cmds,                   /* command table */
    register_hooks,                     /* register hooks */
    AP_MODULE_FLAG_NONE                 /* flags */
};
