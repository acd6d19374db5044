/* Licensed under the Apache License, Version 2.0. */

/*
 * test_core.c: unit tests of the httpd-independent core pieces: the JSON
 * wrapper, body inspection, error bodies and protocol detection,
 * Request-Id handling, routing and upstream credentials.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_tables.h>
#include <apr_thread_proc.h>

#include <sys/wait.h>
#include <unistd.h>

#include "cr_json.h"
#include "cr_body.h"
#include "cr_error.h"
#include "cr_reqid.h"
#include "cr_route.h"
#include "cr_num.h"
#include "cr_time.h"

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

/* A reader that hands out a buffer a few bytes at a time. */
typedef struct {
    const char *data;
    apr_size_t len;
    apr_size_t pos;
    apr_size_t chunk;      /* bytes per call */
    apr_size_t fail_at;    /* report a read error once pos reaches this; 0 = never */
} piece_reader;

static apr_size_t piece_read(void *buf, apr_size_t len, void *baton)
{
    piece_reader *r = baton;
    apr_size_t n = r->len - r->pos;

    if (r->fail_at && r->pos >= r->fail_at) {
        return (apr_size_t)-1;
    }
    if (n > r->chunk) {
        n = r->chunk;
    }
    if (n > len) {
        n = len;
    }
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return n;
}

static piece_reader reader_for(const char *data, apr_size_t len,
                               apr_size_t chunk)
{
    piece_reader r;

    r.data = data;
    r.len = len;
    r.pos = 0;
    r.chunk = chunk;
    r.fail_at = 0;
    return r;
}

/* "[[[[...]]]]" nested depth times, optionally inside a body with a model. */
static const char *deep_array(apr_pool_t *p, int depth)
{
    char *s = apr_palloc(p, 2 * depth + 1);

    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

/* ------------------------------------------------------------------ */
/* cr_json                                                             */
/* ------------------------------------------------------------------ */

START_TEST(json_parse_and_read_members)
{
    const char *text = "{\"s\":\"h\\u00e9llo\",\"i\":-42,\"r\":1.5,\"t\":true,"
                       "\"f\":false,\"n\":null,\"a\":[1,\"two\"],\"o\":{}}";
    const char *err = NULL;
    cr_json_t *doc = cr_json_parse(pool, text, strlen(text), 0, &err);
    cr_json_t *arr;
    apr_int64_t value = 0;

    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(cr_json_type(doc), CR_JSON_OBJECT);
    ck_assert_uint_eq(cr_json_object_size(doc), 8);
    ck_assert_str_eq(cr_json_string(pool, cr_json_get(pool, doc, "s")),
                     "h\xc3\xa9llo");
    ck_assert_int_eq(cr_json_integer(cr_json_get(pool, doc, "i"), &value), 0);
    ck_assert_int_eq(value, -42);
    ck_assert_int_ne(cr_json_integer(cr_json_get(pool, doc, "r"), &value), 0);
    ck_assert_int_eq(cr_json_type(cr_json_get(pool, doc, "r")), CR_JSON_REAL);
    ck_assert(cr_json_is_true(cr_json_get(pool, doc, "t")));
    ck_assert(!cr_json_is_true(cr_json_get(pool, doc, "f")));
    ck_assert_int_eq(cr_json_type(cr_json_get(pool, doc, "f")), CR_JSON_FALSE);
    ck_assert(cr_json_is_null(cr_json_get(pool, doc, "n")));
    ck_assert_ptr_null(cr_json_get(pool, doc, "missing"));
    ck_assert_ptr_null(cr_json_string(pool, cr_json_get(pool, doc, "i")));

    arr = cr_json_get(pool, doc, "a");
    ck_assert_int_eq(cr_json_type(arr), CR_JSON_ARRAY);
    ck_assert_uint_eq(cr_json_array_size(arr), 2);
    ck_assert_str_eq(cr_json_string(pool, cr_json_array_get(pool, arr, 1)),
                     "two");
    ck_assert_ptr_null(cr_json_array_get(pool, arr, 2));
    ck_assert_uint_eq(cr_json_array_size(doc), 0);
}
END_TEST

START_TEST(json_error_has_position_never_input)
{
    const char *text = "{\"key\": sk-SECRETsecret123}";
    const char *err = NULL;
    cr_json_error_e kind = CR_JSON_ERR_NONE;

    ck_assert_ptr_null(cr_json_parse_ex(pool, text, strlen(text), 0, &err,
                                        &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_SYNTAX);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "line 1"));
    ck_assert_ptr_nonnull(strstr(err, "column"));
    ck_assert_ptr_nonnull(strstr(err, "position"));
    ck_assert_ptr_null(strstr(err, "SECRET"));
    ck_assert_ptr_null(strstr(err, "sk-"));
}
END_TEST

