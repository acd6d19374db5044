/* Licensed under the Apache License, Version 2.0. */

/*
 * test_tokens.c: token bucket and quota arithmetic of cr_tokens.c with an
 * injected clock: admission while above zero, charging below zero, refill,
 * quota periods and their rollover (UTC day, month, total).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cr_tokens.h"

#define SEC(n) ((apr_time_t)(n) * APR_USEC_PER_SEC)
/* 2026-03-31T23:59:59Z */
#define T_MAR31 SEC(1775001599)

START_TEST(test_bucket_full_then_below_zero)
{
    apr_uint64_t tat = 0;
    cr_rate_result_t res;
    apr_time_t now = SEC(1764000000);

    cr_tokens_check(tat, 1000, now, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.limit, 1000);
    ck_assert_int_eq(res.remaining, 1000);
    ck_assert_int_eq(res.reset, 0);
    /* 999 tokens: one left, still admitted. */
    tat = cr_tokens_charge(tat, 1000, now, 999);
    cr_tokens_check(tat, 1000, now, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 1);
    /* A response of 1500 more: 1499 below zero; refused, remaining 0. */
    tat = cr_tokens_charge(tat, 1000, now, 1500);
    cr_tokens_check(tat, 1000, now, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.remaining, 0);
    /* 1499 tokens of debt below zero refill in 1499 * 60 ms, plus 1 us. */
    ck_assert_int_eq(res.retry_after, 1499 * 60000 + 1);
    cr_tokens_check(tat, 1000, now + res.retry_after - 1, &res);
    ck_assert_int_eq(res.allowed, 0);
    cr_tokens_check(tat, 1000, now + SEC(1499) * 60 / 1000 + 1, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 0);
    /* Full after the whole debt has refilled (2499 tokens). */
    cr_tokens_check(tat, 1000, now + SEC(2499) * 60 / 1000, &res);
    ck_assert_int_eq(res.remaining, 1000);
    ck_assert_int_eq(res.reset, 0);
}
END_TEST

START_TEST(test_bucket_refills_continuously)
{
    apr_time_t now = SEC(1764000000);
    apr_uint64_t tat = cr_tokens_charge(0, 600, now, 600);
    cr_rate_result_t res;

    /* 600 per minute: 10 per second. */
    cr_tokens_check(tat, 600, now, &res);
    ck_assert_int_eq(res.allowed, 0);   /* at zero: not above it */
    ck_assert_int_eq(res.remaining, 0);
    ck_assert_int_eq(res.retry_after, 1);
    cr_tokens_check(tat, 600, now + 1, &res);
    ck_assert_int_eq(res.allowed, 1);
    tat = cr_tokens_charge(tat, 600, now, 1);
    cr_tokens_check(tat, 600, now, &res);
    ck_assert_int_eq(res.allowed, 0);
    cr_tokens_check(tat, 600, now + SEC(3), &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 29);
    /* Idle time never fills it above tpm. */
    cr_tokens_check(tat, 600, now + SEC(3600), &res);
    ck_assert_int_eq(res.remaining, 600);
    /* A charge after a long idle starts from full, not from credit. */
    tat = cr_tokens_charge(tat, 600, now + SEC(3600), 10);
    cr_tokens_check(tat, 600, now + SEC(3600), &res);
    ck_assert_int_eq(res.remaining, 590);
}
END_TEST

START_TEST(test_bucket_huge_charge_saturates)
{
    apr_time_t now = SEC(1764000000);
    apr_uint64_t tat = cr_tokens_charge(0, 1, now, APR_INT64_C(1) << 50);
    cr_rate_result_t res;

    ck_assert(tat > (apr_uint64_t)now * 1000);
    cr_tokens_check(tat, 1, now, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_gt(res.retry_after, 0);
}
END_TEST

START_TEST(test_quota_day_rollover)
{
    apr_uint64_t w = 0;

    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_DAY, T_MAR31), 0);
    w = cr_quota_add(w, CR_QUOTA_DAY, T_MAR31, 700);
    w = cr_quota_add(w, CR_QUOTA_DAY, T_MAR31, 300);
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_DAY, T_MAR31), 1000);
    /* One second later it is April 1st: a new day and a new month. */
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_DAY, T_MAR31 + SEC(1)), 0);
    w = cr_quota_add(w, CR_QUOTA_DAY, T_MAR31 + SEC(1), 5);
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_DAY, T_MAR31 + SEC(1)), 5);
    ck_assert_int_eq(cr_tokens_period_end(CR_QUOTA_DAY, T_MAR31),
                     T_MAR31 + SEC(1));
}
END_TEST

