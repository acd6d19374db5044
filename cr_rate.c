/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_rate.c: GCRA and its slot-grid form (see cr_rate.h and
 * docs/RATELIMIT.md).  Pure arithmetic: time is a parameter.
 */
#include <string.h>

#include "cr_rate.h"

static apr_int64_t clamp_rpm(apr_int64_t rpm)
{
    if (rpm < 1) {
        return 1;
    }
    return rpm > CR_RATE_MAX_RPM ? CR_RATE_MAX_RPM : rpm;
}

/* Floor of a / b for b > 0 and any sign of a (C division truncates). */
static apr_int64_t floor_div(apr_int64_t a, apr_int64_t b)
{
    apr_int64_t q = a / b;

    if ((a % b) != 0 && a < 0) {
        q--;
    }
    return q;
}

apr_interval_time_t cr_rate_interval(apr_int64_t rpm)
{
    apr_int64_t minute = (apr_int64_t)60 * APR_USEC_PER_SEC;

    rpm = clamp_rpm(rpm);
    /* Rounded up: N * T >= 60 s, so the limit is never exceeded. */
    return (minute + rpm - 1) / rpm;
}

void cr_rate_take(cr_rate_state_t *state, apr_int64_t rpm, apr_time_t now,
                  cr_rate_result_t *result)
{
    apr_interval_time_t interval, burst, tau;
    apr_time_t tat = state->tat;

    rpm = clamp_rpm(rpm);
    interval = cr_rate_interval(rpm);
    burst = rpm * interval;
    tau = burst - interval;

    if (tat == 0) {
        tat = now;                      /* first request: full bucket */
    }
    else if (state->rpm > 0 && state->rpm != rpm && tat > now) {
        /* Keep the number of requests used, not the time owed. */
        apr_int64_t old_rpm = clamp_rpm(state->rpm);
        apr_interval_time_t old_interval = cr_rate_interval(old_rpm);
        apr_interval_time_t debt = tat - now;

        if (debt > old_rpm * old_interval) {
            debt = old_rpm * old_interval;
        }
        tat = now + debt / old_interval * interval
              + (debt % old_interval) * interval / old_interval;
    }
    if (tat - now > burst) {
        tat = now + burst;              /* clock went backwards */
    }
    if (tat < now) {
        tat = now;                      /* idle: the bucket is full */
    }

    result->limit = rpm;
    if (tat - now <= tau) {
        apr_time_t next = tat + interval;

        result->allowed = 1;
        result->remaining = (burst - (next - now)) / interval;
        result->reset = next - now;
        result->retry_after = 0;
        state->tat = next;
    }
    else {
        result->allowed = 0;
        result->remaining = 0;
        result->reset = tat - now;
        result->retry_after = tat - tau - now;
        state->tat = tat;
    }
    state->rpm = rpm;
}

void cr_rate_grid_window(apr_time_t anchor, apr_int64_t rpm, apr_time_t now,
                         apr_int64_t *lo, apr_int64_t *hi)
{
    apr_interval_time_t interval = cr_rate_interval(rpm);
    apr_interval_time_t tau = (clamp_rpm(rpm) - 1) * interval;
    apr_int64_t x = now - anchor;

    /* k * T > x - T  <=>  k >= floor(x / T);  k * T <= x + tau. */
    *lo = floor_div(x, interval);
    if (*lo < 0) {
        *lo = 0;
    }
    *hi = floor_div(x + tau, interval);
}

void cr_rate_grid_admitted(apr_time_t anchor, apr_int64_t rpm,
                           apr_time_t now, apr_int64_t k, apr_int64_t hi,
                           cr_rate_result_t *result)
{
    apr_interval_time_t interval = cr_rate_interval(rpm);

    result->allowed = 1;
    result->limit = clamp_rpm(rpm);
    result->remaining = hi > k ? hi - k : 0;
    result->reset = anchor + (k + 1) * interval - now;
    result->retry_after = 0;
}

void cr_rate_grid_refused(apr_time_t anchor, apr_int64_t rpm, apr_time_t now,
                          apr_int64_t next, cr_rate_result_t *result)
{
    apr_interval_time_t interval = cr_rate_interval(rpm);
    apr_interval_time_t tau = (clamp_rpm(rpm) - 1) * interval;

    result->allowed = 0;
    result->limit = clamp_rpm(rpm);
    result->remaining = 0;
    result->reset = anchor + next * interval - now;
    result->retry_after = anchor + next * interval - tau - now;
    if (result->retry_after < 1) {
        result->retry_after = 1;
    }
}

apr_uint64_t cr_rate_id_fnv(const char *id)
{
    const apr_uint64_t prime = APR_UINT64_C(0x100000001b3);
    const unsigned char *s = (const unsigned char *)id;
    apr_uint64_t h = APR_UINT64_C(0xcbf29ce484222325);
    apr_size_t n = strlen(id), i = 0;

    /* Four bytes a turn: the same byte-by-byte FNV-1a, less looping. */
    for (; i + 4 <= n; i += 4) {
        h = (h ^ s[i]) * prime;
        h = (h ^ s[i + 1]) * prime;
        h = (h ^ s[i + 2]) * prime;
        h = (h ^ s[i + 3]) * prime;
    }
    for (; i < n; i++) {
        h = (h ^ s[i]) * prime;
    }
    return h;
}