START_TEST(json_error_kinds)
{
    const char *err;
    cr_json_error_e kind;
    const char *deep = deep_array(pool, 5000);

    ck_assert_ptr_null(cr_json_parse_ex(pool, "{} x", 4, 0, &err, &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_TRAILING);
    ck_assert_ptr_null(cr_json_parse_ex(pool, "{}{}", 4, 0, &err, &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_TRAILING);
    ck_assert_ptr_null(cr_json_parse_ex(pool, "{\"a\":", 5, 0, &err, &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_SYNTAX);
    ck_assert_ptr_null(cr_json_parse_ex(pool, deep, strlen(deep), 0, &err,
                                        &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_TOO_DEEP);
    /* Trailing white space is not trailing data. */
    ck_assert_ptr_nonnull(cr_json_parse_ex(pool, " {}\r\n\t ", 7, 0, &err,
                                           &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_NONE);
}
END_TEST

START_TEST(json_duplicates_only_with_flag)
{
    const char *text = "{\"a\":1,\"b\":{\"c\":1,\"c\":2}}";
    const char *err = NULL;
    cr_json_error_e kind;

    ck_assert_ptr_nonnull(cr_json_parse(pool, text, strlen(text), 0, &err));
    ck_assert_ptr_null(cr_json_parse_ex(pool, text, strlen(text),
                                        CR_JSON_REJECT_DUPLICATES, &err,
                                        &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_DUPLICATE);
    ck_assert_ptr_null(strstr(err, "\"c\""));
}
END_TEST

START_TEST(json_rejects_nul)
{
    const char escaped[] = "{\"a\":\"x\\u0000y\"}";
    const char raw[] = "{\"a\":\"x\0y\"}";
    cr_json_error_e kind;

    ck_assert_ptr_null(cr_json_parse_ex(pool, escaped, sizeof(escaped) - 1, 0,
                                        NULL, &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_SYNTAX);
    ck_assert_ptr_null(cr_json_parse_ex(pool, raw, sizeof(raw) - 1, 0, NULL,
                                        &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_SYNTAX);
}
END_TEST

START_TEST(json_build_dump_roundtrip)
{
    cr_json_t *obj = cr_json_new_object(pool);
    cr_json_t *arr = cr_json_new_array(pool);
    cr_json_t *back;
    const char *text;

    ck_assert_int_eq(cr_json_set_string(obj, "z", "quote\" and \\ and \n"), 0);
    ck_assert_int_eq(cr_json_set_integer(obj, "n", APR_INT64_C(9007199254740993)), 0);
    ck_assert_int_eq(cr_json_set_bool(obj, "b", 1), 0);
    ck_assert_int_eq(cr_json_set_null(obj, "nil"), 0);
    ck_assert_int_eq(cr_json_set_string(obj, "s_null", NULL), 0);
    ck_assert_int_eq(cr_json_array_append_string(arr, "x"), 0);
    ck_assert_int_eq(cr_json_array_append(arr, NULL), 0);
    ck_assert_int_eq(cr_json_set(obj, "arr", arr), 0);
    /* Invalid UTF-8 cannot become a JSON string. */
    ck_assert_int_ne(cr_json_set_string(obj, "bad", "\xff\xfe"), 0);

    text = cr_json_dump(pool, obj, CR_JSON_COMPACT);
    ck_assert_str_eq(text, "{\"z\":\"quote\\\" and \\\\ and \\n\","
                     "\"n\":9007199254740993,\"b\":true,\"nil\":null,"
                     "\"s_null\":null,\"arr\":[\"x\",null]}");
    back = cr_json_parse(pool, cr_json_dump(pool, obj, CR_JSON_PRETTY),
                         strlen(cr_json_dump(pool, obj, CR_JSON_PRETTY)), 0,
                         NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(cr_json_dump(pool, back, CR_JSON_COMPACT), text);

    ck_assert_str_eq(cr_json_quote(pool, "a\"b\\c\td"), "\"a\\\"b\\\\c\\td\"");
    ck_assert_str_eq(cr_json_quote(pool, "\xc3\xa9"), "\"\xc3\xa9\"");
    /* Invalid UTF-8 still quotes to valid JSON. */
    text = cr_json_quote(pool, "a\xff");
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(cr_json_parse(pool, text, strlen(text), 0, NULL));
}
END_TEST

START_TEST(json_member_outlives_parent_pool)
{
    apr_pool_t *sub;
    cr_json_t *doc, *member;
    const char *text = "{\"list\":[\"kept\"]}";

    apr_pool_create(&sub, pool);
    doc = cr_json_parse(sub, text, strlen(text), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    member = cr_json_get(pool, doc, "list");
    apr_pool_destroy(sub);
    ck_assert_uint_eq(cr_json_array_size(member), 1);
    ck_assert_str_eq(cr_json_string(pool, cr_json_array_get(pool, member, 0)),
                     "kept");
}
END_TEST

START_TEST(json_stream_one_byte_at_a_time)
{
    const char *text = "{\"model\":\"gpt-4o\",\"nested\":{\"x\":[1,2,3]}}";
    piece_reader r = reader_for(text, strlen(text), 1);
    cr_json_t *doc;
    const char *err = NULL;
    cr_json_error_e kind;

    doc = cr_json_parse_stream(pool, piece_read, &r, 0, &err);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(cr_json_dump(pool, doc, 0), text);

    r = reader_for("{\"a\":1} trailing", 16, 1);
    ck_assert_ptr_null(cr_json_parse_stream_ex(pool, piece_read, &r, 0, &err,
                                               &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_TRAILING);

    r = reader_for(text, strlen(text), 3);
    r.fail_at = 10;
    ck_assert_ptr_null(cr_json_parse_stream_ex(pool, piece_read, &r, 0, &err,
                                               &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_READ);

    /* A read error after a complete value is still an error. */
    r = reader_for("{}   ", 5, 2);
    r.fail_at = 2;
    ck_assert_ptr_null(cr_json_parse_stream_ex(pool, piece_read, &r, 0, &err,
                                               &kind));
    ck_assert_int_eq(kind, CR_JSON_ERR_READ);
}
END_TEST

/* ------------------------------------------------------------------ */
/* cr_body                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *data;
    apr_size_t len;           /* 0: strlen(data) */
    cr_body_status_e status;
    const char *model;        /* expected on CR_BODY_OK */
    int stream;
} body_case;

#define BODY(n, d, st, m, s) { n, d, 0, st, m, s }
#define BODY_LEN(n, d, st) { n, d, sizeof(d) - 1, st, NULL, 0 }

static const body_case body_cases[] = {
    BODY("minimal", "{\"model\":\"gpt-4o\"}", CR_BODY_OK, "gpt-4o", 0),
    BODY("stream true",
         "{\"model\":\"claude-3\",\"stream\":true,\"messages\":[]}",
         CR_BODY_OK, "claude-3", 1),
    BODY("stream false", "{\"stream\":false,\"model\":\"m\"}", CR_BODY_OK,
         "m", 0),
    BODY("stream as string", "{\"model\":\"m\",\"stream\":\"true\"}",
         CR_BODY_OK, "m", 0),
    BODY("stream as 1", "{\"model\":\"m\",\"stream\":1}", CR_BODY_OK, "m", 0),
    BODY("white space around", " \n{ \"model\" : \"m\" }\r\n ", CR_BODY_OK,
         "m", 0),
    BODY("unicode model", "{\"model\":\"mod\\u00e8le\"}", CR_BODY_OK,
         "mod\xc3\xa8le", 0),
    BODY("model in nested object only",
         "{\"metadata\":{\"model\":\"m\"}}", CR_BODY_NO_MODEL, NULL, 0),
    BODY("no model", "{\"messages\":[]}", CR_BODY_NO_MODEL, NULL, 0),
    BODY("empty object", "{}", CR_BODY_NO_MODEL, NULL, 0),
    BODY("model number", "{\"model\":4}", CR_BODY_MODEL_NOT_STRING, NULL, 0),
    BODY("model null", "{\"model\":null}", CR_BODY_MODEL_NOT_STRING, NULL, 0),
    BODY("model true", "{\"model\":true}", CR_BODY_MODEL_NOT_STRING, NULL, 0),
    BODY("model array", "{\"model\":[\"m\"]}", CR_BODY_MODEL_NOT_STRING,
         NULL, 0),
    BODY("model empty", "{\"model\":\"\"}", CR_BODY_MODEL_NOT_STRING, NULL, 0),
    BODY("array", "[{\"model\":\"m\"}]", CR_BODY_NOT_OBJECT, NULL, 0),
    BODY("string", "\"model\"", CR_BODY_NOT_OBJECT, NULL, 0),
    BODY("number", "42", CR_BODY_NOT_OBJECT, NULL, 0),
    BODY("null", "null", CR_BODY_NOT_OBJECT, NULL, 0),
    BODY("not json", "model=gpt-4o", CR_BODY_INVALID_JSON, NULL, 0),
    BODY("white space only", "   \n", CR_BODY_INVALID_JSON, NULL, 0),
    BODY("truncated", "{\"model\":\"gpt-4o\",\"messages\":[",
         CR_BODY_INVALID_JSON, NULL, 0),
    BODY("truncated string", "{\"model\":\"gpt", CR_BODY_INVALID_JSON, NULL, 0),
    BODY("trailing garbage", "{\"model\":\"m\"} x", CR_BODY_INVALID_JSON,
         NULL, 0),
    BODY("two objects", "{\"model\":\"m\"}{\"model\":\"n\"}",
         CR_BODY_INVALID_JSON, NULL, 0),
    BODY("trailing comma", "{\"model\":\"m\",}", CR_BODY_INVALID_JSON, NULL, 0),
    BODY("single quotes", "{'model':'m'}", CR_BODY_INVALID_JSON, NULL, 0),
    BODY("escaped NUL in model", "{\"model\":\"g\\u0000pt\"}",
         CR_BODY_INVALID_JSON, NULL, 0),
    BODY("escaped NUL elsewhere", "{\"model\":\"m\",\"x\":\"\\u0000\"}",
         CR_BODY_INVALID_JSON, NULL, 0),
    BODY_LEN("raw NUL in string", "{\"model\":\"g\0pt\"}",
             CR_BODY_INVALID_JSON),
    BODY_LEN("raw NUL after object", "{\"model\":\"m\"}\0",
             CR_BODY_INVALID_JSON),
    BODY("latin-1 byte", "{\"model\":\"caf\xe9\"}", CR_BODY_INVALID_JSON,
         NULL, 0),
    BODY("invalid UTF-8 sequence", "{\"model\":\"m\",\"x\":\"\xc3\x28\"}",
         CR_BODY_INVALID_JSON, NULL, 0),
    BODY("overlong UTF-8", "{\"model\":\"\xc0\xaf\"}", CR_BODY_INVALID_JSON,
         NULL, 0),
    BODY("lone surrogate escape", "{\"model\":\"\\ud800\"}",
         CR_BODY_INVALID_JSON, NULL, 0),
    BODY("duplicate model", "{\"model\":\"cheap\",\"model\":\"expensive\"}",
         CR_BODY_DUPLICATE_MEMBER, NULL, 0),
    BODY("duplicate model same value", "{\"model\":\"m\",\"model\":\"m\"}",
         CR_BODY_DUPLICATE_MEMBER, NULL, 0),
    BODY("duplicate stream", "{\"model\":\"m\",\"stream\":false,"
         "\"stream\":true}", CR_BODY_DUPLICATE_MEMBER, NULL, 0),
    /* Duplicates of members the gateway does not decide on are forwarded
     * as they are (cr_body.h says why). */
    BODY("duplicate nested",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"role\":\"system\"}]}",
         CR_BODY_OK, "m", 0),
    BODY("duplicate deep in object",
         "{\"model\":\"m\",\"a\":{\"b\":{\"c\":{\"d\":1,\"d\":2}}}}",
         CR_BODY_OK, "m", 0),
    BODY("duplicate model behind an escape",
         "{\"model\":\"cheap\",\"\\u006dodel\":\"expensive\"}",
         CR_BODY_DUPLICATE_MEMBER, NULL, 0),
    BODY("duplicate stream_options",
         "{\"model\":\"m\",\"stream_options\":null,\"stream_options\":{}}",
         CR_BODY_DUPLICATE_MEMBER, NULL, 0),
    BODY("duplicate include_usage",
         "{\"model\":\"m\",\"stream_options\":{\"include_usage\":false,"
         "\"include_\\u0075sage\":true}}", CR_BODY_DUPLICATE_MEMBER, NULL, 0),
};

static void check_body_case(const body_case *c, cr_body_status_e got,
                            const cr_body_info_t *info, const char *how)
{
    ck_assert_msg(got == c->status, "%s (%s): status %d, expected %d",
                  c->name, how, (int)got, (int)c->status);
    if (c->status == CR_BODY_OK) {
        ck_assert_msg(info->model && strcmp(info->model, c->model) == 0,
                      "%s (%s): model", c->name, how);
        ck_assert_msg(info->stream == c->stream, "%s (%s): stream %d",
                      c->name, how, info->stream);
    }
    else {
        ck_assert_msg(info->model == NULL, "%s (%s): model set on failure",
                      c->name, how);
        ck_assert_msg(info->detail != NULL && info->detail[0] != '\0',
                      "%s (%s): no detail", c->name, how);
    }
}

START_TEST(body_cases_whole)
{
    apr_size_t i;

    for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
        const body_case *c = &body_cases[i];
        cr_body_info_t info;
        apr_size_t len = c->len ? c->len : strlen(c->data);

        check_body_case(c, cr_body_inspect(pool, c->data, len, &info), &info,
                        "whole");
    }
}
END_TEST

START_TEST(body_cases_stream_one_byte)
{
    apr_size_t i;

    /* A body delivered one byte per read gives exactly the same answers. */
    for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
        const body_case *c = &body_cases[i];
        cr_body_info_t whole, streamed;
        apr_size_t len = c->len ? c->len : strlen(c->data);
        piece_reader r = reader_for(c->data, len, 1);
        cr_body_status_e st_whole = cr_body_inspect(pool, c->data, len, &whole);
        cr_body_status_e st_stream = cr_body_inspect_stream(pool, piece_read,
                                                            &r, &streamed);

        check_body_case(c, st_stream, &streamed, "1-byte stream");
        ck_assert_int_eq(st_whole, st_stream);
        ck_assert_int_eq(whole.stream, streamed.stream);
        /* Accepting a body means having seen all of it. */
        if (c->status == CR_BODY_OK) {
            ck_assert_msg(r.pos == len, "%s: stream not read to the end",
                          c->name);
        }
    }
}
END_TEST

START_TEST(body_empty)
{
    cr_body_info_t info;
    piece_reader r = reader_for("", 0, 1);

    ck_assert_int_eq(cr_body_inspect(pool, "", 0, &info), CR_BODY_EMPTY);
    ck_assert_ptr_nonnull(info.detail);
    ck_assert_int_eq(cr_body_inspect(pool, NULL, 0, &info), CR_BODY_EMPTY);
    ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                     CR_BODY_EMPTY);
}
END_TEST

START_TEST(body_model_length_limit)
{
    char *json;
    char model[CR_BODY_MAX_MODEL_LEN + 2];
    cr_body_info_t info;

    memset(model, 'm', sizeof(model) - 1);
    model[CR_BODY_MAX_MODEL_LEN] = '\0';
    json = apr_psprintf(pool, "{\"model\":\"%s\"}", model);
    ck_assert_int_eq(cr_body_inspect(pool, json, strlen(json), &info),
                     CR_BODY_OK);
    ck_assert_uint_eq(strlen(info.model), CR_BODY_MAX_MODEL_LEN);

    model[CR_BODY_MAX_MODEL_LEN] = 'm';
    model[CR_BODY_MAX_MODEL_LEN + 1] = '\0';
    json = apr_psprintf(pool, "{\"model\":\"%s\"}", model);
    ck_assert_int_eq(cr_body_inspect(pool, json, strlen(json), &info),
                     CR_BODY_MODEL_NOT_STRING);
    ck_assert_ptr_null(info.model);
}
END_TEST

START_TEST(body_deep_nesting_is_invalid_not_a_crash)
{
    const char *deep = deep_array(pool, 5000);
    const char *in_body = apr_pstrcat(pool, "{\"model\":\"m\",\"x\":", deep, "}",
                                      NULL);
    cr_body_info_t info;
    piece_reader r = reader_for(in_body, strlen(in_body), 1);
    char *objects;
    int i;

    ck_assert_int_eq(cr_body_inspect(pool, deep, strlen(deep), &info),
                     CR_BODY_INVALID_JSON);
    ck_assert_int_eq(cr_body_inspect(pool, in_body, strlen(in_body), &info),
                     CR_BODY_INVALID_JSON);
    ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                     CR_BODY_INVALID_JSON);

    /* 5000 nested objects {"a":{"a":...}} */
    objects = apr_palloc(pool, 5000 * 5 + 5000 + 1);
    for (i = 0; i < 5000; i++) {
        memcpy(objects + i * 5, "{\"a\":", 5);
    }
    memset(objects + 5000 * 5, '}', 5000);
    objects[5000 * 6] = '\0';
    ck_assert_int_eq(cr_body_inspect(pool, objects, strlen(objects), &info),
                     CR_BODY_INVALID_JSON);
}
END_TEST

START_TEST(body_detail_never_quotes_body)
{
    const char *text = "{\"model\":\"m\",\"key\":sk-TOPSECRETvalue}";
    const char *dup = "{\"model\":\"sk-DUPSECRET\",\"model\":\"m\"}";
    cr_body_info_t info;

    ck_assert_int_eq(cr_body_inspect(pool, text, strlen(text), &info),
                     CR_BODY_INVALID_JSON);
    ck_assert_ptr_null(strstr(info.detail, "SECRET"));
    ck_assert_ptr_nonnull(strstr(info.detail, "position"));
    ck_assert_int_eq(cr_body_inspect(pool, dup, strlen(dup), &info),
                     CR_BODY_DUPLICATE_MEMBER);
    ck_assert_ptr_null(strstr(info.detail, "SECRET"));
}
END_TEST

START_TEST(body_stream_read_error)
{
    const char *text = "{\"model\":\"gpt-4o\",\"messages\":[]}";
    piece_reader r = reader_for(text, strlen(text), 4);
    cr_body_info_t info;

    r.fail_at = 8;
    ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                     CR_BODY_READ_ERROR);
    ck_assert_ptr_null(info.model);
    ck_assert_ptr_nonnull(info.detail);
}
END_TEST

static apr_size_t always_fail(void *buf, apr_size_t len, void *baton)
{
    (void)buf;
    (void)len;
    (void)baton;
    return (apr_size_t)-1;
}

START_TEST(body_stream_immediate_read_error)
{
    cr_body_info_t info;

    ck_assert_int_eq(cr_body_inspect_stream(pool, always_fail, NULL, &info),
                     CR_BODY_READ_ERROR);
}
END_TEST

START_TEST(body_content_type)
{
    ck_assert(cr_body_content_type_is_json(NULL));
    ck_assert(cr_body_content_type_is_json(""));
    ck_assert(cr_body_content_type_is_json("  "));
    ck_assert(cr_body_content_type_is_json("application/json"));
    ck_assert(cr_body_content_type_is_json("Application/JSON"));
    ck_assert(cr_body_content_type_is_json("application/json; charset=utf-8"));
    ck_assert(cr_body_content_type_is_json("application/json;charset=UTF-8"));
    ck_assert(cr_body_content_type_is_json(" application/json ; x=y"));
    ck_assert(cr_body_content_type_is_json("application/vnd.api+json"));
    ck_assert(cr_body_content_type_is_json("application/merge-patch+JSON; a=b"));
    ck_assert(!cr_body_content_type_is_json("multipart/form-data; boundary=x"));
    ck_assert(!cr_body_content_type_is_json("text/plain"));
    ck_assert(!cr_body_content_type_is_json("text/json"));
    ck_assert(!cr_body_content_type_is_json("application/jsonx"));
    ck_assert(!cr_body_content_type_is_json("application/json-seq"));
    ck_assert(!cr_body_content_type_is_json("application/+json"));
    ck_assert(!cr_body_content_type_is_json("application/x-www-form-urlencoded"));
    ck_assert(!cr_body_content_type_is_json("application/octet-stream"));
    /* The 16-byte application/json, compared a word at a time: letters
     * in any case, '/' exactly, no neighbour of a letter taken for it. */
    ck_assert(cr_body_content_type_is_json("APPLICATION/JSON"));
    ck_assert(cr_body_content_type_is_json("applicatioN/jsoN"));
    ck_assert(!cr_body_content_type_is_json("application-json"));
    ck_assert(!cr_body_content_type_is_json("application\x0fjson"));
    ck_assert(!cr_body_content_type_is_json("application.json"));
    ck_assert(!cr_body_content_type_is_json("@pplication/json"));
    ck_assert(!cr_body_content_type_is_json("applicatio\x0e/json"));
    ck_assert(!cr_body_content_type_is_json("application/jso\x0e"));
    ck_assert(!cr_body_content_type_is_json("application/jsom"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* cr_error                                                            */
/* ------------------------------------------------------------------ */

/* SPEC section 5, written out independently of cr_error.c's table. */
typedef struct {
    cr_error_e kind;
    int status;
    const char *openai_type;
    const char *openai_code;
    const char *anthropic_type;
} spec_row;

static const spec_row spec_rows[] = {
    { CR_ERR_MISSING_KEY, 401, "invalid_request_error", "missing_api_key",
      "authentication_error" },
    { CR_ERR_INVALID_KEY, 401, "invalid_request_error", "invalid_api_key",
      "authentication_error" },
    { CR_ERR_MISSING_VERSION, 400, NULL, NULL, "invalid_request_error" },
    { CR_ERR_INVALID_BODY, 400, "invalid_request_error", "invalid_body",
      "invalid_request_error" },
    { CR_ERR_TOO_LARGE, 413, "invalid_request_error", "request_too_large",
      "request_too_large" },
    { CR_ERR_MODEL_NOT_PERMITTED, 403, "permission_error",
      "model_not_permitted", "permission_error" },
    { CR_ERR_MODEL_NOT_FOUND, 404, "invalid_request_error", "model_not_found",
      "not_found_error" },
    { CR_ERR_RATE_LIMITED, 429, "requests", "rate_limit_exceeded",
      "rate_limit_error" },
    { CR_ERR_UPSTREAM_UNAVAILABLE, 502, "server_error", "upstream_unavailable",
      "api_error" },
    { CR_ERR_UPSTREAM_TIMEOUT, 504, "server_error", "upstream_unavailable",
      "api_error" },
    { CR_ERR_KEY_STORE_UNAVAILABLE, 500, "server_error",
      "key_store_unavailable", "api_error" },
    { CR_ERR_RATE_STORE_UNAVAILABLE, 503, "server_error",
      "rate_store_unavailable", "overloaded_error" },
    { CR_ERR_METHOD_NOT_ALLOWED, 405, "invalid_request_error",
      "method_not_allowed", "invalid_request_error" },
    { CR_ERR_UNSUPPORTED_MEDIA_TYPE, 415, "invalid_request_error",
      "unsupported_media_type", "invalid_request_error" },
    { CR_ERR_INTERNAL, 500, "server_error", "internal_error", "api_error" },
    { CR_ERR_BAD_REQUEST, 400, "invalid_request_error", "bad_request",
      "invalid_request_error" },
    { CR_ERR_TOKENS_LIMITED, 429, "tokens", "rate_limit_exceeded",
      "rate_limit_error" },
    { CR_ERR_QUOTA_EXCEEDED, 429, "insufficient_quota", "insufficient_quota",
      "rate_limit_error" },
    { CR_ERR_WEBSOCKET, 400, "invalid_request_error",
      "websocket_not_supported", "invalid_request_error" },
};

static const char *member_string(const cr_json_t *obj, const char *name)
{
    return cr_json_string(pool, cr_json_get(pool, obj, name));
}

START_TEST(error_table_covers_every_kind)
{
    ck_assert_int_eq(sizeof(spec_rows) / sizeof(spec_rows[0]), CR_ERR__COUNT);
}
END_TEST

/* SPEC 10: x-should-retry is true for the request and token rate limits,
 * 502, 503 and 504, false for every other kind (the quota 429 too). */
START_TEST(error_should_retry_rule)
{
    apr_size_t i;

    for (i = 0; i < sizeof(spec_rows) / sizeof(spec_rows[0]); i++) {
        const spec_row *row = &spec_rows[i];
        int want = row->kind == CR_ERR_RATE_LIMITED
                   || row->kind == CR_ERR_TOKENS_LIMITED
                   || row->status == 502 || row->status == 503
                   || row->status == 504;

        ck_assert_msg(cr_error_should_retry(row->kind) == want,
                      "kind %d", row->kind);
    }
    ck_assert_int_eq(cr_error_should_retry(CR_ERR_QUOTA_EXCEEDED), 0);
    ck_assert_int_eq(cr_error_should_retry(CR_ERR__COUNT), 0);
}
END_TEST

START_TEST(error_openai_bodies)
{
    apr_size_t i;

    for (i = 0; i < sizeof(spec_rows) / sizeof(spec_rows[0]); i++) {
        const spec_row *row = &spec_rows[i];
        const char *body = cr_error_body(pool, CR_PROTO_OPENAI, row->kind,
                                         NULL, "req_abc");
        cr_json_t *doc = cr_json_parse(pool, body, strlen(body),
                                       CR_JSON_REJECT_DUPLICATES, NULL);
        cr_json_t *error;
        const char *message;

        ck_assert_msg(doc != NULL, "kind %d: not JSON: %s", row->kind, body);
        ck_assert_int_eq(cr_error_status(row->kind), row->status);
        ck_assert_uint_eq(cr_json_object_size(doc), 1);
        error = cr_json_get(pool, doc, "error");
        ck_assert_int_eq(cr_json_type(error), CR_JSON_OBJECT);
        ck_assert_uint_eq(cr_json_object_size(error), 4);
        message = member_string(error, "message");
        ck_assert_msg(message && *message, "kind %d: no message", row->kind);
        ck_assert_str_eq(message, cr_error_default_message(row->kind));
        ck_assert_ptr_null(strstr(message, "sk-"));
        ck_assert_ptr_nonnull(cr_json_get(pool, error, "param"));
        ck_assert(cr_json_is_null(cr_json_get(pool, error, "param")));
        ck_assert_ptr_nonnull(member_string(error, "type"));
        ck_assert_ptr_nonnull(member_string(error, "code"));
        if (row->openai_type) {
            ck_assert_str_eq(member_string(error, "type"), row->openai_type);
            ck_assert_str_eq(member_string(error, "code"), row->openai_code);
            ck_assert_str_eq(cr_error_openai_type(row->kind), row->openai_type);
            ck_assert_str_eq(cr_error_openai_code(row->kind), row->openai_code);
        }
        /* The request id travels in a header on OpenAI, not the body. */
        ck_assert_ptr_null(strstr(body, "req_abc"));
    }
}
END_TEST

START_TEST(error_anthropic_bodies)
{
    apr_size_t i;

    for (i = 0; i < sizeof(spec_rows) / sizeof(spec_rows[0]); i++) {
        const spec_row *row = &spec_rows[i];
        const char *body = cr_error_body(pool, CR_PROTO_ANTHROPIC, row->kind,
                                         NULL, "req_0123:abc.X-y");
        cr_json_t *doc = cr_json_parse(pool, body, strlen(body),
                                       CR_JSON_REJECT_DUPLICATES, NULL);
        cr_json_t *error;

        ck_assert_msg(doc != NULL, "kind %d: not JSON: %s", row->kind, body);
        ck_assert_uint_eq(cr_json_object_size(doc), 3);
        ck_assert_str_eq(member_string(doc, "type"), "error");
        ck_assert_str_eq(member_string(doc, "request_id"), "req_0123:abc.X-y");
        error = cr_json_get(pool, doc, "error");
        ck_assert_int_eq(cr_json_type(error), CR_JSON_OBJECT);
        ck_assert_uint_eq(cr_json_object_size(error), 2);
        ck_assert_str_eq(member_string(error, "type"), row->anthropic_type);
        ck_assert_str_eq(cr_error_anthropic_type(row->kind),
                         row->anthropic_type);
        ck_assert_str_eq(member_string(error, "message"),
                         cr_error_default_message(row->kind));

        /* Without an id, request_id is JSON null (present, not omitted). */
        body = cr_error_body(pool, CR_PROTO_ANTHROPIC, row->kind, NULL, NULL);
        doc = cr_json_parse(pool, body, strlen(body), 0, NULL);
        ck_assert_ptr_nonnull(doc);
        ck_assert_ptr_nonnull(cr_json_get(pool, doc, "request_id"));
        ck_assert(cr_json_is_null(cr_json_get(pool, doc, "request_id")));
    }
}
END_TEST

START_TEST(error_custom_message_is_escaped)
{
    const char *msg = "Model \"gpt-5\" is not\nallowed \\ \xc3\xa9";
    const char *body;
    cr_json_t *doc;

    body = cr_error_body(pool, CR_PROTO_OPENAI, CR_ERR_MODEL_NOT_PERMITTED,
                         msg, NULL);
    doc = cr_json_parse(pool, body, strlen(body), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(member_string(cr_json_get(pool, doc, "error"), "message"),
                     msg);

    body = cr_error_body(pool, CR_PROTO_ANTHROPIC, CR_ERR_MODEL_NOT_PERMITTED,
                         msg, "r1");
    doc = cr_json_parse(pool, body, strlen(body), 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(member_string(cr_json_get(pool, doc, "error"), "message"),
                     msg);

    /* A message that is not UTF-8 still gives a valid JSON body. */
    body = cr_error_body(pool, CR_PROTO_OPENAI, CR_ERR_INVALID_BODY,
                         "bad \xff byte", NULL);
    ck_assert_ptr_nonnull(cr_json_parse(pool, body, strlen(body), 0, NULL));
}
END_TEST

START_TEST(error_exact_openai_shape)
{
    ck_assert_str_eq(cr_error_body(pool, CR_PROTO_OPENAI, CR_ERR_RATE_LIMITED,
                                   "slow down", "id1"),
                     "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\","
                     "\"param\":null,\"code\":\"rate_limit_exceeded\"}}");
    ck_assert_str_eq(cr_error_body(pool, CR_PROTO_ANTHROPIC,
                                   CR_ERR_RATE_LIMITED, "slow down", "id1"),
                     "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                     "\"message\":\"slow down\"},\"request_id\":\"id1\"}");
}
END_TEST

START_TEST(error_default_messages_are_helpful)
{
    const char *m = cr_error_default_message(CR_ERR_MISSING_KEY);

    ck_assert_ptr_nonnull(strstr(m, "Authorization: Bearer"));
    ck_assert_ptr_nonnull(strstr(m, "x-api-key"));
    ck_assert_ptr_nonnull(strstr(cr_error_default_message(CR_ERR_MISSING_VERSION),
                                 "anthropic-version"));
    /* Out of range is treated as an internal error, not a crash. */
    ck_assert_int_eq(cr_error_status(CR_ERR__COUNT), 500);
    ck_assert_int_eq(cr_error_status((cr_error_e)-1), 500);
}
END_TEST

START_TEST(error_protocol_from_path)
{
    ck_assert_int_eq(cr_protocol_from_path("/v1/messages"), CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_protocol_from_path("/v1/messages/"), CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_protocol_from_path("/v1/messages/count_tokens"),
                     CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_protocol_from_path("/v1/messages/count_tokens/"),
                     CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_protocol_from_path("/gw/anthropic/v1/messages"),
                     CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_protocol_from_path("/messages"), CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_protocol_from_path("/v1/chat/completions"),
                     CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/v1/models"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/v1/messages//"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/v1/mymessages"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/v1/messages/batches"),
                     CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/v1/Messages"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/v1/count_tokens"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("messages"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path("/"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path(""), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_protocol_from_path(NULL), CR_PROTO_OPENAI);
}
END_TEST

/* ------------------------------------------------------------------ */
/* cr_reqid                                                            */
/* ------------------------------------------------------------------ */

START_TEST(reqid_valid_lengths)
{
    char id[CR_REQID_MAX_LEN + 2];

    ck_assert(!cr_reqid_valid(NULL));
    ck_assert(!cr_reqid_valid(""));
    ck_assert(cr_reqid_valid("a"));
    memset(id, 'x', sizeof(id) - 1);
    id[CR_REQID_MAX_LEN] = '\0';
    ck_assert_int_eq(strlen(id), 128);
    ck_assert(cr_reqid_valid(id));
    id[CR_REQID_MAX_LEN] = 'x';
    id[CR_REQID_MAX_LEN + 1] = '\0';
    ck_assert_int_eq(strlen(id), 129);
    ck_assert(!cr_reqid_valid(id));
}
END_TEST

START_TEST(reqid_valid_characters)
{
    ck_assert(cr_reqid_valid("ABCXYZabcxyz0189"));
    ck_assert(cr_reqid_valid("."));
    ck_assert(cr_reqid_valid("_"));
    ck_assert(cr_reqid_valid(":"));
    ck_assert(cr_reqid_valid("-"));
    ck_assert(cr_reqid_valid("a.b_c:d-e"));
    ck_assert(cr_reqid_valid("550e8400-e29b-41d4-a716-446655440000"));
    ck_assert(!cr_reqid_valid(" "));
    ck_assert(!cr_reqid_valid("a b"));
    ck_assert(!cr_reqid_valid("abc "));
    ck_assert(!cr_reqid_valid("a\tb"));
    ck_assert(!cr_reqid_valid("a\r\nX-Injected: 1"));
    ck_assert(!cr_reqid_valid("caf\xc3\xa9"));
    ck_assert(!cr_reqid_valid("\xe2\x80\x8b"));
    ck_assert(!cr_reqid_valid("a/b"));
    ck_assert(!cr_reqid_valid("a+b"));
    ck_assert(!cr_reqid_valid("a=b"));
    ck_assert(!cr_reqid_valid("\"a\""));
    ck_assert(!cr_reqid_valid("a,b"));
    ck_assert(!cr_reqid_valid("a;b"));
}
END_TEST

START_TEST(reqid_generate)
{
    const char *alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int seen[256] = { 0 };
    const char *first = cr_reqid_generate(pool);
    int i, c;

    for (i = 0; i < 2000; i++) {
        const char *id = cr_reqid_generate(pool);
        const char *s;

        ck_assert_int_eq(strlen(id), 28);
        ck_assert(strncmp(id, "req_", 4) == 0);
        ck_assert(cr_reqid_valid(id));
        for (s = id + 4; *s; s++) {
            ck_assert_ptr_nonnull(strchr(alphabet, *s));
            seen[(unsigned char)*s]++;
        }
        ck_assert_str_ne(id, first);
    }
    /* 48000 characters: each of the 62 appears (about 774 times each). */
    for (c = 0; alphabet[c]; c++) {
        ck_assert_msg(seen[(unsigned char)alphabet[c]] > 500,
                      "character %c seen only %d times", alphabet[c],
                      seen[(unsigned char)alphabet[c]]);
    }
}
END_TEST

/* A child forked after its parent has drawn random bytes for ids (they
 * are drawn in batches) makes other ids than the parent goes on making. */
START_TEST(reqid_generate_fork)
{
    char parent[20][32], child[20][32];
    int fds[2], i, j, status;
    pid_t pid;

    ck_assert_str_ne(cr_reqid_generate(pool), cr_reqid_generate(pool));
    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (i = 0; i < 20; i++) {
            char id[32] = { 0 };

            apr_cpystrn(id, cr_reqid_generate(pool), sizeof(id));
            if (write(fds[1], id, sizeof(id)) != (ssize_t)sizeof(id)) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    for (i = 0; i < 20; i++) {
        apr_cpystrn(parent[i], cr_reqid_generate(pool), sizeof(parent[i]));
        ck_assert_int_eq(read(fds[0], child[i], sizeof(child[i])),
                         sizeof(child[i]));
        ck_assert_int_eq(strlen(child[i]), 28);
        ck_assert(cr_reqid_valid(child[i]));
    }
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (i = 0; i < 20; i++) {
        for (j = 0; j < 20; j++) {
            ck_assert_str_ne(parent[i], child[j]);
        }
    }
}
END_TEST

/* Threads draw their own batches: no id is made twice. */
#define REQID_THREADS 4
#define REQID_PER_THREAD 500

static void *APR_THREAD_FUNC reqid_thread(apr_thread_t *t, void *data)
{
    char (*ids)[32] = data;
    apr_pool_t *p;
    int i;

    apr_pool_create(&p, NULL);
    for (i = 0; i < REQID_PER_THREAD; i++) {
        apr_cpystrn(ids[i], cr_reqid_generate(p), sizeof(ids[i]));
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static int reqid_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

START_TEST(reqid_generate_threads)
{
    static char ids[REQID_THREADS * REQID_PER_THREAD][32];
    apr_thread_t *threads[REQID_THREADS];
    apr_status_t rv;
    int i;

    for (i = 0; i < REQID_THREADS; i++) {
        ck_assert_int_eq(apr_thread_create(&threads[i], NULL, reqid_thread,
                                           ids[i * REQID_PER_THREAD], pool),
                         APR_SUCCESS);
    }
    for (i = 0; i < REQID_THREADS; i++) {
        apr_thread_join(&rv, threads[i]);
    }
    qsort(ids, REQID_THREADS * REQID_PER_THREAD, sizeof(ids[0]), reqid_cmp);
    for (i = 0; i < REQID_THREADS * REQID_PER_THREAD; i++) {
        ck_assert_int_eq(strlen(ids[i]), 28);
        ck_assert(cr_reqid_valid(ids[i]));
        if (i > 0) {
            ck_assert_str_ne(ids[i - 1], ids[i]);
        }
    }
}
END_TEST

START_TEST(reqid_choose_order)
{
    const char *id;

    ck_assert_str_eq(cr_reqid_choose(pool, "one", "two", "three"), "one");
    ck_assert_str_eq(cr_reqid_choose(pool, NULL, "two", "three"), "two");
    ck_assert_str_eq(cr_reqid_choose(pool, "bad id", "two", "three"), "two");
    ck_assert_str_eq(cr_reqid_choose(pool, "", "", "three"), "three");
    ck_assert_str_eq(cr_reqid_choose(pool, NULL, "bad/id", "three"), "three");
    id = cr_reqid_choose(pool, NULL, NULL, NULL);
    ck_assert(strncmp(id, "req_", 4) == 0 && strlen(id) == 28);
    id = cr_reqid_choose(pool, "bad id", "caf\xc3\xa9", "x y");
    ck_assert(strncmp(id, "req_", 4) == 0 && strlen(id) == 28);
    ck_assert(cr_reqid_valid(id));
}
END_TEST

/* ------------------------------------------------------------------ */
/* cr_route                                                            */
/* ------------------------------------------------------------------ */

START_TEST(route_parse_protocol)
{
    ck_assert_int_eq(cr_route_parse_protocol("openai"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_route_parse_protocol("OpenAI"), CR_PROTO_OPENAI);
    ck_assert_int_eq(cr_route_parse_protocol("anthropic"), CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_route_parse_protocol("ANTHROPIC"), CR_PROTO_ANTHROPIC);
    ck_assert_int_eq(cr_route_parse_protocol("claude"), -1);
    ck_assert_int_eq(cr_route_parse_protocol(""), -1);
    ck_assert_int_eq(cr_route_parse_protocol(NULL), -1);
}
END_TEST

START_TEST(route_normalize_url)
{
    ck_assert_str_eq(cr_route_normalize_url(pool, "https://api.openai.com/v1"),
                     "https://api.openai.com/v1");
    ck_assert_str_eq(cr_route_normalize_url(pool, "https://api.openai.com/v1/"),
                     "https://api.openai.com/v1");
    ck_assert_str_eq(cr_route_normalize_url(pool, "http://127.0.0.1:8080//"),
                     "http://127.0.0.1:8080");
    ck_assert_str_eq(cr_route_normalize_url(pool, "balancer://llm/v1"),
                     "balancer://llm/v1");
    ck_assert_str_eq(cr_route_normalize_url(pool, "HTTP://Example.com"),
                     "HTTP://Example.com");
    ck_assert_str_eq(cr_route_normalize_url(pool, "http://[::1]:9000/v1"),
                     "http://[::1]:9000/v1");
    ck_assert_ptr_null(cr_route_normalize_url(pool, "ftp://example.com/"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "api.openai.com/v1"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "http://"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "http:///v1"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "http://host/v1?x=1"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "http://host/v1#frag"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "http://u:p@host/v1"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, "http://host/a b"));
    ck_assert_ptr_null(cr_route_normalize_url(pool, ""));
    ck_assert_ptr_null(cr_route_normalize_url(pool, NULL));
}
END_TEST

static apr_array_header_t *make_routes(const cr_upstream_t *ups,
                                       const char *const *spec)
{
    apr_array_header_t *routes = apr_array_make(pool, 4, sizeof(cr_route_t));

    /* spec: glob, upstream index as "0".."9", ... NULL */
    for (; spec[0] != NULL; spec += 2) {
        cr_route_t *r = apr_array_push(routes);
        r->glob = spec[0];
        r->upstream = &ups[spec[1][0] - '0'];
        r->upstream_name = r->upstream->name;
    }
    return routes;
}

START_TEST(route_find_first_match_and_protocol)
{
    static const cr_upstream_t ups[] = {
        { "oa", CR_PROTO_OPENAI, "https://a/v1", NULL },
        { "oa2", CR_PROTO_OPENAI, "https://b/v1", NULL },
        { "an", CR_PROTO_ANTHROPIC, "https://c/v1", NULL },
    };
    static const char *const spec[] = {
        "gpt-4o-mini", "1",
        "gpt-*", "0",
        "*", "1",
        "claude-*", "2",
        "o[13]-*", "0",
        NULL
    };
    apr_array_header_t *routes = make_routes(ups, spec);
    const cr_route_t *r;

    r = cr_route_find(routes, "gpt-4o-mini", CR_PROTO_OPENAI);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->upstream->name, "oa2");
    r = cr_route_find(routes, "gpt-4o", CR_PROTO_OPENAI);
    ck_assert_str_eq(r->upstream->name, "oa");
    ck_assert_str_eq(r->glob, "gpt-*");
    /* "*" comes before "claude-*" but speaks OpenAI. */
    r = cr_route_find(routes, "claude-3-5-sonnet", CR_PROTO_OPENAI);
    ck_assert_str_eq(r->upstream->name, "oa2");
    r = cr_route_find(routes, "claude-3-5-sonnet", CR_PROTO_ANTHROPIC);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->upstream->name, "an");
    ck_assert_ptr_null(cr_route_find(routes, "gpt-4o", CR_PROTO_ANTHROPIC));
    /* fnmatch semantics: case matters, "*" needs the full name to match. */
    ck_assert_ptr_null(cr_route_find(routes, "Claude-3", CR_PROTO_ANTHROPIC));
    ck_assert_ptr_null(cr_route_find(routes, "my-claude-3", CR_PROTO_ANTHROPIC));
    ck_assert_ptr_null(cr_route_find(routes, NULL, CR_PROTO_OPENAI));
    ck_assert_ptr_null(cr_route_find(NULL, "gpt-4o", CR_PROTO_OPENAI));
}
END_TEST

START_TEST(route_find_bracket_glob_and_empty)
{
    static const cr_upstream_t ups[] = {
        { "oa", CR_PROTO_OPENAI, "https://a/v1", NULL },
    };
    static const char *const spec[] = { "o[13]-*", "0", NULL };
    apr_array_header_t *routes = make_routes(ups, spec);
    apr_array_header_t *none = apr_array_make(pool, 1, sizeof(cr_route_t));

    ck_assert_ptr_nonnull(cr_route_find(routes, "o1-mini", CR_PROTO_OPENAI));
    ck_assert_ptr_nonnull(cr_route_find(routes, "o3-pro", CR_PROTO_OPENAI));
    ck_assert_ptr_null(cr_route_find(routes, "o2-mini", CR_PROTO_OPENAI));
    ck_assert_ptr_null(cr_route_find(none, "gpt-4o", CR_PROTO_OPENAI));
}
END_TEST

/* Prepared routes (cr_route_prepare, at start-up) find what unprepared
 * ones find, and carry the proxy: URL and the Authorization value. */
START_TEST(route_find_prepared)
{
    static const cr_upstream_t ups[] = {
        { "oa", CR_PROTO_OPENAI, "https://a/v1", "sk-up" },
        { "oa2", CR_PROTO_OPENAI, "https://b/v1", NULL },
        { "an", CR_PROTO_ANTHROPIC, "https://c/v1", "sk-an" },
    };
    static const char *const spec[] = {
        "gpt-4o-mini", "1",
        "gpt-*", "0",
        "o[13]-*", "0",
        "a*b", "1",
        "x\\*", "1",
        "claude-*", "2",
        "*", "1",
        NULL
    };
    static const char *const models[] = {
        "gpt-4o-mini", "gpt-4o-mini2", "gpt-4o", "gpt-", "gpt", "o1-mini",
        "o2-mini", "ab", "axxb", "abc", "x*", "xy", "claude-3", "Claude-3",
        "", "*", NULL
    };
    apr_array_header_t *plain = make_routes(ups, spec);
    apr_array_header_t *prepared = make_routes(ups, spec);
    int i, proto;

    for (i = 0; i < prepared->nelts; i++) {
        cr_route_prepare(pool, &APR_ARRAY_IDX(prepared, i, cr_route_t));
    }
    for (proto = CR_PROTO_OPENAI; proto <= CR_PROTO_ANTHROPIC; proto++) {
        for (i = 0; models[i]; i++) {
            const cr_route_t *a = cr_route_find(plain, models[i], proto);
            const cr_route_t *b = cr_route_find(prepared, models[i], proto);

            ck_assert_msg((a == NULL) == (b == NULL), "model %s", models[i]);
            if (a) {
                ck_assert_str_eq(a->glob, b->glob);
            }
        }
    }
    ck_assert_str_eq(APR_ARRAY_IDX(prepared, 1, cr_route_t).proxy_url,
                     "proxy:https://a/v1");
    ck_assert_int_eq(APR_ARRAY_IDX(prepared, 1, cr_route_t).proxy_url_len,
                     strlen("proxy:https://a/v1"));
    ck_assert_str_eq(APR_ARRAY_IDX(prepared, 1, cr_route_t).bearer,
                     "Bearer sk-up");
    ck_assert_ptr_null(APR_ARRAY_IDX(prepared, 0, cr_route_t).bearer);
    ck_assert_str_eq(APR_ARRAY_IDX(prepared, 5, cr_route_t).bearer,
                     "Bearer sk-an");
}
END_TEST

/* The decimal text of cr_num.h is what "%" APR_UINT64_T_FMT writes: every
 * number below 2,000,000, each power of ten and its neighbours (where the
 * digit count changes), the 32-bit boundary and the ends of both types. */
START_TEST(num_put_matches_printf)
{
    static const apr_int64_t signed_cases[] = {
        APR_INT64_MIN, APR_INT64_MIN + 1, -1234567890123LL, -100, -1, 0, 1,
        APR_INT64_MAX - 1, APR_INT64_MAX
    };
    char got[CR_NUM_TEXT_MAX + 1], want[32];
    apr_uint64_t u, p;
    int k, d;
    apr_size_t i;

    for (u = 0; u < 2000000; u++) {
        *cr_num_put_uint64(got, u) = '\0';
        apr_snprintf(want, sizeof(want), "%" APR_UINT64_T_FMT, u);
        ck_assert_str_eq(got, want);
    }
    for (k = 0, p = 1; k < 20; k++, p *= 10) {
        for (d = -2; d <= 2; d++) {
            u = p + (apr_uint64_t)(apr_int64_t)d;
            *cr_num_put_uint64(got, u) = '\0';
            apr_snprintf(want, sizeof(want), "%" APR_UINT64_T_FMT, u);
            ck_assert_str_eq(got, want);
        }
    }
    for (u = APR_UINT32_MAX - 2; u <= (apr_uint64_t)APR_UINT32_MAX + 2; u++) {
        *cr_num_put_uint64(got, u) = '\0';
        apr_snprintf(want, sizeof(want), "%" APR_UINT64_T_FMT, u);
        ck_assert_str_eq(got, want);
    }
    *cr_num_put_uint64(got, APR_UINT64_MAX) = '\0';
    ck_assert_str_eq(got, "18446744073709551615");
    for (i = 0; i < sizeof(signed_cases) / sizeof(signed_cases[0]); i++) {
        *cr_num_put_int64(got, signed_cases[i]) = '\0';
        apr_snprintf(want, sizeof(want), "%" APR_INT64_T_FMT,
                     signed_cases[i]);
        ck_assert_str_eq(got, want);
    }
}
END_TEST

/* The buffer forms of the rate-limit headers' times (the pool forms are
 * tested in test_keys.c). */
START_TEST(time_put_duration_and_rfc3339)
{
    static const struct { apr_interval_time_t d; const char *text; } cases[] = {
        { -1, "0s" }, { 0, "0s" }, { 1, "1ms" }, { 999, "1ms" },
        { 1000, "1ms" }, { 1001, "2ms" }, { 9001, "10ms" }, { 10000, "10ms" },
        { 99000, "99ms" }, { 99001, "100ms" }, { 100000, "100ms" },
        { 998001, "999ms" }, { 999000, "999ms" }, { 999001, "1s" },
        { 1000000, "1s" }, { 61000000, "1m1s" },
        { APR_INT64_C(3723000000), "1h2m3s" }
    };
    char buf[CR_TIME_DURATION_SIZE], t[CR_TIME_RFC3339_SIZE];
    apr_size_t i, n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = cr_time_put_duration(buf, cases[i].d);
        ck_assert_str_eq(buf, cases[i].text);
        ck_assert_int_eq(n, strlen(cases[i].text));
        ck_assert_str_eq(cr_time_format_duration(pool, cases[i].d),
                         cases[i].text);
    }
    n = cr_time_put_rfc3339(t, apr_time_from_sec(1795780800) + 999999);
    ck_assert_str_eq(t, "2026-11-27T12:00:00Z");
    ck_assert_int_eq(n, 20);
    n = cr_time_put_rfc3339(t, 0);
    ck_assert_str_eq(t, "1970-01-01T00:00:00Z");
    /* Past year 9999: what "%04d" writes. */
    n = cr_time_put_rfc3339(t, apr_time_from_sec(APR_INT64_C(253402300800)));
    ck_assert_str_eq(t, "10000-01-01T00:00:00Z");
    ck_assert_int_eq(n, 21);
    ck_assert_str_eq(cr_time_format_rfc3339(pool, 0),
                     "1970-01-01T00:00:00Z");
}
END_TEST

START_TEST(route_credential_literal_and_env)
{
    const char *err = NULL;
    const char *c;

    c = cr_route_resolve_credential(pool, "sk-literal-123", &err);
    ck_assert_str_eq(c, "sk-literal-123");
    ck_assert_ptr_null(err);

    setenv("CR_TEST_UPSTREAM_KEY", "sk-from-env-456", 1);
    c = cr_route_resolve_credential(pool, "env:CR_TEST_UPSTREAM_KEY", &err);
    ck_assert_str_eq(c, "sk-from-env-456");

    unsetenv("CR_TEST_UPSTREAM_UNSET");
    c = cr_route_resolve_credential(pool, "env:CR_TEST_UPSTREAM_UNSET", &err);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "CR_TEST_UPSTREAM_UNSET"));

    setenv("CR_TEST_UPSTREAM_EMPTY", "", 1);
    err = NULL;
    c = cr_route_resolve_credential(pool, "env:CR_TEST_UPSTREAM_EMPTY", &err);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "CR_TEST_UPSTREAM_EMPTY"));

    err = NULL;
    ck_assert_ptr_null(cr_route_resolve_credential(pool, "env:", &err));
    ck_assert_ptr_nonnull(err);
    err = NULL;
    ck_assert_ptr_null(cr_route_resolve_credential(pool, "", &err));
    ck_assert_ptr_nonnull(err);
}
END_TEST

/* Write content to a fresh temporary file; returns its path. */
static const char *temp_file_with(const char *content, apr_size_t len)
{
    const char *dir;
    char *path;
    apr_file_t *f;
    apr_size_t n = len;

    ck_assert_int_eq(apr_temp_dir_get(&dir, pool), APR_SUCCESS);
    path = apr_pstrcat(pool, dir, "/cr_test_credXXXXXX", NULL);
    ck_assert_int_eq(apr_file_mktemp(&f, path, APR_FOPEN_CREATE
                                     | APR_FOPEN_READ | APR_FOPEN_WRITE
                                     | APR_FOPEN_EXCL, pool), APR_SUCCESS);
    ck_assert_int_eq(apr_file_write_full(f, content, len, &n), APR_SUCCESS);
    apr_file_close(f);
    return path;
}

static const char *resolve_file(const char *content, apr_size_t len,
                                const char **err)
{
    const char *path = temp_file_with(content, len);
    const char *c = cr_route_resolve_credential(
        pool, apr_pstrcat(pool, "file:", path, NULL), err);

    apr_file_remove(path, pool);
    if (c == NULL) {
        ck_assert_ptr_nonnull(*err);
        ck_assert_ptr_nonnull(strstr(*err, path));
    }
    return c;
}

START_TEST(route_credential_file)
{
    const char *err = NULL;

    ck_assert_str_eq(resolve_file("sk-file-789\n", 12, &err), "sk-file-789");
    ck_assert_str_eq(resolve_file("sk-file-789", 11, &err), "sk-file-789");
    ck_assert_str_eq(resolve_file("sk-file-789\r\n", 13, &err), "sk-file-789");
    ck_assert_str_eq(resolve_file("sk-file-789  \t\n", 15, &err),
                     "sk-file-789");
    ck_assert_str_eq(resolve_file("sk-first\nsk-second\n", 19, &err),
                     "sk-first");

    err = NULL;
    ck_assert_ptr_null(resolve_file("", 0, &err));
    err = NULL;
    ck_assert_ptr_null(resolve_file("\n", 1, &err));
    err = NULL;
    ck_assert_ptr_null(resolve_file("  \r\n", 4, &err));
    err = NULL;
    ck_assert_ptr_null(resolve_file("\nsk-second-line\n", 16, &err));
    ck_assert_ptr_null(strstr(err, "sk-second-line"));
    err = NULL;
    ck_assert_ptr_null(resolve_file("sk-SECRET\0tail\n", 15, &err));
    ck_assert_ptr_null(strstr(err, "SECRET"));
}
END_TEST

START_TEST(route_credential_file_missing)
{
    const char *err = NULL;
    const char *c = cr_route_resolve_credential(
        pool, "file:/nonexistent/cr-test/credential", &err);

    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/cr-test/credential"));
    err = NULL;
    ck_assert_ptr_null(cr_route_resolve_credential(pool, "file:", &err));
    ck_assert_ptr_nonnull(err);
}
END_TEST

/* ------------------------------------------------------------------ */

/* A body whose "content" string is len bytes made of unit repeated, with
 * the model after it (so the parser must get past the long string). */
static const char *long_string_body(apr_pool_t *p, const char *unit,
                                    apr_size_t len, const char *model)
{
    apr_size_t ulen = strlen(unit), n = 0;
    char *content = apr_palloc(p, len + ulen + 1);

    while (n < len) {
        memcpy(content + n, unit, ulen);
        n += ulen;
    }
    content[n] = '\0';
    return apr_psprintf(p, "{\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"%s\"}],\"model\":%s}", content, model);
}

/* Strings past the kept length are skipped on the way to the parser: a
 * long string made of escapes, multi-byte characters or surrogate pairs
 * is still a valid body, whatever the read size, and a model that long is
 * still refused. */
START_TEST(body_stream_long_strings)
{
    static const char *const units[] = {
        "abc", "\\\"q\\\\", "\xc3\xa9\xe4\xb8\xad", "\\ud83d\\ude00x",
        "\\u00e9", "\xf0\x9f\x98\x80", NULL
    };
    static const apr_size_t chunks[] = { 1, 7, 4096, 1 << 20 };
    int u;
    apr_size_t c;

    for (u = 0; units[u]; u++) {
        const char *body = long_string_body(pool, units[u], 300 * 1024,
                                            "\"gpt-4o\"");
        for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            piece_reader r = reader_for(body, strlen(body), chunks[c]);
            cr_body_info_t info;
            cr_body_status_e st = cr_body_inspect_stream(pool, piece_read,
                                                         &r, &info);
            ck_assert_msg(st == CR_BODY_OK, "unit %d chunk %lu: %d (%s)", u,
                          (unsigned long)chunks[c], st,
                          info.detail ? info.detail : "");
            ck_assert_str_eq(info.model, "gpt-4o");
        }
    }
    {
        /* a 200 KiB model string */
        char *model = apr_palloc(pool, 200 * 1024 + 1);
        const char *body;
        memset(model, 'm', 200 * 1024);
        model[200 * 1024] = '\0';
        body = apr_psprintf(pool, "{\"model\":\"%s\"}", model);
        piece_reader r = reader_for(body, strlen(body), 4096);
        cr_body_info_t info;
        ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                         CR_BODY_MODEL_NOT_STRING);
    }
    {
        /* an unterminated long string is still a truncated body */
        const char *body = long_string_body(pool, "abc", 300 * 1024,
                                            "\"gpt-4o\"");
        piece_reader r = reader_for(body, 100 * 1024, 4096);
        cr_body_info_t info;
        ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                         CR_BODY_INVALID_JSON);
    }
}
END_TEST

/* The text skipped on the way to Jansson is still checked as Jansson
 * checks it: in any string, at any depth, in reads of any size, a bad
 * byte is 400 (with its place in the body) and good text passes. */
START_TEST(body_stream_skipped_text_checked)
{
    static const struct {
        const char *text;      /* a string's content, raw */
        int valid;
    } cases[] = {
        { "plain text, \\\"quoted\\\", \\n and \\u00e9", 1 },
        { "h\xc3\xa9llo \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 1 },
        { "\\ud83d\\ude00 a pair, then text", 1 },
        { "ab\xc3\x28" "cd", 0 },                  /* bad continuation */
        { "a\x01" "b", 0 },                        /* control character */
        { "tab\there", 0 },
        { "a\xe0\x80\xaf" "b", 0 },                /* overlong '/' */
        { "a\xc0\xaf" "b", 0 },                    /* overlong, 2 bytes */
        { "a\xed\xa0\x80" "b", 0 },                /* a surrogate in UTF-8 */
        { "a\xf4\x90\x80\x80" "b", 0 },            /* past U+10FFFF */
        { "a\xff" "b", 0 },
        { "cut \xe4\xb8", 0 },                     /* cut by the quote */
        { "cut \xe4\xb8\\n", 0 },                  /* cut by an escape */
        { "\\ud83dtext\\ude00", 0 },               /* lone surrogates */
        { "bad escape \\q", 0 },
        { NULL, 0 }
    };
    static const char *const shapes[] = {
        /* nested (no text kept) and top level (512 bytes kept) */
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"%s%s\"}]}",
        "{\"model\":\"gpt-4o\",\"system\":\"%s%s\"}",
        NULL
    };
    static const apr_size_t chunks[] = { 1, 3, 7, 4096 };
    char *pad = apr_palloc(pool, 601);
    int c, sh, pd;
    apr_size_t k;

    memset(pad, 'p', 600);
    pad[600] = '\0';
    for (c = 0; cases[c].text; c++) {
        for (sh = 0; shapes[sh]; sh++) {
            for (pd = 0; pd < 2; pd++) {
                /* with padding, the case lies past the kept 512 bytes */
                const char *body = apr_psprintf(pool, shapes[sh],
                                                pd ? pad : "", cases[c].text);
                cr_body_info_t whole;
                cr_body_status_e want = cases[c].valid ? CR_BODY_OK
                                                       : CR_BODY_INVALID_JSON;

                ck_assert_int_eq(cr_body_inspect(pool, body, strlen(body),
                                                 &whole), want);
                for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
                    piece_reader r = reader_for(body, strlen(body),
                                                chunks[k]);
                    cr_body_info_t info;
                    cr_body_status_e st = cr_body_inspect_stream(
                        pool, piece_read, &r, &info);
                    ck_assert_msg(st == want, "case %d shape %d pad %d "
                                  "chunk %lu: %d (%s)", c, sh, pd,
                                  (unsigned long)chunks[k], st,
                                  info.detail ? info.detail : "");
                    if (!cases[c].valid) {
                        ck_assert_ptr_nonnull(strstr(info.detail,
                                                     "not valid JSON"));
                    }
                    else {
                        ck_assert_str_eq(info.model, "gpt-4o");
                    }
                }
            }
        }
    }
    {
        /* the position given is the bad byte's place in the body */
        const char *body = "{\"model\":\"m\",\"x\":[\"abc\xff\"]}";
        piece_reader r = reader_for(body, strlen(body), 4096);
        cr_body_info_t info;
        ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                         CR_BODY_INVALID_JSON);
        ck_assert_str_eq(info.detail, "The request body is not valid JSON: "
                         "the text is not valid UTF-8 (position 22).");
    }
}
END_TEST

/* Found in review: a UTF-8 sequence cut by a quote or an escape at the
 * start of a read (nothing dropped yet in that read) once made the filter
 * write one byte past the read; and escapes counted by their raw bytes let
 * a top-level "model" be cut while its decoded text was short, so the two
 * inspections disagreed on the model. */
START_TEST(body_stream_review_findings)
{
    static const apr_size_t chunks[] = { 1, 2, 3, 1023, 1024, 1025, 4096 };
    char *buf = apr_palloc(pool, 4096);
    const char *bodies[4];
    apr_size_t k;
    int b, i;

    /* the lead byte at offset 1023, the quote or an escape at 1024 */
    for (b = 0; b < 3; b++) {
        const char *head = "{\"model\":\"gpt-4o\",\"x\":[\"";
        apr_size_t hl = strlen(head);
        memcpy(buf, head, hl);
        memset(buf + hl, 'a', 1023 - hl);
        buf[1023] = (char)0xC3;
        /* ...and more than a read's worth after it, so that the read
         * holding the quote is a full 1024 bytes */
        memset(buf + 1024, 'p', 1100);
        buf[2124] = '\0';
        bodies[b] = apr_pstrcat(pool, apr_pstrmemdup(pool, buf, 1024),
                                b == 0 ? "\"],\"pad\":\""
                                : b == 1 ? "\\n\"],\"pad\":\""
                                : "A\"],\"pad\":\"", buf + 1024, "\"}",
                                NULL);
    }
    bodies[3] = "{\"a\":[\"\xC3\"],\"model\":\"m\"}";
    for (b = 0; b < 4; b++) {
        cr_body_info_t whole;
        ck_assert_int_eq(cr_body_inspect(pool, bodies[b], strlen(bodies[b]),
                                         &whole), CR_BODY_INVALID_JSON);
        for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
            piece_reader r = reader_for(bodies[b], strlen(bodies[b]),
                                        chunks[k]);
            cr_body_info_t info;
            ck_assert_msg(cr_body_inspect_stream(pool, piece_read, &r, &info)
                          == CR_BODY_INVALID_JSON, "body %d chunk %lu: %s",
                          b, (unsigned long)chunks[k], info.detail);
        }
    }

    /* a model made of escapes: 86 x \u0061 then "b" (87 bytes decoded,
     * 517 raw) is a valid model; with 200 b's it is too long, both ways */
    for (i = 0; i < 2; i++) {
        char *esc = apr_palloc(pool, 86 * 6 + 1);
        const char *body, *tail = i ? apr_psprintf(pool, "%0200d", 0) : "b";
        cr_body_info_t whole;
        int e;

        for (e = 0; e < 86; e++) {
            memcpy(esc + e * 6, "\\u0061", 6);
        }
        esc[86 * 6] = '\0';
        body = apr_psprintf(pool, "{\"model\":\"%s%s\"}", esc, tail);
        ck_assert_int_eq(cr_body_inspect(pool, body, strlen(body), &whole),
                         i ? CR_BODY_MODEL_NOT_STRING : CR_BODY_OK);
        for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
            piece_reader r = reader_for(body, strlen(body), chunks[k]);
            cr_body_info_t info;
            ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r,
                                                    &info),
                             i ? CR_BODY_MODEL_NOT_STRING : CR_BODY_OK);
            if (!i) {
                ck_assert_str_eq(info.model, whole.model);
            }
        }
    }
}
END_TEST

/* Long member names that differ only after their first 512 bytes are
 * distinct; equal ones are accepted (not a member the gateway decides on),
 * and a long name is never taken for "model". */
START_TEST(body_stream_long_member_names)
{
    char *name = apr_palloc(pool, 701);
    const char *a, *b, *doc;
    static const apr_size_t chunks[] = { 1, 3, 4096 };
    apr_size_t c;

    memset(name, 'n', 700);
    name[700] = '\0';
    a = apr_pstrcat(pool, name, "a", NULL);
    b = apr_pstrcat(pool, name, "b", NULL);
    for (c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        cr_body_info_t info;
        piece_reader r;

        doc = apr_psprintf(pool, "{\"model\":\"gpt-4o\",\"%s\":1,"
                           "\"x\":[{\"%s\":\"%s\",\"%s\":2}],\"%s\":[\"%s\","
                           "\"%s\"]}", a, a, name, b, b, a, a);
        r = reader_for(doc, strlen(doc), chunks[c]);
        ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                         CR_BODY_OK);
        ck_assert_str_eq(info.model, "gpt-4o");

        doc = apr_psprintf(pool, "{\"model\":\"gpt-4o\",\"x\":{\"%s\":1,"
                           "\"%s\":2},\"model%s\":3}", a, a, name);
        r = reader_for(doc, strlen(doc), chunks[c]);
        ck_assert_int_eq(cr_body_inspect_stream(pool, piece_read, &r, &info),
                         CR_BODY_OK);
        ck_assert_str_eq(info.model, "gpt-4o");
    }
}
END_TEST


