/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_tokens.h: the arithmetic of token limits (SPEC section 11),
 * independent of where the state lives.  Each state is one 64-bit word, so
 * a store updates it with one compare-and-swap (shared memory) and reads it
 * with one atomic load.
 *
 * tpm: a bucket of tpm tokens refilling continuously at tpm per 60 s, kept
 * as its "debt": the time (nanoseconds since the epoch) at which it is full
 * again, tat.  Each token costs T = ceil(60 s / tpm).  A request is
 * admitted while the bucket is above zero (tat - now < 60 s); its tokens are
 * charged when its response ends (tat = max(tat, now) + n * T), so the
 * bucket may go below zero and then refuses until it has refilled.
 *
 * quota: tokens used in the current period (a UTC day, a UTC month, or in
 * total), packed with the period's kind and number: a word of another
 * period counts as 0 used, so a new period starts empty without anyone
 * resetting it.
 */
#ifndef CR_TOKENS_H
#define CR_TOKENS_H

#include <apr_time.h>

#include "cr_key.h"
#include "cr_rate.h"

/* Limits above this are treated as this. */
#define CR_TOKENS_MAX_TPM APR_INT64_C(1000000000)
/* Largest count a quota word holds (2^40 - 1); more saturates. */
#define CR_TOKENS_MAX_USED ((APR_INT64_C(1) << 40) - 1)

/* The period number of now: days or months since 1970 (UTC), 0 for total. */
apr_int64_t cr_tokens_period_index(cr_quota_period_e period, apr_time_t now);
/* When the period that holds now ends (0 for total: never). */
apr_time_t cr_tokens_period_end(cr_quota_period_e period, apr_time_t now);

/* tpm: may a request be admitted at now with the bucket state tat?
 * result: allowed, limit (tpm), remaining (whole tokens, never below 0),
 * reset (until full), retry_after (when refused). */
void cr_tokens_check(apr_uint64_t tat, apr_int64_t tpm, apr_time_t now,
                     cr_rate_result_t *result);
/* tpm: the state after charging tokens at now. */
apr_uint64_t cr_tokens_charge(apr_uint64_t tat, apr_int64_t tpm,
                              apr_time_t now, apr_int64_t tokens);

/* quota: tokens used in the period that holds now, per the word. */
apr_int64_t cr_quota_used(apr_uint64_t word, cr_quota_period_e period,
                          apr_time_t now);
/* quota: the word after adding tokens at now. */
apr_uint64_t cr_quota_add(apr_uint64_t word, cr_quota_period_e period,
                          apr_time_t now, apr_int64_t tokens);

/*
 * tpm in a shared store that can only add (memcached, Redis): a sliding
 * window over aligned 60 s windows.  The store keeps the tokens charged in
 * each window (window number w = floor(now / 60 s), one counter each, only
 * ever incremented); at now the tokens "in the bucket's last minute" are
 * estimated as
 *
 *     used = cur + floor(prev * (60 s - elapsed) / 60 s)
 *
 * cur and prev the counts of windows w and w - 1, elapsed the time since
 * w began.  A request is admitted while used < tpm.  docs/RATELIMIT.md
 * states how exact this is.
 */
#define CR_TOKENS_WINDOW APR_INT64_C(60000000)   /* 60 s, microseconds */

/* The window number of now. */
apr_int64_t cr_tokens_window_index(apr_time_t now);

/* tpm: may a request be admitted at now, with prev and cur tokens charged
 * in the window before now's and in now's?  result as cr_tokens_check:
 * reset is the time until the estimate is 0 with nothing more charged,
 * retry_after (refused) until it is below tpm. */
void cr_tokens_window_check(apr_int64_t prev, apr_int64_t cur,
                            apr_int64_t tpm, apr_time_t now,
                            cr_rate_result_t *result);

#endif /* CR_TOKENS_H */
