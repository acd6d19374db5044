/* Licensed under the Apache License, Version 2.0. */

/* cr_route.h: upstreams and model routes (ClawdRouterUpstream/Route). */
#ifndef CR_ROUTE_H
#define CR_ROUTE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "cr_error.h"

typedef struct {
    const char *name;
    cr_protocol_e protocol;
    const char *url;          /* no trailing slash */
    const char *credential;   /* resolved secret, NULL = none sent */
} cr_upstream_t;

typedef struct {
    const char *glob;
    const char *upstream_name;
    const cr_upstream_t *upstream;   /* resolved at post_config */
    /* Made once the upstream is resolved (cr_route_prepare; match 0 = not
     * prepared): how the glob matches and the length of its literal part,
     * "proxy:" and the upstream's URL, "Bearer " and its credential (NULL
     * without one). */
    int match;
    apr_size_t literal_len;
    const char *proxy_url;
    apr_size_t proxy_url_len;
    const char *bearer;
} cr_route_t;

/* Compute the prepared fields of a route (strings from p) once its
 * upstream is resolved (or NULL). */
void cr_route_prepare(apr_pool_t *p, cr_route_t *route);

/* "openai" / "anthropic" (case-insensitive); -1 if neither. */
int cr_route_parse_protocol(const char *s);

/* Validate an upstream URL: http://, https:// or balancer://, with a host
 * and without a query, fragment or user:password (the request's path and
 * query are appended to it; credentials go in CREDENTIAL); returns a copy
 * without trailing slashes, or NULL. */
const char *cr_route_normalize_url(apr_pool_t *p, const char *url);

/* First route (array of cr_route_t, file order) whose glob matches model
 * and whose upstream speaks proto; NULL if none. */
const cr_route_t *cr_route_find(const apr_array_header_t *routes,
                                const char *model, cr_protocol_e proto);

/* Resolve a CREDENTIAL argument: a literal, "env:VAR" (the variable must be
 * set and non-empty) or "file:PATH" (first line, trailing CR/LF/space
 * removed, must be non-empty).  NULL and *err set on failure; *err never
 * contains the secret. */
const char *cr_route_resolve_credential(apr_pool_t *p, const char *spec,
                                        const char **err);

#endif /* CR_ROUTE_H */
