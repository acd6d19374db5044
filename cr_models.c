/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_models.c: GET /models and GET /models/{id} (SPEC section 10), the
 * httpd-independent part; see cr_models.h.
 */

#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>

#include "cr_json.h"
#include "cr_models.h"
#include "cr_time.h"

/* Longest status line and header block of an upstream's answer. */
#define HEADERS_MAX ((apr_size_t)64 * 1024)

cr_models_path_e cr_models_path(apr_pool_t *p, const char *suffix,
                                const char **id)
{
    static const char prefix[] = "/models";
    apr_size_t n = sizeof(prefix) - 1, len;

    if (id) {
        *id = NULL;
    }
    if (suffix == NULL || strncmp(suffix, prefix, n) != 0) {
        return CR_MODELS_PATH_NONE;
    }
    suffix += n;
    if (*suffix == '\0' || strcmp(suffix, "/") == 0) {
        return CR_MODELS_PATH_LIST;
    }
    if (*suffix != '/') {
        return CR_MODELS_PATH_NONE;       /* "/modelsX" */
    }
    suffix++;
    len = strlen(suffix);
    if (len > 0 && suffix[len - 1] == '/') {
        len--;                            /* "/models/ID/" */
    }
    if (len == 0) {
        return CR_MODELS_PATH_LIST;       /* "/models//" */
    }
    if (id) {
        *id = apr_pstrmemdup(p, suffix, len);
    }
    return CR_MODELS_PATH_ONE;
}

int cr_models_tls(const cr_upstream_t *up)
{
    return up != NULL && up->url != NULL
           && strncasecmp(up->url, "https://", 8) == 0;
}

int cr_models_fetchable(const cr_upstream_t *up)
{
    return up != NULL && up->url != NULL
           && (strncasecmp(up->url, "http://", 7) == 0 || cr_models_tls(up));
}

const char *cr_models_http_request(apr_pool_t *p, const cr_upstream_t *up,
                                   const char **host, int *port)
{
    apr_uri_t uri;
    const char *url, *path, *auth = "";

    if (!cr_models_fetchable(up)) {
        return NULL;
    }
    url = apr_pstrcat(p, up->url, "/models", NULL);
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || uri.hostname == NULL
        || *uri.hostname == '\0' || uri.hostinfo == NULL) {
        return NULL;
    }
    *host = uri.hostname;
    *port = uri.port ? uri.port
                     : apr_uri_port_of_scheme(cr_models_tls(up) ? "https"
                                                                : "http");
    path = uri.path ? uri.path : "/models";
    if (up->protocol == CR_PROTO_ANTHROPIC) {
        /* The list comes in pages of 20 unless asked for more. */
        path = apr_pstrcat(p, path, "?limit=1000", NULL);
        if (up->credential) {
            auth = apr_pstrcat(p, "x-api-key: ", up->credential, "\r\n",
                               NULL);
        }
        auth = apr_pstrcat(p, auth, "anthropic-version: "
                           CR_MODELS_ANTHROPIC_VERSION "\r\n", NULL);
    }
    else if (up->credential) {
        auth = apr_pstrcat(p, "Authorization: Bearer ", up->credential,
                           "\r\n", NULL);
    }
    return apr_pstrcat(p, "GET ", path, " HTTP/1.1\r\n"
                       "Host: ", uri.hostinfo, "\r\n"
                       "Accept: application/json\r\n"
                       "User-Agent: mod_clawdrouter\r\n"
                       "Connection: close\r\n",
                       auth, "\r\n", NULL);
}

/* ------------------------------------------------------------------ */
/* An HTTP/1.1 response                                                */
/* ------------------------------------------------------------------ */

/* The end of the line starting at pos (index of its '\n'), or -1. */
static apr_ssize_t line_end(const char *buf, apr_size_t len, apr_size_t pos)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);

    return nl ? (apr_ssize_t)(nl - buf) : -1;
}

