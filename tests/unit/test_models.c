/* Licensed under the Apache License, Version 2.0. */

/*
 * test_models.c: unit tests of cr_models.c: the /models paths, the
 * request sent to an upstream's own /models, the HTTP/1.1 answer fed in
 * pieces of every size, the list's JSON, the selection by key globs and
 * routes, and the OpenAI and Anthropic bodies.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "cr_json.h"
#include "cr_key.h"
#include "cr_models.h"
#include "cr_route.h"

static apr_pool_t *pool;

static void setup(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    apr_terminate();
}

START_TEST(test_paths)
{
    const char *id;

    ck_assert_int_eq(cr_models_path(pool, "/models", &id),
                     CR_MODELS_PATH_LIST);
    ck_assert_ptr_null(id);
    ck_assert_int_eq(cr_models_path(pool, "/models/", &id),
                     CR_MODELS_PATH_LIST);
    ck_assert_int_eq(cr_models_path(pool, "/models/gpt-4o", &id),
                     CR_MODELS_PATH_ONE);
    ck_assert_str_eq(id, "gpt-4o");
    ck_assert_int_eq(cr_models_path(pool, "/models/gpt-4o/", &id),
                     CR_MODELS_PATH_ONE);
    ck_assert_str_eq(id, "gpt-4o");
    ck_assert_int_eq(cr_models_path(pool, "/models/meta/llama-3", &id),
                     CR_MODELS_PATH_ONE);
    ck_assert_str_eq(id, "meta/llama-3");
    ck_assert_int_eq(cr_models_path(pool, "/modelsx", &id),
                     CR_MODELS_PATH_NONE);
    ck_assert_int_eq(cr_models_path(pool, "/chat/completions", &id),
                     CR_MODELS_PATH_NONE);
    ck_assert_int_eq(cr_models_path(pool, "/v2/models", &id),
                     CR_MODELS_PATH_NONE);
    ck_assert_int_eq(cr_models_path(pool, "", &id), CR_MODELS_PATH_NONE);
}
END_TEST

START_TEST(test_http_request)
{
    cr_upstream_t up = { "o", CR_PROTO_OPENAI, "http://h.example:8080/v1",
                         "sekrit" };
    cr_upstream_t an = { "a", CR_PROTO_ANTHROPIC, "http://10.0.0.1/api/v1",
                         "asekrit" };
    cr_upstream_t tls = { "t", CR_PROTO_OPENAI, "https://api.openai.com/v1",
                          "x" };
    cr_upstream_t bal = { "b", CR_PROTO_OPENAI, "balancer://pool", NULL };
    const char *req, *host = NULL;
    int port = 0;

    req = cr_models_http_request(pool, &up, &host, &port);
    ck_assert_ptr_nonnull(req);
    ck_assert_str_eq(host, "h.example");
    ck_assert_int_eq(port, 8080);
    ck_assert_str_eq(req, "GET /v1/models HTTP/1.1\r\n"
                     "Host: h.example:8080\r\n"
                     "Accept: application/json\r\n"
                     "User-Agent: mod_clawdrouter\r\n"
                     "Connection: close\r\n"
                     "Authorization: Bearer sekrit\r\n\r\n");

    req = cr_models_http_request(pool, &an, &host, &port);
    ck_assert_ptr_nonnull(req);
    ck_assert_str_eq(host, "10.0.0.1");
    ck_assert_int_eq(port, 80);
    ck_assert_ptr_nonnull(strstr(req, "GET /api/v1/models?limit=1000 "));
    ck_assert_ptr_nonnull(strstr(req, "\r\nx-api-key: asekrit\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nanthropic-version: 2023-06-01\r\n"));
    ck_assert_ptr_null(strstr(req, "Authorization"));

    up.credential = NULL;
    req = cr_models_http_request(pool, &up, &host, &port);
    ck_assert_ptr_null(strstr(req, "Authorization"));

    ck_assert_int_eq(cr_models_fetchable(&tls), 1);
    ck_assert_int_eq(cr_models_tls(&tls), 1);
    ck_assert_int_eq(cr_models_tls(&up), 0);
    req = cr_models_http_request(pool, &tls, &host, &port);
    ck_assert_str_eq(host, "api.openai.com");
    ck_assert_int_eq(port, 443);
    ck_assert_ptr_nonnull(strstr(req, "\r\nHost: api.openai.com\r\n"));
    ck_assert_int_eq(cr_models_fetchable(&bal), 0);
    ck_assert_ptr_null(cr_models_http_request(pool, &bal, &host, &port));
}
END_TEST

/* Feed a response in pieces of n bytes: MORE until the last piece. */
static cr_http_parse_e feed(const char *resp, apr_size_t n, int eof_at_end,
                            int *status, const char **body,
                            apr_size_t *body_len)
{
    apr_size_t len = strlen(resp), have;
    cr_http_parse_e rc = CR_HTTP_MORE;

    for (have = n < len ? n : len; ; have += n) {
        if (have > len) {
            have = len;
        }
        rc = cr_models_http_parse(pool, resp, have,
                                  eof_at_end && have == len, status, body,
                                  body_len);
        if (rc != CR_HTTP_MORE || have == len) {
            return rc;
        }
    }
}

