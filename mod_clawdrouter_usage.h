/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_usage.h: the token usage of forwarded responses (SPEC
 * section 11): an output filter that reads it as the response passes.
 */
#ifndef MOD_CLAWDROUTER_USAGE_H
#define MOD_CLAWDROUTER_USAGE_H

#include "httpd.h"

#include "mod_clawdrouter_request.h"

#define CR_FILTER_USAGE "CLAWDROUTER_USAGE"

/* register_hooks: the filter. */
void cr_usage_register_filter(void);

/* insert_filter of a forwarded request. */
void cr_usage_insert_filter(request_rec *r, cr_request_ctx *ctx);

/* A streamed OpenAI chat that does not ask for usage: set
 * stream_options.include_usage true in the kept body (and its
 * Content-Length), and take the usage-only chunk out of the response
 * (ClawdRouterStreamUsage, default On). */
apr_status_t cr_usage_prepare_request(request_rec *r, cr_request_ctx *ctx,
                                      apr_bucket_brigade *body);

/* Settle the response's counts (once): ctx->usage_seen, input_tokens,
 * output_tokens and the CLAWDROUTER_*_TOKENS variables, or an info line
 * saying why there are none.  Called at the end of the response and,
 * for responses that never reached the filter's end (an error page, a
 * client gone), before the access log line. */
void cr_usage_finish(request_rec *r, cr_request_ctx *ctx);

#endif /* MOD_CLAWDROUTER_USAGE_H */