/* ---- the body scanner (cr_body.c): every refusal class, the decided
 * members, and pieces of every size ------------------------------------ */

typedef struct {
    const char *name;
    const char *data;
    apr_size_t len;             /* 0: strlen */
    cr_body_status_e status;
} scan_case;

#define SCAN(n, d, st) { n, d, 0, st }
#define SCAN_LEN(n, d, st) { n, d, sizeof(d) - 1, st }

static const scan_case scan_cases[] = {
    /* syntax */
    SCAN("trailing comma in object", "{\"model\":\"m\",}", CR_BODY_INVALID_JSON),
    SCAN("trailing comma in array", "{\"model\":\"m\",\"a\":[1,]}", CR_BODY_INVALID_JSON),
    SCAN("missing colon", "{\"model\" \"m\"}", CR_BODY_INVALID_JSON),
    SCAN("mismatched close", "{\"model\":\"m\"]", CR_BODY_INVALID_JSON),
    SCAN("mismatched close in array", "{\"model\":\"m\",\"a\":[1}}", CR_BODY_INVALID_JSON),
    SCAN("bad literal", "{\"model\":\"m\",\"a\":tru}", CR_BODY_INVALID_JSON),
    SCAN("literal too long", "{\"model\":\"m\",\"a\":nulll}", CR_BODY_INVALID_JSON),
    SCAN("capital literal", "{\"model\":\"m\",\"a\":True}", CR_BODY_INVALID_JSON),
    SCAN("leading zero", "{\"model\":\"m\",\"a\":01}", CR_BODY_INVALID_JSON),
    SCAN("minus alone", "{\"model\":\"m\",\"a\":-}", CR_BODY_INVALID_JSON),
    SCAN("dot without digits", "{\"model\":\"m\",\"a\":1.}", CR_BODY_INVALID_JSON),
    SCAN("exponent without digits", "{\"model\":\"m\",\"a\":1e+}", CR_BODY_INVALID_JSON),
    SCAN("leading dot", "{\"model\":\"m\",\"a\":.5}", CR_BODY_INVALID_JSON),
    SCAN("plus sign", "{\"model\":\"m\",\"a\":+1}", CR_BODY_INVALID_JSON),
    SCAN("number then dot", "{\"model\":\"m\",\"a\":1.5.3}", CR_BODY_INVALID_JSON),
    SCAN("top-level number cut", "-", CR_BODY_INVALID_JSON),
    SCAN("unquoted name", "{model:\"m\"}", CR_BODY_INVALID_JSON),
    SCAN("vertical tab as space", "{\"model\":\"m\"\v}", CR_BODY_INVALID_JSON),
    SCAN("cut in a name", "{\"mod", CR_BODY_INVALID_JSON),
    SCAN("cut after colon", "{\"model\":", CR_BODY_INVALID_JSON),
    /* bad UTF-8 */
    SCAN("overlong 2", "{\"model\":\"m\",\"a\":\"\xc0\xaf\"}", CR_BODY_INVALID_JSON),
    SCAN("overlong 3", "{\"model\":\"m\",\"a\":\"\xe0\x80\xaf\"}", CR_BODY_INVALID_JSON),
    SCAN("overlong 4", "{\"model\":\"m\",\"a\":\"\xf0\x80\x80\xaf\"}", CR_BODY_INVALID_JSON),
    SCAN("surrogate in UTF-8", "{\"model\":\"m\",\"a\":\"\xed\xa0\x80\"}", CR_BODY_INVALID_JSON),
    SCAN("past U+10FFFF", "{\"model\":\"m\",\"a\":\"\xf4\x90\x80\x80\"}", CR_BODY_INVALID_JSON),
    SCAN("lead byte F5", "{\"model\":\"m\",\"a\":\"\xf5\x80\x80\x80\"}", CR_BODY_INVALID_JSON),
    SCAN("cut by a quote", "{\"model\":\"m\",\"a\":\"\xe2\x82\"}", CR_BODY_INVALID_JSON),
    SCAN("cut by an escape", "{\"model\":\"m\",\"a\":\"\xe2\\n\"}", CR_BODY_INVALID_JSON),
    SCAN("lone continuation", "{\"model\":\"m\",\"a\":\"x\x80y\"}", CR_BODY_INVALID_JSON),
    SCAN("byte FF", "{\"model\":\"m\",\"a\":\"\xff\"}", CR_BODY_INVALID_JSON),
    SCAN("UTF-8 outside a string", "{\"model\":\"m\",\xc3\xa9:1}", CR_BODY_INVALID_JSON),
    SCAN("bad UTF-8 in model", "{\"model\":\"\xc3\"}", CR_BODY_INVALID_JSON),
    SCAN("bad UTF-8 in a top name", "{\"mod\xc3\":1,\"model\":\"m\"}", CR_BODY_INVALID_JSON),
    /* control characters */
    SCAN("raw tab in string", "{\"model\":\"m\",\"a\":\"x\ty\"}", CR_BODY_INVALID_JSON),
    SCAN("raw newline in model", "{\"model\":\"m\n\"}", CR_BODY_INVALID_JSON),
    SCAN("control 1F", "{\"model\":\"m\",\"a\":\"\x1f\"}", CR_BODY_INVALID_JSON),
    SCAN_LEN("raw NUL in a nested string", "{\"model\":\"m\",\"a\":[\"\0\"]}", CR_BODY_INVALID_JSON),
    SCAN_LEN("NUL after a number", "{\"model\":\"m\",\"a\":[1\0]}", CR_BODY_INVALID_JSON),
    SCAN_LEN("NUL after a literal", "{\"model\":\"m\",\"a\":true\0}", CR_BODY_INVALID_JSON),
    /* escapes */
    SCAN("bad escape", "{\"model\":\"m\",\"a\":\"\\x\"}", CR_BODY_INVALID_JSON),
    SCAN("capital U escape", "{\"model\":\"m\",\"a\":\"\\U0041\"}", CR_BODY_INVALID_JSON),
    SCAN("bad hex", "{\"model\":\"m\",\"a\":\"\\u12g4\"}", CR_BODY_INVALID_JSON),
    SCAN("short hex", "{\"model\":\"m\",\"a\":\"\\u12\"}", CR_BODY_INVALID_JSON),
    SCAN("lone high surrogate", "{\"model\":\"m\",\"a\":\"\\ud800\"}", CR_BODY_INVALID_JSON),
    SCAN("lone low surrogate", "{\"model\":\"m\",\"a\":\"\\udc00\"}", CR_BODY_INVALID_JSON),
    SCAN("high then non-low", "{\"model\":\"m\",\"a\":\"\\ud800\\u0041\"}", CR_BODY_INVALID_JSON),
    SCAN("high then text", "{\"model\":\"m\",\"a\":\"\\ud800x\"}", CR_BODY_INVALID_JSON),
    SCAN("high then other escape", "{\"model\":\"m\",\"a\":\"\\ud800\\n\"}", CR_BODY_INVALID_JSON),
    SCAN("two highs", "{\"model\":\"m\",\"a\":\"\\ud800\\ud800\"}", CR_BODY_INVALID_JSON),
    SCAN("escaped NUL in a name", "{\"model\":\"m\",\"\\u0000\":1}", CR_BODY_INVALID_JSON),
    /* trailing data */
    SCAN("second value", "{\"model\":\"m\"} {}", CR_BODY_INVALID_JSON),
    SCAN("comma after", "{\"model\":\"m\"},", CR_BODY_INVALID_JSON),
    SCAN("close after", "{\"model\":\"m\"}}", CR_BODY_INVALID_JSON),
    /* numbers out of Jansson's range */
    SCAN("int64 max", "{\"model\":\"m\",\"a\":9223372036854775807}", CR_BODY_OK),
    SCAN("int64 max + 1", "{\"model\":\"m\",\"a\":9223372036854775808}", CR_BODY_INVALID_JSON),
    SCAN("int64 min", "{\"model\":\"m\",\"a\":-9223372036854775808}", CR_BODY_OK),
    SCAN("int64 min - 1", "{\"model\":\"m\",\"a\":-9223372036854775809}", CR_BODY_INVALID_JSON),
    SCAN("20 digits", "{\"model\":\"m\",\"a\":10000000000000000000}", CR_BODY_INVALID_JSON),
    SCAN("big real", "{\"model\":\"m\",\"a\":1e309}", CR_BODY_INVALID_JSON),
    SCAN("big real by digits", "{\"model\":\"m\",\"a\":1000e306}", CR_BODY_INVALID_JSON),
    SCAN("DBL_MAX", "{\"model\":\"m\",\"a\":1.7976931348623157e308}", CR_BODY_OK),
    SCAN("just under the overflow", "{\"model\":\"m\",\"a\":1.7976931348623158e308}", CR_BODY_OK),
    /* integer parts of 19, 20 and 309 digits, compared with the limit
     * only once the number turns out to be a real */
    SCAN("19-digit integer part, under", "{\"model\":\"m\",\"a\":1797693134862315807.5e290}", CR_BODY_OK),
    SCAN("19-digit integer part, over", "{\"model\":\"m\",\"a\":1797693134862315808.0e290}", CR_BODY_INVALID_JSON),
    SCAN("20-digit integer part, under", "{\"model\":\"m\",\"a\":17976931348623158079e289}", CR_BODY_OK),
    SCAN("20-digit integer part, over", "{\"model\":\"m\",\"a\":-17976931348623158080e289}", CR_BODY_INVALID_JSON),
    SCAN("the limit as an integer part", "{\"model\":\"m\",\"a\":179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792.0}", CR_BODY_INVALID_JSON),
    SCAN("just under the limit as an integer part", "{\"model\":\"m\",\"a\":179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.9}", CR_BODY_OK),
    SCAN("small fraction, big exponent", "{\"model\":\"m\",\"a\":0.0001e312}", CR_BODY_OK),
    SCAN("small fraction, bigger exponent", "{\"model\":\"m\",\"a\":0.0001e313}", CR_BODY_INVALID_JSON),
    SCAN("underflow is fine", "{\"model\":\"m\",\"a\":1e-99999}", CR_BODY_OK),
    SCAN("huge exponent", "{\"model\":\"m\",\"a\":-1e99999999999999999999999}", CR_BODY_INVALID_JSON),
    SCAN("zero with a huge exponent", "{\"model\":\"m\",\"a\":0.000e99999}", CR_BODY_OK),
    SCAN("top-level number", "123", CR_BODY_NOT_OBJECT),
    SCAN("top-level big number", "123e400", CR_BODY_INVALID_JSON),
    /* the decided members */
    SCAN("duplicate model", "{\"model\":\"a\",\"model\":\"a\"}", CR_BODY_DUPLICATE_MEMBER),
    SCAN("duplicate model, escaped", "{\"\\u006dodel\":\"a\",\"mod\\u0065l\":\"b\"}", CR_BODY_DUPLICATE_MEMBER),
    SCAN("duplicate model, not a string", "{\"model\":\"a\",\"model\":1}", CR_BODY_DUPLICATE_MEMBER),
    SCAN("duplicate stream", "{\"model\":\"a\",\"stream\":true,\"str\\u0065am\":false}", CR_BODY_DUPLICATE_MEMBER),
    SCAN("duplicate stream_options", "{\"model\":\"a\",\"stream_options\":{},\"stream_options\":{}}", CR_BODY_DUPLICATE_MEMBER),
    SCAN("duplicate include_usage", "{\"model\":\"a\",\"stream_options\":{\"include_usage\":true,\"include_usage\":true}}", CR_BODY_DUPLICATE_MEMBER),
    SCAN("include_usage twice, elsewhere", "{\"model\":\"a\",\"x\":{\"include_usage\":1,\"include_usage\":2}}", CR_BODY_OK),
    SCAN("model twice, nested", "{\"model\":\"a\",\"x\":{\"model\":1,\"model\":2}}", CR_BODY_OK),
    SCAN("other top-level duplicate", "{\"model\":\"a\",\"messages\":[],\"messages\":[]}", CR_BODY_OK),
    SCAN("model is a number", "{\"model\":4}", CR_BODY_MODEL_NOT_STRING),
    SCAN("model is null", "{\"model\":null}", CR_BODY_MODEL_NOT_STRING),
    SCAN("model is an object", "{\"model\":{\"model\":\"m\"}}", CR_BODY_MODEL_NOT_STRING),
    SCAN("model is empty", "{\"model\":\"\"}", CR_BODY_MODEL_NOT_STRING),
    SCAN("no model", "{\"modelx\":\"m\",\"x\":{\"model\":\"m\"}}", CR_BODY_NO_MODEL),
    SCAN("array", "[{\"model\":\"m\"}]", CR_BODY_NOT_OBJECT),
    SCAN("string", "\"model\"", CR_BODY_NOT_OBJECT),
    SCAN("white space around", " \t\r\n{\"model\":\"m\"} \n", CR_BODY_OK),
};

