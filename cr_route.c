/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_route.c: upstream definitions and model routing
 * (ClawdRouterUpstream, ClawdRouterRoute; SPEC section 2).
 */

#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_env.h>
#include <apr_file_io.h>
#include <apr_uri.h>

#include "cr_key.h"
#include "cr_route.h"

/* A credential file is a key or two, not a document. */
#define CREDENTIAL_FILE_MAX 16384

int cr_route_parse_protocol(const char *s)
{
    if (s == NULL) {
        return -1;
    }
    if (strcasecmp(s, "openai") == 0) {
        return CR_PROTO_OPENAI;
    }
    if (strcasecmp(s, "anthropic") == 0) {
        return CR_PROTO_ANTHROPIC;
    }
    return -1;
}

const char *cr_route_normalize_url(apr_pool_t *p, const char *url)
{
    apr_uri_t uri;
    const char *c;
    apr_size_t len;

    if (url == NULL || *url == '\0') {
        return NULL;
    }
    for (c = url; *c; c++) {
        if (apr_isspace(*c) || apr_iscntrl(*c)) {
            return NULL;
        }
    }
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || uri.scheme == NULL) {
        return NULL;
    }
    if (strcasecmp(uri.scheme, "http") != 0
        && strcasecmp(uri.scheme, "https") != 0
        && strcasecmp(uri.scheme, "balancer") != 0) {
        return NULL;
    }
    if (uri.hostname == NULL || uri.hostname[0] == '\0') {
        return NULL;
    }
    /* The request path and query are appended to this URL; a query or
     * fragment of its own cannot be combined with them.  Credentials
     * belong in the CREDENTIAL argument, not in a URL that may be logged. */
    if (uri.query != NULL || uri.fragment != NULL || uri.user != NULL
        || uri.password != NULL) {
        return NULL;
    }
    len = strlen(url);
    while (len > 0 && url[len - 1] == '/') {
        len--;
    }
    return apr_pstrmemdup(p, url, len);
}

/* cr_route_t.match: how cr_key_glob_match matches the glob. */
enum { MATCH_UNPREPARED, MATCH_EXACT, MATCH_PREFIX, MATCH_FNMATCH };

void cr_route_prepare(apr_pool_t *p, cr_route_t *route)
{
    const cr_upstream_t *up = route->upstream;

    /* As cr_key_glob_match decides it for every name. */
    apr_size_t n = route->glob ? strcspn(route->glob, "*?[\\") : 0;

    route->literal_len = n;
    if (route->glob == NULL) {
        route->match = MATCH_UNPREPARED;
    }
    else if (route->glob[n] == '\0') {
        route->match = MATCH_EXACT;
    }
    else if (route->glob[n] == '*' && route->glob[n + 1] == '\0') {
        route->match = MATCH_PREFIX;
    }
    else {
        route->match = MATCH_FNMATCH;
    }
    route->proxy_url = up ? apr_pstrcat(p, "proxy:", up->url, NULL) : NULL;
    route->proxy_url_len = up ? strlen(route->proxy_url) : 0;
    route->bearer = up && up->credential
                    ? apr_pstrcat(p, "Bearer ", up->credential, NULL) : NULL;
}

static int route_matches(const cr_route_t *route, const char *model)
{
    switch (route->match) {
    case MATCH_EXACT:
        return strcmp(route->glob, model) == 0;
    case MATCH_PREFIX:
        return strncmp(route->glob, model, route->literal_len) == 0;
    default:
        return cr_key_glob_match(route->glob, model);
    }
}

const cr_route_t *cr_route_find(const apr_array_header_t *routes,
                                const char *model, cr_protocol_e proto)
{
    int i;

    if (routes == NULL || model == NULL) {
        return NULL;
    }
    for (i = 0; i < routes->nelts; i++) {
        const cr_route_t *route = &APR_ARRAY_IDX(routes, i, cr_route_t);

        if (route->upstream == NULL || route->glob == NULL
            || route->upstream->protocol != proto) {
            continue;
        }
        if (route_matches(route, model)) {
            return route;
        }
    }
    return NULL;
}

/* Remove surrounding white space (including CR and LF) in place. */
static char *trim(char *s)
{
    char *end;

    while (apr_isspace(*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && apr_isspace(end[-1])) {
        *--end = '\0';
    }
    return s;
}

static const char *credential_from_env(apr_pool_t *p, const char *var,
                                       const char **err)
{
    char *value = NULL;

    if (*var == '\0') {
        *err = "env: needs a variable name (env:VAR)";
        return NULL;
    }
    if (apr_env_get(&value, var, p) != APR_SUCCESS || value == NULL) {
        *err = apr_psprintf(p, "environment variable %s is not set", var);
        return NULL;
    }
    if (*value == '\0') {
        *err = apr_psprintf(p, "environment variable %s is empty", var);
        return NULL;
    }
    return value;
}

static const char *credential_from_file(apr_pool_t *p, const char *path,
                                        const char **err)
{
    apr_file_t *file;
    apr_status_t rv;
    char *buf, *line, *newline;
    apr_size_t nbytes = CREDENTIAL_FILE_MAX, line_len;
    char errbuf[128];

    if (*path == '\0') {
        *err = "file: needs a path (file:PATH)";
        return NULL;
    }
    rv = apr_file_open(&file, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot open credential file %s: %s", path,
                            apr_strerror(rv, errbuf, sizeof(errbuf)));
        return NULL;
    }
    buf = apr_palloc(p, CREDENTIAL_FILE_MAX + 1);
    rv = apr_file_read_full(file, buf, CREDENTIAL_FILE_MAX, &nbytes);
    apr_file_close(file);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        *err = apr_psprintf(p, "cannot read credential file %s: %s", path,
                            apr_strerror(rv, errbuf, sizeof(errbuf)));
        return NULL;
    }
    buf[nbytes] = '\0';
    /* Only the first line counts: a trailing newline (or anything after
     * the key's line) is not part of the secret. */
    newline = memchr(buf, '\n', nbytes);
    line_len = newline ? (apr_size_t)(newline - buf) : nbytes;
    if (memchr(buf, '\0', line_len) != NULL) {
        *err = apr_psprintf(p, "credential file %s contains a NUL byte", path);
        return NULL;
    }
    buf[line_len] = '\0';
    line = trim(buf);
    if (*line == '\0') {
        *err = apr_psprintf(p, "credential file %s is empty", path);
        return NULL;
    }
    return line;
}

const char *cr_route_resolve_credential(apr_pool_t *p, const char *spec,
                                        const char **err)
{
    const char *dummy;

    if (err == NULL) {
        err = &dummy;
    }
    *err = NULL;
    if (spec == NULL || *spec == '\0') {
        *err = "the credential is empty";
        return NULL;
    }
    if (strncmp(spec, "env:", 4) == 0) {
        return credential_from_env(p, spec + 4, err);
    }
    if (strncmp(spec, "file:", 5) == 0) {
        return credential_from_file(p, spec + 5, err);
    }
    return apr_pstrdup(p, spec);
}