/* The end of the header block that starts at pos: the index just after
 * its empty line, or 0 if not there yet. */
static apr_size_t headers_end(const char *buf, apr_size_t len,
                              apr_size_t pos)
{
    while (pos < len) {
        apr_ssize_t e = line_end(buf, len, pos);
        apr_size_t l;

        if (e < 0) {
            return 0;
        }
        l = (apr_size_t)e - pos;
        if (l == 0 || (l == 1 && buf[pos] == '\r')) {
            return (apr_size_t)e + 1;
        }
        pos = (apr_size_t)e + 1;
    }
    return 0;
}

/* Does the header line [s, s+l) name `name`?  *value is set after the
 * colon and spaces, *vlen to its length without trailing white space. */
static int header_is(const char *s, apr_size_t l, const char *name,
                     const char **value, apr_size_t *vlen)
{
    apr_size_t n = strlen(name);

    if (l <= n || s[n] != ':' || strncasecmp(s, name, n) != 0) {
        return 0;
    }
    s += n + 1;
    l -= n + 1;
    while (l > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        l--;
    }
    while (l > 0 && apr_isspace(s[l - 1])) {
        l--;
    }
    *value = s;
    *vlen = l;
    return 1;
}

/* A chunked body from pos: CR_HTTP_COMPLETE with *total the de-chunked
 * size, and the body copied into out if out is not NULL. */
static cr_http_parse_e dechunk(const char *buf, apr_size_t len,
                               apr_size_t pos, char *out, apr_size_t *total)
{
    *total = 0;
    for (;;) {
        apr_ssize_t e = line_end(buf, len, pos);
        apr_size_t size = 0, i;
        int digits = 0;

        if (e < 0) {
            return len - pos > 1024 ? CR_HTTP_INVALID : CR_HTTP_MORE;
        }
        for (i = pos; i < (apr_size_t)e && apr_isxdigit(buf[i]); i++) {
            int d = apr_isdigit(buf[i]) ? buf[i] - '0'
                                        : (apr_tolower(buf[i]) - 'a' + 10);
            size = size * 16 + (apr_size_t)d;
            if (size > CR_MODELS_MAX_RESPONSE) {
                return CR_HTTP_INVALID;
            }
            digits++;
        }
        if (digits == 0) {
            return CR_HTTP_INVALID;
        }
        pos = (apr_size_t)e + 1;
        if (size == 0) {
            return CR_HTTP_COMPLETE;   /* trailers do not matter */
        }
        if (len - pos < size + 1) {
            return CR_HTTP_MORE;
        }
        if (out) {
            memcpy(out + *total, buf + pos, size);
        }
        *total += size;
        if (*total > CR_MODELS_MAX_RESPONSE) {
            return CR_HTTP_INVALID;
        }
        pos += size;
        /* CRLF (or LF) after the chunk's data. */
        if (buf[pos] == '\r') {
            if (len - pos < 2) {
                return CR_HTTP_MORE;
            }
            pos++;
        }
        if (buf[pos] != '\n') {
            return CR_HTTP_INVALID;
        }
        pos++;
    }
}

