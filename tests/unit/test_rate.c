/* Licensed under the Apache License, Version 2.0. */

/*
 * test_rate.c: the rate-limit arithmetic of cr_rate.c with an injected
 * clock: GCRA (shared memory store) and the slot grid (memcached/Redis).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cr_rate.h"

#define SEC(n) ((apr_time_t)(n) * APR_USEC_PER_SEC)
#define T0 ((apr_time_t)1764000000 * APR_USEC_PER_SEC)

/* Take count requests at now; returns how many were admitted. */
static int take_many(cr_rate_state_t *st, apr_int64_t rpm, apr_time_t now,
                     int count, cr_rate_result_t *last)
{
    int admitted = 0, i;
    cr_rate_result_t res;

    for (i = 0; i < count; i++) {
        cr_rate_take(st, rpm, now, &res);
        admitted += res.allowed;
    }
    if (last) {
        *last = res;
    }
    return admitted;
}

START_TEST(test_interval)
{
    ck_assert_int_eq(cr_rate_interval(60), SEC(1));
    ck_assert_int_eq(cr_rate_interval(1), SEC(60));
    /* 60 s / 7 rounds up: 7 intervals never fit in less than a minute. */
    ck_assert_int_eq(cr_rate_interval(7), 8571429);
    ck_assert_int_ge(7 * cr_rate_interval(7), SEC(60));
    ck_assert_int_eq(cr_rate_interval(CR_RATE_MAX_RPM * 1000), 1);
}
END_TEST

START_TEST(test_first_request)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    cr_rate_take(&st, 10, T0, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.limit, 10);
    ck_assert_int_eq(res.remaining, 9);
    ck_assert_int_eq(res.reset, SEC(6));
    ck_assert_int_eq(res.retry_after, 0);
    ck_assert_int_eq(st.tat, T0 + SEC(6));
    ck_assert_int_eq(st.rpm, 10);
}
END_TEST

START_TEST(test_burst_admits_exactly_rpm)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;
    apr_int64_t rpms[] = {1, 2, 7, 10, 60, 1000};
    unsigned i;

    for (i = 0; i < sizeof(rpms) / sizeof(rpms[0]); i++) {
        memset(&st, 0, sizeof(st));
        ck_assert_int_eq(take_many(&st, rpms[i], T0, (int)rpms[i] - 1, &res),
                         rpms[i] - 1);
        cr_rate_take(&st, rpms[i], T0, &res);
        ck_assert_int_eq(res.allowed, 1);
        ck_assert_int_eq(res.remaining, 0);
        /* The rest of a 3 x N burst is refused, and says when to retry. */
        ck_assert_int_eq(take_many(&st, rpms[i], T0, 2 * (int)rpms[i], &res),
                         0);
        ck_assert_int_eq(res.remaining, 0);
        ck_assert_int_eq(res.retry_after, cr_rate_interval(rpms[i]));
        ck_assert_int_eq(res.reset, rpms[i] * cr_rate_interval(rpms[i]));
    }
}
END_TEST

START_TEST(test_remaining_counts_down)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;
    int i;

    for (i = 1; i <= 5; i++) {
        cr_rate_take(&st, 5, T0, &res);
        ck_assert_int_eq(res.allowed, 1);
        ck_assert_int_eq(res.remaining, 5 - i);
        ck_assert_int_eq(res.reset, i * SEC(12));
    }
}
END_TEST

START_TEST(test_exact_refill_moment)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 10, T0, 10, NULL);
    /* One microsecond before the first refill: refused, retry in 1 us. */
    cr_rate_take(&st, 10, T0 + SEC(6) - 1, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, 1);
    /* At the refill moment: exactly one admitted. */
    cr_rate_take(&st, 10, T0 + SEC(6), &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 0);
    cr_rate_take(&st, 10, T0 + SEC(6), &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, SEC(6));
}
END_TEST

START_TEST(test_partial_and_full_refill)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 10, T0, 10, NULL);
    /* 20.5 s later, 3 requests have come back (one per 6 s). */
    ck_assert_int_eq(take_many(&st, 10, T0 + SEC(20) + 500000, 30, &res), 3);
    ck_assert_int_eq(res.retry_after, SEC(6) - SEC(2) - 500000);
    /* After a long idle time the bucket is full, never fuller. */
    ck_assert_int_eq(take_many(&st, 10, T0 + SEC(3600), 30, NULL), 10);
}
END_TEST

START_TEST(test_sustained_rate)
{
    cr_rate_state_t st = {0, 0};
    apr_time_t t;
    int admitted = 0;
    cr_rate_result_t res;

    /* A request every 100 ms for 10 minutes at 7 rpm: the full bucket
     * (7) plus 10 minutes of refill (70), minus the rounding of T. */
    for (t = 0; t < SEC(600); t += 100000) {
        cr_rate_take(&st, 7, T0 + t, &res);
        admitted += res.allowed;
    }
    ck_assert_int_le(admitted, 77);
    ck_assert_int_ge(admitted, 76);
}
END_TEST

START_TEST(test_clock_backwards)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    /* A small step back only costs the refill of that second: 7 s owed
     * after two requests, so 7 left (not 8), and no error. */
    cr_rate_take(&st, 10, T0, &res);
    cr_rate_take(&st, 10, T0 - SEC(1), &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 7);
    ck_assert_int_eq(res.reset, SEC(13));

    /* An hour back on an empty bucket: empty, not empty for an hour. */
    memset(&st, 0, sizeof(st));
    take_many(&st, 10, T0, 10, NULL);
    cr_rate_take(&st, 10, T0 - SEC(3600), &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, SEC(6));
    ck_assert_int_le(res.reset, SEC(60));
    cr_rate_take(&st, 10, T0 - SEC(3600) + SEC(6), &res);
    ck_assert_int_eq(res.allowed, 1);
}
END_TEST

