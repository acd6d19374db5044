/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_models.h: GET /models and GET /models/{id} (SPEC section 10), the
 * httpd-independent part: the gateway's paths, the request sent to an
 * upstream's own GET /models and the parsing of its answer (HTTP/1.1 and
 * the list's JSON), the selection of what a key may see, and the OpenAI
 * and Anthropic list bodies.  mod_clawdrouter_models.c is the glue (the
 * fetch on APR sockets, the per-process cache).
 */
#ifndef CR_MODELS_H
#define CR_MODELS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_hash.h>

#include "cr_error.h"
#include "cr_key.h"
#include "cr_route.h"

/* Largest upstream /models response read (headers and body). */
#define CR_MODELS_MAX_RESPONSE ((apr_size_t)4 * 1024 * 1024)
/* Longest model id taken from an upstream's list or a request path. */
#define CR_MODELS_MAX_ID 256
/* The anthropic-version sent with an Anthropic upstream's /models. */
#define CR_MODELS_ANTHROPIC_VERSION "2023-06-01"

/* One model of a list. */
typedef struct {
    const char *id;
    const char *display_name;   /* NULL: the id */
    const char *owned_by;       /* the upstream's name (owned_by in lists) */
    apr_int64_t created;        /* Unix seconds, 0 if unknown */
} cr_model_t;

/* ClawdRouterModel NAME UPSTREAM-NAME. */
typedef struct {
    const char *name;
    const char *upstream_name;
} cr_model_decl_t;

/* What a path below the gateway's <Location> is (suffix: "/models",
 * "/models/", "/models/ID"). */
typedef enum {
    CR_MODELS_PATH_NONE = 0,    /* not a /models path */
    CR_MODELS_PATH_LIST,        /* /models */
    CR_MODELS_PATH_ONE          /* /models/ID, *id set */
} cr_models_path_e;

cr_models_path_e cr_models_path(apr_pool_t *p, const char *suffix,
                                const char **id);

/* Is the upstream's own /models fetched?  http:// and https:// URLs are;
 * balancer:// upstreams contribute their ClawdRouterModel names only. */
int cr_models_fetchable(const cr_upstream_t *up);
/* ... over TLS (https://)? */
int cr_models_tls(const cr_upstream_t *up);

/* The HTTP/1.1 request for an upstream's GET {url}/models (the upstream's
 * URL must be fetchable): Host, Connection: close and the upstream's own
 * credential (Authorization: Bearer for openai, x-api-key and
 * anthropic-version for anthropic, which is also asked for up to 1000
 * models at once).  NULL if the URL cannot be parsed.  *host and *port
 * tell where to connect. */
const char *cr_models_http_request(apr_pool_t *p, const cr_upstream_t *up,
                                   const char **host, int *port);

typedef enum {
    CR_HTTP_MORE = 0,       /* incomplete: read more */
    CR_HTTP_COMPLETE,       /* *status, *body, *body_len set */
    CR_HTTP_INVALID         /* not an HTTP/1.x response, or too large */
} cr_http_parse_e;

/* Parse a response read so far (buf, len; eof when the peer closed):
 * the status line, the headers, and a body framed by Content-Length,
 * "Transfer-Encoding: chunked" or the end of the connection.  Interim 1xx
 * responses are skipped.  The body is a copy from p (NUL-terminated). */
cr_http_parse_e cr_models_http_parse(apr_pool_t *p, const char *buf,
                                     apr_size_t len, int eof, int *status,
                                     const char **body, apr_size_t *body_len);

/* An upstream's /models list: {"data":[...]} (OpenAI and Anthropic) or a
 * bare array; each element an object with a string "id" (elements
 * without one, or with an id longer than CR_MODELS_MAX_ID or holding
 * control characters, are skipped), optional "display_name", "created"
 * (Unix seconds) or "created_at" (RFC 3339).  owned_by is set to
 * upstream_name.  APR_SUCCESS with *models (of cr_model_t), or APR_EINVAL
 * with *err. */
apr_status_t cr_models_parse_list(apr_pool_t *p, const char *body,
                                  apr_size_t len, const char *upstream_name,
                                  apr_array_header_t **models,
                                  const char **err);

/* Append to out (of cr_model_t) the models of upstream up, from its
 * fetched list (may be NULL) and then its declared names (of
 * cr_model_decl_t, those naming up; may be NULL), that the key's globs
 * allow and whose route on proto (routes: of cr_route_t) leads to up.
 * Names in seen are skipped and added there. */
void cr_models_select(apr_pool_t *p, apr_array_header_t *out,
                      apr_hash_t *seen, const cr_upstream_t *up,
                      const apr_array_header_t *fetched,
                      const apr_array_header_t *declared,
                      const apr_array_header_t *routes, cr_protocol_e proto,
                      const cr_key_record_t *key);

/* The response bodies.
 *   OpenAI list:  {"object":"list","data":[MODEL...]}
 *          MODEL: {"id":..,"object":"model","created":N,"owned_by":..}
 *   Anthropic:    {"data":[MODEL...],"has_more":false,"first_id":..,
 *                  "last_id":..}  (ids null for an empty list)
 *          MODEL: {"type":"model","id":..,"display_name":..,
 *                  "created_at":"RFC 3339"}
 * NULL only when out of memory. */
const char *cr_models_list_body(apr_pool_t *p, cr_protocol_e proto,
                                const apr_array_header_t *models);
const char *cr_models_model_body(apr_pool_t *p, cr_protocol_e proto,
                                 const cr_model_t *model);

/* A deep copy of a list (of cr_model_t) into p. */
apr_array_header_t *cr_models_copy(apr_pool_t *p,
                                   const apr_array_header_t *models);

#endif /* CR_MODELS_H */
