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
 * This file is httpd glue only, the request flow and the hooks; the
 * configuration is mod_clawdrouter_config.c, the body mod_clawdrouter_body.c,
 * the context and the gateway's own responses mod_clawdrouter_request.c,
 * the token usage of responses mod_clawdrouter_usage.c, and
 * the decisions live in the cr_*.c core.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "util_filter.h"
#include "mod_proxy.h"

#include "apr_strings.h"
#include "apr_lib.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_body.h"
#include "mod_clawdrouter_metrics.h"
#include "mod_clawdrouter_models.h"
#include "mod_clawdrouter_request.h"
#include "mod_clawdrouter_tokens.h"
#include "mod_clawdrouter_usage.h"
#include "cr_body.h"
#include "cr_console.h"
#include "cr_cred.h"
#include "cr_error.h"
#include "cr_key.h"
#include "cr_keycache.h"
#include "cr_keystore.h"
#include "mod_clawdrouter_keystore.h"
#include "cr_rate.h"
#include "cr_ratestore.h"
#include "cr_reqid.h"
#include "cr_route.h"
#include "cr_store.h"
#include "cr_time.h"
#include "cr_tokenstore.h"

/* Filter names. */
#define CR_FILTER_ERROR       "CLAWDROUTER_ERROR"

/* The filters' handles from registration: adding a filter by handle skips
 * the lookup of its name on every request. */
static ap_filter_rec_t *body_replay_filter_handle;

/* ------------------------------------------------------------------ */
/* The gateway                                                         */
/* ------------------------------------------------------------------ */

/* The file name that hands a request to mod_proxy: "proxy:" and the
 * upstream URL, the path below the enabling <Location> (decoded and
 * normalized by httpd) appended to the upstream's URL.  mod_proxy's
 * canonicalisation escapes it once again, as for ProxyPass, and adds the
 * query string. */
static char *proxy_filename(request_rec *r, const cr_dir_conf *dconf,
                            const cr_route_t *route)
{
    const char *suffix = r->uri;
    const char *loc = dconf->location;
    apr_size_t slash, len;
    char *name, *out;

    if (loc) {
        apr_size_t n = cr_config_location_prefix_len(loc);
        if (strncmp(r->uri, loc, n) == 0) {
            suffix = r->uri + n;
        }
    }
    /* route->proxy_url is "proxy:" and the upstream's URL, made at
     * start-up. */
    slash = *suffix && *suffix != '/';
    len = strlen(suffix);
    out = name = apr_palloc(r->pool, route->proxy_url_len + slash + len + 1);
    memcpy(out, route->proxy_url, route->proxy_url_len);
    out += route->proxy_url_len;
    if (slash) {
        *out++ = '/';
    }
    memcpy(out, suffix, len + 1);
    return name;
}

/* Before anything counts: a body framed by anything but one "chunked"
 * (e.g. "gzip, chunked", or two Transfer-Encoding: chunked headers, which
 * httpd merges into "chunked, chunked") is refused.  httpd de-chunks only
 * the last coding and mod_proxy cannot forward the rest. */
static int check_transfer_encoding(request_rec *r, cr_request_ctx *ctx)
{
    const char *te = apr_table_get(r->headers_in, "Transfer-Encoding");

    if (!te || strcasecmp(te, "chunked") == 0) {
        return OK;
    }
    r->connection->keepalive = AP_CONN_CLOSE;
    return cr_request_send_error(r, ctx, CR_ERR_BAD_REQUEST,
                                 "Transfer-Encoding must be a single "
                                 "\"chunked\" (or absent).");
}

/* A WebSocket upgrade (Codex CLI tries one on /responses before HTTPS)
 * gets one 400 with x-should-retry: false, so the client falls back at
 * once (SPEC section 10). */
static int check_websocket(request_rec *r, cr_request_ctx *ctx)
{
    const char *upgrade = apr_table_get(r->headers_in, "Upgrade");

    if (!upgrade || !ap_find_token(r->pool, upgrade, "websocket")) {
        return OK;
    }
    r->connection->keepalive = AP_CONN_CLOSE;
    return cr_request_send_error(r, ctx, CR_ERR_WEBSOCKET, NULL);
}

/* The path is an Anthropic /messages/count_tokens (trailing '/' too). */
static int is_count_tokens(const char *uri)
{
    static const char suffix[] = "/messages/count_tokens";
    apr_size_t len = uri ? strlen(uri) : 0;
    apr_size_t slen = sizeof(suffix) - 1;

    if (len > 0 && uri[len - 1] == '/') {
        len--;
    }
    return len >= slen && memcmp(uri + len - slen, suffix, slen) == 0;
}

