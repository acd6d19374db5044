/* Licensed under the Apache License, Version 2.0. */

/*
 * test_metrics.c: libcheck tests of cr_metrics.c: counting, the series
 * bound, escaping, the exposition format, adoption of a table after a
 * restart, and counting from several processes at once.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "cr_metrics.h"

static apr_pool_t *pool;

static cr_metrics_t *make(apr_uint32_t series, void **block_out,
                          apr_size_t *size_out)
{
    apr_size_t size = cr_metrics_size(series);
    void *block = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(block, MAP_FAILED);
    if (block_out) {
        *block_out = block;
        *size_out = size;
    }
    return cr_metrics_init(block, size, series, 1);
}

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

START_TEST(test_counts_and_format)
{
    cr_metrics_t *m = make(100, NULL, NULL);
    char *page;

    cr_metrics_count_request(m, "key_1", "gpt-4o", "openai", 200);
    cr_metrics_count_request(m, "key_1", "gpt-4o", "openai", 200);
    cr_metrics_count_request(m, NULL, NULL, NULL, 401);
    cr_metrics_count_tokens(m, "key_1", "gpt-4o", 10, 5);
    cr_metrics_count_tokens(m, "key_1", "gpt-4o", 1, 2);
    cr_metrics_count_refusal(m, "missing_api_key");
    cr_metrics_count_store_error(m, "rate");
    cr_metrics_observe_upstream(m, "openai", 30000);      /* 0.03 s */
    cr_metrics_observe_upstream(m, "openai", 2000000);    /* 2 s */
    page = cr_metrics_render(m, pool);

    ck_assert_ptr_nonnull(strstr(page,
        "# HELP clawdrouter_requests_total "));
    ck_assert_ptr_nonnull(strstr(page,
        "# TYPE clawdrouter_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"key_1\",model=\"gpt-4o\","
        "upstream=\"openai\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"\",model=\"\",upstream=\"\","
        "code=\"401\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_1\",model=\"gpt-4o\","
        "direction=\"input\"} 11\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_1\",model=\"gpt-4o\","
        "direction=\"output\"} 7\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_refusals_total{reason=\"missing_api_key\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_store_errors_total{store=\"rate\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "# TYPE clawdrouter_upstream_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"0.025\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"0.05\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"2.5\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"+Inf\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_sum{upstream=\"openai\"} 2.030000\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"openai\"} 2\n"));
}
END_TEST

START_TEST(test_series_bound)
{
    cr_metrics_t *m = make(3, NULL, NULL);
    char *page;
    int i;

    for (i = 0; i < 10; i++) {
        cr_metrics_count_request(m, apr_psprintf(pool, "key_%d", i),
                                 "m", "up", 200);
    }
    /* An existing set keeps counting under its own labels. */
    cr_metrics_count_request(m, "key_0", "m", "up", 200);
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "{key_id=\"key_0\",model=\"m\",upstream=\"up\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "{key_id=\"key_2\",model=\"m\",upstream=\"up\",code=\"200\"} 1\n"));
    ck_assert_ptr_null(strstr(page, "key_3"));
    ck_assert_ptr_nonnull(strstr(page,
        "{key_id=\"_other\",model=\"_other\",upstream=\"up\",code=\"200\"} "
        "7\n"));
}
END_TEST

START_TEST(test_escaping)
{
    cr_metrics_t *m = make(10, NULL, NULL);
    char *page;

    ck_assert_str_eq(cr_metrics_escape(pool, "a\"b\\c\nd"),
                     "a\\\"b\\\\c\\nd");
    cr_metrics_count_request(m, "k", "evil\"} 1\nx{a=\"\\", "up", 200);
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "model=\"evil\\\"} 1\\nx{a=\\\"\\\\\""));
    /* No line of the page starts with the injected text. */
    ck_assert_ptr_null(strstr(page, "\nx{"));
}
END_TEST

START_TEST(test_long_labels_cut)
{
    cr_metrics_t *m = make(10, NULL, NULL);
    char model[600];
    char *page, *line;

    memset(model, 'a', sizeof(model) - 1);
    model[sizeof(model) - 1] = '\0';
    cr_metrics_count_request(m, "k", model, "up", 200);
    page = cr_metrics_render(m, pool);
    line = strstr(page, "model=\"");
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq((int)(strchr(line + 7, '"') - (line + 7)),
                     CR_METRICS_LABEL_MAX);
}
END_TEST

START_TEST(test_adopt_after_restart)
{
    void *block;
    apr_size_t size;
    cr_metrics_t *m = make(50, &block, &size), *again;

    cr_metrics_count_refusal(m, "invalid_api_key");
    again = cr_metrics_init(block, size, 50, 0);
    ck_assert_ptr_eq(again, m);
    cr_metrics_count_refusal(again, "invalid_api_key");
    ck_assert_ptr_nonnull(strstr(cr_metrics_render(again, pool),
        "clawdrouter_refusals_total{reason=\"invalid_api_key\"} 2\n"));
    /* Another bound is another layout. */
    ck_assert_ptr_null(cr_metrics_init(block, size, 49, 0));
}
END_TEST

START_TEST(test_processes_count_exactly)
{
    cr_metrics_t *m = make(1000, NULL, NULL);
    const int procs = 4, per = 5000;
    char *page;
    int i, j, status;

    for (i = 0; i < procs; i++) {
        if (fork() == 0) {
            for (j = 0; j < per; j++) {
                /* 20 label sets, claimed by whoever comes first. */
                cr_metrics_count_request(m, "k", "m", "up", 200 + j % 20);
            }
            _exit(0);
        }
    }
    for (i = 0; i < procs; i++) {
        wait(&status);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    page = cr_metrics_render(m, pool);
    for (j = 0; j < 20; j++) {
        ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
            "code=\"%d\"} %d\n", 200 + j, procs * per / 20)));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    apr_initialize();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_counts_and_format);
    tcase_add_test(tc, test_series_bound);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_long_labels_cut);
    tcase_add_test(tc, test_adopt_after_restart);
    tcase_add_test(tc, test_processes_count_exactly);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