/* Scan in pieces of `piece` bytes (0: whole). */
static cr_body_status_e scan_pieces(const char *data, apr_size_t len,
                                    apr_size_t piece, cr_body_info_t *info)
{
    cr_body_scan_t s;
    apr_size_t pos = 0;

    if (piece == 0) {
        return cr_body_inspect(pool, data, len, info);
    }
    cr_body_scan_init(&s);
    while (pos < len) {
        apr_size_t k = len - pos < piece ? len - pos : piece;
        if (cr_body_scan(&s, data + pos, k)) {
            break;
        }
        pos += k;
    }
    return cr_body_scan_finish(pool, &s, info);
}

static void assert_same_info(const cr_body_info_t *a, const cr_body_info_t *b,
                             const char *name, apr_size_t piece)
{
    ck_assert_msg((a->model == NULL) == (b->model == NULL)
                  && (a->model == NULL || strcmp(a->model, b->model) == 0),
                  "%s, pieces of %lu: model", name, (unsigned long)piece);
    ck_assert_msg((a->detail == NULL) == (b->detail == NULL)
                  && (a->detail == NULL || strcmp(a->detail, b->detail) == 0),
                  "%s, pieces of %lu: detail %s", name, (unsigned long)piece,
                  b->detail ? b->detail : "(none)");
    ck_assert_msg(a->stream == b->stream && a->object_end == b->object_end
                  && a->stream_options == b->stream_options
                  && a->stream_options_start == b->stream_options_start
                  && a->stream_options_end == b->stream_options_end
                  && a->include_usage == b->include_usage
                  && a->include_usage_start == b->include_usage_start
                  && a->include_usage_end == b->include_usage_end,
                  "%s, pieces of %lu: fields", name, (unsigned long)piece);
}