START_TEST(test_quota_month_rollover)
{
    apr_uint64_t w = cr_quota_add(0, CR_QUOTA_MONTH, SEC(1772323200), 40);

    /* 2026-03-01T00:00:00Z .. 2026-03-31T23:59:59Z is one month. */
    w = cr_quota_add(w, CR_QUOTA_MONTH, T_MAR31, 2);
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_MONTH, T_MAR31), 42);
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_MONTH, T_MAR31 + SEC(1)), 0);
    ck_assert_int_eq(cr_tokens_period_end(CR_QUOTA_MONTH, T_MAR31),
                     T_MAR31 + SEC(1));
    /* December rolls into the next year. */
    ck_assert_int_eq(cr_tokens_period_end(CR_QUOTA_MONTH, SEC(1796169600)),
                     SEC(1798761600));        /* 2026-12-02 -> 2027-01-01 */
    /* A word of another kind of period counts as unused. */
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_DAY, T_MAR31), 0);
}
END_TEST

START_TEST(test_quota_total)
{
    apr_uint64_t w = cr_quota_add(0, CR_QUOTA_TOTAL, SEC(1000), 10);

    w = cr_quota_add(w, CR_QUOTA_TOTAL, SEC(1775001599) * 10, 15);
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_TOTAL, SEC(2000000000)), 25);
    ck_assert_int_eq(cr_tokens_period_end(CR_QUOTA_TOTAL, SEC(1000)), 0);
    /* Saturates instead of wrapping. */
    w = cr_quota_add(w, CR_QUOTA_TOTAL, SEC(1000), APR_INT64_C(1) << 62);
    ck_assert_int_eq(cr_quota_used(w, CR_QUOTA_TOTAL, SEC(1000)),
                     CR_TOKENS_MAX_USED);
}
END_TEST


/* ---- sliding window of the shared stores (memcached, Redis) ---- */

/* 2025-11-24T16:00:00Z: a window starts here (a multiple of 60 s). */
#define W0 SEC(1764000000)
#define WIN CR_TOKENS_WINDOW

START_TEST(test_window_index)
{
    ck_assert_int_eq(cr_tokens_window_index(W0), 1764000000 / 60);
    ck_assert_int_eq(cr_tokens_window_index(W0 + WIN - 1), 1764000000 / 60);
    ck_assert_int_eq(cr_tokens_window_index(W0 + WIN), 1764000000 / 60 + 1);
    ck_assert_int_eq(cr_tokens_window_index(0), 0);
    ck_assert_int_eq(cr_tokens_window_index(-1), -1);
}
END_TEST

START_TEST(test_window_empty_then_below_zero)
{
    cr_rate_result_t res;
    apr_time_t now = W0 + SEC(10);

    cr_tokens_window_check(0, 0, 1000, now, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.limit, 1000);
    ck_assert_int_eq(res.remaining, 1000);
    ck_assert_int_eq(res.reset, 0);
    cr_tokens_window_check(0, 999, 1000, now, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 1);
    /* Until empty: the end of the next window. */
    ck_assert_int_eq(res.reset, 2 * WIN - SEC(10));
    /* Below zero (1500 charged): refused until, in the next window,
     * 1500 * (60 s - e) / 60 s < 1000, i.e. e > 20 s. */
    cr_tokens_window_check(0, 1500, 1000, now, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.remaining, 0);
    ck_assert_int_eq(res.retry_after, SEC(50) + SEC(20) + 1);
    cr_tokens_window_check(1500, 0, 1000, W0 + WIN + SEC(20), &res);
    ck_assert_int_eq(res.allowed, 0);
    cr_tokens_window_check(1500, 0, 1000, W0 + WIN + SEC(20) + 1, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 1);
    ck_assert_int_eq(res.reset, WIN - SEC(20) - 1);
    /* Two windows later nothing counts. */
    cr_tokens_window_check(0, 0, 1000, W0 + 2 * WIN, &res);
    ck_assert_int_eq(res.remaining, 1000);
}
END_TEST

