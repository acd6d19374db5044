/* Licensed under the Apache License, Version 2.0. */

/*
 * Unit tests of credentials, keys, key records, times and the DBM key
 * store and its per-process cache (cr_cred.c, cr_key.c, cr_time.c,
 * cr_store.c, cr_keycache.c).
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_dbm.h>
#include <apr_file_io.h>
#include <apr_file_info.h>

#include "cr_cred.h"
#include "cr_key.h"
#include "cr_keycache.h"
#include "cr_rate.h"
#include "cr_siphash.h"
#include "cr_store.h"
#include "cr_time.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

/* "sk-" followed by n base62 characters. */
static const char *make_key(int n)
{
    char *k = apr_palloc(pool, n + 4);
    int i;

    memcpy(k, "sk-", 3);
    for (i = 0; i < n; i++) {
        k[3 + i] = "abcXYZ019"[i % 9];
    }
    k[3 + n] = '\0';
    return k;
}

static apr_time_t t3339(const char *s)
{
    apr_time_t t = 0;
    ck_assert_msg(cr_time_parse_rfc3339(s, &t) == APR_SUCCESS,
                  "should parse: %s", s);
    return t;
}

/* ---------------------------------------------------------------- cred */

START_TEST(cred_missing)
{
    const char *key = NULL;
    ck_assert_int_eq(cr_cred_extract(pool, NULL, NULL, &key),
                     CR_CRED_MISSING);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, "", &key), CR_CRED_MISSING);
    ck_assert_int_eq(cr_cred_extract(pool, "Bearer", NULL, &key),
                     CR_CRED_MISSING);
    ck_assert_int_eq(cr_cred_extract(pool, "Bearer    ", NULL, &key),
                     CR_CRED_MISSING);
    ck_assert_int_eq(cr_cred_extract(pool, "Bearer ", "", &key),
                     CR_CRED_MISSING);
    ck_assert_int_eq(cr_cred_extract(pool, "", NULL, &key), CR_CRED_MISSING);
    ck_assert_int_eq(cr_cred_extract(pool, "  ", "", &key), CR_CRED_MISSING);
    ck_assert_ptr_null(key);
}
END_TEST

START_TEST(cred_bearer_and_api_key)
{
    const char *good = make_key(48), *key = NULL;

    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ", good,
                                                       NULL), NULL, &key),
                     CR_CRED_OK);
    ck_assert_str_eq(key, good);
    key = NULL;
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "bearer   ",
                                                       good, NULL), NULL,
                                     &key), CR_CRED_OK);
    ck_assert_str_eq(key, good);
    key = NULL;
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "BEARER ", good,
                                                       NULL), NULL, &key),
                     CR_CRED_OK);
    ck_assert_str_eq(key, good);
    key = NULL;
    ck_assert_int_eq(cr_cred_extract(pool, NULL, good, &key), CR_CRED_OK);
    ck_assert_str_eq(key, good);
    /* The result is the end of the header value itself, not a copy (no
     * second copy of a key in memory). */
    ck_assert_ptr_eq(key, good);
    {
        const char *auth = apr_pstrcat(pool, "Bearer  ", good, NULL);

        ck_assert_int_eq(cr_cred_extract(pool, auth, NULL, &key),
                         CR_CRED_OK);
        ck_assert_ptr_eq(key, auth + 8);
    }
    /* "Bearer" alone with an x-api-key: the x-api-key is the key. */
    key = NULL;
    ck_assert_int_eq(cr_cred_extract(pool, "Bearer ", good, &key),
                     CR_CRED_OK);
    ck_assert_str_eq(key, good);
}
END_TEST

START_TEST(cred_both_headers)
{
    const char *a = make_key(48), *b = apr_pstrdup(pool, a), *key = NULL;
    char *c = apr_pstrdup(pool, a);

    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ", a,
                                                       NULL), b, &key),
                     CR_CRED_OK);
    ck_assert_str_eq(key, a);
    c[20] = (c[20] == 'a') ? 'b' : 'a';
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ", a,
                                                       NULL), c, &key),
                     CR_CRED_CONFLICT);
    /* Different lengths conflict too. */
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ", a,
                                                       NULL), make_key(47),
                                     &key), CR_CRED_CONFLICT);
}
END_TEST

START_TEST(cred_other_scheme)
{
    const char *good = make_key(48), *key = NULL;

    ck_assert_int_eq(cr_cred_extract(pool, "Basic dXNlcjpwYXNz", NULL, &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer\t", good,
                                                       NULL), NULL, &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearerx", good,
                                                       NULL), NULL, &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, "Basic dXNlcjpwYXNz", good, &key),
                     CR_CRED_OK);
    ck_assert_str_eq(key, good);
}
END_TEST

START_TEST(cred_malformed_keys)
{
    const char *key = NULL;
    char *huge = apr_palloc(pool, 10 * 1024 + 1);

    ck_assert_int_eq(cr_cred_extract(pool, NULL, "sk-abc def", &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ",
                                                       make_key(48), " x",
                                                       NULL), NULL, &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, apr_pstrcat(pool,
                                     make_key(44), "\x01", "abcd", NULL),
                                     &key), CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, apr_pstrcat(pool,
                                     make_key(44), "\n", NULL), &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, "pk-0123456789012345678901"
                                     "2345678901234567890", &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, apr_pstrcat(pool,
                                     make_key(44), "\xc3\xa9", NULL), &key),
                     CR_CRED_MALFORMED);

    /* A 10 KB key: malformed, whichever header carries it. */
    memcpy(huge, "sk-", 3);
    memset(huge + 3, 'a', 10 * 1024 - 3);
    huge[10 * 1024] = '\0';
    ck_assert_int_eq(cr_cred_extract(pool, NULL, huge, &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ", huge,
                                                       NULL), NULL, &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, apr_pstrcat(pool, "Bearer ", huge,
                                                       NULL), huge, &key),
                     CR_CRED_MALFORMED);
    ck_assert_ptr_null(key);
}
END_TEST

START_TEST(cred_key_lengths)
{
    const char *key = NULL;

    /* 42 and 129 characters in all: out; 43 and 128: in. */
    ck_assert_int_eq(strlen(make_key(39)), 42);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, make_key(39), &key),
                     CR_CRED_MALFORMED);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, make_key(40), &key),
                     CR_CRED_OK);
    ck_assert_int_eq(strlen(key), 43);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, make_key(125), &key),
                     CR_CRED_OK);
    ck_assert_int_eq(strlen(key), 128);
    ck_assert_int_eq(cr_cred_extract(pool, NULL, make_key(126), &key),
                     CR_CRED_MALFORMED);
    ck_assert(!cr_cred_key_wellformed(make_key(39)));
    ck_assert(cr_cred_key_wellformed(make_key(40)));
    ck_assert(cr_cred_key_wellformed(make_key(125)));
    ck_assert(!cr_cred_key_wellformed(make_key(126)));
    ck_assert(!cr_cred_key_wellformed(NULL));
    ck_assert(!cr_cred_key_wellformed(""));
}
END_TEST

/* Every byte value in the random part: only [A-Za-z0-9] is accepted, as
 * the per-character apr_isalnum check said before the class table. */
START_TEST(cred_key_every_byte)
{
    const char *got = NULL;
    int c, pos;

    for (pos = 3; pos < 51; pos += 47) {
        for (c = 1; c < 256; c++) {
            char *k = apr_pstrdup(pool, make_key(48));
            int expect = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
                         || (c >= 'a' && c <= 'z');

            k[pos] = (char)c;
            ck_assert_msg(cr_cred_key_wellformed(k) == expect,
                          "byte 0x%02x at %d", c, pos);
            ck_assert_int_eq(cr_cred_extract(pool, NULL, k, &got)
                             == CR_CRED_OK, expect);
        }
    }
    /* a NUL inside ends the key: then it is too short */
    {
        char *k = apr_pstrdup(pool, make_key(48));

        k[30] = '\0';
        ck_assert(!cr_cred_key_wellformed(k));
    }
    /* the prefix, any byte off */
    ck_assert(!cr_cred_key_wellformed(apr_pstrcat(pool, "Sk-",
                                                  make_key(48) + 3, NULL)));
    ck_assert(!cr_cred_key_wellformed(apr_pstrcat(pool, "sK-",
                                                  make_key(48) + 3, NULL)));
    ck_assert(!cr_cred_key_wellformed(apr_pstrcat(pool, "sk_",
                                                  make_key(48) + 3, NULL)));
}
END_TEST

START_TEST(cred_mask)
{
    const char *k = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHc66a";

    ck_assert_str_eq(cr_cred_mask(pool, k), "sk-ab...c66a");
    ck_assert_str_eq(cr_cred_mask(pool, "sk-short"), "sk-...");
    ck_assert_str_eq(cr_cred_mask(pool, NULL), "sk-...");
    ck_assert_str_eq(cr_cred_mask(pool, "some other secret value of length"
                                  " 40 or so"), "sk-...");
    ck_assert_ptr_null(strstr(cr_cred_mask(pool, k), "cdefghijklmn"));
}
END_TEST

