/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_console.c: the key management console's handler (SPEC section 9).
 *
 * httpd glue only: who may see the console is decided by httpd's own
 * authentication and authorization (Require ...) before this handler runs;
 * this file reads the request, checks that a post comes from the console
 * itself, calls the key store, and sends the pages that cr_console_page.c
 * renders.
 *
 *   GET  [?lang=zh|en] [?done=revoked]    the key list
 *   GET  ?asset=app.css|app.js            the page's stylesheet and script
 *   POST action=create name models rpm expires tpm quota quota_period csrf
 *                                          the created-key view (shown once)
 *   POST action=revoke id [confirm=1] csrf
 *                                          a confirmation page, or revoke
 *                                          and 303 back to the list
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_script.h"
#include "util_cookies.h"

#include "apr_strings.h"
#include "apr_lib.h"

#include "mod_clawdrouter.h"
#include "cr_console.h"
#include "cr_console_page.h"
#include "cr_keystore.h"
#include "cr_time.h"
#include "cr_tokenstore.h"

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(clawdrouter);
#endif

#define CONSOLE_CSP "default-src 'none'; style-src 'self'; " \
    "script-src 'self'; img-src 'self' data:; form-action 'self'; " \
    "frame-ancestors 'none'; base-uri 'none'"
#define LANG_COOKIE "clawdrouter_console_lang"
#define MAX_FORM_FIELDS 16
#define MAX_FORM_BYTES (64 * 1024)
#define MAX_NAME_BYTES 128

/* Made in the parent by post_config, inherited by every child. */
static unsigned char console_secret[CR_CONSOLE_SECRET_LEN];
static int console_secret_ready = 0;

int cr_console_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    apr_status_t rv;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    rv = apr_generate_random_bytes(console_secret, sizeof(console_secret));
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, CRLOGNO(0309)
                     "console: cannot make the CSRF secret");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    console_secret_ready = 1;
    return OK;
}

/* On every response of the handler, errors included. */
static void set_security_headers(request_rec *r)
{
    apr_table_t *h = r->err_headers_out;

    apr_table_setn(h, "Content-Security-Policy", CONSOLE_CSP);
    apr_table_setn(h, "X-Content-Type-Options", "nosniff");
    apr_table_setn(h, "Cache-Control", "no-store");
    apr_table_setn(h, "Referrer-Policy", "same-origin");
    apr_table_setn(h, "X-Frame-Options", "DENY");
}

static int send_text(request_rec *r, int status, const char *type,
                     const char *body)
{
    r->status = status;
    ap_set_content_type(r, type);
    ap_rputs(body, r);
    return OK;
}

static int send_html(request_rec *r, int status, const char *html)
{
    return send_text(r, status, "text/html; charset=utf-8", html);
}

static int send_message(request_rec *r, const cr_console_ctx_t *ctx,
                        int status, cr_console_msg_e title,
                        cr_console_msg_e text)
{
    return send_html(r, status,
                     cr_console_render_message(r->pool, ctx, title, text));
}

/* Every record, oldest first; a store that does not exist yet is empty. */
static apr_status_t load_records(request_rec *r, cr_keystore_t *ks,
                                 apr_array_header_t **records)
{
    const char *err = NULL;
    apr_status_t rv;

    rv = cr_keystore_list(ks, r, r->pool, records, &err);
    if (APR_STATUS_IS_ENOENT(rv)) {
        *records = apr_array_make(r->pool, 0, sizeof(cr_key_record_t *));
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0303)
                      "console: cannot list the key store %s: %s",
                      ks->name, err ? err : "unknown error");
    }
    return rv;
}

/* The tokens each key used in its current period, from the token store
 * (the same counts the gateway's quotas are checked against). */