START_TEST(test_http_parse_framings)
{
    static const char *const cases[][2] = {
        { "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: 11\r\n\r\n{\"data\":[]}", "{\"data\":[]}" },
        { "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
          "4\r\n{\"da\r\n7;ext=1\r\nta\":[]}\r\n0\r\nX-T: 1\r\n\r\n",
          "{\"data\":[]}" },
        { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
          "Content-Length: 2\r\n\r\n[]", "[]" },
        { "HTTP/1.0 200 OK\nContent-Length: 2\n\n[]", "[]" },
    };
    apr_size_t i, n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (n = 1; n <= strlen(cases[i][0]); n++) {
            int status = 0;
            const char *body = NULL;
            apr_size_t blen = 0;

            ck_assert_int_eq(feed(cases[i][0], n, 0, &status, &body, &blen),
                             CR_HTTP_COMPLETE);
            ck_assert_int_eq(status, 200);
            ck_assert_str_eq(body, cases[i][1]);
            ck_assert_uint_eq(blen, strlen(cases[i][1]));
        }
    }
}
END_TEST

START_TEST(test_http_parse_until_close)
{
    const char *resp = "HTTP/1.1 200 OK\r\n\r\n{\"data\":[]}", *body;
    apr_size_t blen;
    int status;

    ck_assert_int_eq(cr_models_http_parse(pool, resp, strlen(resp), 0,
                                          &status, &body, &blen),
                     CR_HTTP_MORE);
    ck_assert_int_eq(cr_models_http_parse(pool, resp, strlen(resp), 1,
                                          &status, &body, &blen),
                     CR_HTTP_COMPLETE);
    ck_assert_str_eq(body, "{\"data\":[]}");
}
END_TEST

START_TEST(test_http_parse_errors)
{
    static const char *const bad[] = {
        "SMTP ready\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Continue\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nabX\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "fffffffffff\r\n",
    };
    const char *body;
    apr_size_t i, blen;
    int status;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(cr_models_http_parse(pool, bad[i], strlen(bad[i]), 1,
                                           &status, &body, &blen)
                      == CR_HTTP_INVALID, "case %u", (unsigned)i);
    }
    /* Cut short by the peer's close. */
    ck_assert_int_eq(cr_models_http_parse(pool,
                     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 42, 1,
                     &status, &body, &blen), CR_HTTP_INVALID);
    /* A status other than 200 is still a complete answer. */
    ck_assert_int_eq(cr_models_http_parse(pool,
                     "HTTP/1.1 500 No\r\nContent-Length: 0\r\n\r\n", 39, 0,
                     &status, &body, &blen), CR_HTTP_COMPLETE);
    ck_assert_int_eq(status, 500);
}
END_TEST

