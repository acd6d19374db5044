/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_tokens.h: token limits and quotas of a request (SPEC
 * section 11), httpd glue over cr_tokens.c and cr_tokenstore.c.
 */
#ifndef MOD_CLAWDROUTER_TOKENS_H
#define MOD_CLAWDROUTER_TOKENS_H

#include "httpd.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_request.h"

/* After the request limit: the key's quota and token bucket.  OK, or the
 * 429 (or 503 by ClawdRouterRateStoreFailure closed) already sent. */
int cr_tokens_check_request(request_rec *r, cr_request_ctx *ctx,
                            const cr_server_conf *sconf);

/* When the response's usage is known: charge it. */
void cr_tokens_charge_response(request_rec *r, cr_request_ctx *ctx);

#endif /* MOD_CLAWDROUTER_TOKENS_H */