/* Steps 1-2 of SPEC section 4: the key and the protocol's headers. */
static int check_key(request_rec *r, cr_request_ctx *ctx,
                     const cr_server_conf *sconf)
{
    const char *key = NULL;
    cr_key_record_t *rec = NULL;
    cr_keystore_result_e result;
    cr_cred_status_e cs;
    int hit = 0;
    apr_status_t rv;
    char errbuf[256];

    cs = cr_cred_extract(r->pool, ctx->authorization, ctx->x_api_key, &key);
    switch (cs) {
    case CR_CRED_OK:
        break;
    case CR_CRED_MISSING:
        return cr_request_send_error(r, ctx, CR_ERR_MISSING_KEY, NULL);
    case CR_CRED_CONFLICT:
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_KEY,
                          "Authorization and x-api-key carry different "
                          "keys; send one key.");
    default:
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_KEY, NULL);
    }

    if (!sconf->key_store || !sconf->keystore) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CRLOGNO(0101)
                      "no " CR_DIR_KEY_STORE " is configured for this "
                      "server; refusing");
        return cr_request_send_error(r, ctx, CR_ERR_KEY_STORE_UNAVAILABLE, NULL);
    }
    /* The store finds the record by the key's SHA-256; the DBM store's
     * per-child cache answers a cached key by a keyed SipHash tag of it
     * instead, with no SHA-256 (cr_keycache.c says why that is safe). */
    errbuf[0] = '\0';
    result = cr_keystore_lookup(sconf->keystore, r, r->pool, key, &rec,
                                &hit, &rv, errbuf, sizeof(errbuf));
    switch (result) {
    case CR_KEYSTORE_FOUND:
        break;
    case CR_KEYSTORE_HASH_FAILED:
        return cr_request_send_error(r, ctx, CR_ERR_INTERNAL, NULL);
    case CR_KEYSTORE_NOT_FOUND:
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_KEY,
                          apr_psprintf(r->pool, "Invalid API key: %s.",
                                       cr_cred_mask(r->pool, key)));
    case CR_KEYSTORE_UNAVAILABLE:
        /* one line per interval, whichever the store */
        cr_keystore_log_unavailable(r, sconf->keystore, rv, errbuf);
        return cr_request_send_error(r, ctx, CR_ERR_KEY_STORE_UNAVAILABLE, NULL);
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0103)
                      "key store %s: a record cannot be read",
                      sconf->keystore->name);
        return cr_request_send_error(r, ctx, CR_ERR_KEY_STORE_UNAVAILABLE, NULL);
    }
    ctx->key = rec;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0107)
                  "key %s: record read from the %s", rec->id,
                  hit ? "process's cache" : "key store");
    switch (cr_key_usability(rec, apr_time_now())) {
    case CR_KEY_USABLE:
        break;
    case CR_KEY_IS_REVOKED:
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_KEY,
                          apr_psprintf(r->pool, "API key %s has been "
                                       "revoked.", rec->hint));
    default:
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_KEY,
                          apr_psprintf(r->pool, "API key %s has expired.",
                                       rec->hint));
    }
    r->user = (char *)rec->id;
    cr_request_table_put(r->subprocess_env, ctx->env_ours, CR_ENV_KEY_ID,
                         rec->id);

    if (ctx->protocol == CR_PROTO_ANTHROPIC
        && !apr_table_get(r->headers_in, "anthropic-version")) {
        return cr_request_send_error(r, ctx, CR_ERR_MISSING_VERSION,
                          "anthropic-version: header is required.");
    }
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
    rv = cr_ratestore_take(r, ctx->key->id, ctx->key_fnv, rpm, &res);
    if (rv != APR_SUCCESS) {
        /* cr_ratestore_take has logged the outage (once per interval). */
        ctx->store_error = "rate";
        /* The merge gives every server the main server's policy. */
        if (sconf->rate_failure == CR_RATE_FAIL_CLOSED) {
            return cr_request_send_error(r, ctx, CR_ERR_RATE_STORE_UNAVAILABLE, NULL);
        }
        return OK;
    }
    cr_request_set_rate_headers(r, ctx, &res);
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
        return cr_request_send_error(r, ctx, CR_ERR_RATE_LIMITED,
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
    cr_models_path_e models;
    const char *model_id;
    int rc;

    ctx = cr_ctx_get(r);
    if (dconf->enabled != 1 || r->main || r->prev || !ctx) {
        return DECLINED;
    }

    cr_request_identify(r, ctx);
    /* What the gateway sets once per request in these tables is added
     * (not set) when they are still empty: it cannot be there yet. */
    ctx->err_headers_ours = apr_table_elts(r->err_headers_out)->nelts == 0;
    ctx->env_ours = apr_table_elts(r->subprocess_env)->nelts == 0;
    cr_request_table_put(r->err_headers_out, ctx->err_headers_ours,
                         "Request-Id", ctx->request_id);
    cr_request_table_put(r->subprocess_env, ctx->env_ours,
                         CR_ENV_REQUEST_ID, ctx->request_id);

    if ((rc = check_transfer_encoding(r, ctx)) != OK
        || (rc = check_websocket(r, ctx)) != OK) {
        return rc;
    }
    /* GET /models and /models/{id}: a valid key, then the gateway's own
     * answer (mod_clawdrouter_models.c), never counted. */
    models = cr_models_request(r, dconf, ctx, &model_id);
    if ((rc = check_key(r, ctx, sconf)) != OK) {
        return rc;
    }
    if (models != CR_MODELS_PATH_NONE) {
        return cr_models_answer(r, ctx, sconf, models, model_id);
    }
    /* count_tokens is checked like /messages but never counted. */
    ctx->not_counted = is_count_tokens(r->uri);
    if ((rc = cr_body_check_request(r, ctx, cr_config_max_body(dconf, sconf), &body))
        != OK) {
        return rc;
    }
    if (!cr_key_model_allowed(ctx->key, ctx->model)) {
        return cr_request_send_error(r, ctx, CR_ERR_MODEL_NOT_PERMITTED,
                          apr_psprintf(r->pool, "API key %s may not use "
                                       "model '%s'.", ctx->key->id,
                                       ctx->model));
    }
    route = cr_route_find(sconf->routes, ctx->model, ctx->protocol);
    if (!route || !route->upstream) {
        return cr_request_send_error(r, ctx, CR_ERR_MODEL_NOT_FOUND,
                          apr_psprintf(r->pool, "The model '%s' is not "
                                       "served here.", ctx->model));
    }
    ctx->route = route;
    ctx->upstream = route->upstream;
    cr_request_table_put(r->subprocess_env, ctx->env_ours, CR_ENV_UPSTREAM,
                         ctx->upstream->name);
    if (!ctx->not_counted) {
        /* Where the rate and the token tables keep the key. */
        ctx->key_fnv = ctx->key->id_fnv ? ctx->key->id_fnv
                                         : cr_rate_id_fnv(ctx->key->id);
    }
    if (!ctx->not_counted
        && ((rc = check_rate(r, ctx, sconf)) != OK
            || (rc = cr_tokens_check_request(r, ctx, sconf)) != OK)) {
        return rc;
    }

    /* A streamed chat that does not ask for usage is made to. */
    if (cr_usage_prepare_request(r, ctx, body) != APR_SUCCESS) {
        return cr_request_send_error(r, ctx, CR_ERR_INTERNAL, NULL);
    }

    /* Step 7: hand over to mod_proxy, as mod_rewrite's [P] does. */
    ap_add_input_filter_handle(body_replay_filter_handle, body, r,
                               r->connection);
    /* Replacing what the client sent, if it sent it. */
    cr_request_table_put(r->headers_in, !ctx->client_request_id,
                         "Request-Id", ctx->request_id);
    cr_request_table_put(r->headers_in, !ctx->client_x_request_id,
                         "X-Request-Id", ctx->request_id);
    r->filename = proxy_filename(r, dconf, route);
    r->handler = "proxy-server";
    r->proxyreq = PROXYREQ_REVERSE;
    ctx->forwarded = 1;
    ctx->forwarded_at = apr_time_now();
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0105)
                  "key %s model %s -> upstream %s", ctx->key->id,
                  ctx->model, ctx->upstream->name);
    return OK;
}

