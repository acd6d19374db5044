/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_error.c: the errors the gateway answers itself (SPEC section 5), in
 * the OpenAI or the Anthropic format so each SDK raises its own exception
 * class, and the path rule that decides which format a request gets.
 */

#include <string.h>

#include <apr_strings.h>

#include "cr_error.h"
#include "cr_json.h"

typedef struct {
    int status;
    const char *openai_type;
    const char *openai_code;
    const char *anthropic_type;
    const char *message;
} error_row;

/* Indexed by cr_error_e; the order must follow the enum. */
static const error_row error_table[CR_ERR__COUNT] = {
    /* CR_ERR_MISSING_KEY */
    { 401, "invalid_request_error", "missing_api_key", "authentication_error",
      "Missing API key. Send it as 'Authorization: Bearer <key>' or "
      "'x-api-key: <key>'." },
    /* CR_ERR_INVALID_KEY */
    { 401, "invalid_request_error", "invalid_api_key", "authentication_error",
      "Invalid API key. The key is unknown, malformed, revoked or expired." },
    /* CR_ERR_MISSING_VERSION: OpenAI has no such case (SPEC: n/a); an
     * OpenAI-shaped body still gets a sensible type and code. */
    { 400, "invalid_request_error", "missing_anthropic_version",
      "invalid_request_error",
      "Missing 'anthropic-version' header. Send e.g. "
      "'anthropic-version: 2023-06-01'." },
    /* CR_ERR_INVALID_BODY */
    { 400, "invalid_request_error", "invalid_body", "invalid_request_error",
      "The request body must be a JSON object with a string \"model\" "
      "member." },
    /* CR_ERR_TOO_LARGE */
    { 413, "invalid_request_error", "request_too_large", "request_too_large",
      "The request body is larger than this gateway accepts." },
    /* CR_ERR_MODEL_NOT_PERMITTED */
    { 403, "permission_error", "model_not_permitted", "permission_error",
      "This API key is not permitted to use the requested model." },
    /* CR_ERR_MODEL_NOT_FOUND */
    { 404, "invalid_request_error", "model_not_found", "not_found_error",
      "No upstream serves the requested model on this API." },
    /* CR_ERR_RATE_LIMITED */
    { 429, "requests", "rate_limit_exceeded", "rate_limit_error",
      "Rate limit exceeded for this API key. Retry after the time given in "
      "the 'Retry-After' header." },
    /* CR_ERR_UPSTREAM_UNAVAILABLE */
    { 502, "server_error", "upstream_unavailable", "api_error",
      "The upstream provider could not be reached. Try again later." },
    /* CR_ERR_UPSTREAM_TIMEOUT */
    { 504, "server_error", "upstream_unavailable", "api_error",
      "The upstream provider did not answer in time. Try again later." },
    /* CR_ERR_KEY_STORE_UNAVAILABLE */
    { 500, "server_error", "key_store_unavailable", "api_error",
      "The gateway cannot check API keys at the moment. Try again later." },
    /* CR_ERR_RATE_STORE_UNAVAILABLE */
    { 503, "server_error", "rate_store_unavailable", "overloaded_error",
      "The gateway cannot check rate limits at the moment. Try again later." },
    /* CR_ERR_METHOD_NOT_ALLOWED */
    { 405, "invalid_request_error", "method_not_allowed",
      "invalid_request_error",
      "This HTTP method is not allowed here." },
    /* CR_ERR_UNSUPPORTED_MEDIA_TYPE */
    { 415, "invalid_request_error", "unsupported_media_type",
      "invalid_request_error",
      "Unsupported Content-Type; send the request body as "
      "'application/json'." },
    /* CR_ERR_INTERNAL */
    { 500, "server_error", "internal_error", "api_error",
      "The gateway failed to handle the request. Try again later." },
    /* CR_ERR_BAD_REQUEST */
    { 400, "invalid_request_error", "bad_request", "invalid_request_error",
      "The request is malformed (a header is invalid or too large)." },
    /* CR_ERR_TOKENS_LIMITED */
    { 429, "tokens", "rate_limit_exceeded", "rate_limit_error",
      "Token rate limit exceeded for this API key. Retry after the time "
      "given in the 'Retry-After' header." },
    /* CR_ERR_QUOTA_EXCEEDED */
    { 429, "insufficient_quota", "insufficient_quota", "rate_limit_error",
      "This API key has used up its token quota for the current period." },
    /* CR_ERR_WEBSOCKET */
    { 400, "invalid_request_error", "websocket_not_supported",
      "invalid_request_error",
      "WebSocket is not supported by this gateway; use HTTPS requests." }
};