/* ----------------------------------------------------------------- key */

START_TEST(key_generate_format)
{
    apr_hash_t *seen = apr_hash_make(pool);
    int counts[256];
    int i, c;

    memset(counts, 0, sizeof(counts));
    for (i = 0; i < 2000; i++) {
        const char *key = NULL;
        ck_assert_int_eq(cr_key_generate(pool, &key), APR_SUCCESS);
        ck_assert_int_eq(strlen(key), 3 + CR_KEY_RANDOM_CHARS);
        ck_assert(strncmp(key, "sk-", 3) == 0);
        ck_assert(cr_cred_key_wellformed(key));
        ck_assert_ptr_null(apr_hash_get(seen, key, APR_HASH_KEY_STRING));
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, key);
        for (c = 3; key[c]; c++) {
            counts[(unsigned char)key[c]]++;
        }
    }
    ck_assert_int_eq(apr_hash_count(seen), 2000);
    /* 96000 characters over 62 symbols: about 1548 each (sd ~39).  A
     * modulo-biased generator gives its first 8 symbols ~1870. */
    for (c = 0; c < 256; c++) {
        int base62 = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
                     || (c >= 'a' && c <= 'z');
        if (base62) {
            ck_assert_msg(counts[c] > 1348 && counts[c] < 1748,
                          "symbol %c seen %d times", c, counts[c]);
        }
        else {
            ck_assert_int_eq(counts[c], 0);
        }
    }
}
END_TEST

START_TEST(key_new_id)
{
    const char *a = NULL, *b = NULL;

    ck_assert_int_eq(cr_key_new_id(pool, &a), APR_SUCCESS);
    ck_assert_int_eq(cr_key_new_id(pool, &b), APR_SUCCESS);
    ck_assert_int_eq(strlen(a), 20);
    ck_assert(strncmp(a, "key_", 4) == 0);
    ck_assert(cr_key_id_wellformed(a));
    ck_assert_str_ne(a, b);
    ck_assert(!cr_key_id_wellformed("key_123"));
    ck_assert(!cr_key_id_wellformed("key_0123456789abcdef0"));
    ck_assert(!cr_key_id_wellformed("key_0123456789abcde-"));
    ck_assert(!cr_key_id_wellformed("kex_0123456789abcdef"));
    ck_assert(cr_key_id_wellformed("key_0123456789abcdeF"));
}
END_TEST

START_TEST(key_hash_vector)
{
    ck_assert_str_eq(cr_key_hash(pool, "abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_str_eq(cr_key_hash(pool, ""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_int_eq(strlen(cr_key_hash(pool, make_key(48))),
                     CR_KEY_HASH_HEX_LEN);
}
END_TEST

static cr_key_record_t *sample_record(void)
{
    cr_key_record_t *rec = apr_pcalloc(pool, sizeof(*rec));

    rec->id = "key_AbCdEfGh01234567";
    rec->name = "ci \"bot\" 测试";
    rec->models = cr_key_parse_models(pool, "gpt-*,claude-*");
    rec->rpm = 60;
    rec->tpm = 40000;
    rec->quota = 0;
    rec->quota_period = CR_QUOTA_DAY;
    rec->created_at = t3339("2026-11-27T17:32:41Z");
    rec->expires_at = t3339("2027-01-01T00:00:00Z");
    rec->status = CR_KEY_ACTIVE;
    rec->hint = "sk-ab...c66a";
    return rec;
}

/* Records written before the token limits have no tpm, quota or
 * quota_period: not set.  Bad values are refused. */
START_TEST(record_token_limits)
{
    static const char old[] =
        "{\"id\":\"key_AbCdEfGh01234567\",\"name\":\"\",\"models\":[\"*\"],"
        "\"rpm\":null,\"created_at\":\"2026-11-27T17:32:41Z\","
        "\"expires_at\":null,\"status\":\"active\",\"hint\":\"\"}";
    static const char *const bad[] = {
        "\"tpm\":-1", "\"quota\":1.5", "\"quota\":\"10\"",
        "\"quota_period\":\"week\"", "\"quota_period\":1", NULL
    };
    cr_key_record_t *rec;
    const char *err = NULL;
    int i;

    rec = cr_key_record_parse(pool, old, strlen(old), &err);
    ck_assert_msg(rec != NULL, "parse failed: %s", err);
    ck_assert_int_eq(rec->tpm, CR_KEY_LIMIT_UNSET);
    ck_assert_int_eq(rec->quota, CR_KEY_LIMIT_UNSET);
    ck_assert_int_eq(rec->quota_period, CR_QUOTA_UNSET);
    for (i = 0; bad[i]; i++) {
        const char *json = apr_psprintf(pool, "{%s,%s", bad[i], old + 1);
        err = NULL;
        ck_assert_msg(cr_key_record_parse(pool, json, strlen(json), &err)
                      == NULL, "accepted %s", bad[i]);
        ck_assert_ptr_nonnull(err);
    }
    ck_assert_int_eq(cr_key_parse_quota_period("month"), CR_QUOTA_MONTH);
    ck_assert_int_eq(cr_key_parse_quota_period("total"), CR_QUOTA_TOTAL);
    ck_assert_int_eq(cr_key_parse_quota_period("Day"), -1);
}
END_TEST

START_TEST(record_round_trip)
{
    cr_key_record_t *rec = sample_record(), *back;
    const char *json, *err = NULL;

    json = cr_key_record_to_json(pool, rec, 0);
    ck_assert_ptr_nonnull(json);
    ck_assert_str_eq(json,
        "{\"id\":\"key_AbCdEfGh01234567\",\"name\":\"ci \\\"bot\\\" "
        "\xe6\xb5\x8b\xe8\xaf\x95\",\"models\":[\"gpt-*\",\"claude-*\"],"
        "\"rpm\":60,\"tpm\":40000,\"quota\":0,\"quota_period\":\"day\","
        "\"created_at\":\"2026-11-27T17:32:41Z\","
        "\"expires_at\":\"2027-01-01T00:00:00Z\",\"status\":\"active\","
        "\"hint\":\"sk-ab...c66a\"}");
    back = cr_key_record_parse(pool, json, strlen(json), &err);
    ck_assert_msg(back != NULL, "parse failed: %s", err);
    ck_assert_str_eq(back->id, rec->id);
    ck_assert_str_eq(back->name, rec->name);
    ck_assert_int_eq(back->models->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(back->models, 1, const char *),
                     "claude-*");
    ck_assert_int_eq(back->rpm, 60);
    ck_assert_int_eq(back->tpm, 40000);
    ck_assert_int_eq(back->quota, 0);
    ck_assert_int_eq(back->quota_period, CR_QUOTA_DAY);
    ck_assert(back->created_at == rec->created_at);
    ck_assert(back->expires_at == rec->expires_at);
    ck_assert_int_eq(back->status, CR_KEY_ACTIVE);
    ck_assert_str_eq(back->hint, rec->hint);

    /* Unset rpm and no expiry are nulls; revoked round-trips. */
    rec->rpm = CR_KEY_RPM_UNSET;
    rec->tpm = CR_KEY_LIMIT_UNSET;
    rec->quota = CR_KEY_LIMIT_UNSET;
    rec->quota_period = CR_QUOTA_UNSET;
    rec->expires_at = 0;
    rec->status = CR_KEY_REVOKED;
    json = cr_key_record_to_json(pool, rec, 0);
    ck_assert_ptr_nonnull(strstr(json, "\"rpm\":null"));
    ck_assert_ptr_nonnull(strstr(json, "\"tpm\":null,\"quota\":null,"
                                       "\"quota_period\":null"));
    ck_assert_ptr_nonnull(strstr(json, "\"expires_at\":null"));
    ck_assert_ptr_nonnull(strstr(json, "\"status\":\"revoked\""));
    back = cr_key_record_parse(pool, json, strlen(json), &err);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(back->rpm, CR_KEY_RPM_UNSET);
    ck_assert(back->expires_at == 0);
    ck_assert_int_eq(back->status, CR_KEY_REVOKED);

    /* rpm 0 (no limit) is not the same as unset. */
    rec->rpm = 0;
    json = cr_key_record_to_json(pool, rec, 1);
    back = cr_key_record_parse(pool, json, strlen(json), &err);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(back->rpm, 0);
}
END_TEST

static const char *good_fields =
    "\"name\":\"n\",\"models\":[\"*\"],\"rpm\":null,"
    "\"created_at\":\"2026-11-27T17:32:41Z\",\"expires_at\":null,"
    "\"status\":\"active\"";

START_TEST(record_rejections)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "\"key\"",
        "{}",
        /* id */
        "{\"name\":\"n\",\"models\":[\"*\"],\"rpm\":null,\"created_at\":"
        "\"2026-11-27T17:32:41Z\",\"expires_at\":null,\"status\":\"active\"}",
        "{\"id\":5,%s}",
        "{\"id\":\"key_short\",%s}",
        "{\"id\":\"sk-0123456789abcdef\",%s}",
        NULL
    };
    static const char *const bad_members[] = {
        "\"name\":3",
        "\"name\":null",
        "\"models\":[]",
        "\"models\":\"*\"",
        "\"models\":[\"\"]",
        "\"models\":[3]",
        "\"models\":null",
        "\"rpm\":-1",
        "\"rpm\":\"5\"",
        "\"rpm\":1.5",
        "\"rpm\":true",
        "\"created_at\":null",
        "\"created_at\":\"yesterday\"",
        "\"created_at\":\"2026-02-30T00:00:00Z\"",
        "\"expires_at\":\"tomorrow\"",
        "\"expires_at\":0",
        "\"status\":\"disabled\"",
        "\"status\":\"Active\"",
        "\"status\":null",
        "\"hint\":7",
        NULL
    };
    static const char *const member_names[] = {
        "name", "models", "rpm", "created_at", "expires_at", "status", NULL
    };
    const char *err;
    int i;

    for (i = 0; bad[i]; i++) {
        const char *json = strstr(bad[i], "%s")
                           ? apr_psprintf(pool, bad[i], good_fields)
                           : bad[i];
        err = NULL;
        ck_assert_msg(cr_key_record_parse(pool, json, strlen(json), &err)
                      == NULL, "accepted: %s", json);
        ck_assert_ptr_nonnull(err);
    }
    /* A good record, then each member replaced by a bad value (the bad
     * value comes first: the duplicate check must not be what fails). */
    for (i = 0; bad_members[i]; i++) {
        const char *name_end = strchr(bad_members[i] + 1, '"');
        const char *name = apr_pstrmemdup(pool, bad_members[i] + 1,
                                          name_end - bad_members[i] - 1);
        const char *rest = "", *json;
        int m;
        for (m = 0; member_names[m]; m++) {
            if (strcmp(member_names[m], name) != 0) {
                const char *pos = strstr(good_fields, apr_psprintf(pool,
                                         "\"%s\":", member_names[m]));
                const char *end = strstr(pos, ",\"");
                rest = apr_pstrcat(pool, rest, ",",
                                   end ? apr_pstrmemdup(pool, pos, end - pos)
                                       : pos, NULL);
            }
        }
        json = apr_psprintf(pool, "{\"id\":\"key_AbCdEfGh01234567\",%s%s}",
                            bad_members[i], rest);
        err = NULL;
        ck_assert_msg(cr_key_record_parse(pool, json, strlen(json), &err)
                      == NULL, "accepted: %s", json);
        ck_assert_ptr_nonnull(err);
    }
    /* Each required member missing. */
    for (i = 0; member_names[i]; i++) {
        const char *pos = strstr(good_fields, apr_psprintf(pool, "\"%s\":",
                                                           member_names[i]));
        const char *end = strstr(pos + 1, ",\"");
        const char *fields = apr_pstrcat(pool,
            apr_pstrmemdup(pool, good_fields, pos - good_fields),
            end ? end + 1 : "", NULL);
        const char *json = apr_psprintf(pool, "{\"id\":\"key_AbCdEfGh01234567\""
                                        ",%s}", fields);
        apr_size_t len = strlen(json);
        /* Dropping the last member leaves a trailing comma: remove it. */
        if (len > 2 && json[len - 2] == ',') {
            json = apr_pstrcat(pool, apr_pstrmemdup(pool, json, len - 2), "}",
                               NULL);
        }
        err = NULL;
        ck_assert_msg(cr_key_record_parse(pool, json, strlen(json), &err)
                      == NULL, "accepted without %s: %s", member_names[i],
                      json);
        ck_assert_ptr_nonnull(strstr(err, member_names[i]));
    }
    /* A duplicate member. */
    {
        const char *json = apr_psprintf(pool, "{\"id\":\"key_AbCdEfGh01234567\""
                                        ",%s,\"status\":\"revoked\"}",
                                        good_fields);
        ck_assert_ptr_null(cr_key_record_parse(pool, json, strlen(json),
                                               &err));
    }
    /* And the good record itself parses (so the cases above fail for
     * their own reason). */
    {
        const char *json = apr_psprintf(pool, "{\"id\":\"key_AbCdEfGh01234567\""
                                        ",%s}", good_fields);
        cr_key_record_t *rec = cr_key_record_parse(pool, json, strlen(json),
                                                   &err);
        ck_assert_ptr_nonnull(rec);
        ck_assert_str_eq(rec->hint, "");
    }
}
END_TEST