cr_http_parse_e cr_models_http_parse(apr_pool_t *p, const char *buf,
                                     apr_size_t len, int eof, int *status,
                                     const char **body, apr_size_t *body_len)
{
    apr_size_t pos = 0;

    if (len > CR_MODELS_MAX_RESPONSE + HEADERS_MAX) {
        return CR_HTTP_INVALID;
    }
    for (;;) {
        apr_size_t hend = headers_end(buf, len, pos), at;
        apr_ssize_t e;
        int code, chunked = 0, have_length = 0;
        apr_off_t clen = 0;

        if (hend == 0) {
            if (eof || len - pos > HEADERS_MAX) {
                return CR_HTTP_INVALID;
            }
            return CR_HTTP_MORE;
        }
        /* "HTTP/1.x NNN ..." */
        if (hend - pos < 13 || strncmp(buf + pos, "HTTP/1.", 7) != 0
            || !apr_isdigit(buf[pos + 7]) || buf[pos + 8] != ' '
            || !apr_isdigit(buf[pos + 9]) || !apr_isdigit(buf[pos + 10])
            || !apr_isdigit(buf[pos + 11])
            || (buf[pos + 12] != ' ' && buf[pos + 12] != '\r'
                && buf[pos + 12] != '\n')) {
            return CR_HTTP_INVALID;
        }
        code = (buf[pos + 9] - '0') * 100 + (buf[pos + 10] - '0') * 10
               + (buf[pos + 11] - '0');
        if (code < 100) {
            return CR_HTTP_INVALID;
        }
        e = line_end(buf, len, pos);
        at = (apr_size_t)e + 1;
        while (at < hend) {
            apr_size_t l = (apr_size_t)line_end(buf, len, at) - at;
            const char *v;
            apr_size_t vl;

            if (header_is(buf + at, l, "Transfer-Encoding", &v, &vl)) {
                if (vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0) {
                    chunked = 1;
                }
            }
            else if (header_is(buf + at, l, "Content-Length", &v, &vl)) {
                char num[24];
                char *end;

                if (vl == 0 || vl >= sizeof(num)) {
                    return CR_HTTP_INVALID;
                }
                memcpy(num, v, vl);
                num[vl] = '\0';
                if (!apr_isdigit(num[0])
                    || apr_strtoff(&clen, num, &end, 10) != APR_SUCCESS
                    || *end != '\0' || clen < 0) {
                    return CR_HTTP_INVALID;
                }
                have_length = 1;
            }
            at += l + 1;
        }
        if (code < 200) {
            pos = hend;              /* an interim response */
            continue;
        }
        *status = code;
        if (code == 204 || code == 304) {
            *body = "";
            *body_len = 0;
            return CR_HTTP_COMPLETE;
        }
        if (chunked) {
            apr_size_t total;
            cr_http_parse_e rc = dechunk(buf, len, hend, NULL, &total);
            char *out;

            if (rc == CR_HTTP_MORE && eof) {
                return CR_HTTP_INVALID;
            }
            if (rc != CR_HTTP_COMPLETE) {
                return rc;
            }
            out = apr_palloc(p, total + 1);
            dechunk(buf, len, hend, out, &total);
            out[total] = '\0';
            *body = out;
            *body_len = total;
            return CR_HTTP_COMPLETE;
        }
        if (have_length) {
            if ((apr_size_t)clen > CR_MODELS_MAX_RESPONSE) {
                return CR_HTTP_INVALID;
            }
            if (len - hend < (apr_size_t)clen) {
                return eof ? CR_HTTP_INVALID : CR_HTTP_MORE;
            }
            *body = apr_pstrmemdup(p, buf + hend, (apr_size_t)clen);
            *body_len = (apr_size_t)clen;
            return CR_HTTP_COMPLETE;
        }
        if (!eof) {
            return len - hend > CR_MODELS_MAX_RESPONSE ? CR_HTTP_INVALID
                                                       : CR_HTTP_MORE;
        }
        *body = apr_pstrmemdup(p, buf + hend, len - hend);
        *body_len = len - hend;
        return CR_HTTP_COMPLETE;
    }
}

/* ------------------------------------------------------------------ */
/* The list                                                            */
/* ------------------------------------------------------------------ */