START_TEST(test_rpm_raised)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 5, T0, 5, NULL);
    cr_rate_take(&st, 5, T0, &res);
    ck_assert_int_eq(res.allowed, 0);
    /* Raised to 10: the 5 used stay used, 5 more are admitted at once. */
    cr_rate_take(&st, 10, T0, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.limit, 10);
    ck_assert_int_eq(res.remaining, 4);
    ck_assert_int_eq(take_many(&st, 10, T0, 10, NULL), 4);
}
END_TEST

START_TEST(test_rpm_lowered)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 10, T0, 5, NULL);
    /* Lowered to 5 with 5 used: empty, first refill after 12 s. */
    cr_rate_take(&st, 5, T0, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.limit, 5);
    ck_assert_int_eq(res.retry_after, SEC(12));
    /* Lowered further to 2 with more used than the new bucket holds. */
    cr_rate_take(&st, 2, T0, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.reset, SEC(60));
    ck_assert_int_eq(res.retry_after, SEC(30));
}
END_TEST

/* The slot grid, with the claims of one key kept in a small array. */
#define GRID_SLOTS 4096
typedef struct {
    apr_time_t anchor;
    unsigned char taken[GRID_SLOTS];
} grid_t;

static int grid_take(grid_t *g, apr_int64_t rpm, apr_time_t now,
                     cr_rate_result_t *res)
{
    apr_int64_t lo, hi, k;

    cr_rate_grid_window(g->anchor, rpm, now, &lo, &hi);
    for (k = lo; k <= hi; k++) {
        if (!g->taken[k]) {
            g->taken[k] = 1;
            cr_rate_grid_admitted(g->anchor, rpm, now, k, hi, res);
            return 1;
        }
    }
    cr_rate_grid_refused(g->anchor, rpm, now, hi + 1, res);
    return 0;
}

START_TEST(test_grid_window)
{
    apr_int64_t lo, hi;

    cr_rate_grid_window(T0, 10, T0, &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 9);
    cr_rate_grid_window(T0, 10, T0 + SEC(6) - 1, &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 9);
    cr_rate_grid_window(T0, 10, T0 + SEC(6), &lo, &hi);
    ck_assert_int_eq(lo, 1);
    ck_assert_int_eq(hi, 10);
    /* Another host whose clock is 12 s behind the anchor's. */
    cr_rate_grid_window(T0, 10, T0 - SEC(12), &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 7);
    cr_rate_grid_window(T0, 10, T0 - SEC(60), &lo, &hi);
    ck_assert_int_lt(hi, lo);
}
END_TEST

START_TEST(test_grid_burst_and_refill)
{
    static grid_t g;
    cr_rate_result_t res;
    int admitted = 0, i;

    memset(&g, 0, sizeof(g));
    g.anchor = T0;
    /* A 3 x N burst spread over most of one interval admits exactly N. */
    for (i = 0; i < 30; i++) {
        admitted += grid_take(&g, 10, T0 + i * 190000, &res);
    }
    ck_assert_int_eq(admitted, 10);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, T0 + SEC(6) - (T0 + 29 * 190000));
    /* 20.5 s after the anchor: three slots have entered the window. */
    admitted = 0;
    for (i = 0; i < 30; i++) {
        admitted += grid_take(&g, 10, T0 + SEC(20) + 500000, &res);
    }
    ck_assert_int_eq(admitted, 3);
    /* Idle for an hour: exactly N again, with N - 1 remaining first. */
    ck_assert_int_eq(grid_take(&g, 10, T0 + SEC(3600), &res), 1);
    ck_assert_int_eq(res.remaining, 9);
    admitted = 1;
    for (i = 0; i < 30; i++) {
        admitted += grid_take(&g, 10, T0 + SEC(3600), &res);
    }
    ck_assert_int_eq(admitted, 10);
}
END_TEST

START_TEST(test_grid_matches_gcra_from_fresh_bucket)
{
    static grid_t g;
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t a, b;
    apr_time_t t;

    memset(&g, 0, sizeof(g));
    g.anchor = T0;
    /* Same requests, same decisions, whenever the grid's anchor is the
     * first request and the key is never idle for a whole bucket. */
    for (t = 0; t < SEC(300); t += 700000) {
        cr_rate_take(&st, 13, T0 + t, &a);
        grid_take(&g, 13, T0 + t, &b);
        ck_assert_int_eq(a.allowed, b.allowed);
        ck_assert_int_eq(a.remaining, b.remaining);
        if (!a.allowed) {
            ck_assert_int_eq(a.retry_after, b.retry_after);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rate");
    TCase *gcra = tcase_create("gcra");
    TCase *grid = tcase_create("grid");
    SRunner *sr;
    int failed;

    tcase_add_test(gcra, test_interval);
    tcase_add_test(gcra, test_first_request);
    tcase_add_test(gcra, test_burst_admits_exactly_rpm);
    tcase_add_test(gcra, test_remaining_counts_down);
    tcase_add_test(gcra, test_exact_refill_moment);
    tcase_add_test(gcra, test_partial_and_full_refill);
    tcase_add_test(gcra, test_sustained_rate);
    tcase_add_test(gcra, test_clock_backwards);
    tcase_add_test(gcra, test_rpm_raised);
    tcase_add_test(gcra, test_rpm_lowered);
    suite_add_tcase(s, gcra);
    tcase_add_test(grid, test_grid_window);
    tcase_add_test(grid, test_grid_burst_and_refill);
    tcase_add_test(grid, test_grid_matches_gcra_from_fresh_bucket);
    suite_add_tcase(s, grid);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