START_TEST(models_parse_and_match)
{
    cr_key_record_t rec;
    apr_array_header_t *m;
    char long_glob[300];

    m = cr_key_parse_models(pool, "gpt-*, claude-3-*");
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(m, 1, const char *), "claude-3-*");
    ck_assert_ptr_null(cr_key_parse_models(pool, ""));
    ck_assert_ptr_null(cr_key_parse_models(pool, "a,,b"));
    ck_assert_ptr_null(cr_key_parse_models(pool, "a,"));
    ck_assert_ptr_null(cr_key_parse_models(pool, " "));
    ck_assert_ptr_null(cr_key_parse_models(pool, NULL));
    memset(long_glob, 'g', 256);
    long_glob[256] = '\0';
    ck_assert_ptr_null(cr_key_parse_models(pool, long_glob));
    long_glob[255] = '\0';
    ck_assert_ptr_nonnull(cr_key_parse_models(pool, long_glob));

    memset(&rec, 0, sizeof(rec));
    rec.models = m;
    ck_assert(cr_key_model_allowed(&rec, "gpt-4o"));
    ck_assert(cr_key_model_allowed(&rec, "claude-3-opus"));
    ck_assert(!cr_key_model_allowed(&rec, "claude-sonnet-4"));
    ck_assert(!cr_key_model_allowed(&rec, "xgpt-4o"));
    ck_assert(!cr_key_model_allowed(&rec, NULL));
    rec.models = cr_key_parse_models(pool, "*");
    ck_assert(cr_key_model_allowed(&rec, "anything/at:all"));
    rec.models = cr_key_parse_models(pool, "gpt-4o");
    ck_assert(cr_key_model_allowed(&rec, "gpt-4o"));
    ck_assert(!cr_key_model_allowed(&rec, "gpt-4o-mini"));
}
END_TEST

START_TEST(key_usability)
{
    cr_key_record_t *rec = sample_record();
    apr_time_t now = t3339("2026-12-01T00:00:00Z");

    ck_assert_int_eq(cr_key_usability(rec, now), CR_KEY_USABLE);
    rec->expires_at = now;
    ck_assert_int_eq(cr_key_usability(rec, now), CR_KEY_IS_EXPIRED);
    ck_assert_int_eq(cr_key_usability(rec, now - 1), CR_KEY_USABLE);
    rec->expires_at = now - apr_time_from_sec(3600);
    ck_assert_int_eq(cr_key_usability(rec, now), CR_KEY_IS_EXPIRED);
    rec->expires_at = 0;
    ck_assert_int_eq(cr_key_usability(rec, now), CR_KEY_USABLE);
    rec->status = CR_KEY_REVOKED;
    ck_assert_int_eq(cr_key_usability(rec, now), CR_KEY_IS_REVOKED);
    rec->expires_at = now - 1;
    ck_assert_int_eq(cr_key_usability(rec, now), CR_KEY_IS_REVOKED);
}
END_TEST

/* ---------------------------------------------------------------- time */

START_TEST(time_parse_valid)
{
    apr_time_t base = apr_time_from_sec(APR_INT64_C(1767225600));
                      /* 2026-01-01T00:00:00Z */

    ck_assert(t3339("1970-01-01T00:00:00Z") == 0);
    ck_assert(t3339("2026-01-01T00:00:00Z") == base);
    ck_assert(t3339("2026-01-01t00:00:00z") == base);
    ck_assert(t3339("2026-01-01T02:00:00+02:00") == base);
    ck_assert(t3339("2025-12-31T18:30:00-05:30") == base);
    ck_assert(t3339("2026-01-01T00:00:00+00:00") == base);
    ck_assert(t3339("2026-01-01T00:00:00-00:00") == base);
    ck_assert(t3339("2026-01-01T00:00:00.5Z") == base + 500000);
    ck_assert(t3339("2026-01-01T00:00:00.123456789Z") == base + 123456);
    ck_assert(t3339("2026-01-01T00:00:00.000001Z") == base + 1);
    /* Leap years. */
    ck_assert(t3339("2024-02-29T00:00:00Z")
              == t3339("2024-03-01T00:00:00Z") - apr_time_from_sec(86400));
    t3339("2000-02-29T12:00:00Z");
    t3339("2026-12-31T23:59:59Z");
    t3339("9999-12-31T23:59:59Z");
}
END_TEST

