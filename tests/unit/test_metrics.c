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

/* A request as log_transaction hands it over. */
static cr_metrics_request_t txn(const char *key_id, const char *model,
                                const char *upstream, int status)
{
    cr_metrics_request_t req;

    memset(&req, 0, sizeof(req));
    req.key_id = key_id;
    req.model = model;
    req.upstream = upstream;
    req.status = status;
    return req;
}

/* How many lines of the page start with prefix. */
static int lines_with(const char *page, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    const char *line = page;

    while (line && *line) {
        if (strncmp(line, prefix, len) == 0) {
            n++;
        }
        line = strchr(line, '\n');
        if (line) {
            line++;
        }
    }
    return n;
}

START_TEST(test_transaction_counts_every_family)
{
    cr_metrics_t *m = make(100, NULL, NULL);
    cr_metrics_request_t req = txn("key_1", "gpt-4o", "openai", 200);
    char *page;

    req.usage_seen = 1;
    req.input_tokens = 10;
    req.output_tokens = 5;
    req.latency_seen = 1;
    req.upstream_elapsed = 30000;
    cr_metrics_count_transaction(m, &req);
    /* The per-family calls count into the same sets. */
    cr_metrics_count_request(m, "key_1", "gpt-4o", "openai", 200);
    cr_metrics_count_tokens(m, "key_1", "gpt-4o", 1, 2);
    cr_metrics_observe_upstream(m, "openai", 2000000);
    req = txn(NULL, NULL, NULL, 401);
    req.refusal = "missing_api_key";
    cr_metrics_count_transaction(m, &req);
    req = txn("key_2", "gpt-4o", "openai", 500);
    req.store_error = "rate";
    cr_metrics_count_transaction(m, &req);
    page = cr_metrics_render(m, pool);

    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"key_1\",model=\"gpt-4o\","
        "upstream=\"openai\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"\",model=\"\",upstream=\"\","
        "code=\"401\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"key_2\",model=\"gpt-4o\","
        "upstream=\"openai\",code=\"500\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_1\",model=\"gpt-4o\","
        "direction=\"input\"} 11\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_1\",model=\"gpt-4o\","
        "direction=\"output\"} 7\n"));
    /* Requests without usage count no tokens. */
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 2);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_refusals_total{reason=\"missing_api_key\"} 1\n"));
    ck_assert_int_eq(lines_with(page, "clawdrouter_refusals_total{"), 1);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_store_errors_total{store=\"rate\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"0.05\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"openai\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_sum{upstream=\"openai\"} 2.030000\n"));
}
END_TEST

START_TEST(test_tokens_share_one_set)
{
    cr_metrics_t *m = make(100, NULL, NULL);
    cr_metrics_request_t req = txn("k", "m", "up", 200);
    char *page;
    int i;

    req.usage_seen = 1;
    for (i = 1; i <= 100; i++) {
        req.input_tokens = i;
        req.output_tokens = 2 * i;
        cr_metrics_count_transaction(m, &req);
    }
    /* Negative counts add nothing; zero counts still show the series. */
    req.input_tokens = -5;
    req.output_tokens = 0;
    cr_metrics_count_transaction(m, &req);
    cr_metrics_count_tokens(m, "k", "zero", 0, 0);
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"k\",model=\"m\","
        "direction=\"input\"} 5050\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"k\",model=\"m\","
        "direction=\"output\"} 10100\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"k\",model=\"zero\","
        "direction=\"input\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"k\",model=\"zero\","
        "direction=\"output\"} 0\n"));
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 4);
    /* One HELP and one TYPE line for the family. */
    ck_assert_int_eq(lines_with(page, "# TYPE clawdrouter_tokens_total "), 1);
    ck_assert_int_eq(lines_with(page, "# HELP clawdrouter_tokens_total "), 1);
}
END_TEST

START_TEST(test_tokens_bound_counts_pairs)
{
    cr_metrics_t *m = make(3, NULL, NULL);
    char *page;
    int i;

    for (i = 0; i < 10; i++) {
        cr_metrics_request_t req = txn(apr_psprintf(pool, "key_%d", i), "m",
                                       "up", 200);

        req.usage_seen = 1;
        req.input_tokens = 100;
        req.output_tokens = 1;
        cr_metrics_count_transaction(m, &req);
    }
    /* A pair already counted keeps its labels, both directions. */
    cr_metrics_count_tokens(m, "key_1", "m", 100, 1);
    page = cr_metrics_render(m, pool);
    /* The bound is on (key_id, model) pairs: three of them, each with
     * its input and its output. */
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_0\",model=\"m\","
        "direction=\"input\"} 100\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_1\",model=\"m\","
        "direction=\"output\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_2\",model=\"m\","
        "direction=\"output\"} 1\n"));
    ck_assert_ptr_null(strstr(page, "key_3"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"_other\",model=\"_other\","
        "direction=\"input\"} 700\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"_other\",model=\"_other\","
        "direction=\"output\"} 7\n"));
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 8);
    /* requests_total has its own bound, reached the same way. */
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"_other\",model=\"_other\","
        "upstream=\"up\",code=\"200\"} 7\n"));
}
END_TEST

