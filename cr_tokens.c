/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_tokens.c: token bucket and quota arithmetic (cr_tokens.h).
 */

#include <time.h>

#include "cr_tokens.h"

#define NS_PER_USEC APR_INT64_C(1000)
/* A full bucket: 60 s, in nanoseconds. */
#define BUCKET_NS (APR_INT64_C(60) * APR_INT64_C(1000000000))
/* The debt is never more than this (about 30 years). */
#define DEBT_MAX_NS (APR_INT64_C(1) << 60)

/* Quota word: kind (2 bits, 0 = never used), period number (22 bits),
 * used (40 bits). */
#define Q_USED_BITS 40
#define Q_INDEX_BITS 22
#define Q_INDEX_MASK ((APR_UINT64_C(1) << Q_INDEX_BITS) - 1)
#define Q_USED_MASK ((APR_UINT64_C(1) << Q_USED_BITS) - 1)

static apr_int64_t clamp_tpm(apr_int64_t tpm)
{
    return tpm > CR_TOKENS_MAX_TPM ? CR_TOKENS_MAX_TPM : tpm;
}

/* T: the cost of one token, in nanoseconds. */
static apr_int64_t token_cost(apr_int64_t tpm)
{
    tpm = clamp_tpm(tpm);
    return (BUCKET_NS + tpm - 1) / tpm;
}

static apr_int64_t to_ns(apr_time_t t)
{
    return (apr_int64_t)t * NS_PER_USEC;
}

apr_int64_t cr_tokens_period_index(cr_quota_period_e period, apr_time_t now)
{
    time_t secs = (time_t)apr_time_sec(now);
    struct tm tm;

    switch (period) {
    case CR_QUOTA_DAY:
        return (apr_int64_t)(secs / 86400);
    case CR_QUOTA_MONTH:
        if (gmtime_r(&secs, &tm) == NULL) {
            return 0;
        }
        return (apr_int64_t)(tm.tm_year - 70) * 12 + tm.tm_mon;
    default:
        return 0;
    }
}

apr_time_t cr_tokens_period_end(cr_quota_period_e period, apr_time_t now)
{
    time_t secs = (time_t)apr_time_sec(now);
    struct tm tm;
    apr_int64_t y, m, days;

    switch (period) {
    case CR_QUOTA_DAY:
        return apr_time_from_sec((secs / 86400 + 1) * 86400);
    case CR_QUOTA_MONTH:
        if (gmtime_r(&secs, &tm) == NULL) {
            return 0;
        }
        y = tm.tm_year + 1900;
        m = tm.tm_mon + 2;        /* the next month, 1-based */
        if (m > 12) {
            m = 1;
            y++;
        }
        /* Days from 1970-01-01 to y-m-01 (civil calendar). */
        {
            apr_int64_t yy = m <= 2 ? y - 1 : y;
            apr_int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
            apr_int64_t yoe = yy - era * 400;
            apr_int64_t mp = (m + 9) % 12;
            apr_int64_t doy = (153 * mp + 2) / 5;
            apr_int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            days = era * 146097 + doe - 719468;
        }
        return apr_time_from_sec(days * 86400);
    default:
        return 0;
    }
}

void cr_tokens_check(apr_uint64_t tat, apr_int64_t tpm, apr_time_t now,
                     cr_rate_result_t *result)
{
    apr_int64_t cost = token_cost(tpm);
    apr_int64_t debt = (apr_int64_t)tat - to_ns(now);

    if (tat == 0 || debt < 0) {
        debt = 0;
    }
    result->limit = clamp_tpm(tpm);
    result->allowed = debt < BUCKET_NS;
    result->remaining = result->allowed ? (BUCKET_NS - debt) / cost : 0;
    if (result->remaining > result->limit) {
        result->remaining = result->limit;
    }
    result->reset = (debt + NS_PER_USEC - 1) / NS_PER_USEC;
    result->retry_after = result->allowed
                          ? 0
                          : (debt - BUCKET_NS) / NS_PER_USEC + 1;
}

apr_uint64_t cr_tokens_charge(apr_uint64_t tat, apr_int64_t tpm,
                              apr_time_t now, apr_int64_t tokens)
{
    apr_int64_t cost = token_cost(tpm);
    apr_int64_t now_ns = to_ns(now);
    apr_int64_t debt = (apr_int64_t)tat - now_ns;

    if (tat == 0 || debt < 0) {
        debt = 0;
    }
    if (tokens <= 0) {
        return tat;
    }
    if (tokens > (DEBT_MAX_NS - debt) / cost) {
        debt = DEBT_MAX_NS;
    }
    else {
        debt += tokens * cost;
    }
    return (apr_uint64_t)(now_ns + debt);
}

