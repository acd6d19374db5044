/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_tokenshared.h: token buckets and quotas in the shared rate store
 * (ClawdRouterRateStore memcache:// or redis://), so that every host
 * pointing at it shares them (SPEC sections 8 and 11).  Counters only ever
 * grow by atomic increments (Redis INCRBY, memcached incr after add), one
 * per 60 s window for tpm (cr_tokens_window_check) and one per quota
 * period; docs/RATELIMIT.md has the design.
 */
#ifndef CR_TOKENSHARED_H
#define CR_TOKENSHARED_H

#include "httpd.h"
#include "cr_key.h"
#include "cr_rate.h"

/* Is the rate store memcached or Redis (so tokens are counted there)? */
int cr_tokenshared_active(void);

/* child_init: the Redis connections of this child. */
void cr_tokenshared_child_init(apr_pool_t *p, server_rec *s);

/* One round trip: the key's tpm state at now (when tpm > 0) and its quota
 * count (when used).  Any failure has been reported (the rate store's
 * outage line); the caller applies ClawdRouterRateStoreFailure. */
apr_status_t cr_tokenshared_state(request_rec *r, const char *key_id,
                                  cr_quota_period_e period, apr_int64_t tpm,
                                  apr_time_t now, cr_rate_result_t *bucket,
                                  apr_int64_t *used);

/* The quota count alone, for the console (no request: p for the round
 * trip's allocations). */
apr_status_t cr_tokenshared_used(apr_pool_t *p, const char *key_id,
                                 cr_quota_period_e period, apr_time_t now,
                                 apr_int64_t *used);

/* Charge tokens: to the current tpm window when tpm > 0, to the quota
 * period's count when count_quota. */
apr_status_t cr_tokenshared_charge(request_rec *r, const char *key_id,
                                   apr_int64_t tpm, int count_quota,
                                   cr_quota_period_e period, apr_time_t now,
                                   apr_int64_t tokens);

#endif /* CR_TOKENSHARED_H */