START_TEST(time_parse_invalid)
{
    static const char *const bad[] = {
        "", "2026", "2026-01-01", "2026-01-01T00:00:00",
        "2026-01-01 00:00:00Z", "2026-1-01T00:00:00Z",
        "2026-01-01T00:00Z", "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z",
        "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+2:00",
        "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+01:60",
        "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00ZZ",
        "2026-01-01T00:00:00Z ", " 2026-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z", "+2026-01-01T00:00:00Z", "２026-01-01T00:00:00Z",
        NULL
    };
    apr_time_t t;
    int i;

    for (i = 0; bad[i]; i++) {
        ck_assert_msg(cr_time_parse_rfc3339(bad[i], &t) == APR_EINVAL,
                      "accepted: \"%s\"", bad[i]);
    }
    ck_assert_int_eq(cr_time_parse_rfc3339(NULL, &t), APR_EINVAL);
}
END_TEST

START_TEST(time_format)
{
    ck_assert_str_eq(cr_time_format_rfc3339(pool, 0),
                     "1970-01-01T00:00:00Z");
    ck_assert_str_eq(cr_time_format_rfc3339(pool,
                     apr_time_from_sec(APR_INT64_C(1709164800)) + 999999),
                     "2024-02-29T00:00:00Z");
    ck_assert_str_eq(cr_time_format_rfc3339(pool,
                     t3339("2026-06-30T23:59:59+02:00")),
                     "2026-06-30T21:59:59Z");
}
END_TEST

START_TEST(time_once_per)
{
    apr_uint32_t last = 0;

    /* The first outage is logged, then not again within the interval. */
    ck_assert(cr_time_once_per(&last, 1000, 10));
    ck_assert_uint_eq(last, 1000);
    ck_assert(!cr_time_once_per(&last, 1000, 10));
    ck_assert(!cr_time_once_per(&last, 1009, 10));
    ck_assert_uint_eq(last, 1000);
    ck_assert(cr_time_once_per(&last, 1010, 10));
    ck_assert_uint_eq(last, 1010);
    /* Reset to 0 (the store answered again): the next one is logged. */
    last = 0;
    ck_assert(cr_time_once_per(&last, 1011, 10));
}
END_TEST