static const apr_int64_t *used_tokens(request_rec *r,
                                      const cr_console_ctx_t *ctx,
                                      const apr_array_header_t *records)
{
    apr_int64_t *used;
    int i;

    if (records->nelts == 0) {
        return NULL;
    }
    used = apr_palloc(r->pool, sizeof(*used) * (apr_size_t)records->nelts);
    for (i = 0; i < records->nelts; i++) {
        const cr_key_record_t *rec = APR_ARRAY_IDX(records, i,
                                                   const cr_key_record_t *);
        used[i] = cr_tokenstore_used(rec->id, cr_console_key_period(rec),
                                     ctx->now);
    }
    return used;
}

static int send_list(request_rec *r, const cr_console_ctx_t *ctx,
                     cr_keystore_t *ks, int status, int notice, int error,
                     const cr_console_form_t *form)
{
    apr_array_header_t *records;

    if (load_records(r, ks, &records) != APR_SUCCESS) {
        return send_message(r, ctx, HTTP_INTERNAL_SERVER_ERROR,
                            CR_MSG_ERROR_TITLE, CR_MSG_ERR_STORE);
    }
    return send_html(r, status,
                     cr_console_render_list(r->pool, ctx, records,
                                            used_tokens(r, ctx, records),
                                            notice, error, form));
}

/* Is this post from a page of this console's origin?  Browsers say where a
 * request comes from in Sec-Fetch-Site and Origin (Referer for older
 * ones); a client without any of them is not a browser, and the token
 * alone decides. */
static int from_same_origin(request_rec *r)
{
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *referer = apr_table_get(r->headers_in, "Referer");

    if (site && strcasecmp(site, "same-origin") != 0
        && strcasecmp(site, "none") != 0) {
        return 0;
    }
    if (origin) {
        return cr_console_same_origin(origin, host);
    }
    if (referer) {
        return cr_console_same_origin(referer, host);
    }
    return 1;
}

/* The form's fields, each value NUL terminated (last one wins). */
static apr_status_t read_form(request_rec *r, apr_table_t **form)
{
    apr_array_header_t *pairs = NULL;
    int i;
    int rc = ap_parse_form_data(r, NULL, &pairs, MAX_FORM_FIELDS,
                                MAX_FORM_BYTES);

    if (rc != OK) {
        return APR_EINVAL;
    }
    *form = apr_table_make(r->pool, 8);
    for (i = 0; pairs && i < pairs->nelts; i++) {
        ap_form_pair_t *pair = &APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
        apr_off_t len = 0;
        apr_size_t size;
        char *value;

        if (apr_brigade_length(pair->value, 1, &len) != APR_SUCCESS
            || len < 0 || len > MAX_FORM_BYTES) {
            return APR_EINVAL;
        }
        size = (apr_size_t)len;
        value = apr_palloc(r->pool, size + 1);
        if (apr_brigade_flatten(pair->value, value, &size) != APR_SUCCESS) {
            return APR_EINVAL;
        }
        value[size] = '\0';
        apr_table_setn(*form, pair->name, value);
    }
    return APR_SUCCESS;
}

