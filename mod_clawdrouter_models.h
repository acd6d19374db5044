/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_models.h: GET /models and GET /models/{id} answered by
 * the gateway itself (SPEC section 10); mod_clawdrouter_models.c.
 */
#ifndef MOD_CLAWDROUTER_MODELS_H
#define MOD_CLAWDROUTER_MODELS_H

#include "httpd.h"

#include "cr_models.h"
#include "mod_clawdrouter_config.h"
#include "mod_clawdrouter_request.h"

/* The longest a request waits for the upstreams' own lists, connect and
 * read together (every upstream fetched for one request shares it). */
#define CR_MODELS_FETCH_TIMEOUT apr_time_from_sec(2)
/* After a failed fetch, an upstream's list is not asked for again for
 * this long (or the TTL, if shorter): it contributes its declared names. */
#define CR_MODELS_RETRY_AFTER   apr_time_from_sec(30)

/* Is this a GET (or HEAD) of /models or /models/{id} below the enabling
 * <Location>?  If so, the request's protocol is set (Anthropic's when it
 * carries anthropic-version), it is marked not counted, and *id is the
 * model of /models/{id} (NULL for the list). */
cr_models_path_e cr_models_request(request_rec *r, const cr_dir_conf *dconf,
                                   cr_request_ctx *ctx, const char **id);

/* Answer it, for the request's valid key (ctx->key): the list or the one
 * model, or 404 model_not_found.  Returns DONE. */
int cr_models_answer(request_rec *r, cr_request_ctx *ctx,
                     const cr_server_conf *sconf, cr_models_path_e kind,
                     const char *id);

/* Every ClawdRouterModel names an upstream of its server. */
int cr_models_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s);

/* The per-process cache of the upstreams' lists. */
void cr_models_child_init(apr_pool_t *p, server_rec *s);

#endif /* MOD_CLAWDROUTER_MODELS_H */