START_TEST(time_expires)
{
    apr_time_t now = t3339("2026-11-27T17:32:41Z") + 123, t = 0;

    ck_assert_int_eq(cr_time_parse_expires("+10s", now, &t), APR_SUCCESS);
    ck_assert(t == now + apr_time_from_sec(10));
    ck_assert_int_eq(cr_time_parse_expires("+5m", now, &t), APR_SUCCESS);
    ck_assert(t == now + apr_time_from_sec(300));
    ck_assert_int_eq(cr_time_parse_expires("+2h", now, &t), APR_SUCCESS);
    ck_assert(t == now + apr_time_from_sec(7200));
    ck_assert_int_eq(cr_time_parse_expires("+30d", now, &t), APR_SUCCESS);
    ck_assert(t == now + apr_time_from_sec(30 * 86400));
    ck_assert_int_eq(cr_time_parse_expires("2027-01-01T00:00:00Z", now, &t),
                     APR_SUCCESS);
    ck_assert(t == t3339("2027-01-01T00:00:00Z"));

    t = 42;
    ck_assert_int_eq(cr_time_parse_expires("+0s", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+5x", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+5", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+s", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+-1s", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+1ss", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+1 s", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("5s", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("", now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires(NULL, now, &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("tomorrow", now, &t), APR_EINVAL);
    /* Overflow of the number, of the 64-bit microseconds, of the year. */
    ck_assert_int_eq(cr_time_parse_expires("+99999999999999999999999d", now,
                                           &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+9223372036854775807s", now,
                                           &t), APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+106751991167d", now, &t),
                     APR_EINVAL);
    ck_assert_int_eq(cr_time_parse_expires("+3000000d", now, &t),
                     APR_EINVAL);
    ck_assert(t == 42);
    /* Large but within year 9999: fine. */
    ck_assert_int_eq(cr_time_parse_expires("+2000000d", now, &t),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(cr_time_format_rfc3339(pool, t));
}
END_TEST

START_TEST(time_duration)
{
    ck_assert_str_eq(cr_time_format_duration(pool, 0), "0s");
    ck_assert_str_eq(cr_time_format_duration(pool, -5), "0s");
    ck_assert_str_eq(cr_time_format_duration(pool, 1), "1ms");
    ck_assert_str_eq(cr_time_format_duration(pool, 250000), "250ms");
    ck_assert_str_eq(cr_time_format_duration(pool, 250001), "251ms");
    ck_assert_str_eq(cr_time_format_duration(pool, 999999), "1s");
    ck_assert_str_eq(cr_time_format_duration(pool, 1000000), "1s");
    ck_assert_str_eq(cr_time_format_duration(pool, 1200000), "2s");
    ck_assert_str_eq(cr_time_format_duration(pool, apr_time_from_sec(59)),
                     "59s");
    ck_assert_str_eq(cr_time_format_duration(pool, apr_time_from_sec(60)),
                     "1m0s");
    ck_assert_str_eq(cr_time_format_duration(pool, apr_time_from_sec(360)),
                     "6m0s");
    ck_assert_str_eq(cr_time_format_duration(pool, apr_time_from_sec(3600)),
                     "1h0m0s");
    ck_assert_str_eq(cr_time_format_duration(pool, apr_time_from_sec(3723)),
                     "1h2m3s");
}
END_TEST

/* --------------------------------------------------------------- store */

static const char *temp_store_dir(void)
{
    const char *tmp = NULL;
    char *dir;

    ck_assert_int_eq(apr_temp_dir_get(&tmp, pool), APR_SUCCESS);
    dir = apr_pstrcat(pool, tmp, "/cr-test-keys-XXXXXX", NULL);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

/* The files of an sdbm store, after its path. */
static const char *const sdbm_ext[] = { ".dir", ".pag", NULL };

static void remove_store_dir(const char *dir)
{
    int i;

    for (i = 0; sdbm_ext[i]; i++) {
        apr_file_remove(apr_pstrcat(pool, dir, "/keys", sdbm_ext[i], NULL),
                        pool);
    }
    apr_dir_remove(dir, pool);
}

/* Does the file contain needle? */
static int file_contains(const char *path, const char *needle)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    apr_size_t i, len = strlen(needle);

    if (apr_file_open(&f, path, APR_FOPEN_READ, 0, pool) != APR_SUCCESS) {
        return 0;
    }
    ck_assert_int_eq(apr_file_info_get(&fi, APR_FINFO_SIZE, f), APR_SUCCESS);
    n = (apr_size_t)fi.size;
    buf = apr_palloc(pool, n + 1);
    ck_assert_int_eq(apr_file_read_full(f, buf, n, &n), APR_SUCCESS);
    apr_file_close(f);
    for (i = 0; i + len <= n; i++) {
        if (memcmp(buf + i, needle, len) == 0) {
            return 1;
        }
    }
    return 0;
}

START_TEST(store_spec)
{
    const char *type, *path;

    ck_assert_int_eq(cr_store_parse_spec(pool, "sdbm:/var/keys", &type,
                                         &path), APR_SUCCESS);
    ck_assert_str_eq(type, "sdbm");
    ck_assert_str_eq(path, "/var/keys");
    ck_assert_int_eq(cr_store_parse_spec(pool, "SDBM:/a:b", &type, &path),
                     APR_SUCCESS);
    ck_assert_str_eq(type, "sdbm");
    ck_assert_str_eq(path, "/a:b");
    ck_assert_int_eq(cr_store_parse_spec(pool, "/var/keys", &type, &path),
                     APR_SUCCESS);
    ck_assert_str_eq(type, "default");
    ck_assert_int_eq(cr_store_parse_spec(pool, "db:keys", &type, &path),
                     APR_SUCCESS);
    ck_assert_str_eq(type, "db");
    ck_assert_int_ne(cr_store_parse_spec(pool, "", &type, &path),
                     APR_SUCCESS);
    ck_assert_int_ne(cr_store_parse_spec(pool, "sdbm:", &type, &path),
                     APR_SUCCESS);
    ck_assert_int_ne(cr_store_parse_spec(pool, ":/x", &type, &path),
                     APR_SUCCESS);
    ck_assert_int_ne(cr_store_parse_spec(pool, "lmdbx:/x", &type, &path),
                     APR_SUCCESS);
}
END_TEST

START_TEST(store_lifecycle)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    cr_key_record_t tmpl, *rec, *rec2, *got, changes;
    const char *key, *key2, *err = NULL, *hash = NULL;
    apr_array_header_t *list;
    cr_store_t *store;
    char errbuf[256];

    /* Reading a store that does not exist yet: a clear error. */
    ck_assert_int_ne(cr_store_open(pool, spec, 0, &store, errbuf,
                                   sizeof(errbuf)), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(errbuf, "does not exist"));

    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.name = "first";
    tmpl.models = cr_key_parse_models(pool, "gpt-*");
    tmpl.rpm = 60;
    tmpl.expires_at = 0;
    ck_assert_int_eq(cr_store_create_key(pool, spec, &tmpl, &key, &rec, &err),
                     APR_SUCCESS);
    ck_assert(cr_cred_key_wellformed(key));
    ck_assert(cr_key_id_wellformed(rec->id));
    ck_assert_str_eq(rec->hint, cr_cred_mask(pool, key));
    ck_assert_int_eq(rec->status, CR_KEY_ACTIVE);
    ck_assert(rec->created_at > 0);

    tmpl.name = "second";
    tmpl.models = cr_key_parse_models(pool, "*");
    tmpl.rpm = CR_KEY_RPM_UNSET;
    tmpl.expires_at = t3339("2030-01-01T00:00:00Z");
    ck_assert_int_eq(cr_store_create_key(pool, spec, &tmpl, &key2, &rec2,
                                         &err), APR_SUCCESS);
    ck_assert_str_ne(key, key2);
    ck_assert_str_ne(rec->id, rec2->id);

    /* Only hashes are on disk. */
    ck_assert(!file_contains(apr_pstrcat(pool, dir, "/keys.pag", NULL), key));
    ck_assert(!file_contains(apr_pstrcat(pool, dir, "/keys.pag", NULL),
                             key + 3));
    ck_assert(file_contains(apr_pstrcat(pool, dir, "/keys.pag", NULL),
                            cr_key_hash(pool, key)));

    ck_assert_int_eq(cr_store_open(pool, spec, 0, &store, errbuf,
                                   sizeof(errbuf)), APR_SUCCESS);
    ck_assert_int_eq(cr_store_fetch_by_hash(store, pool,
                                            cr_key_hash(pool, key), &got),
                     APR_SUCCESS);
    ck_assert_str_eq(got->id, rec->id);
    ck_assert_str_eq(got->name, "first");
    ck_assert_int_eq(got->rpm, 60);
    ck_assert(cr_key_model_allowed(got, "gpt-4o"));
    ck_assert(!cr_key_model_allowed(got, "claude-3"));
    ck_assert_int_eq(cr_store_fetch_by_id(store, pool, rec2->id, &got, &hash),
                     APR_SUCCESS);
    ck_assert_str_eq(hash, cr_key_hash(pool, key2));
    ck_assert(got->expires_at == t3339("2030-01-01T00:00:00Z"));
    ck_assert_int_eq(got->rpm, CR_KEY_RPM_UNSET);
    ck_assert_int_eq(cr_store_fetch_by_hash(store, pool,
                     cr_key_hash(pool, make_key(48)), &got), APR_NOTFOUND);
    ck_assert_int_eq(cr_store_fetch_by_id(store, pool, "key_0000000000000000",
                                          &got, NULL), APR_NOTFOUND);
    ck_assert_int_eq(cr_store_list(store, pool, &list), APR_SUCCESS);
    ck_assert_int_eq(list->nelts, 2);
    cr_store_close(store);

    /* Update: only what is given changes. */
    memset(&changes, 0, sizeof(changes));
    changes.rpm = 5;
    changes.expires_at = CR_STORE_EXPIRES_KEEP;
    ck_assert_int_eq(cr_store_update_key(pool, spec, rec2->id, &changes, &got,
                                         &err), APR_SUCCESS);
    ck_assert_int_eq(got->rpm, 5);
    ck_assert_str_eq(got->name, "second");
    ck_assert(got->expires_at == t3339("2030-01-01T00:00:00Z"));
    changes.rpm = CR_STORE_RPM_KEEP;
    changes.expires_at = 0;
    changes.name = "renamed";
    changes.models = cr_key_parse_models(pool, "claude-*,gpt-4o");
    ck_assert_int_eq(cr_store_update_key(pool, spec, rec2->id, &changes, &got,
                                         &err), APR_SUCCESS);
    ck_assert_int_eq(got->rpm, 5);
    ck_assert(got->expires_at == 0);
    ck_assert_str_eq(got->name, "renamed");
    ck_assert_int_eq(got->models->nelts, 2);
    ck_assert_int_eq(cr_store_update_key(pool, spec, "key_0000000000000000",
                                         &changes, &got, &err),
                     APR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "key_0000000000000000"));

    /* Revoke, then the lookup by hash sees it at once. */
    ck_assert_int_eq(cr_store_revoke_key(pool, spec, rec->id, &got, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(got->status, CR_KEY_REVOKED);
    ck_assert_int_eq(cr_store_revoke_key(pool, spec, "key_0000000000000000",
                                         &got, &err), APR_NOTFOUND);
    ck_assert_int_eq(cr_store_open(pool, spec, 0, &store, errbuf,
                                   sizeof(errbuf)), APR_SUCCESS);
    ck_assert_int_eq(cr_store_fetch_by_hash(store, pool,
                                            cr_key_hash(pool, key), &got),
                     APR_SUCCESS);
    ck_assert_int_eq(cr_key_usability(got, apr_time_now()),
                     CR_KEY_IS_REVOKED);
    ck_assert_int_eq(cr_store_list(store, pool, &list), APR_SUCCESS);
    ck_assert_int_eq(list->nelts, 2);
    /* Oldest first (same second: by id). */
    ck_assert(APR_ARRAY_IDX(list, 0, cr_key_record_t *)->created_at
              <= APR_ARRAY_IDX(list, 1, cr_key_record_t *)->created_at);
    cr_store_close(store);
    remove_store_dir(dir);
}
END_TEST

START_TEST(store_errors)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    cr_key_record_t tmpl, *rec, *got;
    const char *key, *err = NULL, *models = "m0";
    cr_store_t *store;
    apr_dbm_t *dbm;
    apr_datum_t k, v;
    char errbuf[256];
    int i;

    ck_assert_int_ne(cr_store_open(pool, "nosuchtype:/x", 0, &store, errbuf,
                                   sizeof(errbuf)), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(errbuf, "unknown DBM type"));
    ck_assert_int_ne(cr_store_open(pool, "sdbm:", 0, &store, errbuf,
                                   sizeof(errbuf)), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(errbuf, "invalid key store"));
    /* Creating a store under a regular file or a missing directory. */
    ck_assert_int_ne(cr_store_open(pool, "sdbm:/etc/passwd/keys", 1, &store,
                                   errbuf, sizeof(errbuf)), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(errbuf, "cannot open key store"));
    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.models = cr_key_parse_models(pool, "*");
    tmpl.rpm = CR_KEY_RPM_UNSET;
    ck_assert_int_ne(cr_store_create_key(pool, apr_pstrcat(pool, "sdbm:", dir,
                                         "/no/such/dir/keys", NULL), &tmpl,
                                         &key, &rec, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "cannot open key store"));

    /* A record too large for sdbm: refused with a reason, nothing
     * written. */
    for (i = 1; i < 120; i++) {
        models = apr_psprintf(pool, "%s,model-%d-*", models, i);
    }
    tmpl.models = cr_key_parse_models(pool, models);
    err = NULL;
    ck_assert_int_eq(cr_store_create_key(pool, spec, &tmpl, &key, &rec, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "too large"));

    /* A corrupt record: a clear error, not a crash or a usable key. */
    tmpl.models = cr_key_parse_models(pool, "*");
    ck_assert_int_eq(cr_store_create_key(pool, spec, &tmpl, &key, &rec, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(apr_dbm_open_ex(&dbm, "sdbm", apr_pstrcat(pool, dir,
                                     "/keys", NULL), APR_DBM_READWRITE,
                                     APR_OS_DEFAULT, pool), APR_SUCCESS);
    k.dptr = apr_pstrcat(pool, "h:", cr_key_hash(pool, key), NULL);
    k.dsize = strlen(k.dptr);
    v.dptr = "{\"id\":\"key_AbCdEfGh01234567\",\"status\":\"active\"}";
    v.dsize = strlen(v.dptr);
    ck_assert_int_eq(apr_dbm_store(dbm, k, v), APR_SUCCESS);
    apr_dbm_close(dbm);
    ck_assert_int_eq(cr_store_open(pool, spec, 0, &store, errbuf,
                                   sizeof(errbuf)), APR_SUCCESS);
    ck_assert_int_eq(cr_store_fetch_by_hash(store, pool,
                                            cr_key_hash(pool, key), &got),
                     APR_EGENERAL);
    ck_assert_ptr_nonnull(strstr(cr_store_last_error(store), "corrupt"));
    ck_assert_int_eq(cr_store_fetch_by_id(store, pool, rec->id, &got, NULL),
                     APR_EGENERAL);
    cr_store_close(store);
    ck_assert_int_ne(cr_store_revoke_key(pool, spec, rec->id, &got, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "corrupt"));
    remove_store_dir(dir);
}
END_TEST


/* ------------------------------------------------------------- siphash */

/* The reference code's test vectors (github.com/veorq/SipHash, vectors.h:
 * vectors_sip64 and vectors_sip128): SipHash-2-4 under the key 00 01 ..
 * 0f of the messages 00 01 .. (i-1) for i = 0..63, as output bytes. */
static const char *const sip64_vectors[64] = {
    "310e0edd47db6f72",
    "fd67dc93c539f874",
    "5a4fa9d909806c0d",
    "2d7efbd796666785",
    "b7877127e09427cf",
    "8da699cd64557618",
    "cee3fe586e46c9cb",
    "37d1018bf50002ab",
    "6224939a79f5f593",
    "b0e4a90bdf82009e",
    "f3b9dd94c5bb5d7a",
    "a7ad6b22462fb3f4",
    "fbe50e86bc8f1e75",
    "903d84c02756ea14",
    "eef27a8e90ca23f7",
    "e545be4961ca29a1",
    "db9bc2577fcc2a3f",
    "9447be2cf5e99a69",
    "9cd38d96f0b3c14b",
    "bd6179a71dc96dbb",
    "98eea21af25cd6be",
    "c7673b2eb0cbf2d0",
    "883ea3e395675393",
    "c8ce5ccd8c030ca8",
    "94af49f6c650adb8",
    "eab8858ade92e1bc",
    "f315bb5bb835d817",
    "adcf6b0763612e2f",
    "a5c91da7acaa4dde",
    "716595876650a2a6",
    "28ef495c53a387ad",
    "42c341d8fa92d832",
    "ce7cf2722f512771",
    "e37859f94623f3a7",
    "381205bb1ab0e012",
    "ae97a10fd434e015",
    "b4a31508beff4d31",
    "81396229f0907902",
    "4d0cf49ee5d4dcca",
    "5c73336a76d8bf9a",
    "d0a704536ba93e0e",
    "925958fcd6420cad",
    "a915c29bc8067318",
    "952b79f3bc0aa6d4",
    "f21df2e41d4535f9",
    "87577519048f53a9",
    "10a56cf5dfcd9adb",
    "eb75095ccd986cd0",
    "51a9cb9ecba312e6",
    "96afadfc2ce666c7",
    "72fe52975a4364ee",
    "5a1645b276d592a1",
    "b274cb8ebf87870a",
    "6f9bb4203de7b381",
    "eaecb2a30b22a87f",
    "9924a43cc1315724",
    "bd838d3aafbf8db7",
    "0b1a2a3265d51aea",
    "135079a3231ce660",
    "932b2846e4d70666",
    "e1915f5cb1eca46c",
    "f325965ca16d629f",
    "575ff28e60381be5",
    "724506eb4c328a95",
};

static const char *const sip128_vectors[64] = {
    "a3817f04ba25a8e66df67214c7550293",
    "da87c1d86b99af44347659119b22fc45",
    "8177228da4a45dc7fca38bdef60affe4",
    "9c70b60c5267a94e5f33b6b02985ed51",
    "f88164c12d9c8faf7d0f6e7c7bcd5579",
    "1368875980776f8854527a07690e9627",
    "14eeca338b208613485ea0308fd7a15e",
    "a1f1ebbed8dbc153c0b84aa61ff08239",
    "3b62a9ba6258f5610f83e264f31497b4",
    "264499060ad9baabc47f8b02bb6d71ed",
    "00110dc378146956c95447d3f3d0fbba",
    "0151c568386b6677a2b4dc6f81e5dc18",
    "d626b266905ef35882634df68532c125",
    "9869e247e9c08b10d029934fc4b952f7",
    "31fcefac66d7de9c7ec7485fe4494902",
    "5493e99933b0a8117e08ec0f97cfc3d9",
    "6ee2a4ca67b054bbfd3315bf85230577",
    "473d06e8738db89854c066c47ae47740",
    "a426e5e423bf4885294da481feaef723",
    "78017731cf65fab074d5208952512eb1",
    "9e25fc833f2290733e9344a5e83839eb",
    "568e495abe525a218a2214cd3e071d12",
    "4a29b54552d16b9a469c10528eff0aae",
    "c9d184ddd5a9f5e0cf8ce29a9abf691c",
    "2db479ae78bd50d8882a8a178a6132ad",
    "8ece5f042d5e447b5051b9eacb8d8f6f",
    "9c0b53b4b3c307e87eaee08678141f66",
    "abf248af69a6eae4bfd3eb2f129eeb94",
    "0664da1668574b88b935f3027358aef4",
    "aa4b9dc4bf337de90cd4fd3c467c6ab7",
    "ea5c7f471faf6bde2b1ad7d4686d2287",
    "2939b0183223fafc1723de4f52c43d35",
    "7c3956ca5eeafc3e363e9d556546eb68",
    "77c6077146f01c32b6b69d5f4ea9ffcf",
    "37a6986cb8847edf0925f0f1309b54de",
    "a705f0e69da9a8f907241a2e923c8cc8",
    "3dc47d1f29c448461e9e76ed904f6711",
    "0d62bf01e6fc0e1a0d3c4751c5d3692b",
    "8c03468bca7c669ee4fd5e084bbee7b5",
    "528a5bb93baf2c9c4473cce5d0d22bd9",
    "df6a301e95c95dad97ae0cc8c6913bd8",
    "801189902c857f39e73591285e70b6db",
    "e617346ac9c231bb3650ae34ccca0c5b",
    "27d93437efb721aa401821dcec5adf89",
    "89237d9ded9c5e78d8b1c9b166cc7342",
    "4a6d8091bf5e7d651189fa94a250b14c",
    "0e33f96055e7ae893ffc0e3dcf492902",
    "e61c432b720b19d18ec8d84bdc63151b",
    "f7e5aef549f782cf379055a608269b16",
    "438d030fd0b7a54fa837f2ad201a6403",
    "a590d3ee4fbf04e3247e0d27f286423f",
    "5fe2c1a172fe93c4b15cd37caef9f538",
    "2c97325cbd06b36eb2133dd08b3a017c",
    "92c814227a6bca949ff0659f002ad39e",
    "dce850110bd8328cfbd50841d6911d87",
    "67f14984c7da791248e32bb5922583da",
    "1938f2cf72d54ee97e94166fa91d2a36",
    "74481e9646ed49fe0f6224301604698e",
    "57fca5de98a9d6d8006438d0583d8a1d",
    "9fecde1cefdc1cbed4763674d9575359",
    "e3040c00eb28f15366ca73cbd872e740",
    "7697009a6a831dfecca91c5993670f7a",
    "5853542321f567a005d547a4f04759bd",
    "5150d1772f50834a503e069a973fbd7c",
};

static const char *hex_of(const unsigned char *b, int n)
{
    char *out = apr_palloc(pool, 2 * n + 1);
    int i;

    for (i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", b[i]);
    }
    return out;
}

START_TEST(siphash_paper_vector)
{
    unsigned char key[16], msg[15];
    int i;

    for (i = 0; i < 16; i++) {
        key[i] = (unsigned char)i;
    }
    for (i = 0; i < 15; i++) {
        msg[i] = (unsigned char)i;
    }
    /* Appendix A of the paper: SipHash-2-4 of 00..0e under 00..0f. */
    ck_assert_uint_eq(cr_siphash24_64(key, msg, sizeof(msg)),
                      APR_UINT64_C(0xa129ca6149be45e5));
}
END_TEST

START_TEST(siphash_reference_vectors)
{
    unsigned char key[16], msg[64], out[16];
    int i;

    for (i = 0; i < 16; i++) {
        key[i] = (unsigned char)i;
    }
    for (i = 0; i < 64; i++) {
        msg[i] = (unsigned char)i;
    }
    for (i = 0; i < 64; i++) {
        apr_uint64_t t64 = cr_siphash24_64(key, msg, (apr_size_t)i);
        cr_siphash128_t t128 = cr_siphash24_128(key, msg, (apr_size_t)i);
        int j;

        for (j = 0; j < 8; j++) {
            out[j] = (unsigned char)(t64 >> (8 * j));
        }
        ck_assert_msg(strcmp(hex_of(out, 8), sip64_vectors[i]) == 0,
                      "64-bit, length %d: %s", i, hex_of(out, 8));
        cr_siphash128_bytes(&t128, out);
        ck_assert_msg(strcmp(hex_of(out, 16), sip128_vectors[i]) == 0,
                      "128-bit, length %d: %s", i, hex_of(out, 16));
    }
}
END_TEST

START_TEST(siphash_keyed_and_equal)
{
    unsigned char k1[16], k2[16];
    const char *msg = "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";
    cr_siphash128_t a, b, c;

    memset(k1, 0x11, sizeof(k1));
    memcpy(k2, k1, sizeof(k2));
    k2[15] ^= 1;
    a = cr_siphash24_128(k1, msg, strlen(msg));
    b = cr_siphash24_128(k1, msg, strlen(msg));
    c = cr_siphash24_128(k2, msg, strlen(msg));
    ck_assert(cr_siphash128_equal(&a, &b));
    /* another key: another tag */
    ck_assert(!cr_siphash128_equal(&a, &c));
    /* a difference in either half alone is seen */
    b.lo ^= APR_UINT64_C(1) << 63;
    ck_assert(!cr_siphash128_equal(&a, &b));
    b = a;
    b.hi ^= 1;
    ck_assert(!cr_siphash128_equal(&a, &b));
    /* one character changed: another tag */
    c = cr_siphash24_128(k1, "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKM",
                         strlen(msg));
    ck_assert(!cr_siphash128_equal(&a, &c));
}
END_TEST

/* ------------------------------------------------------------ keycache */

/* Settle time of the cache tests: short, so the tests need not wait the
 * module's 2 s, and far above ext4's timestamp granularity (a jiffy). */
#define TEST_SETTLE apr_time_from_msec(100)
#define TEST_WAIT   150000    /* microseconds: past the settle time */

/* A new key in the store: its record, and the key in *key. */
static cr_key_record_t *new_key(const char *spec, const char *name,
                                const char *models, const char **key)
{
    cr_key_record_t tmpl, *rec;
    const char *err = NULL;

    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.name = name;
    tmpl.models = cr_key_parse_models(pool, models);
    tmpl.rpm = 30;
    ck_assert_int_eq(cr_store_create_key(pool, spec, &tmpl, key, &rec, &err),
                     APR_SUCCESS);
    return rec;
}

static cr_keycache_result_e cached(cr_keycache_t *cache, const char *key,
                                   cr_key_record_t **rec, int *hit)
{
    apr_status_t rv;
    char errbuf[256];

    return cr_keycache_lookup(cache, pool, key, rec, hit, &rv, errbuf,
                              sizeof(errbuf));
}

/* A settled store is answered from the cache, with the same record. */
START_TEST(keycache_hit_same_record)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *key;
    cr_key_record_t *made = new_key(spec, "cached", "gpt-*,claude-3-*",
                                    &key);
    cr_key_record_t *rec = NULL;
    cr_keycache_t *cache;
    cr_keycache_stats_t st;
    int hit = -1, i;

    ck_assert_int_eq(cr_keycache_create(pool, spec, 64, TEST_SETTLE, 4, &cache),
                     APR_SUCCESS);
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
        ck_assert_int_eq(hit, 1);
        ck_assert_str_eq(rec->id, made->id);
        ck_assert_str_eq(rec->name, "cached");
        ck_assert_str_eq(rec->hint, made->hint);
        ck_assert_int_eq(rec->models->nelts, 2);
        ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 1, const char *),
                         "claude-3-*");
        ck_assert_int_eq(rec->rpm, 30);
        ck_assert_int_eq(rec->created_at, made->created_at);
        ck_assert_int_eq(rec->expires_at, 0);
        ck_assert_int_eq(rec->status, CR_KEY_ACTIVE);
        /* where the rate tables keep the key, as cr_rate_id_fnv says */
        ck_assert(rec->id_fnv == cr_rate_id_fnv(made->id));
    }
    /* a record read from the store does not know it (0: computed) */
    ck_assert(made->id_fnv == 0);
    cr_keycache_stats(cache, &st);
    ck_assert_int_eq(st.local_fs, 1);
    ck_assert_int_eq(st.hits, 3);
    ck_assert_int_eq(st.reads, 1);
    remove_store_dir(dir);
}
END_TEST

/* A store changed less than the settle time ago is read every time. */
START_TEST(keycache_unsettled_not_cached)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *key;
    cr_key_record_t *rec = NULL;
    cr_keycache_t *cache;
    cr_keycache_stats_t st;
    int hit, i;

    (void)new_key(spec, "fresh", "*", &key);
    ck_assert_int_eq(cr_keycache_create(pool, spec, 64,
                                        apr_time_from_sec(60), 1, &cache),
                     APR_SUCCESS);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
        ck_assert_int_eq(hit, 0);
    }
    cr_keycache_stats(cache, &st);
    ck_assert_int_eq(st.hits, 0);
    ck_assert_int_eq(st.reads, 3);
    remove_store_dir(dir);
}
END_TEST