static const char *trimmed(apr_pool_t *p, const char *s)
{
    const char *end;

    if (s == NULL) {
        return "";
    }
    while (apr_isspace(*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && apr_isspace(end[-1])) {
        end--;
    }
    return apr_pstrmemdup(p, s, end - s);
}

/* "gpt-*, claude-*" -> "gpt-*,claude-*": model names have no spaces. */
static const char *without_spaces(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrdup(p, s), *o = out;

    for (; *s; s++) {
        if (!apr_isspace(*s)) {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static int name_acceptable(const char *name)
{
    const unsigned char *c;

    if (strlen(name) > MAX_NAME_BYTES) {
        return 0;
    }
    for (c = (const unsigned char *)name; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int handle_create(request_rec *r, const cr_console_ctx_t *ctx,
                         cr_keystore_t *ks, apr_table_t *form)
{
    cr_console_form_t values;
    cr_key_record_t tmpl, *rec = NULL;
    const char *key = NULL, *err = NULL;
    apr_status_t rv;

    values.name = trimmed(r->pool, apr_table_get(form, "name"));
    values.models = trimmed(r->pool, apr_table_get(form, "models"));
    values.rpm = trimmed(r->pool, apr_table_get(form, "rpm"));
    values.expires = trimmed(r->pool, apr_table_get(form, "expires"));
    values.tpm = trimmed(r->pool, apr_table_get(form, "tpm"));
    values.quota = trimmed(r->pool, apr_table_get(form, "quota"));
    values.quota_period = trimmed(r->pool,
                                  apr_table_get(form, "quota_period"));
    values.invalid = NULL;

    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.name = values.name;
    if (!name_acceptable(values.name)) {
        return send_list(r, ctx, ks, HTTP_BAD_REQUEST, CR_CONSOLE_NO_MSG,
                         CR_MSG_ERR_NAME, &values);
    }
    tmpl.models = cr_key_parse_models(r->pool,
                                      without_spaces(r->pool, values.models));
    if (tmpl.models == NULL) {
        return send_list(r, ctx, ks, HTTP_BAD_REQUEST, CR_CONSOLE_NO_MSG,
                         CR_MSG_ERR_MODELS, &values);
    }
    tmpl.rpm = CR_KEY_RPM_UNSET;
    if (*values.rpm) {
        const char *c;
        for (c = values.rpm; apr_isdigit(*c); c++) {
        }
        if (*c || strlen(values.rpm) > 9) {
            values.invalid = "rpm";
            return send_list(r, ctx, ks, HTTP_BAD_REQUEST,
                             CR_CONSOLE_NO_MSG, CR_MSG_ERR_RPM, &values);
        }
        tmpl.rpm = apr_atoi64(values.rpm);
    }
    if (!cr_console_parse_limit(values.tpm, &tmpl.tpm)) {
        values.invalid = "tpm";
        return send_list(r, ctx, ks, HTTP_BAD_REQUEST, CR_CONSOLE_NO_MSG,
                         CR_MSG_ERR_TPM, &values);
    }
    if (!cr_console_parse_limit(values.quota, &tmpl.quota)) {
        values.invalid = "quota";
        return send_list(r, ctx, ks, HTTP_BAD_REQUEST, CR_CONSOLE_NO_MSG,
                         CR_MSG_ERR_QUOTA, &values);
    }
    if (!cr_console_parse_period(values.quota_period, &tmpl.quota_period)) {
        values.invalid = "quota_period";
        return send_list(r, ctx, ks, HTTP_BAD_REQUEST, CR_CONSOLE_NO_MSG,
                         CR_MSG_ERR_QUOTA_PERIOD, &values);
    }
    /* The form always sends a period: it means something with a quota
     * only, and a key without one keeps the server's default. */
    if (tmpl.quota == CR_KEY_LIMIT_UNSET) {
        tmpl.quota_period = CR_QUOTA_UNSET;
    }
    tmpl.expires_at = 0;
    if (*values.expires
        && (cr_time_parse_expires(values.expires, ctx->now,
                                  &tmpl.expires_at) != APR_SUCCESS
            || tmpl.expires_at <= ctx->now)) {
        return send_list(r, ctx, ks, HTTP_BAD_REQUEST, CR_CONSOLE_NO_MSG,
                         CR_MSG_ERR_EXPIRES, &values);
    }
    tmpl.status = CR_KEY_ACTIVE;

    rv = cr_keystore_create(ks, r, r->pool, &tmpl, &key, &rec, &err);
    if (rv != APR_SUCCESS || key == NULL || rec == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0305)
                      "console: cannot create a key in %s: %s", ks->name,
                      err ? err : "unknown error");
        return send_list(r, ctx, ks, HTTP_INTERNAL_SERVER_ERROR,
                         CR_CONSOLE_NO_MSG, CR_MSG_ERR_CREATE, &values);
    }
    /* The id only: the key itself goes to this response and nowhere else. */
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, CRLOGNO(0306)
                  "console: user %s created key %s",
                  r->user ? r->user : "-", rec->id);
    return send_html(r, HTTP_OK,
                     cr_console_render_created(r->pool, ctx, rec, key));
}

static int id_acceptable(const char *id)
{
    const char *c;

    if (id == NULL || *id == '\0' || strlen(id) > 64) {
        return 0;
    }
    for (c = id; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_' && *c != '-') {
            return 0;
        }
    }
    return 1;
}

static int handle_revoke(request_rec *r, const cr_console_ctx_t *ctx,
                         cr_keystore_t *ks, apr_table_t *form)
{
    const char *id = apr_table_get(form, "id");
    const char *confirm = apr_table_get(form, "confirm");
    cr_key_record_t *rec = NULL;
    const char *err = NULL;
    apr_status_t rv;

    if (!id_acceptable(id)) {
        return send_message(r, ctx, HTTP_BAD_REQUEST, CR_MSG_ERROR_TITLE,
                            CR_MSG_ERR_BAD_REQUEST);
    }
    if (confirm == NULL || strcmp(confirm, "1") != 0) {
        /* No JavaScript asked: ask with a page. */
        rv = cr_keystore_get(ks, r, r->pool, id, &rec, &err);
        if (rv == APR_NOTFOUND || APR_STATUS_IS_ENOENT(rv)) {
            return send_message(r, ctx, HTTP_NOT_FOUND, CR_MSG_ERROR_TITLE,
                                CR_MSG_ERR_NOT_FOUND);
        }
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0307)
                          "console: cannot read key %s from %s: %s", id,
                          ks->name, err ? err : "unknown error");
            return send_message(r, ctx, HTTP_INTERNAL_SERVER_ERROR,
                                CR_MSG_ERROR_TITLE, CR_MSG_ERR_STORE);
        }
        return send_html(r, HTTP_OK,
                         cr_console_render_confirm_revoke(r->pool, ctx, rec));
    }

    rv = cr_keystore_revoke(ks, r, r->pool, id, &rec, &err);
    if (rv == APR_NOTFOUND) {
        return send_message(r, ctx, HTTP_NOT_FOUND, CR_MSG_ERROR_TITLE,
                            CR_MSG_ERR_NOT_FOUND);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0308)
                      "console: cannot revoke key %s in %s: %s", id, ks->name,
                      err ? err : "unknown error");
        return send_message(r, ctx, HTTP_INTERNAL_SERVER_ERROR,
                            CR_MSG_ERROR_TITLE, CR_MSG_ERR_REVOKE);
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, CRLOGNO(0310)
                  "console: user %s revoked key %s",
                  r->user ? r->user : "-", id);
    /* Post/redirect/get: reloading the list does not post again. */
    apr_table_setn(r->headers_out, "Location",
                   ap_construct_url(r->pool,
                                    apr_pstrcat(r->pool, ctx->self,
                                                "?done=revoked", NULL), r));
    return send_html(r, HTTP_SEE_OTHER, "");
}