START_TEST(scan_every_class_in_every_piece_size)
{
    apr_size_t i, piece;

    for (i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
        const scan_case *c = &scan_cases[i];
        apr_size_t len = c->len ? c->len : strlen(c->data);
        cr_body_info_t whole, part;
        cr_body_status_e st = scan_pieces(c->data, len, 0, &whole);

        ck_assert_msg(st == c->status, "%s: status %d, expected %d (%s)",
                      c->name, (int)st, (int)c->status,
                      whole.detail ? whole.detail : "");
        if (st != CR_BODY_OK) {
            ck_assert_ptr_null(whole.model);
            ck_assert_ptr_nonnull(whole.detail);
        }
        for (piece = 1; piece <= len; piece++) {
            ck_assert_msg(scan_pieces(c->data, len, piece, &part) == st,
                          "%s: pieces of %lu", c->name,
                          (unsigned long)piece);
            assert_same_info(&whole, &part, c->name, piece);
        }
    }
}
END_TEST

/* Offsets of the decided members, checked in every piece size. */
static void check_fields(const char *body, const char *model, int stream,
                         int so, const char *so_text, int iu,
                         const char *iu_text)
{
    apr_size_t len = strlen(body), piece;
    const char *last = strrchr(body, '}');

    for (piece = 0; piece <= len; piece++) {
        cr_body_info_t info;

        ck_assert_int_eq(scan_pieces(body, len, piece, &info), CR_BODY_OK);
        ck_assert_str_eq(info.model, model);
        ck_assert_int_eq(info.stream, stream);
        ck_assert_int_eq(info.object_end, last - body);
        ck_assert_int_eq(info.stream_options, so);
        if (so_text) {
            const char *at = strstr(body, so_text);
            ck_assert_ptr_nonnull(at);
            ck_assert_int_eq(info.stream_options_start, at - body);
            ck_assert_int_eq(info.stream_options_end,
                             at - body + (apr_off_t)strlen(so_text));
        }
        ck_assert_int_eq(info.include_usage, iu);
        if (iu_text) {
            const char *at = strstr(body, iu_text);
            ck_assert_ptr_nonnull(at);
            ck_assert_int_eq(info.include_usage_start, at - body);
            ck_assert_int_eq(info.include_usage_end,
                             at - body + (apr_off_t)strlen(iu_text));
        }
    }
}