START_TEST(test_transaction_long_labels_as_per_family)
{
    cr_metrics_t *m = make(10, NULL, NULL);
    char model[600], key[300], up[200];
    cr_metrics_request_t req;
    const char *line;
    char *page;
    int i;

    /* Labels cut (model past 256; key and model filling the set) land
     * in the same set whichever call counts them. */
    memset(model, 'a', sizeof(model) - 1);
    model[sizeof(model) - 1] = '\0';
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    memset(up, 'u', sizeof(up) - 1);
    up[sizeof(up) - 1] = '\0';
    for (i = 0; i < 2; i++) {
        req = txn(i ? key + 100 : "k", model, up, 200);
        req.usage_seen = 1;
        req.input_tokens = 3;
        req.output_tokens = 4;
        cr_metrics_count_transaction(m, &req);
        cr_metrics_count_request(m, i ? key + 100 : "k", model, up, 200);
        cr_metrics_count_tokens(m, i ? key + 100 : "k", model, 3, 4);
    }
    /* Exactly the set's 512 bytes (200 + 200 + 105 + 3 and four NULs),
     * and one more. */
    memset(model, 'b', 200);
    model[200] = '\0';
    req = txn(key + 99, model, up + 94, 200);
    cr_metrics_count_transaction(m, &req);
    cr_metrics_count_request(m, key + 99, model, up + 94, 200);
    req = txn(key + 99, model, up + 93, 200);
    cr_metrics_count_transaction(m, &req);
    cr_metrics_count_request(m, key + 99, model, up + 93, 200);
    page = cr_metrics_render(m, pool);
    ck_assert_int_eq(lines_with(page, "clawdrouter_requests_total{"), 4);
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 4);
    line = page;
    for (i = 0; i < 4; i++) {
        line = strstr(line, "\nclawdrouter_requests_total{");
        ck_assert_ptr_nonnull(line);
        line++;
        ck_assert_ptr_nonnull(strstr(line, "\"} 2\n"));
        ck_assert(strstr(line, "\"} 2\n") < strchr(line, '\n') + 1);
    }
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{key_id=\"k\""),
                     2);
    ck_assert_ptr_nonnull(strstr(page, "direction=\"input\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(page, "direction=\"output\"} 8\n"));
}
END_TEST

START_TEST(test_both_paths_find_one_set)
{
    /* The fast path of a transaction and the per-family calls pack and
     * hash a set the same way: they find one slot, not two (two would
     * both count against the bound, and B would be _other). */
    cr_metrics_t *m = make(2, NULL, NULL);
    char model[201], up[106];
    cr_metrics_request_t req = txn("key_a", "gpt-4o", "openai", 200);
    char *page;

    req.usage_seen = 1;
    req.input_tokens = 1;
    req.output_tokens = 1;
    cr_metrics_count_transaction(m, &req);
    cr_metrics_count_request(m, "key_a", "gpt-4o", "openai", 200);
    cr_metrics_count_tokens(m, "key_a", "gpt-4o", 1, 1);
    /* The largest set the fast path takes: 512 bytes. */
    memset(model, 'b', sizeof(model) - 1);
    model[sizeof(model) - 1] = '\0';
    memset(up, 'u', sizeof(up) - 1);
    up[sizeof(up) - 1] = '\0';
    cr_metrics_count_request(m, model, model, up, 200);
    req = txn(model, model, up, 200);
    req.usage_seen = 1;
    cr_metrics_count_transaction(m, &req);
    cr_metrics_count_tokens(m, model, model, 0, 0);
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_null(strstr(page, "_other"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"key_a\",model=\"gpt-4o\","
        "upstream=\"openai\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_a\",model=\"gpt-4o\","
        "direction=\"output\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
        "clawdrouter_requests_total{key_id=\"%s\",model=\"%s\","
        "upstream=\"%s\",code=\"200\"} 2\n", model, model, up)));
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 4);
}
END_TEST