static int handle_post(request_rec *r, const cr_console_ctx_t *ctx,
                       cr_keystore_t *ks)
{
    apr_table_t *form = NULL;
    const char *action;

    if (!from_same_origin(r)) {
        ap_discard_request_body(r);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0302)
                      "console: refused a cross-site post (Origin: %s, "
                      "Sec-Fetch-Site: %s)",
                      apr_table_get(r->headers_in, "Origin") ? "set" : "-",
                      apr_table_get(r->headers_in, "Sec-Fetch-Site")
                          ? "set" : "-");
        return send_message(r, ctx, HTTP_FORBIDDEN,
                            CR_MSG_ERR_FORBIDDEN_TITLE, CR_MSG_ERR_FORBIDDEN);
    }
    if (read_form(r, &form) != APR_SUCCESS) {
        return send_message(r, ctx, HTTP_BAD_REQUEST, CR_MSG_ERROR_TITLE,
                            CR_MSG_ERR_BAD_REQUEST);
    }
    if (!cr_console_csrf_valid(r->pool, console_secret,
                               sizeof(console_secret), r->user,
                               apr_table_get(form, "csrf"))) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0311)
                      "console: refused a post without a valid token");
        return send_message(r, ctx, HTTP_FORBIDDEN,
                            CR_MSG_ERR_FORBIDDEN_TITLE, CR_MSG_ERR_FORBIDDEN);
    }
    action = apr_table_get(form, "action");
    if (action && strcmp(action, "create") == 0) {
        return handle_create(r, ctx, ks, form);
    }
    if (action && strcmp(action, "revoke") == 0) {
        return handle_revoke(r, ctx, ks, form);
    }
    return send_message(r, ctx, HTTP_BAD_REQUEST, CR_MSG_ERROR_TITLE,
                        CR_MSG_ERR_BAD_REQUEST);
}

