/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_request.h: the per-request context that the glue files
 * share, and the gateway's own responses.
 */
#ifndef MOD_CLAWDROUTER_REQUEST_H
#define MOD_CLAWDROUTER_REQUEST_H

#include "httpd.h"

#include "cr_error.h"
#include "cr_key.h"
#include "cr_rate.h"
#include "cr_route.h"
#include "cr_usage.h"

/* Environment variables for LogFormat "%{...}e" (SPEC section 7). */
#define CR_ENV_KEY_ID         "CLAWDROUTER_KEY_ID"
#define CR_ENV_MODEL          "CLAWDROUTER_MODEL"
#define CR_ENV_UPSTREAM       "CLAWDROUTER_UPSTREAM"
#define CR_ENV_REQUEST_ID     "CLAWDROUTER_REQUEST_ID"
/* ... and the response's token usage (SPEC section 11). */
#define CR_ENV_INPUT_TOKENS   "CLAWDROUTER_INPUT_TOKENS"
#define CR_ENV_OUTPUT_TOKENS  "CLAWDROUTER_OUTPUT_TOKENS"
#define CR_ENV_TOTAL_TOKENS   "CLAWDROUTER_TOTAL_TOKENS"

typedef struct cr_usage_filter_t cr_usage_filter_t;

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
    const cr_route_t *route;          /* the model's route, ... */
    const cr_upstream_t *upstream;    /* ... and its upstream */
    int forwarded;                    /* handed to mod_proxy */
    int rate_headers;                 /* rate-limit headers were set */
    /* Token usage of the response (mod_clawdrouter_usage.c): set when it
     * has been read, before log_transaction; input includes Anthropic's
     * cache tokens. */
    int usage_seen;
    apr_int64_t input_tokens;
    apr_int64_t output_tokens;
    int stream;                       /* the body's "stream" is true */
    cr_usage_request_t usage_request; /* where the body asks for usage */
    int usage_strip;                  /* take the usage-only chunk out */
    int usage_done;                   /* the counts are settled */
    cr_usage_filter_t *usage_filter;
    /* Token limits in force for the request (mod_clawdrouter_tokens.c). */
    apr_int64_t tpm;                  /* 0 = none */
    cr_quota_period_e quota_period;
    int tokens_counted;               /* charge the response's usage */
    int token_headers;                /* token rate-limit headers were set */
    int body_read;                    /* the body was read to its end */
    /* For the metrics (mod_clawdrouter_metrics.c). */
    apr_time_t forwarded_at;          /* handed to mod_proxy */
    apr_time_t first_byte_at;         /* the response's first brigade */
    int not_counted;                  /* count_tokens, /models: no rpm/tpm */
    int refused;                      /* answered by cr_request_send_error */
    cr_error_e refusal;               /* ... with this error */
    const char *store_error;          /* "key" or "rate": a store failed */
    /* The client sent Request-Id, X-Request-Id (cr_request_identify). */
    int client_request_id;
    int client_x_request_id;
    /* err_headers_out (subprocess_env) held nothing when the fixup began:
     * what the gateway sets once per request there is not there yet. */
    int err_headers_ours;
    int env_ours;
    apr_uint64_t key_fnv;             /* cr_rate_id_fnv(key->id) */
} cr_request_ctx;

/* The request's context, or NULL when it is not a gateway request. */
cr_request_ctx *cr_ctx_get(request_rec *r);
cr_request_ctx *cr_ctx_get_or_make(request_rec *r);

/* The request's protocol (by path) and its Request-Id (SPEC section 6). */
void cr_request_identify(request_rec *r, cr_request_ctx *ctx);

/* Rate-limit headers of SPEC section 5, in the protocol's style. */
void cr_request_set_rate_headers(request_rec *r, cr_request_ctx *ctx,
                                 const cr_rate_result_t *res);

/* The limit, remaining and reset headers of the request limit (tokens 0,
 * SPEC section 5) or the token limit (tokens 1, SPEC section 11), in the
 * protocol's style. */
void cr_request_set_limit_headers(request_rec *r, cr_request_ctx *ctx,
                                  int tokens, apr_int64_t limit,
                                  apr_int64_t remaining,
                                  apr_interval_time_t reset);

/* apr_table_addn when the caller knows that the name is absent from t
 * (apr_table_setn would compare it with every name of the same first
 * letters), else apr_table_setn. */
static APR_INLINE void cr_request_table_put(apr_table_t *t, int absent,
                                            const char *name,
                                            const char *value)
{
    if (absent) {
        apr_table_addn(t, name, value);
    }
    else {
        apr_table_setn(t, name, value);
    }
}

/* On the first brigade of a forwarded response, before its headers go
 * out (the usage filter calls it): the upstream's latency, and the
 * upstream's Request-Id and rate-limit headers taken out, since the
 * gateway's (in err_headers_out) replace them.  Returns the response's
 * Content-Encoding (as apr_table_get would), found in the same pass. */
const char *cr_request_response_start(request_rec *r, cr_request_ctx *ctx);

/* Answer a request with one of the gateway's own errors (SPEC section 5)
 * and end its processing: the caller returns what this returns (DONE). */
int cr_request_send_error(request_rec *r, cr_request_ctx *ctx,
                          cr_error_e kind, const char *message);

#endif /* MOD_CLAWDROUTER_REQUEST_H */
