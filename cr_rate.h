/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_rate.h: the rate-limit arithmetic (SPEC section 4, "Rate limit
 * semantics"), independent of where the state lives.
 *
 * A key with rpm = N has a bucket of N requests refilled continuously at
 * N per 60 seconds.  Implemented as GCRA: the state is one time, the
 * theoretical arrival time (TAT) of the next request.
 */
#ifndef CR_RATE_H
#define CR_RATE_H

#include <apr_time.h>

typedef struct {
    apr_time_t tat;            /* 0 = never used (full bucket) */
} cr_rate_state_t;

typedef struct {
    int allowed;                       /* this request is admitted */
    apr_int64_t limit;                 /* N */
    apr_int64_t remaining;             /* whole requests left after this one */
    apr_interval_time_t reset;         /* until the bucket is full again */
    apr_interval_time_t retry_after;   /* refused: until one is admitted */
} cr_rate_result_t;

/* Decide one request at time now for a key with rpm > 0, updating state
 * when it is admitted. */
void cr_rate_take(cr_rate_state_t *state, apr_int64_t rpm, apr_time_t now,
                  cr_rate_result_t *result);

#endif /* CR_RATE_H */
