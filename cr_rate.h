/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_rate.h: the rate-limit arithmetic (SPEC section 4, "Rate limit
 * semantics"), independent of where the state lives.  docs/RATELIMIT.md
 * explains the algorithm and proves its exactness.
 *
 * A key with rpm = N has a bucket of N requests refilled continuously at
 * N per 60 seconds.  The emission interval is T = ceil(60 s / N) (whole
 * microseconds, so N * T >= 60 s: never more than N per minute) and the
 * burst tolerance tau = (N - 1) * T.
 *
 * Two forms of the same bucket:
 * - cr_rate_take: GCRA on one time, the theoretical arrival time (TAT),
 *   for stores that can update it under a lock (shared memory).
 * - cr_rate_grid_*: the "slot grid" form for shared stores that only offer
 *   atomic create-if-absent (memcached add, Redis INCR == 1): admitted
 *   request number k of a key owns the instant anchor + k * T, and a
 *   request at time now may claim any free slot whose instant lies in
 *   (now - T, now + tau]; that window always holds exactly N slots.
 */
#ifndef CR_RATE_H
#define CR_RATE_H

#include <apr_time.h>

/* Limits above this are treated as this (one request per microsecond). */
#define CR_RATE_MAX_RPM ((apr_int64_t)60 * APR_USEC_PER_SEC)

typedef struct {
    apr_time_t tat;            /* 0 = never used (full bucket) */
    apr_int64_t rpm;           /* limit the tat was computed with; 0 = none */
} cr_rate_state_t;

typedef struct {
    int allowed;                       /* this request is admitted */
    apr_int64_t limit;                 /* N */
    apr_int64_t remaining;             /* whole requests left after this one */
    apr_interval_time_t reset;         /* until the bucket is full again */
    apr_interval_time_t retry_after;   /* refused: until one is admitted */
} cr_rate_result_t;

/* The emission interval T of a limit (rpm > 0), in microseconds. */
apr_interval_time_t cr_rate_interval(apr_int64_t rpm);

/* Decide one request at time now for a key with rpm > 0, updating state.
 *
 * - A never used state is a full bucket.
 * - When rpm differs from state->rpm, the requests already used are kept:
 *   the debt (tat - now) is rescaled from the old interval to the new one,
 *   so raising a limit admits more at once and lowering it does not refill.
 * - The debt is never more than a whole bucket (N * T): if the clock goes
 *   backwards, the bucket is at worst empty, not empty for the length of
 *   the jump. */
void cr_rate_take(cr_rate_state_t *state, apr_int64_t rpm, apr_time_t now,
                  cr_rate_result_t *result);

/* Slot grid: the slots whose instants anchor + k * T (k >= 0) lie in the
 * window (now - T, now + tau].  *hi < *lo when there is none (now far
 * before anchor).  Otherwise *hi - *lo + 1 == N, or fewer if the window
 * starts before the anchor. */
void cr_rate_grid_window(apr_time_t anchor, apr_int64_t rpm, apr_time_t now,
                         apr_int64_t *lo, apr_int64_t *hi);

/* Slot grid: fill result for a request at now that claimed slot k (window
 * upper end hi). */
void cr_rate_grid_admitted(apr_time_t anchor, apr_int64_t rpm,
                           apr_time_t now, apr_int64_t k, apr_int64_t hi,
                           cr_rate_result_t *result);

/* Slot grid: fill result for a request at now refused because every slot up
 * to next - 1 is taken (next > hi): it is admitted once next enters the
 * window. */
void cr_rate_grid_refused(apr_time_t anchor, apr_int64_t rpm, apr_time_t now,
                          apr_int64_t next, cr_rate_result_t *result);

/* FNV-1a (64 bits) of a key id: where the shm rate table (cr_ratetable.c)
 * and the token table (cr_tokenstore.c) place the key, each in its own
 * way.  A request computes it once for both. */
apr_uint64_t cr_rate_id_fnv(const char *id);

#endif /* CR_RATE_H */