START_TEST(test_status_codes)
{
    cr_metrics_t *m = make(100, NULL, NULL);
    static const int codes[] = { 100, 200, 204, 404, 429, 502, 999, 1000,
                                 99, 0, -1 };
    cr_metrics_request_t req;
    char *page;
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        req = txn("k", "m", "up", codes[i]);
        cr_metrics_count_transaction(m, &req);
        cr_metrics_count_request(m, "k", "m", "up", codes[i]);
    }
    page = cr_metrics_render(m, pool);
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
            "upstream=\"up\",code=\"%d\"} 2\n", codes[i])));
    }
}
END_TEST

START_TEST(test_upstream_buckets)
{
    cr_metrics_t *m = make(10, NULL, NULL), *other;
    cr_metrics_request_t req = txn("k", "m", NULL, 200);
    char a[16], b[16];
    char *page;

    /* The bounds are inclusive, to the microsecond. */
    req.latency_seen = 1;
    apr_cpystrn(a, "openai", sizeof(a));
    req.upstream = a;
    req.upstream_elapsed = 5000;          /* 0.005: le="0.005" */
    cr_metrics_count_transaction(m, &req);
    req.upstream_elapsed = 5001;          /* le="0.01" */
    cr_metrics_count_transaction(m, &req);
    req.upstream_elapsed = 60000000;      /* 60 s: le="60" */
    cr_metrics_count_transaction(m, &req);
    req.upstream_elapsed = 60000001;      /* +Inf only */
    cr_metrics_count_transaction(m, &req);
    req.upstream_elapsed = -3;            /* counted as 0 */
    cr_metrics_count_transaction(m, &req);
    /* The same name at another address, and another name at the same
     * address. */
    apr_cpystrn(b, "openai", sizeof(b));
    cr_metrics_observe_upstream(m, b, 1);
    apr_cpystrn(a, "anthropic", sizeof(a));
    cr_metrics_observe_upstream(m, a, 20000);
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"0.005\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"0.01\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"30\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"60\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"openai\","
        "le=\"+Inf\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"openai\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"anthropic\","
        "le=\"0.025\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"anthropic\"} 1\n"));
    /* Another table counts on its own. */
    other = make(10, NULL, NULL);
    cr_metrics_observe_upstream(other, a, 1);
    cr_metrics_observe_upstream(other, b, 1);
    cr_metrics_observe_upstream(other, a, 1);
    page = cr_metrics_render(other, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"anthropic\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"openai\"} 1\n"));
    ck_assert_int_eq(lines_with(page, "clawdrouter_upstream_seconds_count{"),
                     2);
}
END_TEST

START_TEST(test_links_of_other_sets)
{
    /* A requests_total set finds its tokens and histogram sets through
     * links; an "_other" set of requests_total stands for many pairs, so
     * its tokens are looked up each time, never linked to one pair. */
    cr_metrics_t *m = make(2, NULL, NULL);
    static const struct {
        const char *key, *upstream;
        int status;
        apr_int64_t tokens;
    } reqs[] = {
        { "key_a", "up", 200, 1 },      /* requests: A 200 (1 of 2) */
        { "key_a", "up", 500, 1 },      /* requests: A 500 (2 of 2) */
        { "key_b", "up", 200, 10 },     /* _other 200; tokens: B (2 of 2) */
        { "key_c", "up", 200, 100 },    /* _other 200; tokens: _other */
        { "key_b", "up", 200, 10 },
        { "key_c", "up", 200, 100 },
        { "key_d", "up2", 200, 1000 },  /* _other 200 of up2 */
        { "key_a", "up", 200, 1 },
    };
    char *page;
    size_t i;
    int round;

    for (round = 0; round < 2; round++) {
        for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
            cr_metrics_request_t req = txn(reqs[i].key, "m",
                                           reqs[i].upstream, reqs[i].status);

            req.usage_seen = 1;
            req.input_tokens = reqs[i].tokens;
            req.output_tokens = 2 * reqs[i].tokens;
            req.latency_seen = 1;
            req.upstream_elapsed = reqs[i].upstream[2] ? 1 : 20000;
            cr_metrics_count_transaction(m, &req);
        }
    }
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_a\",model=\"m\","
        "direction=\"input\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_b\",model=\"m\","
        "direction=\"input\"} 40\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"key_b\",model=\"m\","
        "direction=\"output\"} 80\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"_other\",model=\"_other\","
        "direction=\"input\"} 2400\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"_other\",model=\"_other\","
        "upstream=\"up\",code=\"200\"} 8\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"_other\",model=\"_other\","
        "upstream=\"up2\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"up\"} 14\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"up\","
        "le=\"0.005\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_count{upstream=\"up2\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_upstream_seconds_bucket{upstream=\"up2\","
        "le=\"0.005\"} 2\n"));
}
END_TEST