START_TEST(test_window_previous_weight_falls)
{
    cr_rate_result_t res;

    /* 600 in the previous window, 500 in this one: 1100 at its start. */
    cr_tokens_window_check(600, 500, 1000, W0, &res);
    ck_assert_int_eq(res.allowed, 0);
    /* 500 + 600 * (60 - e) / 60 < 1000 from e = 10 s + 1 us. */
    ck_assert_int_eq(res.retry_after, SEC(10) + 1);
    cr_tokens_window_check(600, 500, 1000, W0 + SEC(10), &res);
    ck_assert_int_eq(res.allowed, 0);
    cr_tokens_window_check(600, 500, 1000, W0 + SEC(10) + 1, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 1);
    cr_tokens_window_check(600, 500, 1000, W0 + SEC(30), &res);
    ck_assert_int_eq(res.remaining, 200);
    /* With nothing in this window, reset is this window's end. */
    cr_tokens_window_check(600, 0, 1000, W0 + SEC(30), &res);
    ck_assert_int_eq(res.remaining, 700);
    ck_assert_int_eq(res.reset, SEC(30));
}
END_TEST

START_TEST(test_window_huge_counts)
{
    cr_rate_result_t res;
    apr_int64_t big = APR_INT64_C(1) << 50;

    cr_tokens_window_check(big, big, APR_INT64_C(1) << 40, W0 + SEC(1),
                           &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.limit, CR_TOKENS_MAX_TPM);
    ck_assert(res.retry_after > WIN && res.retry_after <= 2 * WIN);
    cr_tokens_window_check(big, 0, 1000, W0 + WIN - 1, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, 1);
    cr_tokens_window_check(-5, -5, 1000, W0, &res);
    ck_assert_int_eq(res.remaining, 1000);
}
END_TEST

/* The bound docs/RATELIMIT.md states: with requests one after the other,
 * the tokens charged in any 60 s are at most 2 * tpm plus one response's
 * tokens, and over a long run at most tpm per minute plus one response
 * per window.  Random arrivals and sizes (fixed seed). */
START_TEST(test_window_bound)
{
    enum { NWIN = 400, MAXREQ = 300 };
    static apr_int64_t counts[NWIN + 2];
    static apr_time_t at[200000];
    static apr_int64_t size[200000];
    apr_int64_t tpm = 1000, total = 0;
    apr_uint64_t seed = 12345;
    apr_time_t now = W0;
    int n = 0, i, j;

    memset(counts, 0, sizeof(counts));
    while (now < W0 + NWIN * WIN && n < 200000) {
        apr_int64_t w = cr_tokens_window_index(now)
                        - cr_tokens_window_index(W0);
        cr_rate_result_t res;

        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        cr_tokens_window_check(w ? counts[w - 1] : 0, counts[w], tpm, now,
                               &res);
        if (res.allowed) {
            apr_int64_t k = (apr_int64_t)((seed >> 33) % MAXREQ) + 1;
            counts[w] += k;
            at[n] = now;
            size[n++] = k;
            total += k;
        }
        now += (apr_time_t)((seed >> 20) % 4000000);   /* up to 4 s */
    }
    ck_assert(n > 100);
    for (i = 0; i < n; i++) {
        apr_int64_t sum = 0;
        for (j = i; j < n && at[j] < at[i] + WIN; j++) {
            sum += size[j];
        }
        ck_assert_msg(sum <= 2 * tpm + MAXREQ, "%lld tokens in 60 s",
                      (long long)sum);
    }
    ck_assert(total <= (tpm + MAXREQ) * NWIN);
    /* And the limit is used, not starved: over half of tpm a minute. */
    ck_assert(total >= tpm * NWIN / 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokens");
    TCase *tc = tcase_create("tokens");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_bucket_full_then_below_zero);
    tcase_add_test(tc, test_bucket_refills_continuously);
    tcase_add_test(tc, test_bucket_huge_charge_saturates);
    tcase_add_test(tc, test_quota_day_rollover);
    tcase_add_test(tc, test_quota_month_rollover);
    tcase_add_test(tc, test_quota_total);
    tcase_add_test(tc, test_window_index);
    tcase_add_test(tc, test_window_empty_then_below_zero);
    tcase_add_test(tc, test_window_previous_weight_falls);
    tcase_add_test(tc, test_window_huge_counts);
    tcase_add_test(tc, test_window_bound);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
