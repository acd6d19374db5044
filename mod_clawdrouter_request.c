/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_request.c: the per-request context of a gateway request
 * and the responses the gateway makes itself (SPEC sections 5 and 6).
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"

#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_request.h"
#include "cr_error.h"
#include "cr_num.h"
#include "cr_reqid.h"
#include "cr_time.h"

/* ------------------------------------------------------------------ */
/* Context and responses                                               */
/* ------------------------------------------------------------------ */

cr_request_ctx *cr_ctx_get(request_rec *r)
{
    return ap_get_module_config(r->request_config, &clawdrouter_module);
}

cr_request_ctx *cr_ctx_get_or_make(request_rec *r)
{
    cr_request_ctx *ctx = cr_ctx_get(r);

    if (!ctx) {
        ctx = apr_pcalloc(r->pool, sizeof(*ctx));
        ap_set_module_config(r->request_config, &clawdrouter_module, ctx);
    }
    return ctx;
}

/* The request's protocol (by path) and its Request-Id (SPEC section 6). */
void cr_request_identify(request_rec *r, cr_request_ctx *ctx)
{
    const char *request_id = apr_table_get(r->headers_in, "Request-Id");
    const char *x_request_id = apr_table_get(r->headers_in, "X-Request-Id");

    ctx->protocol = cr_protocol_from_path(r->uri ? r->uri : "/");
    ctx->request_id = cr_reqid_choose(
        r->pool, request_id, x_request_id,
        apr_table_get(r->headers_in, "X-Client-Request-Id"));
    ctx->client_request_id = request_id != NULL;
    ctx->client_x_request_id = x_request_id != NULL;
}

/* Rate-limit headers of SPEC sections 5 and 11, in the protocol's style:
 * the three values written on the stack, then copied in one piece. */
void cr_request_set_limit_headers(request_rec *r, cr_request_ctx *ctx,
                                  int tokens, apr_int64_t limit,
                                  apr_int64_t remaining,
                                  apr_interval_time_t reset)
{
    static const char *const names[2][2][3] = {
        { { "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests" },
          { "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset" } },
        { { "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens" },
          { "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset" } }
    };
    int anthropic = ctx->protocol == CR_PROTO_ANTHROPIC;
    const char *const *name = names[tokens != 0][anthropic];
    /* Each of the gateway's rate-limit headers is set once per request:
     * when err_headers_out had nothing but the gateway's own headers, the
     * names are not there yet. */
    int absent = ctx->err_headers_ours;
    char text[2 * (CR_NUM_TEXT_MAX + 1) + CR_TIME_RFC3339_SIZE + CR_TIME_DURATION_SIZE];
    char *end, *value;
    apr_size_t remaining_at, reset_at, reset_len;

    end = cr_num_put_int64(text, limit);
    *end++ = '\0';
    remaining_at = (apr_size_t)(end - text);
    end = cr_num_put_int64(end, remaining);
    *end++ = '\0';
    reset_at = (apr_size_t)(end - text);
    if (anthropic) {
        reset_len = cr_time_put_rfc3339(end, apr_time_now() + reset
                                             + apr_time_from_sec(1) - 1);
    }
    else {
        reset_len = cr_time_put_duration(end, reset);
    }
    end += reset_len + 1;
    value = apr_pmemdup(r->pool, text, (apr_size_t)(end - text));
    cr_request_table_put(r->err_headers_out, absent, name[0], value);
    cr_request_table_put(r->err_headers_out, absent, name[1],
                         value + remaining_at);
    cr_request_table_put(r->err_headers_out, absent, name[2],
                         reset_len ? value + reset_at : NULL);
    if (tokens) {
        ctx->token_headers = 1;
    }
    else {
        ctx->rate_headers = 1;
    }
}

/* Rate-limit headers of SPEC section 5, in the protocol's style. */
void cr_request_set_rate_headers(request_rec *r, cr_request_ctx *ctx,
                                 const cr_rate_result_t *res)
{
    cr_request_set_limit_headers(r, ctx, 0, res->limit, res->remaining,
                                 res->reset);
}

/* The largest unread body a refusal drops by reading it; a larger one
 * (or a chunked one, of unknown size) closes the connection instead. */
#define CR_DISCARD_MAX        (1024 * 1024)

static int small_body(request_rec *r)
{
    const char *clen = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t n;

    return clen && !apr_table_get(r->headers_in, "Transfer-Encoding")
           && apr_strtoff(&n, clen, NULL, 10) == APR_SUCCESS
           && n >= 0 && n <= CR_DISCARD_MAX;
}

/* Answer a request with one of the gateway's own errors (SPEC section 5)
 * and end its processing: the caller returns what this returns. */