START_TEST(scan_decided_members)
{
    check_fields("{\"model\":\"gpt-4o\"}", "gpt-4o", 0, 0, NULL, 0, NULL);
    check_fields("{\"\\u006dodel\":\"g\\u0070t\\/4 \\u00e9\\ud83d\\ude00\"}",
                 "gpt/4 \xc3\xa9\xf0\x9f\x98\x80", 0, 0, NULL, 0, NULL);
    check_fields("{\"stream\":true,\"model\":\"m\"}", "m", 1, 0, NULL, 0, NULL);
    check_fields("{\"stream\":\"true\",\"model\":\"m\"}", "m", 0, 0, NULL, 0,
                 NULL);
    check_fields("{\"model\":\"m\",\"stream\":true,\"stream_options\":"
                 "{\"include_usage\":false} }  ", "m", 1, 1,
                 "{\"include_usage\":false}", 2, "false");
    check_fields("{\"model\":\"m\",\"stream_options\":{\"x\":[1,{\"include_usage\":"
                 "3}],\"include_usage\" : true },\"n\":1}", "m", 0, 1,
                 "{\"x\":[1,{\"include_usage\":3}],\"include_usage\" : true }",
                 1, "true");
    check_fields("{\"model\":\"m\",\"stream_options\":{\"include_usage\":"
                 "12.5e1}}", "m", 0, 1, "{\"include_usage\":12.5e1}", 3,
                 "12.5e1");
    check_fields("{\"model\":\"m\",\"stream_options\":null}", "m", 0, 2, "null",
                 0, NULL);
    check_fields("{\"model\":\"m\",\"stream_options\":-0.5 }", "m", 0, 3,
                 "-0.5", 0, NULL);
    check_fields("{\"model\":\"m\",\"stream_options\":[{\"include_usage\":true}]}",
                 "m", 0, 3, "[{\"include_usage\":true}]", 0, NULL);
    check_fields("{\"model\":\"m\",\"x\":{\"stream\":true,\"stream_options\":{}}}",
                 "m", 0, 0, NULL, 0, NULL);
}
END_TEST