/* 0x80 in each byte of x that is zero, 0 in the others (exact: no carry
 * from one byte into the next). */
static APR_INLINE apr_uint64_t zero_bytes(apr_uint64_t x)
{
    const apr_uint64_t low7 = APR_UINT64_C(0x7f7f7f7f7f7f7f7f);

    return ~(((x & low7) + low7) | x | low7);
}

/* Eight bytes of a path hold a '%', or a '/' followed by '.' or '/'. */
static APR_INLINE int word_not_plain(const char *c)
{
    const apr_uint64_t ones = APR_UINT64_C(0x0101010101010101);
    apr_uint64_t w, slash, dot_or_slash;

    memcpy(&w, c, sizeof(w));
    slash = zero_bytes(w ^ (ones * '/'));
    dot_or_slash = slash | zero_bytes(w ^ (ones * '.'));
#if APR_IS_BIGENDIAN
    dot_or_slash <<= 8;             /* the next byte is the lower one */
#else
    dot_or_slash >>= 8;             /* the next byte is the higher one */
#endif
    return zero_bytes(w ^ (ones * '%')) != 0 || (slash & dot_or_slash) != 0;
}

/* The usual path: no escape, no dot segment, no doubled slash.  Eight
 * bytes at a time, windows overlapping by one byte so that no pair of
 * neighbours is missed (the last window ends at the path's end; a short
 * path is padded with NULs, which match nothing). */