int cr_request_send_error(request_rec *r, cr_request_ctx *ctx,
                          cr_error_e kind, const char *message)
{
    const char *body = cr_error_body(r->pool, ctx->protocol, kind, message,
                                     ctx->request_id);
    apr_size_t len = strlen(body);
    int status = cr_error_status(kind);
    int unread;

    ctx->refused = 1;
    ctx->refusal = kind;
    if (kind == CR_ERR_KEY_STORE_UNAVAILABLE) {
        ctx->store_error = "key";
    }
    else if (kind == CR_ERR_RATE_STORE_UNAVAILABLE) {
        ctx->store_error = "rate";
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0100)
                  "refused with %d %s: %s (key %s, model %s)", status,
                  cr_error_openai_code(kind),
                  message ? message : cr_error_default_message(kind),
                  ctx->key ? ctx->key->id : "-",
                  ctx->model ? ctx->model : "-");

    apr_table_setn(r->err_headers_out, "x-request-id", ctx->request_id);
    apr_table_setn(r->err_headers_out, "x-should-retry",
                   cr_error_should_retry(kind) ? "true" : "false");
    if (status == HTTP_UNAUTHORIZED) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer");
    }
    else if (status == HTTP_METHOD_NOT_ALLOWED) {
        apr_table_setn(r->err_headers_out, "Allow", "POST");
    }
    /* A body not read yet is not read: unless Content-Length says it is
     * small enough to drop cheaply (keep-alive and pipelining then go on),
     * the connection is closed after the answer.  For a client without a
     * valid key (which must not make the gateway read 300 MB) it is closed
     * at once: the answer is flushed, and httpd closes the socket without
     * its lingering read of what the client still sends.  A client with a
     * key gets httpd's usual lingering close (at most 30 s), which lets a
     * client that keeps sending read the answer.  A body already read
     * leaves nothing to discard.  The status comes first: with an error
     * status httpd does not invite an "Expect: 100-continue" client to send
     * the body at all. */
    r->status = status;
    unread = !ctx->body_read && ap_request_has_body(r)
             && !small_body(r);
    if (unread || status == HTTP_REQUEST_ENTITY_TOO_LARGE
        || ap_discard_request_body(r) != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    /* check_key sets r->user to the key's id once the key is usable. */
    if (unread && !(ctx->key && r->user == ctx->key->id)
        && !r->connection->master) {
        /* An HTTP/2 stream is reset by mod_http2 instead. */
        ap_rflush(r);
        r->connection->aborted = 1;
    }
    return DONE;
}

/* The gateway's own response headers, which the upstream's of the same
 * name must not duplicate: Request-Id (always), then the request limit's
 * and the token limit's (when the gateway set them). */
static const char *const gateway_headers[] = {
    "Request-Id",
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests", "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset"
};
#define GATEWAY_HEADERS \
    ((int)(sizeof(gateway_headers) / sizeof(gateway_headers[0])))

/* Take the upstream's headers of gateway_headers' names out of headers_out,
 * as apr_table_unset of each name would; one pass over the (few) response
 * headers finds which are there, and the Content-Encoding the usage filter
 * needs. */
static const char *drop_upstream_headers(request_rec *r,
                                        const cr_request_ctx *ctx)
{
    const char *content_encoding = NULL;
    const apr_array_header_t *arr = apr_table_elts(r->headers_out);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int from = 1, to = 1, i, j;
    apr_uint32_t found = 0;

    if (ctx && ctx->rate_headers) {
        to = 7;
    }
    if (ctx && ctx->token_headers) {
        from = ctx->rate_headers ? 1 : 7;
        to = GATEWAY_HEADERS;
    }
    for (i = 0; i < arr->nelts; i++) {
        const char *k = e[i].key;

        if (!k) {
            continue;
        }
        if (k[0] == 'R' || k[0] == 'r') {
            if (strcasecmp(k, gateway_headers[0]) == 0) {
                found |= 1;
            }
        }
        else if (k[0] == 'C' || k[0] == 'c') {
            if (!content_encoding && strcasecmp(k, "Content-Encoding") == 0) {
                content_encoding = e[i].val;
            }
        }
        else if (from < to
                 && (((k[0] == 'X' || k[0] == 'x')
                      && strncasecmp(k, "x-ratelimit-", 12) == 0)
                     || ((k[0] == 'A' || k[0] == 'a')
                         && strncasecmp(k, "anthropic-ratelimit-", 20)
                            == 0))) {
            for (j = from; j < to; j++) {
                if (strcasecmp(k, gateway_headers[j]) == 0) {
                    found |= (apr_uint32_t)1 << j;
                    break;
                }
            }
        }
    }
    for (j = 0; found; j++, found >>= 1) {
        if (found & 1) {
            apr_table_unset(r->headers_out, gateway_headers[j]);
        }
    }
    return content_encoding;
}

/* On the upstream's response, before its headers go out: the time of its
 * first byte, and the gateway's Request-Id and rate-limit headers (in
 * err_headers_out) in place of the upstream's of the same name. */
const char *cr_request_response_start(request_rec *r, cr_request_ctx *ctx)
{
    if (!ctx->first_byte_at) {
        ctx->first_byte_at = apr_time_now();   /* the upstream's latency */
    }
    return drop_upstream_headers(r, ctx);
}