/* Revoke and update through the store: the next lookup sees the change,
 * however warm the cache was. */
START_TEST(keycache_changes_seen_at_once)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *key, *other_key, *err = NULL;
    cr_key_record_t *made = new_key(spec, "doomed", "gpt-*", &key);
    cr_key_record_t *other = new_key(spec, "other", "*", &other_key);
    cr_key_record_t *rec = NULL, changes;
    cr_keycache_t *cache;
    cr_keycache_stats_t st;
    int hit;

    ck_assert_int_eq(cr_keycache_create(pool, spec, 64, TEST_SETTLE, 4, &cache),
                     APR_SUCCESS);
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(cached(cache, other_key, &rec, &hit),
                     CR_KEYCACHE_FOUND);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);

    /* update: new models, right away */
    memset(&changes, 0, sizeof(changes));
    changes.models = cr_key_parse_models(pool, "o1-*");
    changes.rpm = CR_STORE_RPM_KEEP;
    changes.expires_at = CR_STORE_EXPIRES_KEEP;
    ck_assert_int_eq(cr_store_update_key(pool, spec, made->id, &changes,
                                         &rec, &err), APR_SUCCESS);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 0, const char *), "o1-*");

    /* revoke after the cache warmed up again */
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    ck_assert_int_eq(cr_store_revoke_key(pool, spec, made->id, &rec, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(rec->status, CR_KEY_REVOKED);
    /* the other key is read again too (the whole cache went) */
    ck_assert_int_eq(cached(cache, other_key, &rec, &hit),
                     CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_str_eq(rec->id, other->id);
    cr_keycache_stats(cache, &st);
    ck_assert_int_ge(st.flushes, 2);
    remove_store_dir(dir);
}
END_TEST

/* Copy the file at from over to, keeping to's inode and mtime. */
static void overwrite_keep_mtime(const char *from, const char *to)
{
    apr_finfo_t before;
    apr_file_t *in, *out;
    char buf[8192];
    apr_size_t n;

    ck_assert_int_eq(apr_stat(&before, to, APR_FINFO_MTIME, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(apr_file_open(&in, from, APR_FOPEN_READ, 0, pool),
                     APR_SUCCESS);
    ck_assert_int_eq(apr_file_open(&out, to, APR_FOPEN_WRITE
                                   | APR_FOPEN_TRUNCATE, 0, pool),
                     APR_SUCCESS);
    for (;;) {
        n = sizeof(buf);
        if (apr_file_read(in, buf, &n) != APR_SUCCESS || n == 0) {
            break;
        }
        ck_assert_int_eq(apr_file_write_full(out, buf, n, NULL),
                         APR_SUCCESS);
    }
    apr_file_close(in);
    apr_file_close(out);
    ck_assert_int_eq(apr_file_mtime_set(to, before.mtime, pool),
                     APR_SUCCESS);
}

static void copy_store(const char *dir, const char *from, const char *to)
{
    int i;

    for (i = 0; sdbm_ext[i]; i++) {
        ck_assert_int_eq(apr_file_copy(
            apr_pstrcat(pool, dir, "/", from, sdbm_ext[i], NULL),
            apr_pstrcat(pool, dir, "/", to, sdbm_ext[i], NULL),
            APR_FPROT_FILE_SOURCE_PERMS, pool), APR_SUCCESS);
    }
}

/* The store replaced by rename (a new inode), or an old copy written
 * back with its old mtime (cp -p): both are seen. */
START_TEST(keycache_store_replaced)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *key, *err = NULL;
    cr_key_record_t *made = new_key(spec, "swapped", "*", &key);
    cr_key_record_t *rec = NULL;
    cr_keycache_t *cache;
    int hit, i;

    copy_store(dir, "keys", "active-copy");
    ck_assert_int_eq(cr_store_revoke_key(pool, spec, made->id, &rec, &err),
                     APR_SUCCESS);
    copy_store(dir, "keys", "revoked-copy");
    copy_store(dir, "active-copy", "keys");   /* active again */
    ck_assert_int_eq(cr_keycache_create(pool, spec, 64, TEST_SETTLE, 4, &cache),
                     APR_SUCCESS);
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    ck_assert_int_eq(rec->status, CR_KEY_ACTIVE);

    /* mv revoked-copy keys */
    for (i = 0; sdbm_ext[i]; i++) {
        ck_assert_int_eq(apr_file_rename(
            apr_pstrcat(pool, dir, "/revoked-copy", sdbm_ext[i], NULL),
            apr_pstrcat(pool, dir, "/keys", sdbm_ext[i], NULL), pool),
            APR_SUCCESS);
    }
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(rec->status, CR_KEY_REVOKED);

    /* cp -p active-copy keys: same inode, old mtime, new ctime */
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    for (i = 0; sdbm_ext[i]; i++) {
        overwrite_keep_mtime(
            apr_pstrcat(pool, dir, "/active-copy", sdbm_ext[i], NULL),
            apr_pstrcat(pool, dir, "/keys", sdbm_ext[i], NULL));
    }
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(rec->status, CR_KEY_ACTIVE);

    for (i = 0; sdbm_ext[i]; i++) {
        apr_file_remove(apr_pstrcat(pool, dir, "/active-copy", sdbm_ext[i], NULL),
                        pool);
    }
    remove_store_dir(dir);
}
END_TEST

/* Unknown keys, a missing store, a cache of 0 and slot collisions. */
START_TEST(keycache_misses_and_errors)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *keys[8];
    cr_key_record_t *recs[8], *rec = NULL;
    cr_keycache_t *cache, *off, *tiny;
    cr_keycache_stats_t st;
    apr_status_t rv;
    char errbuf[256];
    int hit, i, round;

    /* no store yet: an open failure, with a reason */
    ck_assert_int_eq(cr_keycache_create(pool, spec, 64, TEST_SETTLE, 4, &cache),
                     APR_SUCCESS);
    ck_assert_int_eq(cr_keycache_lookup(cache, pool, "x",
                                        &rec, &hit, &rv, errbuf,
                                        sizeof(errbuf)),
                     CR_KEYCACHE_OPEN_FAILED);
    ck_assert_ptr_nonnull(strstr(errbuf, "does not exist"));

    for (i = 0; i < 8; i++) {
        recs[i] = new_key(spec, "many", "*", &keys[i]);
    }
    apr_sleep(TEST_WAIT);
    /* unknown keys are never cached */
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(cached(cache, "sk-unknown", &rec,
                                &hit), CR_KEYCACHE_NOT_FOUND);
        ck_assert_int_eq(hit, 0);
    }
    /* size 0: never a hit */
    ck_assert_int_eq(cr_keycache_create(pool, spec, 0, TEST_SETTLE, 1, &off),
                     APR_SUCCESS);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(cached(off, keys[0], &rec, &hit),
                         CR_KEYCACHE_FOUND);
        ck_assert_int_eq(hit, 0);
    }
    /* two slots for eight keys: whatever is answered is the right record */
    ck_assert_int_eq(cr_keycache_create(pool, spec, 2, TEST_SETTLE, 1, &tiny),
                     APR_SUCCESS);
    for (round = 0; round < 3; round++) {
        for (i = 0; i < 8; i++) {
            ck_assert_int_eq(cached(tiny, keys[i], &rec, &hit),
                             CR_KEYCACHE_FOUND);
            ck_assert_str_eq(rec->id, recs[i]->id);
        }
    }
    cr_keycache_stats(tiny, &st);
    ck_assert_int_eq(st.hits + st.reads, 24);
    ck_assert_int_eq(cr_keycache_create(pool, spec, -1, TEST_SETTLE, 1, &tiny),
                     APR_EINVAL);

    /* the store removed: an open failure again, not a stale answer */
    remove_store_dir(dir);
    ck_assert_int_eq(cached(cache, keys[0], &rec, &hit),
                     CR_KEYCACHE_OPEN_FAILED);
}
END_TEST