static int uri_is_plain(const char *uri)
{
    apr_size_t len = strlen(uri), i;
    char pad[8];

    if (len < sizeof(pad)) {
        memset(pad, 0, sizeof(pad));
        memcpy(pad, uri, len + 1);
        return !word_not_plain(pad);
    }
    for (i = 0; i + 8 < len; i += 7) {
        if (word_not_plain(uri + i)) {
            return 0;
        }
    }
    return !word_not_plain(uri + len - 8);
}

/* r->uri as httpd's location walk will see it (ap_process_request_internal
 * in 2.4.5x): unreserved %XX decoded, dot segments removed and slashes
 * merged by ap_normalize_path, then the rest decoded by ap_unescape_url_ex
 * under the server's AllowEncodedSlashes.  NULL when httpd will refuse the
 * path (400 or 404) before any location walk. */
static const char *uri_as_walked(request_rec *r)
{
    core_server_config *csconf = ap_get_core_module_config(
        r->server->module_config);
    core_dir_config *cdconf = ap_get_core_module_config(
        r->server->lookup_defaults);
    unsigned int nflags = AP_NORMALIZE_NOT_ABOVE_ROOT;
    unsigned int uflags = AP_UNESCAPE_URL_KEEP_UNRESERVED;
    char *uri;

    /* The usual path: each step below leaves it as it is, so it needs no
     * copy. */
    if (uri_is_plain(r->uri)) {
        return r->uri;
    }
    uri = apr_pstrdup(r->pool, r->uri);

    if (csconf->merge_slashes != AP_CORE_CONFIG_OFF) {
        nflags |= AP_NORMALIZE_MERGE_SLASHES;
    }
    if (!ap_normalize_path(uri, nflags | AP_NORMALIZE_DECODE_UNRESERVED)) {
        return NULL;
    }
    if (!cdconf->allow_encoded_slashes) {
        uflags |= AP_UNESCAPE_URL_FORBID_SLASHES;
    }
    else if (!cdconf->decode_encoded_slashes) {
        uflags |= AP_UNESCAPE_URL_KEEP_SLASHES;
    }
    if (ap_unescape_url_ex(uri, uflags) != OK) {
        return NULL;
    }
    if (cdconf->allow_encoded_slashes && cdconf->decode_encoded_slashes) {
        ap_normalize_path(uri, nflags);
    }
    /* The location walk merges slashes whatever MergeSlashes says. */
    ap_no2slash(uri);
    return uri;
}

/* Does r->uri fall under a <Location> where the gateway is On?  Used
 * before httpd's location walk, when the per-directory configuration
 * cannot say yet.  *refused (if given) is set when httpd will refuse the
 * path itself. */