static const error_row *row_for(cr_error_e kind)
{
    if ((int)kind < 0 || kind >= CR_ERR__COUNT) {
        kind = CR_ERR_INTERNAL;
    }
    return &error_table[kind];
}

static int ends_with(const char *s, apr_size_t len, const char *suffix)
{
    apr_size_t slen = strlen(suffix);

    return len >= slen && memcmp(s + len - slen, suffix, slen) == 0;
}

cr_protocol_e cr_protocol_from_path(const char *path)
{
    apr_size_t len;

    if (path == NULL) {
        return CR_PROTO_OPENAI;
    }
    len = strlen(path);
    /* "/v1/messages/" is the same endpoint as "/v1/messages". */
    if (len > 0 && path[len - 1] == '/') {
        len--;
    }
    if (ends_with(path, len, "/messages")
        || ends_with(path, len, "/messages/count_tokens")) {
        return CR_PROTO_ANTHROPIC;
    }
    return CR_PROTO_OPENAI;
}

int cr_error_status(cr_error_e kind)
{
    return row_for(kind)->status;
}

int cr_error_should_retry(cr_error_e kind)
{
    switch (kind) {
    case CR_ERR_RATE_LIMITED:
    case CR_ERR_TOKENS_LIMITED:
    case CR_ERR_UPSTREAM_UNAVAILABLE:
    case CR_ERR_UPSTREAM_TIMEOUT:
    case CR_ERR_RATE_STORE_UNAVAILABLE:
        return 1;
    default:
        return 0;
    }
}

const char *cr_error_openai_type(cr_error_e kind)
{
    return row_for(kind)->openai_type;
}

const char *cr_error_openai_code(cr_error_e kind)
{
    return row_for(kind)->openai_code;
}

const char *cr_error_refusal_reason(cr_error_e kind)
{
    /* The two 429s share an OpenAI code; the metric tells them apart. */
    switch (kind) {
    case CR_ERR_RATE_LIMITED:
        return "rate_limit_requests";
    case CR_ERR_TOKENS_LIMITED:
        return "rate_limit_tokens";
    default:
        return row_for(kind)->openai_code;
    }
}

const char *cr_error_anthropic_type(cr_error_e kind)
{
    return row_for(kind)->anthropic_type;
}

const char *cr_error_default_message(cr_error_e kind)
{
    return row_for(kind)->message;
}

/* Used only if Jansson cannot build or serialise the body (out of memory). */
#define FALLBACK_OPENAI \
    "{\"error\":{\"message\":\"Internal error.\",\"type\":\"server_error\"," \
    "\"param\":null,\"code\":\"internal_error\"}}"
#define FALLBACK_ANTHROPIC \
    "{\"type\":\"error\",\"error\":{\"type\":\"api_error\"," \
    "\"message\":\"Internal error.\"},\"request_id\":null}"

const char *cr_error_body(apr_pool_t *p, cr_protocol_e proto, cr_error_e kind,
                          const char *message, const char *request_id)
{
    const error_row *row = row_for(kind);
    cr_json_t *doc, *error;
    const char *body;
    int rv = 0;

    if (message == NULL) {
        message = row->message;
    }
    doc = cr_json_new_object(p);
    error = cr_json_new_object(p);
    if (doc == NULL || error == NULL) {
        return proto == CR_PROTO_ANTHROPIC ? FALLBACK_ANTHROPIC
                                           : FALLBACK_OPENAI;
    }

    if (proto == CR_PROTO_ANTHROPIC) {
        rv |= cr_json_set_string(doc, "type", "error");
        rv |= cr_json_set_string(error, "type", row->anthropic_type);
        /* A message that is not valid UTF-8 cannot be stored as JSON text. */
        if (cr_json_set_string(error, "message", message) != 0) {
            rv |= cr_json_set_string(error, "message", row->message);
        }
        rv |= cr_json_set(doc, "error", error);
        if (cr_json_set_string(doc, "request_id", request_id) != 0) {
            rv |= cr_json_set_null(doc, "request_id");
        }
    }
    else {
        if (cr_json_set_string(error, "message", message) != 0) {
            rv |= cr_json_set_string(error, "message", row->message);
        }
        rv |= cr_json_set_string(error, "type", row->openai_type);
        rv |= cr_json_set_null(error, "param");
        rv |= cr_json_set_string(error, "code", row->openai_code);
        rv |= cr_json_set(doc, "error", error);
    }

    body = rv == 0 ? cr_json_dump(p, doc, CR_JSON_COMPACT) : NULL;
    if (body == NULL) {
        return proto == CR_PROTO_ANTHROPIC ? FALLBACK_ANTHROPIC
                                           : FALLBACK_OPENAI;
    }
    return body;
}
