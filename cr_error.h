/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_error.h: the errors the gateway makes itself (SPEC section 5), in
 * each protocol's own JSON format, and protocol detection by path.
 */
#ifndef CR_ERROR_H
#define CR_ERROR_H

#include <apr_pools.h>

typedef enum {
    CR_PROTO_OPENAI = 0,
    CR_PROTO_ANTHROPIC = 1
} cr_protocol_e;

typedef enum {
    CR_ERR_MISSING_KEY = 0,          /* 401 */
    CR_ERR_INVALID_KEY,              /* 401 bad, revoked, expired, malformed */
    CR_ERR_MISSING_VERSION,          /* 400 anthropic-version missing */
    CR_ERR_INVALID_BODY,             /* 400 malformed body, no model */
    CR_ERR_TOO_LARGE,                /* 413 */
    CR_ERR_MODEL_NOT_PERMITTED,      /* 403 */
    CR_ERR_MODEL_NOT_FOUND,          /* 404 no route */
    CR_ERR_RATE_LIMITED,             /* 429 */
    CR_ERR_UPSTREAM_UNAVAILABLE,     /* 502 */
    CR_ERR_UPSTREAM_TIMEOUT,         /* 504 */
    CR_ERR_KEY_STORE_UNAVAILABLE,    /* 500 */
    CR_ERR_RATE_STORE_UNAVAILABLE,   /* 503 policy closed */
    CR_ERR_METHOD_NOT_ALLOWED,       /* 405 (project choice) */
    CR_ERR_UNSUPPORTED_MEDIA_TYPE,   /* 415 (project choice) */
    CR_ERR_INTERNAL,                 /* 500 anything else */
    CR_ERR_BAD_REQUEST,              /* 400 a request httpd itself refused
                                      * (bad header, header too large) */
    CR_ERR_TOKENS_LIMITED,           /* 429 token limit (tpm) */
    CR_ERR_QUOTA_EXCEEDED,           /* 429 token quota used up */
    CR_ERR_WEBSOCKET,                /* 400 WebSocket upgrade refused */
    CR_ERR__COUNT
} cr_error_e;

/* Paths ending in "/messages" or "/messages/count_tokens" are Anthropic,
 * every other path OpenAI.  A trailing slash is not special. */
cr_protocol_e cr_protocol_from_path(const char *path);

/* HTTP status for an error kind. */
int cr_error_status(cr_error_e kind);

/* SPEC section 10's retry advice, the value of x-should-retry: 1 (true)
 * for the request and token rate limits (429, not the quota) and for 502,
 * 503 and 504; 0 (false) for every other kind. */
int cr_error_should_retry(cr_error_e kind);

/* OpenAI "type"/"code" and Anthropic "error.type" for a kind. */
const char *cr_error_openai_type(cr_error_e kind);
const char *cr_error_openai_code(cr_error_e kind);
/* The reason label of clawdrouter_refusals_total (SPEC section 13):
 * missing_api_key, invalid_api_key, model_not_permitted, model_not_found,
 * rate_limit_requests, rate_limit_tokens, insufficient_quota,
 * invalid_body, ... (the OpenAI code, but for the request and token
 * limits). */
const char *cr_error_refusal_reason(cr_error_e kind);
const char *cr_error_anthropic_type(cr_error_e kind);

/* A default English message for a kind (never contains a key). */
const char *cr_error_default_message(cr_error_e kind);

/* The JSON body, allocated from p.  message NULL uses the default message;
 * request_id may be NULL (Anthropic body then has "request_id": null).
 *   OpenAI:    {"error":{"message":..,"type":..,"param":null,"code":..}}
 *   Anthropic: {"type":"error","error":{"type":..,"message":..},"request_id":..}
 */
const char *cr_error_body(apr_pool_t *p, cr_protocol_e proto, cr_error_e kind,
                          const char *message, const char *request_id);

#endif /* CR_ERROR_H */
