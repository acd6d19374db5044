/* Licensed under the Apache License, Version 2.0. */

/*
 * test_tokens.c: token bucket and quota arithmetic of cr_tokens.c with an
 * injected clock: admission while above zero, charging below zero, refill,
 * quota periods and their rollover (UTC day, month, total).
 */
#include <check.h>
#include <stdlib.h>

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
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