static apr_uint64_t quota_word(cr_quota_period_e period, apr_int64_t index,
                               apr_int64_t used)
{
    return ((apr_uint64_t)(period + 1) << (Q_USED_BITS + Q_INDEX_BITS))
           | (((apr_uint64_t)index & Q_INDEX_MASK) << Q_USED_BITS)
           | ((apr_uint64_t)used & Q_USED_MASK);
}

apr_int64_t cr_quota_used(apr_uint64_t word, cr_quota_period_e period,
                          apr_time_t now)
{
    apr_int64_t index = cr_tokens_period_index(period, now);

    if ((word & ~Q_USED_MASK) != (quota_word(period, index, 0)
                                  & ~Q_USED_MASK)) {
        return 0;               /* another period (or never used) */
    }
    return (apr_int64_t)(word & Q_USED_MASK);
}

apr_uint64_t cr_quota_add(apr_uint64_t word, cr_quota_period_e period,
                          apr_time_t now, apr_int64_t tokens)
{
    /* The period's word with nothing used (its number worked out once). */
    apr_uint64_t base = quota_word(period, cr_tokens_period_index(period,
                                                                 now), 0);
    apr_int64_t used = (word & ~Q_USED_MASK) == base
                       ? (apr_int64_t)(word & Q_USED_MASK) : 0;

    if (tokens < 0) {
        tokens = 0;
    }
    used = tokens > CR_TOKENS_MAX_USED - used ? CR_TOKENS_MAX_USED
                                               : used + tokens;
    return base | ((apr_uint64_t)used & Q_USED_MASK);
}

/* ------------------------------------------------------------------ */
/* Sliding window (increment-only stores)                              */
/* ------------------------------------------------------------------ */

apr_int64_t cr_tokens_window_index(apr_time_t now)
{
    return now >= 0 ? now / CR_TOKENS_WINDOW
                    : -((-now + CR_TOKENS_WINDOW - 1) / CR_TOKENS_WINDOW);
}

/* floor(n * part / CR_TOKENS_WINDOW) without overflow (n >= 0,
 * 0 <= part <= CR_TOKENS_WINDOW). */
static apr_int64_t scale(apr_int64_t n, apr_int64_t part)
{
    return (n / CR_TOKENS_WINDOW) * part
           + (n % CR_TOKENS_WINDOW) * part / CR_TOKENS_WINDOW;
}

/* The first elapsed time e in a window (0 < e <= CR_TOKENS_WINDOW) at which
 * base + floor(n * (WINDOW - e) / WINDOW) < limit, for base < limit, n > 0:
 * n * (WINDOW - e) < (limit - base) * WINDOW, i.e.
 * WINDOW - e <= ceil((limit - base) * WINDOW / n) - 1. */
static apr_int64_t first_below(apr_int64_t base, apr_int64_t n,
                               apr_int64_t limit)
{
    apr_int64_t d = limit - base;   /* <= CR_TOKENS_MAX_TPM: no overflow */
    apr_int64_t x;

    if (n <= 0) {
        return 0;
    }
    x = (d * CR_TOKENS_WINDOW + n - 1) / n;

    return x > CR_TOKENS_WINDOW ? 0 : CR_TOKENS_WINDOW - x + 1;
}

void cr_tokens_window_check(apr_int64_t prev, apr_int64_t cur,
                            apr_int64_t tpm, apr_time_t now,
                            cr_rate_result_t *result)
{
    apr_int64_t w = cr_tokens_window_index(now);
    apr_int64_t elapsed = now - w * CR_TOKENS_WINDOW;
    apr_int64_t used;

    tpm = clamp_tpm(tpm);
    prev = prev < 0 ? 0 : prev;
    cur = cur < 0 ? 0 : cur;
    used = scale(prev, CR_TOKENS_WINDOW - elapsed);
    used = cur > CR_TOKENS_MAX_USED - used ? CR_TOKENS_MAX_USED : used + cur;
    result->limit = tpm;
    result->allowed = used < tpm;
    result->remaining = result->allowed ? tpm - used : 0;
    if (cur > 0) {
        result->reset = 2 * CR_TOKENS_WINDOW - elapsed;
    }
    else if (prev > 0) {
        result->reset = CR_TOKENS_WINDOW - elapsed;
    }
    else {
        result->reset = 0;
    }
    if (result->allowed) {
        result->retry_after = 0;
    }
    else if (cur < tpm) {
        /* Later in this window, as prev's weight falls. */
        result->retry_after = first_below(cur, prev, tpm) - elapsed;
    }
    else {
        /* In the next one, where cur is the previous window. */
        result->retry_after = CR_TOKENS_WINDOW - elapsed
                              + first_below(0, cur, tpm);
    }
    if (!result->allowed && result->retry_after < 1) {
        result->retry_after = 1;
    }
}