/* Is the request's Host one of this server's names?  A DNS rebinding
 * page (attacker.example resolving to this server) sends its own name in
 * Host and a matching Origin, so the same-origin test alone cannot see it.
 * Accepted: ServerName, ServerAlias (wildcards too) of the virtual host
 * that serves the request, and the literal address the connection came in
 * on (a browser sends an IP literal only for a page of that very origin).
 * A request without Host (HTTP/1.0) is not a browser's and is refused all
 * the same. */
static int host_is_ours(request_rec *r)
{
    const server_rec *s = r->server;
    const char *host = r->hostname, *local = r->connection->local_ip;
    apr_size_t len;
    int i;

    if (host == NULL || *host == '\0') {
        return 0;
    }
    if (s->server_hostname && strcasecmp(host, s->server_hostname) == 0) {
        return 1;
    }
    for (i = 0; s->names && i < s->names->nelts; i++) {
        if (strcasecmp(host, APR_ARRAY_IDX(s->names, i, const char *)) == 0) {
            return 1;
        }
    }
    for (i = 0; s->wild_names && i < s->wild_names->nelts; i++) {
        if (ap_strcasecmp_match(host, APR_ARRAY_IDX(s->wild_names, i,
                                                    const char *)) == 0) {
            return 1;
        }
    }
    /* The address, "[::1]" as Host for an IPv6 one. */
    len = strlen(host);
    if (local && *host == '[' && len > 2 && host[len - 1] == ']') {
        return strlen(local) == len - 2
               && strncasecmp(host + 1, local, len - 2) == 0;
    }
    return local && strcasecmp(host, local) == 0;
}

/* The cookie's Path: the console's <Location> (the innermost section with
 * a core directive, SetHandler clawdrouter-console), never the URL, whose
 * ";Domain=..." would add attributes.  When that section is not a plain
 * path prefix of the URL (a <LocationMatch>, a wildcard, a <Directory>),
 * "/".  Every byte but unreserved ones and '/' is percent-encoded. */
