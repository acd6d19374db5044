/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_body.h: the request body's glue (mod_clawdrouter_body.c).
 */
#ifndef MOD_CLAWDROUTER_BODY_H
#define MOD_CLAWDROUTER_BODY_H

#include "httpd.h"
#include "util_filter.h"

#include "mod_clawdrouter_request.h"

/* Name of the input filter that replays the kept body to mod_proxy. */
#define CR_FILTER_BODY_REPLAY "CLAWDROUTER_BODY_REPLAY"

/* Step 3: read the body (at most limit bytes) and inspect it, as JSON or
 * (OpenAI paths) multipart/form-data; ctx->model is the result.  OK with *body the kept brigade, or the error response's
 * DONE. */
int cr_body_check_request(request_rec *r, cr_request_ctx *ctx,
                          apr_off_t limit, apr_bucket_brigade **body);

/* The input filter (f->ctx is the kept brigade).  For an http:// or
 * https:// upstream a read gives the whole body and
 * its EOS at once: mod_proxy_http, which prefetches 16 KiB, then sees the
 * body's end and its length and sends it from memory (Content-Length)
 * instead of spooling what is beyond 16 KiB to a temporary file to learn
 * its length, as it does for a body that another input filter replays. */
apr_status_t cr_body_replay_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                   ap_input_mode_t mode,
                                   apr_read_type_e block,
                                   apr_off_t readbytes);

#endif /* MOD_CLAWDROUTER_BODY_H */