static int id_acceptable(const char *id)
{
    apr_size_t n = id ? strlen(id) : 0;
    const unsigned char *c;

    if (n == 0 || n > CR_MODELS_MAX_ID) {
        return 0;
    }
    for (c = (const unsigned char *)id; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

apr_status_t cr_models_parse_list(apr_pool_t *p, const char *body,
                                  apr_size_t len, const char *upstream_name,
                                  apr_array_header_t **models,
                                  const char **err)
{
    cr_json_t *doc, *data;
    apr_size_t i, n;
    const char *dummy;

    if (err == NULL) {
        err = &dummy;
    }
    *err = NULL;
    doc = cr_json_parse(p, body, len, 0, err);
    if (doc == NULL) {
        *err = apr_psprintf(p, "not JSON (%s)", *err ? *err : "?");
        return APR_EINVAL;
    }
    data = cr_json_type(doc) == CR_JSON_ARRAY ? doc
                                              : cr_json_get(p, doc, "data");
    if (data == NULL || cr_json_type(data) != CR_JSON_ARRAY) {
        *err = "no \"data\" array";
        return APR_EINVAL;
    }
    n = cr_json_array_size(data);
    *models = apr_array_make(p, n > 0 ? (int)n : 1, sizeof(cr_model_t));
    for (i = 0; i < n; i++) {
        cr_json_t *el = cr_json_array_get(p, data, i), *v;
        cr_model_t m;
        const char *s;

        memset(&m, 0, sizeof(m));
        m.owned_by = upstream_name;
        if (el && cr_json_type(el) == CR_JSON_STRING) {
            m.id = cr_json_string(p, el);
        }
        else if (el && cr_json_type(el) == CR_JSON_OBJECT) {
            m.id = cr_json_string(p, cr_json_get(p, el, "id"));
            m.display_name = cr_json_string(p, cr_json_get(p, el,
                                                           "display_name"));
            v = cr_json_get(p, el, "created");
            if (!v || cr_json_integer(v, &m.created) != 0 || m.created < 0) {
                apr_time_t t;

                m.created = 0;
                s = cr_json_string(p, cr_json_get(p, el, "created_at"));
                if (s && cr_time_parse_rfc3339(s, &t) == APR_SUCCESS
                    && t >= 0) {
                    m.created = (apr_int64_t)apr_time_sec(t);
                }
            }
        }
        if (!id_acceptable(m.id)) {
            continue;
        }
        if (m.display_name && !id_acceptable(m.display_name)) {
            m.display_name = NULL;
        }
        APR_ARRAY_PUSH(*models, cr_model_t) = m;
    }
    return APR_SUCCESS;
}

/* Is the name listed for this key on this upstream? */
static int visible(const char *name, const cr_upstream_t *up,
                   const apr_array_header_t *routes, cr_protocol_e proto,
                   const cr_key_record_t *key)
{
    const cr_route_t *route;

    if (!cr_key_model_allowed(key, name)) {
        return 0;
    }
    route = cr_route_find(routes, name, proto);
    return route != NULL && route->upstream == up;
}

void cr_models_select(apr_pool_t *p, apr_array_header_t *out,
                      apr_hash_t *seen, const cr_upstream_t *up,
                      const apr_array_header_t *fetched,
                      const apr_array_header_t *declared,
                      const apr_array_header_t *routes, cr_protocol_e proto,
                      const cr_key_record_t *key)
{
    int i;

    for (i = 0; fetched && i < fetched->nelts; i++) {
        cr_model_t m = APR_ARRAY_IDX(fetched, i, cr_model_t);

        if (apr_hash_get(seen, m.id, APR_HASH_KEY_STRING)
            || !visible(m.id, up, routes, proto, key)) {
            continue;
        }
        m.owned_by = up->name;
        apr_hash_set(seen, m.id, APR_HASH_KEY_STRING, m.id);
        APR_ARRAY_PUSH(out, cr_model_t) = m;
    }
    for (i = 0; declared && i < declared->nelts; i++) {
        const cr_model_decl_t *d = &APR_ARRAY_IDX(declared, i,
                                                  cr_model_decl_t);
        cr_model_t m;

        if (strcmp(d->upstream_name, up->name) != 0
            || apr_hash_get(seen, d->name, APR_HASH_KEY_STRING)
            || !visible(d->name, up, routes, proto, key)) {
            continue;
        }
        memset(&m, 0, sizeof(m));
        m.id = d->name;
        m.owned_by = up->name;
        apr_hash_set(seen, m.id, APR_HASH_KEY_STRING, m.id);
        APR_ARRAY_PUSH(out, cr_model_t) = m;
    }
    (void)p;
}

/* ------------------------------------------------------------------ */
/* The bodies                                                          */
/* ------------------------------------------------------------------ */

static cr_json_t *model_object(apr_pool_t *p, cr_protocol_e proto,
                               const cr_model_t *m)
{
    cr_json_t *o = cr_json_new_object(p);
    int rv = 0;

    if (o == NULL) {
        return NULL;
    }
    if (proto == CR_PROTO_ANTHROPIC) {
        rv |= cr_json_set_string(o, "type", "model");
        rv |= cr_json_set_string(o, "id", m->id);
        rv |= cr_json_set_string(o, "display_name",
                                 m->display_name ? m->display_name : m->id);
        rv |= cr_json_set_string(o, "created_at",
                                 cr_time_format_rfc3339(
                                     p, apr_time_from_sec(m->created)));
    }
    else {
        rv |= cr_json_set_string(o, "id", m->id);
        rv |= cr_json_set_string(o, "object", "model");
        rv |= cr_json_set_integer(o, "created", m->created);
        rv |= cr_json_set_string(o, "owned_by", m->owned_by);
    }
    return rv == 0 ? o : NULL;
}

const char *cr_models_list_body(apr_pool_t *p, cr_protocol_e proto,
                                const apr_array_header_t *models)
{
    cr_json_t *doc = cr_json_new_object(p), *data = cr_json_new_array(p);
    int i, n = models ? models->nelts : 0, rv = 0;

    if (doc == NULL || data == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        cr_json_t *o = model_object(p, proto,
                                    &APR_ARRAY_IDX(models, i, cr_model_t));
        if (o == NULL || cr_json_array_append(data, o) != 0) {
            return NULL;
        }
    }
    if (proto == CR_PROTO_ANTHROPIC) {
        rv |= cr_json_set(doc, "data", data);
        rv |= cr_json_set_bool(doc, "has_more", 0);
        rv |= cr_json_set_string(doc, "first_id", n ?
                                 APR_ARRAY_IDX(models, 0, cr_model_t).id
                                 : NULL);
        rv |= cr_json_set_string(doc, "last_id", n ?
                                 APR_ARRAY_IDX(models, n - 1, cr_model_t).id
                                 : NULL);
    }
    else {
        rv |= cr_json_set_string(doc, "object", "list");
        rv |= cr_json_set(doc, "data", data);
    }
    return rv == 0 ? cr_json_dump(p, doc, CR_JSON_COMPACT) : NULL;
}

const char *cr_models_model_body(apr_pool_t *p, cr_protocol_e proto,
                                 const cr_model_t *model)
{
    cr_json_t *o = model_object(p, proto, model);

    return o ? cr_json_dump(p, o, CR_JSON_COMPACT) : NULL;
}

apr_array_header_t *cr_models_copy(apr_pool_t *p,
                                   const apr_array_header_t *models)
{
    apr_array_header_t *out;
    int i;

    if (models == NULL) {
        return NULL;
    }
    out = apr_array_make(p, models->nelts > 0 ? models->nelts : 1,
                         sizeof(cr_model_t));
    for (i = 0; i < models->nelts; i++) {
        const cr_model_t *m = &APR_ARRAY_IDX(models, i, cr_model_t);
        cr_model_t *c = apr_array_push(out);

        c->id = apr_pstrdup(p, m->id);
        c->display_name = m->display_name ? apr_pstrdup(p, m->display_name)
                                          : NULL;
        c->owned_by = m->owned_by ? apr_pstrdup(p, m->owned_by) : NULL;
        c->created = m->created;
    }
    return out;
}