static int uri_in_gateway_location(request_rec *r, int *refused)
{
    cr_server_conf *sconf = ap_get_module_config(r->server->module_config,
                                                 &clawdrouter_module);
    const char *uri;
    int i;

    if (refused) {
        *refused = 0;
    }
    if (!r->uri || *r->uri != '/' || sconf->locations->nelts == 0) {
        return 0;
    }
    uri = uri_as_walked(r);
    if (!uri) {
        if (refused) {
            *refused = 1;
        }
        return 0;
    }
    for (i = 0; i < sconf->locations->nelts; i++) {
        const char *loc = APR_ARRAY_IDX(sconf->locations, i, const char *);
        apr_size_t n = cr_config_location_prefix_len(loc);
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
           && uri_in_gateway_location(r, NULL);
}

/* Move the client's credential headers from headers_in into the request's
 * context. */
static void take_credentials(request_rec *r)
{
    cr_request_ctx *ctx = cr_ctx_get_or_make(r);

    ctx->authorization = apr_table_get(r->headers_in, "Authorization");
    ctx->x_api_key = apr_table_get(r->headers_in, "x-api-key");
    /* A header apr_table_get did not find is not there to take out. */
    if (ctx->authorization) {
        apr_table_unset(r->headers_in, "Authorization");
    }
    if (ctx->x_api_key) {
        apr_table_unset(r->headers_in, "x-api-key");
    }
}

/* The client's key must not reach even httpd's own trace4 dump of the
 * request headers, which comes before any per-directory hook: take the
 * credential headers out now for the gateway's URLs. */
static int clawdrouter_post_read_request(request_rec *r)
{
    int refused;

    /* A path httpd will refuse (an encoded slash, a bad escape, "/..")
     * keeps no credential either: it is answered before any walk. */
    if (r->main || r->prev
        || (!uri_in_gateway_location(r, &refused) && !refused)) {
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
    {
        apr_size_t len = r->uri ? strlen(r->uri) : 0;
        char *name = apr_palloc(r->pool, sizeof(CR_FILENAME_PREFIX) + len);

        memcpy(name, CR_FILENAME_PREFIX, sizeof(CR_FILENAME_PREFIX) - 1);
        memcpy(name + sizeof(CR_FILENAME_PREFIX) - 1, r->uri ? r->uri : "",
               len + 1);
        r->filename = name;
    }
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
    cr_request_ctx *ctx = cr_ctx_get(r);

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
    cr_request_ctx *ctx = cr_ctx_get(r);

    if (!ctx || !ctx->forwarded) {
        return OK;
    }
    /* No credential header but the upstream's (apr_table_setn replaces
     * every header of its name). */
    if (!ctx->upstream->credential) {
        apr_table_unset(r->headers_in, "Authorization");
        apr_table_unset(r->headers_in, "x-api-key");
    }
    else if (ctx->upstream->protocol == CR_PROTO_ANTHROPIC) {
        apr_table_unset(r->headers_in, "Authorization");
        apr_table_setn(r->headers_in, "x-api-key", ctx->upstream->credential);
    }
    else {
        apr_table_unset(r->headers_in, "x-api-key");
        /* "Bearer " and the credential, made at start-up. */
        apr_table_setn(r->headers_in, "Authorization", ctx->route->bearer);
    }
    /* An uncompressed response, so that its usage can be read (mod_deflate
     * may still compress it for the client). */
    apr_table_unset(r->headers_in, "Accept-Encoding");
    return OK;
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
    apr_table_unset(r->err_headers_out, "x-should-retry");
    apr_table_setn(r->headers_out, "x-should-retry",
                   cr_error_should_retry(kind) ? "true" : "false");
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
    cr_request_ctx *ctx = cr_ctx_get(r);

    if (ctx && ctx->forwarded) {
        /* The usage filter also puts the gateway's headers in place of
         * the upstream's (cr_request_response_start). */
        cr_usage_insert_filter(r, ctx);
    }
}

static void clawdrouter_insert_error_filter(request_rec *r)
{
    cr_request_ctx *ctx = cr_ctx_get(r);

    if (!(ctx && ctx->forwarded) && (r->main || !is_gateway_request(r))) {
        return;
    }
    ctx = cr_ctx_get_or_make(r);
    if (!ctx->request_id) {
        cr_request_identify(r, ctx);
    }
    ap_add_output_filter(CR_FILTER_ERROR, ctx, r, r->connection);
}

/* Last line of defence for the logs: before mod_log_config formats the
 * line, no credential header that carries a ClawdRouter-shaped key is
 * left, on the gateway's URLs or any other (a client with a wrong base
 * URL still sends its key). */
static int clawdrouter_log_transaction(request_rec *r)
{
    cr_request_ctx *ctx = cr_ctx_get(r);

    if (ctx) {
        /* A gateway request keeps none (apr_table_unset of an absent
         * header does nothing). */
        apr_table_unset(r->headers_in, "Authorization");
        apr_table_unset(r->headers_in, "x-api-key");
    }
    else {
        const char *auth = apr_table_get(r->headers_in, "Authorization");
        const char *xkey = apr_table_get(r->headers_in, "x-api-key");

        if (auth && strstr(auth, CR_KEY_PREFIX)) {
            apr_table_unset(r->headers_in, "Authorization");
        }
        if (xkey && strstr(xkey, CR_KEY_PREFIX)) {
            apr_table_unset(r->headers_in, "x-api-key");
        }
    }
    if (ctx) {
        /* The token counts, if the response's end did not settle them. */
        cr_usage_finish(r, ctx);
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
            cr_route_prepare(pconf, route);
        }
    }
    if (cr_tokenstore_post_config(pconf, ptemp, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return cr_ratestore_post_config(pconf, plog, ptemp, s);
}

/* One key store (with its record cache) per key store spec in each
 * child, shared by the virtual hosts that use that store. */
static void key_store_child_init(apr_pool_t *p, server_rec *main_server)
{
    cr_server_conf *main_conf = ap_get_module_config(
        main_server->module_config, &clawdrouter_module);
    int entries = main_conf->key_cache_entries >= 0
                  ? main_conf->key_cache_entries
                  : CR_KEYCACHE_DEFAULT_ENTRIES;
    apr_hash_t *by_store = apr_hash_make(p);
    int threads = 1;
    server_rec *s;

    /* The record cache locks only when this child has threads. */
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS
        || threads < 1) {
        threads = 1;
    }

    for (s = main_server; s; s = s->next) {
        cr_server_conf *sconf = ap_get_module_config(s->module_config,
                                                     &clawdrouter_module);
        cr_keystore_t *ks;
        apr_status_t rv;

        if (!sconf->key_store) {
            continue;
        }
        ks = apr_hash_get(by_store, sconf->key_store, APR_HASH_KEY_STRING);
        if (!ks && strcmp(sconf->key_store, CR_KEYSTORE_DBD_SPEC) == 0) {
            /* mod_dbd's connections; no record cache */
            ks = cr_keystore_dbd_create(p);
            apr_hash_set(by_store, sconf->key_store, APR_HASH_KEY_STRING,
                         ks);
        }
        else if (!ks) {
            rv = cr_keystore_dbm_create(p, sconf->key_store, entries,
                                        CR_KEYCACHE_SETTLE, threads, &ks);
            if (rv != APR_SUCCESS) {
                /* A store without a record cache, which reads the store
                 * for every lookup. */
                ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CRLOGNO(0002)
                             "key store %s: no record cache in this "
                             "process", sconf->key_store);
            }
            apr_hash_set(by_store, sconf->key_store, APR_HASH_KEY_STRING,
                         ks);
        }
        sconf->keystore = ks;
    }
}

static void clawdrouter_child_init(apr_pool_t *p, server_rec *s)
{
    cr_ratestore_child_init(p, s);
    cr_tokenstore_child_init(p, s);
    key_store_child_init(p, s);
    cr_models_child_init(p, s);
}

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
    /* ClawdRouterKeyStore dbd needs mod_dbd and a DBDriver. */
    ap_hook_post_config(cr_keystore_dbd_post_config, NULL, NULL,
                        APR_HOOK_MIDDLE);
    /* Every ClawdRouterModel names an upstream. */
    ap_hook_post_config(cr_models_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* The console's CSRF secret, made once in the parent. */
    ap_hook_post_config(cr_console_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* The metrics' shared table, kept across graceful restarts. */
    ap_hook_post_config(cr_metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
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
    /* The Prometheus page (SetHandler clawdrouter-metrics). */
    ap_hook_handler(cr_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_log_config: no credential header left to log. */
    ap_hook_log_transaction(clawdrouter_log_transaction, NULL, NULL,
                            APR_HOOK_REALLY_FIRST);
    /* Count the finished request in the metrics (the usage is read). */
    ap_hook_log_transaction(cr_metrics_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);

    body_replay_filter_handle =
        ap_register_input_filter(CR_FILTER_BODY_REPLAY, cr_body_replay_filter,
                                 NULL, AP_FTYPE_RESOURCE);
    cr_usage_register_filter();
    ap_register_output_filter(CR_FILTER_ERROR, error_json_filter, NULL,
                              AP_FTYPE_CONTENT_SET);
}

AP_DECLARE_MODULE(clawdrouter) = {
    STANDARD20_MODULE_STUFF,
    cr_config_create_dir,               /* create per-directory config */
    cr_config_merge_dir,                /* merge per-directory config */
    cr_config_create_server,            /* create per-server config */
    cr_config_merge_server,             /* merge per-server config */
    cr_config_cmds,                     /* command table */
    register_hooks,                     /* register hooks */
    AP_MODULE_FLAG_NONE                 /* flags */
};