START_TEST(test_parse_list)
{
    const char *openai =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1700000000,"
        "\"owned_by\":\"system\"},"
        "{\"id\":\"\"},{\"object\":\"model\"},{\"id\":\"bad\\nid\"},"
        "{\"id\":\"o1\",\"created\":\"soon\"},\"bare-string\",7]}";
    const char *anthropic =
        "{\"data\":[{\"type\":\"model\",\"id\":\"claude-x\","
        "\"display_name\":\"Claude X\","
        "\"created_at\":\"2025-02-19T00:00:00Z\"}],\"has_more\":false}";
    apr_array_header_t *m;
    const cr_model_t *e;
    const char *err;

    ck_assert_int_eq(cr_models_parse_list(pool, openai, strlen(openai), "up",
                                          &m, &err), APR_SUCCESS);
    ck_assert_int_eq(m->nelts, 3);
    e = &APR_ARRAY_IDX(m, 0, cr_model_t);
    ck_assert_str_eq(e->id, "gpt-4o");
    ck_assert_int_eq(e->created, 1700000000);
    ck_assert_str_eq(e->owned_by, "up");
    ck_assert_ptr_null(e->display_name);
    e = &APR_ARRAY_IDX(m, 1, cr_model_t);
    ck_assert_str_eq(e->id, "o1");
    ck_assert_int_eq(e->created, 0);
    ck_assert_str_eq(APR_ARRAY_IDX(m, 2, cr_model_t).id, "bare-string");

    ck_assert_int_eq(cr_models_parse_list(pool, anthropic, strlen(anthropic),
                                          "a", &m, &err), APR_SUCCESS);
    ck_assert_int_eq(m->nelts, 1);
    e = &APR_ARRAY_IDX(m, 0, cr_model_t);
    ck_assert_str_eq(e->display_name, "Claude X");
    ck_assert_int_eq(e->created, 1739923200);

    ck_assert_int_eq(cr_models_parse_list(pool, "[\"a\"]", 5, "u", &m, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(m->nelts, 1);
    ck_assert_int_ne(cr_models_parse_list(pool, "<html>", 6, "u", &m, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_ne(cr_models_parse_list(pool, "{\"data\":{}}", 11, "u", &m,
                                          &err), APR_SUCCESS);
    ck_assert_int_ne(cr_models_parse_list(pool, "{\"error\":1}", 11, "u", &m,
                                          &err), APR_SUCCESS);
}
END_TEST

static apr_array_header_t *names(const char *a, const char *b,
                                 const char *c)
{
    apr_array_header_t *arr = apr_array_make(pool, 3, sizeof(cr_model_t));
    const char *all[3];
    int i;

    all[0] = a;
    all[1] = b;
    all[2] = c;
    for (i = 0; i < 3; i++) {
        if (all[i]) {
            cr_model_t *m = apr_array_push(arr);
            memset(m, 0, sizeof(*m));
            m->id = all[i];
        }
    }
    return arr;
}

static const char *ids(const apr_array_header_t *arr)
{
    const char *s = "";
    int i;

    for (i = 0; i < arr->nelts; i++) {
        s = apr_pstrcat(pool, s, i ? "," : "",
                        APR_ARRAY_IDX(arr, i, cr_model_t).id, NULL);
    }
    return s;
}

START_TEST(test_select)
{
    cr_upstream_t ups[3] = {
        { "oa", CR_PROTO_OPENAI, "http://a/v1", NULL },
        { "ob", CR_PROTO_OPENAI, "http://b/v1", NULL },
        { "an", CR_PROTO_ANTHROPIC, "http://c/v1", NULL },
    };
    apr_array_header_t *routes = apr_array_make(pool, 4, sizeof(cr_route_t));
    apr_array_header_t *decl = apr_array_make(pool, 4,
                                              sizeof(cr_model_decl_t));
    apr_array_header_t *out;
    apr_hash_t *seen;
    cr_key_record_t all, some;
    cr_route_t *rt;
    cr_model_decl_t *d;

    rt = apr_array_push(routes);
    rt->glob = "gpt-*"; rt->upstream_name = "oa"; rt->upstream = &ups[0];
    rt = apr_array_push(routes);
    rt->glob = "*"; rt->upstream_name = "ob"; rt->upstream = &ups[1];
    rt = apr_array_push(routes);
    rt->glob = "claude-*"; rt->upstream_name = "an"; rt->upstream = &ups[2];
    d = apr_array_push(decl);
    d->name = "gpt-decl"; d->upstream_name = "oa";
    d = apr_array_push(decl);
    d->name = "gpt-4o"; d->upstream_name = "oa";      /* also fetched */
    d = apr_array_push(decl);
    d->name = "gpt-x"; d->upstream_name = "ob";       /* routed to oa */
    d = apr_array_push(decl);
    d->name = "claude-decl"; d->upstream_name = "an";

    memset(&all, 0, sizeof(all));
    all.models = cr_key_parse_models(pool, "*");
    memset(&some, 0, sizeof(some));
    some.models = cr_key_parse_models(pool, "gpt-4o*,o*,claude-*");

    out = apr_array_make(pool, 4, sizeof(cr_model_t));
    seen = apr_hash_make(pool);
    cr_models_select(pool, out, seen, &ups[0],
                     names("gpt-4o", "o1", "gpt-4o-mini"), decl, routes,
                     CR_PROTO_OPENAI, &all);
    cr_models_select(pool, out, seen, &ups[1],
                     names("o1", "gpt-4o", "whisper-1"), decl, routes,
                     CR_PROTO_OPENAI, &all);
    cr_models_select(pool, out, seen, &ups[2],
                     names("claude-a", NULL, NULL), decl, routes,
                     CR_PROTO_OPENAI, &all);
    ck_assert_str_eq(ids(out), "gpt-4o,gpt-4o-mini,gpt-decl,o1,whisper-1");
    ck_assert_str_eq(APR_ARRAY_IDX(out, 0, cr_model_t).owned_by, "oa");
    ck_assert_str_eq(APR_ARRAY_IDX(out, 3, cr_model_t).owned_by, "ob");

    /* The key's globs; a fetch that failed contributes declared names. */
    out = apr_array_make(pool, 4, sizeof(cr_model_t));
    seen = apr_hash_make(pool);
    cr_models_select(pool, out, seen, &ups[0], NULL, decl, routes,
                     CR_PROTO_OPENAI, &some);
    cr_models_select(pool, out, seen, &ups[1],
                     names("o1", "gpt-4o", "whisper-1"), decl, routes,
                     CR_PROTO_OPENAI, &some);
    ck_assert_str_eq(ids(out), "gpt-4o,o1");

    /* Anthropic: only the routes of the protocol count. */
    out = apr_array_make(pool, 4, sizeof(cr_model_t));
    seen = apr_hash_make(pool);
    cr_models_select(pool, out, seen, &ups[2], names("claude-a", "gpt-4o",
                                                     NULL),
                     decl, routes, CR_PROTO_ANTHROPIC, &all);
    ck_assert_str_eq(ids(out), "claude-a,claude-decl");
}
END_TEST

START_TEST(test_bodies)
{
    apr_array_header_t *m = names("gpt-4o", "o1", NULL);
    apr_array_header_t *empty = names(NULL, NULL, NULL);
    cr_model_t *e = &APR_ARRAY_IDX(m, 0, cr_model_t);
    apr_array_header_t *copy;

    e->owned_by = "oa";
    e->created = 1700000000;
    e->display_name = "GPT 4o";
    APR_ARRAY_IDX(m, 1, cr_model_t).owned_by = "ob";
    ck_assert_str_eq(cr_models_list_body(pool, CR_PROTO_OPENAI, m),
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1700000000,"
        "\"owned_by\":\"oa\"},"
        "{\"id\":\"o1\",\"object\":\"model\",\"created\":0,"
        "\"owned_by\":\"ob\"}]}");
    ck_assert_str_eq(cr_models_list_body(pool, CR_PROTO_ANTHROPIC, m),
        "{\"data\":["
        "{\"type\":\"model\",\"id\":\"gpt-4o\",\"display_name\":\"GPT 4o\","
        "\"created_at\":\"2023-11-14T22:13:20Z\"},"
        "{\"type\":\"model\",\"id\":\"o1\",\"display_name\":\"o1\","
        "\"created_at\":\"1970-01-01T00:00:00Z\"}],"
        "\"has_more\":false,\"first_id\":\"gpt-4o\",\"last_id\":\"o1\"}");
    ck_assert_str_eq(cr_models_list_body(pool, CR_PROTO_OPENAI, empty),
                     "{\"object\":\"list\",\"data\":[]}");
    ck_assert_str_eq(cr_models_list_body(pool, CR_PROTO_ANTHROPIC, empty),
                     "{\"data\":[],\"has_more\":false,\"first_id\":null,"
                     "\"last_id\":null}");
    ck_assert_str_eq(cr_models_model_body(pool, CR_PROTO_OPENAI, e),
                     "{\"id\":\"gpt-4o\",\"object\":\"model\","
                     "\"created\":1700000000,\"owned_by\":\"oa\"}");
    ck_assert_str_eq(cr_models_model_body(pool, CR_PROTO_ANTHROPIC, e),
                     "{\"type\":\"model\",\"id\":\"gpt-4o\","
                     "\"display_name\":\"GPT 4o\","
                     "\"created_at\":\"2023-11-14T22:13:20Z\"}");
    copy = cr_models_copy(pool, m);
    ck_assert_int_eq(copy->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(copy, 0, cr_model_t).display_name,
                     "GPT 4o");
    ck_assert_ptr_ne(APR_ARRAY_IDX(copy, 0, cr_model_t).id, e->id);
    ck_assert_ptr_null(cr_models_copy(pool, NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("models");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_http_request);
    tcase_add_test(tc, test_http_parse_framings);
    tcase_add_test(tc, test_http_parse_until_close);
    tcase_add_test(tc, test_http_parse_errors);
    tcase_add_test(tc, test_parse_list);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_bodies);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
