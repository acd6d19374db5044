/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_tokenstore.h: where token buckets and quotas live (httpd glue of
 * cr_tokens.c): a lock-free table in shared memory of its own, kept across
 * graceful restarts, with an optional state file for full restarts; or,
 * when ClawdRouterRateStore is memcache:// or redis://, that store
 * (cr_tokenshared.c), shared by every host.
 */
#ifndef CR_TOKENSTORE_H
#define CR_TOKENSTORE_H

#include "httpd.h"
#include "cr_key.h"
#include "cr_rate.h"

/* Keys the table holds (a power of two). */
#define CR_TOKENS_SLOTS 16384

/* post_config: make (once per parent) or find the table. */
int cr_tokenstore_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                              server_rec *s);

/* child_init: the shared store's connections, if it is used. */
void cr_tokenstore_child_init(apr_pool_t *p, server_rec *s);

/* The state of a key at now (key_fnv is cr_rate_id_fnv(key_id)): its
 * bucket (when tpm > 0) and the tokens it used in the period.  APR_ENOSPC
 * when the shm table has no room for it; another failure when the shared
 * store could not be asked (already logged; ClawdRouterRateStoreFailure
 * applies). */
apr_status_t cr_tokenstore_state(request_rec *r, const char *key_id,
                                 apr_uint64_t key_fnv,
                                 cr_quota_period_e period,
                                 apr_int64_t tpm, apr_time_t now,
                                 cr_rate_result_t *bucket,
                                 apr_int64_t *used);

/* Tokens used in the period by a key (0 if it has none, or if the shared
 * store cannot be asked), for the console.  Works with every store. */
apr_int64_t cr_tokenstore_used(const char *key_id, cr_quota_period_e period,
                               apr_time_t now);

/* Charge a response's tokens: to the bucket when tpm > 0, to the quota
 * count when count_quota.  Failures as cr_tokenstore_state. */
apr_status_t cr_tokenstore_charge(request_rec *r, const char *key_id,
                                  apr_uint64_t key_fnv, apr_int64_t tpm,
                                  int count_quota, cr_quota_period_e period,
                                  apr_time_t now, apr_int64_t tokens);

#endif /* CR_TOKENSTORE_H */