/* One slot for every key: a key whose slot holds another key's record
 * must miss (the full 128-bit tag is compared), whether it is in the
 * store, unknown, or one character away from the cached key. */
START_TEST(keycache_same_slot_other_key)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *key_a, *key_b;
    cr_key_record_t *rec_a = new_key(spec, "a", "gpt-*", &key_a);
    cr_key_record_t *rec_b = new_key(spec, "b", "claude-*", &key_b);
    cr_key_record_t *rec = NULL;
    cr_keycache_t *one;
    cr_keycache_stats_t st;
    char *near_a = apr_pstrdup(pool, key_a);
    int hit;

    near_a[strlen(near_a) - 1] = near_a[strlen(near_a) - 1] == 'a' ? 'b'
                                                                   : 'a';
    ck_assert_int_eq(cr_keycache_create(pool, spec, 1, TEST_SETTLE, 1, &one),
                     APR_SUCCESS);
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(one, key_a, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(cached(one, key_a, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    ck_assert_str_eq(rec->id, rec_a->id);

    /* an unknown key and a near miss: not found, not a's record */
    rec = NULL;
    ck_assert_int_eq(cached(one, "sk-unknownunknownunknownunknownunknownunknown",
                            &rec, &hit), CR_KEYCACHE_NOT_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_int_eq(cached(one, near_a, &rec, &hit), CR_KEYCACHE_NOT_FOUND);
    ck_assert_int_eq(hit, 0);
    /* a's record is still the slot's */
    ck_assert_int_eq(cached(one, key_a, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);

    /* b, in the store, in a's slot: read, and its own record */
    ck_assert_int_eq(cached(one, key_b, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_str_eq(rec->id, rec_b->id);
    ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 0, const char *),
                     "claude-*");
    ck_assert_int_eq(cached(one, key_b, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    ck_assert_str_eq(rec->id, rec_b->id);
    /* and a again: b took the slot */
    ck_assert_int_eq(cached(one, key_a, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 0);
    ck_assert_str_eq(rec->id, rec_a->id);

    cr_keycache_stats(one, &st);
    ck_assert_int_eq(st.hits, 3);
    ck_assert_int_eq(st.reads, 5);
    remove_store_dir(dir);
}
END_TEST

/* A hit's record belongs to the caller: changing it (its strings, its
 * models array, which grows as apr_array_make's would) leaves the cached
 * one as it was. */
START_TEST(keycache_hit_record_is_a_copy)
{
    const char *dir = temp_store_dir();
    const char *spec = apr_pstrcat(pool, "sdbm:", dir, "/keys", NULL);
    const char *key;
    cr_key_record_t *made = new_key(spec, "copy", "gpt-*,o1-*,claude-*",
                                    &key);
    cr_key_record_t *rec = NULL;
    cr_keycache_t *cache;
    int hit, i;

    ck_assert_int_eq(cr_keycache_create(pool, spec, 16, TEST_SETTLE, 4, &cache),
                     APR_SUCCESS);
    apr_sleep(TEST_WAIT);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    ck_assert_int_eq(rec->models->nelts, 3);
    ((char *)rec->name)[0] = 'X';
    ((char *)APR_ARRAY_IDX(rec->models, 2, const char *))[0] = 'X';
    for (i = 0; i < 20; i++) {
        APR_ARRAY_PUSH(rec->models, const char *) = "pushed";
    }
    ck_assert_int_eq(rec->models->nelts, 23);
    ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 0, const char *), "gpt-*");
    ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 22, const char *), "pushed");

    ck_assert_int_eq(cached(cache, key, &rec, &hit), CR_KEYCACHE_FOUND);
    ck_assert_int_eq(hit, 1);
    ck_assert_str_eq(rec->id, made->id);
    ck_assert_str_eq(rec->name, "copy");
    ck_assert_str_eq(rec->hint, made->hint);
    ck_assert_int_eq(rec->models->nelts, 3);
    ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 1, const char *), "o1-*");
    ck_assert_str_eq(APR_ARRAY_IDX(rec->models, 2, const char *),
                     "claude-*");
    ck_assert(cr_key_model_allowed(rec, "claude-3-opus"));
    ck_assert(!cr_key_model_allowed(rec, "pushed"));
    remove_store_dir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keys");
    TCase *tc;
    SRunner *sr;
    int failed;

    apr_initialize();
    atexit(apr_terminate);

    tc = tcase_create("cred");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cred_missing);
    tcase_add_test(tc, cred_bearer_and_api_key);
    tcase_add_test(tc, cred_both_headers);
    tcase_add_test(tc, cred_other_scheme);
    tcase_add_test(tc, cred_malformed_keys);
    tcase_add_test(tc, cred_key_lengths);
    tcase_add_test(tc, cred_key_every_byte);
    tcase_add_test(tc, cred_mask);
    suite_add_tcase(s, tc);

    tc = tcase_create("key");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, key_generate_format);
    tcase_add_test(tc, key_new_id);
    tcase_add_test(tc, key_hash_vector);
    tcase_add_test(tc, record_round_trip);
    tcase_add_test(tc, record_token_limits);
    tcase_add_test(tc, record_rejections);
    tcase_add_test(tc, models_parse_and_match);
    tcase_add_test(tc, key_usability);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, time_parse_valid);
    tcase_add_test(tc, time_parse_invalid);
    tcase_add_test(tc, time_format);
    tcase_add_test(tc, time_expires);
    tcase_add_test(tc, time_once_per);
    tcase_add_test(tc, time_duration);
    suite_add_tcase(s, tc);

    tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, store_spec);
    tcase_add_test(tc, store_lifecycle);
    tcase_add_test(tc, store_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("siphash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, siphash_paper_vector);
    tcase_add_test(tc, siphash_reference_vectors);
    tcase_add_test(tc, siphash_keyed_and_equal);
    suite_add_tcase(s, tc);

    tc = tcase_create("keycache");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, keycache_hit_same_record);
    tcase_add_test(tc, keycache_unsettled_not_cached);
    tcase_add_test(tc, keycache_changes_seen_at_once);
    tcase_add_test(tc, keycache_store_replaced);
    tcase_add_test(tc, keycache_misses_and_errors);
    tcase_add_test(tc, keycache_same_slot_other_key);
    tcase_add_test(tc, keycache_hit_record_is_a_copy);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