START_TEST(test_named_request_with_other_tokens)
{
    /* tokens_total full while the request's own set is named: its tokens
     * go to _other, and keep going there. */
    cr_metrics_t *m = make(2, NULL, NULL);
    char *page;
    int i;

    cr_metrics_count_tokens(m, "p1", "m", 1, 1);
    cr_metrics_count_tokens(m, "p2", "m", 1, 1);
    for (i = 0; i < 3; i++) {
        cr_metrics_request_t req = txn("key_a", "m", "up", 200);

        req.usage_seen = 1;
        req.input_tokens = 5;
        req.output_tokens = 7;
        cr_metrics_count_transaction(m, &req);
    }
    page = cr_metrics_render(m, pool);
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_requests_total{key_id=\"key_a\",model=\"m\","
        "upstream=\"up\",code=\"200\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"_other\",model=\"_other\","
        "direction=\"input\"} 15\n"));
    ck_assert_ptr_nonnull(strstr(page,
        "clawdrouter_tokens_total{key_id=\"_other\",model=\"_other\","
        "direction=\"output\"} 21\n"));
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 6);
}
END_TEST

START_TEST(test_processes_count_transactions_exactly)
{
    cr_metrics_t *m = make(1000, NULL, NULL);
    const int procs = 4, per = 5000;
    char *page;
    int i, j, status;

    for (i = 0; i < procs; i++) {
        if (fork() == 0) {
            for (j = 0; j < per; j++) {
                cr_metrics_request_t req;

                memset(&req, 0, sizeof(req));
                /* 10 pairs, 10 request sets, 2 upstreams, claimed by
                 * whoever comes first. */
                req.key_id = (j % 10) < 5 ? "key_a" : "key_b";
                req.model = apr_psprintf(pool, "model-%d", j % 5);
                req.upstream = j % 2 ? "openai" : "anthropic";
                req.status = 200 + (j % 2);
                req.usage_seen = 1;
                req.input_tokens = 3;
                req.output_tokens = 1;
                req.latency_seen = 1;
                req.upstream_elapsed = 1000;
                cr_metrics_count_transaction(m, &req);
            }
            _exit(0);
        }
    }
    for (i = 0; i < procs; i++) {
        wait(&status);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    page = cr_metrics_render(m, pool);
    for (j = 0; j < 10; j++) {
        const char *key = j < 5 ? "key_a" : "key_b";

        ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
            "clawdrouter_tokens_total{key_id=\"%s\",model=\"model-%d\","
            "direction=\"input\"} %d\n", key, j % 5, 3 * procs * per / 10)));
        ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
            "clawdrouter_tokens_total{key_id=\"%s\",model=\"model-%d\","
            "direction=\"output\"} %d\n", key, j % 5, procs * per / 10)));
        ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
            "clawdrouter_requests_total{key_id=\"%s\",model=\"model-%d\","
            "upstream=\"%s\",code=\"%d\"} %d\n", key, j % 5,
            j % 2 ? "openai" : "anthropic", 200 + j % 2,
            procs * per / 10)));
    }
    ck_assert_int_eq(lines_with(page, "clawdrouter_requests_total{"), 10);
    ck_assert_int_eq(lines_with(page, "clawdrouter_tokens_total{"), 20);
    ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
        "clawdrouter_upstream_seconds_count{upstream=\"openai\"} %d\n",
        procs * per / 2)));
    ck_assert_ptr_nonnull(strstr(page, apr_psprintf(pool,
        "clawdrouter_upstream_seconds_count{upstream=\"anthropic\"} %d\n",
        procs * per / 2)));
}
END_TEST

START_TEST(test_older_layout_not_adopted)
{
    void *block;
    apr_size_t size;
    cr_metrics_t *m = make(50, &block, &size);

    cr_metrics_count_refusal(m, "invalid_api_key");
    /* A table laid out by another build of the module (another magic)
     * is not read as this one's. */
    ((apr_uint32_t *)block)[0] ^= 0xff;
    ck_assert_ptr_null(cr_metrics_init(block, size, 50, 0));
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
    tcase_add_test(tc, test_transaction_counts_every_family);
    tcase_add_test(tc, test_tokens_share_one_set);
    tcase_add_test(tc, test_tokens_bound_counts_pairs);
    tcase_add_test(tc, test_transaction_long_labels_as_per_family);
    tcase_add_test(tc, test_both_paths_find_one_set);
    tcase_add_test(tc, test_status_codes);
    tcase_add_test(tc, test_upstream_buckets);
    tcase_add_test(tc, test_links_of_other_sets);
    tcase_add_test(tc, test_named_request_with_other_tokens);
    tcase_add_test(tc, test_processes_count_transactions_exactly);
    tcase_add_test(tc, test_older_layout_not_adopted);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