START_TEST(scan_model_length_decoded)
{
    apr_size_t n;

    /* 256 bytes once decoded is the most: two-byte characters, escaped
     * or not, count as two. */
    for (n = 127; n <= 129; n++) {
        char *raw = apr_palloc(pool, 2 * n + 1), *esc = apr_palloc(pool, 6 * n + 1);
        const char *b1, *b2;
        cr_body_info_t info;
        apr_size_t i;
        cr_body_status_e want = 2 * n <= CR_BODY_MAX_MODEL_LEN
                                ? CR_BODY_OK : CR_BODY_MODEL_NOT_STRING;

        for (i = 0; i < n; i++) {
            memcpy(raw + 2 * i, "\xc3\xa9", 2);
            memcpy(esc + 6 * i, "\\u00e9", 6);
        }
        raw[2 * n] = '\0';
        esc[6 * n] = '\0';
        b1 = apr_psprintf(pool, "{\"model\":\"%s\"}", raw);
        b2 = apr_psprintf(pool, "{\"model\":\"%s\"}", esc);
        ck_assert_int_eq(scan_pieces(b1, strlen(b1), 0, &info), want);
        if (want == CR_BODY_OK) {
            ck_assert_str_eq(info.model, raw);
        }
        ck_assert_int_eq(scan_pieces(b2, strlen(b2), 7, &info), want);
        if (want == CR_BODY_OK) {
            ck_assert_str_eq(info.model, raw);
        }
    }
}
END_TEST