static const char *cookie_path(request_rec *r)
{
    const core_dir_config *cconf = ap_get_core_module_config(
        r->per_dir_config);
    const char *sec = cconf->d, *c;
    apr_size_t n;
    char *out, *o;

    if (sec == NULL || *sec != '/' || cconf->r || cconf->d_is_fnmatch) {
        return "/";
    }
    n = strlen(sec);
    while (n > 1 && sec[n - 1] == '/') {
        n--;
    }
    if (strncmp(r->uri, sec, n) != 0
        || (n > 1 && r->uri[n] != '/' && r->uri[n] != '\0')) {
        return "/";
    }
    out = o = apr_palloc(r->pool, 3 * n + 1);
    for (c = sec; c < sec + n; c++) {
        unsigned char u = (unsigned char)*c;
        if (apr_isalnum(u) || u == '/' || u == '-' || u == '.' || u == '_'
            || u == '~') {
            *o++ = (char)u;
        }
        else {
            *o++ = '%';
            *o++ = "0123456789ABCDEF"[u >> 4];
            *o++ = "0123456789ABCDEF"[u & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The switch's choice, kept for the console's path. */
static void remember_lang(request_rec *r, cr_console_lang_e lang)
{
    int https = strcmp(ap_http_scheme(r), "https") == 0;

    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   apr_psprintf(r->pool, LANG_COOKIE "=%s; Path=%s; "
                                "Max-Age=31536000; SameSite=Lax; HttpOnly%s",
                                cr_console_lang_code(lang), cookie_path(r),
                                https ? "; Secure" : ""));
}

int cr_console_handler(request_rec *r)
{
    cr_server_conf *conf;
    cr_console_ctx_t ctx;
    apr_table_t *args = NULL;
    const char *asset, *lang_param, *lang_cookie = NULL, *done;
    cr_console_lang_e chosen;

    if (r->handler == NULL || strcmp(r->handler, CR_CONSOLE_HANDLER) != 0) {
        return DECLINED;
    }
    ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, M_POST, -1);
    set_security_headers(r);
    if (r->method_number != M_GET && r->method_number != M_POST) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_args_to_table(r, &args);

    asset = apr_table_get(args, "asset");
    if (asset && r->method_number == M_GET) {
        const char *type = NULL;
        if (!host_is_ours(r)) {
            return HTTP_MISDIRECTED_REQUEST;
        }
        const char *body = cr_console_asset(asset, &type);
        if (body == NULL) {
            return HTTP_NOT_FOUND;
        }
        return send_text(r, HTTP_OK, type, body);
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.self = ap_escape_uri(r->pool, r->uri);
    ctx.user = r->user;
    ctx.now = apr_time_now();
    lang_param = apr_table_get(args, "lang");
    ap_cookie_read(r, LANG_COOKIE, &lang_cookie, 0);
    ctx.lang = cr_console_choose_lang(lang_param, lang_cookie,
                                      apr_table_get(r->headers_in,
                                                    "Accept-Language"));
    if (!host_is_ours(r)) {
        ap_discard_request_body(r);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0320)
                      "console: refused a request for host '%s', not a "
                      "name of this server (DNS rebinding?)",
                      r->hostname ? ap_escape_logitem(r->pool, r->hostname)
                                  : "-");
        return send_message(r, &ctx, HTTP_MISDIRECTED_REQUEST,
                            CR_MSG_ERR_HOST_TITLE, CR_MSG_ERR_HOST);
    }
    if (cr_console_lang_parse(lang_param, &chosen)) {
        remember_lang(r, chosen);
    }

    if (!console_secret_ready) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CRLOGNO(0301)
                      "console: no CSRF secret: cr_console_post_config "
                      "did not run");
        return send_message(r, &ctx, HTTP_INTERNAL_SERVER_ERROR,
                            CR_MSG_ERROR_TITLE, CR_MSG_ERR_STORE);
    }
    ctx.csrf = cr_console_csrf_token(r->pool, console_secret,
                                     sizeof(console_secret), r->user);
    conf = ap_get_module_config(r->server->module_config,
                                &clawdrouter_module);
    ctx.default_tpm = conf ? conf->default_tpm : 0;
    if (ctx.csrf == NULL || conf == NULL || conf->key_store == NULL
        || conf->keystore == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CRLOGNO(0300)
                      "console: no ClawdRouterKeyStore for this server");
        return send_message(r, &ctx, HTTP_INTERNAL_SERVER_ERROR,
                            CR_MSG_ERROR_TITLE, CR_MSG_ERR_STORE);
    }

    if (r->method_number == M_POST) {
        return handle_post(r, &ctx, conf->keystore);
    }
    done = apr_table_get(args, "done");
    return send_list(r, &ctx, conf->keystore, HTTP_OK,
                     done && strcmp(done, "revoked") == 0
                         ? CR_MSG_REVOKED_NOTICE : CR_CONSOLE_NO_MSG,
                     CR_CONSOLE_NO_MSG, NULL);
}