START_TEST(scan_depth_limit)
{
    int extra;

    /* The top object is at depth 1, "x" at 2: 2047 arrays reach 2048. */
    for (extra = 2046; extra <= 2048; extra++) {
        const char *deep = deep_array(pool, extra);
        const char *with_value;
        const char *body = apr_pstrcat(pool, "{\"model\":\"m\",\"x\":", deep,
                                       "}", NULL);
        cr_body_info_t info;
        cr_body_status_e st = scan_pieces(body, strlen(body), 0, &info);

        ck_assert_int_eq(st, extra <= 2047 ? CR_BODY_OK
                                           : CR_BODY_INVALID_JSON);
        if (st != CR_BODY_OK) {
            ck_assert_ptr_nonnull(strstr(info.detail, "deeper than 2048"));
        }
        ck_assert_int_eq(scan_pieces(body, strlen(body), 3, &info), st);
        /* A value inside the deepest array is one level more. */
        with_value = apr_pstrcat(pool, "{\"model\":\"m\",\"x\":",
                                 apr_pstrndup(pool, deep, extra), "1",
                                 deep + extra, "}", NULL);
        ck_assert_int_eq(scan_pieces(with_value, strlen(with_value), 0,
                                     &info),
                         extra <= 2046 ? CR_BODY_OK : CR_BODY_INVALID_JSON);
    }
}
END_TEST

/* Long strings, plain and with non-ASCII text and escapes, across pieces
 * that cut them anywhere (the SIMD run and the UTF-8 run meet the end of
 * a piece). */
START_TEST(scan_long_strings_in_pieces)
{
    static const char *const units[] = { "abcdefghij", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80", "\\n", "\\u00e9",
                                         "\\ud83d\\ude00", "\\\"" };
    apr_size_t u, piece;

    for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        char *text = apr_palloc(pool, 40 * 20 + 1);
        const char *body;
        int i;

        text[0] = '\0';
        for (i = 0; i < 40; i++) {
            strcat(text, units[u]);
            strcat(text, i % 3 ? "x" : "");
        }
        body = apr_psprintf(pool, "{\"model\":\"m\",\"messages\":[{\"content\":"
                            "\"%s\"}],\"t\":\"%s\"}", text, text);
        for (piece = 0; piece <= 70; piece++) {
            cr_body_info_t info;
            ck_assert_msg(scan_pieces(body, strlen(body), piece, &info)
                          == CR_BODY_OK, "unit %lu pieces %lu: %s",
                          (unsigned long)u, (unsigned long)piece,
                          info.detail ? info.detail : "");
        }
        /* Spoil the last character of the text: refused in any pieces. */
        if (units[u][0] & 0x80) {
            char *bad = apr_pstrdup(pool, body);
            char *q = strstr(bad, "\"}],");
            q[-1] = 'x';                 /* cuts the last character */
            for (piece = 0; piece <= 70; piece++) {
                cr_body_info_t info;
                ck_assert_int_eq(scan_pieces(bad, strlen(bad), piece, &info),
                                 CR_BODY_INVALID_JSON);
            }
        }
    }
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc;

    tc = tcase_create("json");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, json_parse_and_read_members);
    tcase_add_test(tc, json_error_has_position_never_input);
    tcase_add_test(tc, json_error_kinds);
    tcase_add_test(tc, json_duplicates_only_with_flag);
    tcase_add_test(tc, json_rejects_nul);
    tcase_add_test(tc, json_build_dump_roundtrip);
    tcase_add_test(tc, json_member_outlives_parent_pool);
    tcase_add_test(tc, json_stream_one_byte_at_a_time);
    suite_add_tcase(s, tc);

    tc = tcase_create("body");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, body_cases_whole);
    tcase_add_test(tc, body_cases_stream_one_byte);
    tcase_add_test(tc, body_empty);
    tcase_add_test(tc, body_model_length_limit);
    tcase_add_test(tc, body_deep_nesting_is_invalid_not_a_crash);
    tcase_add_test(tc, body_detail_never_quotes_body);
    tcase_add_test(tc, body_stream_read_error);
    tcase_add_test(tc, body_stream_immediate_read_error);
    tcase_add_test(tc, body_content_type);
    tcase_add_test(tc, body_stream_long_strings);
    tcase_add_test(tc, body_stream_long_member_names);
    tcase_add_test(tc, scan_every_class_in_every_piece_size);
    tcase_add_test(tc, scan_decided_members);
    tcase_add_test(tc, scan_model_length_decoded);
    tcase_add_test(tc, scan_depth_limit);
    tcase_add_test(tc, scan_long_strings_in_pieces);
    tcase_add_test(tc, body_stream_skipped_text_checked);
    tcase_add_test(tc, body_stream_review_findings);
    suite_add_tcase(s, tc);

    tc = tcase_create("error");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, error_table_covers_every_kind);
    tcase_add_test(tc, error_should_retry_rule);
    tcase_add_test(tc, error_openai_bodies);
    tcase_add_test(tc, error_anthropic_bodies);
    tcase_add_test(tc, error_custom_message_is_escaped);
    tcase_add_test(tc, error_exact_openai_shape);
    tcase_add_test(tc, error_default_messages_are_helpful);
    tcase_add_test(tc, error_protocol_from_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("reqid");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reqid_valid_lengths);
    tcase_add_test(tc, reqid_valid_characters);
    tcase_add_test(tc, reqid_generate);
    tcase_add_test(tc, reqid_generate_fork);
    tcase_add_test(tc, reqid_generate_threads);
    tcase_add_test(tc, reqid_choose_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("route");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, route_parse_protocol);
    tcase_add_test(tc, route_normalize_url);
    tcase_add_test(tc, route_find_first_match_and_protocol);
    tcase_add_test(tc, route_find_bracket_glob_and_empty);
    tcase_add_test(tc, route_find_prepared);
    tcase_add_test(tc, num_put_matches_printf);
    tcase_add_test(tc, time_put_duration_and_rfc3339);
    tcase_add_test(tc, route_credential_literal_and_env);
    tcase_add_test(tc, route_credential_file);
    tcase_add_test(tc, route_credential_file_missing);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
