/* Licensed under the Apache License, Version 2.0. */

/*
 * test_multipart.c: the multipart/form-data scanner of cr_multipart.c: the
 * boundary from the Content-Type, the "model" field of the bodies the
 * OpenAI SDKs and curl send, every body fed whole, in every split into two
 * pieces, in three pieces around each boundary, and one byte at a time (the
 * verdict never depends on how the body was cut), and the malformed bodies
 * it refuses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "cr_multipart.h"

static apr_pool_t *pool;
static apr_pool_t *sub;            /* scan_cut's results, cleared often */

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    apr_pool_create(&sub, pool);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

#define B "----formdata-undici-0123456789"
#define CT "multipart/form-data; boundary=" B

/* A body in the shape undici's FormData (the openai Node SDK) sends. */
#define PART(name, value) \
    "--" B "\r\nContent-Disposition: form-data; name=\"" name "\"\r\n\r\n" \
    value "\r\n"
#define FILEPART(name, fname, content) \
    "--" B "\r\nContent-Disposition: form-data; name=\"" name "\"; " \
    "filename=\"" fname "\"\r\nContent-Type: audio/mpeg\r\n\r\n" content "\r\n"
#define END "--" B "--\r\n"

/* The verdict of one way of cutting the body: whole, or into pieces at
 * the offsets cuts[0..ncuts) (ascending). */
static cr_mp_status_e scan_cut(const char *boundary, const char *body,
                               apr_size_t len, const apr_size_t *cuts,
                               int ncuts, cr_mp_info_t *info)
{
    static cr_mp_scan_t scan;
    cr_mp_scan_t *s = &scan;
    apr_size_t from = 0;
    int k;

    cr_mp_scan_init(s, boundary, strlen(boundary));
    for (k = 0; k <= ncuts; k++) {
        apr_size_t to = k < ncuts ? cuts[k] : len;
        if (cr_mp_scan(s, body + from, to - from)) {
            break;
        }
        from = to;
    }
    return cr_mp_scan_finish(sub, s, info);
}

/* The body gives want (and model, when OK) however it is cut. */
static void check_all_cuts(const char *boundary, const char *body,
                           apr_size_t len, cr_mp_status_e want,
                           const char *model)
{
    cr_mp_info_t whole, info;
    cr_mp_status_e st;
    apr_size_t i, j, cuts[2];
    cr_mp_scan_t *s;

    st = scan_cut(boundary, body, len, NULL, 0, &whole);
    whole.model = whole.model ? apr_pstrdup(pool, whole.model) : NULL;
    whole.detail = whole.detail ? apr_pstrdup(pool, whole.detail) : NULL;
    ck_assert_msg(st == want, "whole body: status %d, want %d (%s)", st,
                  want, whole.detail ? whole.detail : "-");
    if (want == CR_MP_OK) {
        ck_assert_str_eq(whole.model, model);
        ck_assert_ptr_null(whole.detail);
    }
    else {
        ck_assert_ptr_nonnull(whole.detail);
        ck_assert_ptr_null(whole.model);
    }
    /* Every split into two pieces (empty pieces included). */
    for (i = 0; i <= len; i++) {
        cuts[0] = i;
        st = scan_cut(boundary, body, len, cuts, 1, &info);
        ck_assert_msg(st == want, "cut at %lu: status %d, want %d", i, st,
                      want);
        if (want == CR_MP_OK) {
            ck_assert_str_eq(info.model, model);
        }
        else {
            ck_assert_str_eq(info.detail, whole.detail);
        }
        apr_pool_clear(sub);
    }
    /* Three pieces, the middle one of 1 to 80 bytes: a boundary cut
     * anywhere, with its CRLF in an earlier piece. */
    for (i = 0; i < len; i++) {
        for (j = i + 1; j <= len && j <= i + 80; j++) {
            cuts[0] = i;
            cuts[1] = j;
            st = scan_cut(boundary, body, len, cuts, 2, &info);
            ck_assert_msg(st == want, "cuts at %lu, %lu: status %d, want %d",
                          i, j, st, want);
            apr_pool_clear(sub);
        }
    }
    /* One byte at a time. */
    s = apr_palloc(pool, sizeof(*s));
    cr_mp_scan_init(s, boundary, strlen(boundary));
    for (i = 0; i < len; i++) {
        if (cr_mp_scan(s, body + i, 1)) {
            break;
        }
    }
    st = cr_mp_scan_finish(pool, s, &info);
    ck_assert_int_eq(st, want);
    if (want == CR_MP_OK) {
        ck_assert_str_eq(info.model, model);
    }
}

#define CHECK(body, want, model) \
    check_all_cuts(B, body, sizeof(body) - 1, want, model)

/* ---- the Content-Type -------------------------------------------- */

START_TEST(test_content_type)
{
    char b[CR_MP_MAX_BOUNDARY + 1];
    apr_size_t len;
    const char *why;
    char seventy[71], seventy_one[72];
    const char *ct;

    ck_assert(cr_multipart_is_form_data("multipart/form-data"));
    ck_assert(cr_multipart_is_form_data(" Multipart/Form-Data ; boundary=x"));
    ck_assert(!cr_multipart_is_form_data("multipart/mixed; boundary=x"));
    ck_assert(!cr_multipart_is_form_data("application/json"));
    ck_assert(!cr_multipart_is_form_data(NULL));
    ck_assert(!cr_multipart_is_form_data(""));

    ck_assert_int_eq(cr_multipart_boundary(CT, b, &len, &why), CR_MP_OK);
    ck_assert_str_eq(b, B);
    ck_assert_uint_eq(len, strlen(B));
    /* curl, httpx, quoted, other parameters, case, empty parameters */
    ck_assert_int_eq(cr_multipart_boundary("multipart/form-data; boundary="
                     "------------------------d74496d66958873e", b, &len,
                     &why), CR_MP_OK);
    ck_assert_str_eq(b, "------------------------d74496d66958873e");
    ck_assert_int_eq(cr_multipart_boundary("multipart/form-data; charset=utf-8;"
                     " BOUNDARY=\"a b:c=d/e?f\";", b, &len, &why), CR_MP_OK);
    ck_assert_str_eq(b, "a b:c=d/e?f");
    ck_assert_int_eq(cr_multipart_boundary("multipart/form-data;boundary=x",
                     b, &len, &why), CR_MP_OK);
    ck_assert_str_eq(b, "x");

    memset(seventy, 'a', 70);
    seventy[70] = '\0';
    memset(seventy_one, 'a', 71);
    seventy_one[71] = '\0';
    ct = apr_pstrcat(pool, "multipart/form-data; boundary=", seventy, NULL);
    ck_assert_int_eq(cr_multipart_boundary(ct, b, &len, &why), CR_MP_OK);
    ck_assert_uint_eq(len, 70);
    ct = apr_pstrcat(pool, "multipart/form-data; boundary=", seventy_one,
                     NULL);
    ck_assert_int_eq(cr_multipart_boundary(ct, b, &len, &why),
                     CR_MP_BAD_BOUNDARY);

    {
        static const char *const bad[] = {
            "multipart/form-data",
            "multipart/form-data; charset=utf-8",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary=\"ends in space \"",
            "multipart/form-data; boundary=\"a\\b\"",
            "multipart/form-data; boundary=\"unclosed",
            "multipart/form-data; boundary=a; boundary=a",
            "multipart/form-data; boundary=a, multipart/form-data; boundary=b",
            "multipart/form-data; boundary =a",
            "multipart/form-data; boundary=a=b",
            "multipart/form-data; boundary=\"a\tb\"",
            "multipart/form-data; boundary=\"a\xc3\xa9\"",
            "multipart/form-data; boundary=a b",
            "multipart/mixed; boundary=a",
            "text/plain; boundary=a",
            NULL
        };
        int i;
        for (i = 0; bad[i]; i++) {
            ck_assert_msg(cr_multipart_boundary(bad[i], b, &len, &why)
                          == CR_MP_BAD_BOUNDARY, "accepted: %s", bad[i]);
            ck_assert_ptr_nonnull(why);
        }
    }
}
END_TEST

/* ---- bodies the clients send ------------------------------------- */

START_TEST(test_model_first_and_last)
{
    CHECK(PART("model", "whisper-1")
          FILEPART("file", "a.mp3", "ID3\x00\x01" "binary\r\n-- not it\r\n")
          END, CR_MP_OK, "whisper-1");
    CHECK(FILEPART("file", "a.mp3", "ID3\x00\x01\r\n\r\n--")
          PART("response_format", "json")
          PART("model", "gpt-4o-transcribe") END, CR_MP_OK,
          "gpt-4o-transcribe");
    /* images.edit: several images, a prompt, the model in the middle */
    CHECK(FILEPART("image[]", "a.png", "\x89PNG\r\n\x1a\n----")
          PART("model", "gpt-image-1") PART("prompt", "a hat")
          FILEPART("image[]", "b.png", "\x89PNG") END, CR_MP_OK,
          "gpt-image-1");
    /* no CRLF after the close delimiter; empty parts */
    CHECK(PART("model", "dall-e-2") PART("prompt", "") "--" B "--",
          CR_MP_OK, "dall-e-2");
    /* unquoted name, other headers, case, the longest model */
    CHECK("--" B "\r\ncontent-disposition: Form-Data; NAME=model\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Transfer-Encoding: 8bit\r\n\r\nw\xc3\xa9-1\r\n" END,
          CR_MP_OK, "w\xc3\xa9-1");
}
END_TEST

START_TEST(test_boundary_lookalikes_in_content)
{
    /* Dashes, a partial boundary, the boundary minus one byte, CRLF-- */
    CHECK(FILEPART("file", "x", "\r\n--" "----formdata-undici-012345678"
                   "\r\n-------formdata-undici\r\n----formdata-undici-01234"
                   "5678X--\r\n--\r\n-")
          PART("model", "m") END, CR_MP_OK, "m");
}
END_TEST

START_TEST(test_long_model_and_headers)
{
    char *body, value[300], fname[9000];
    cr_mp_info_t info;

    memset(value, 'm', sizeof(value));
    value[256] = '\0';
    body = apr_pstrcat(pool, "--" B "\r\nContent-Disposition: form-data; "
                       "name=\"model\"\r\n\r\n", value, "\r\n" END, NULL);
    ck_assert_int_eq(scan_cut(B, body, strlen(body), NULL, 0, &info),
                     CR_MP_OK);
    ck_assert_uint_eq(strlen(info.model), 256);
    value[257] = '\0';
    value[256] = 'm';
    body = apr_pstrcat(pool, "--" B "\r\nContent-Disposition: form-data; "
                       "name=\"model\"\r\n\r\n", value, "\r\n" END, NULL);
    ck_assert_int_eq(scan_cut(B, body, strlen(body), NULL, 0, &info),
                     CR_MP_BAD_MODEL);
    /* a model part with megabytes of content: refused, nothing kept */
    {
        cr_mp_scan_t *s = apr_palloc(pool, sizeof(*s));
        static char big[65536];
        int k;
        const char *head = "--" B "\r\nContent-Disposition: form-data; "
                           "name=\"model\"\r\n\r\n";
        memset(big, 'x', sizeof(big));
        cr_mp_scan_init(s, B, strlen(B));
        ck_assert_int_eq(cr_mp_scan(s, head, strlen(head)), 0);
        for (k = 0; k < 64; k++) {
            ck_assert_int_eq(cr_mp_scan(s, big, sizeof(big)), 0);
        }
        cr_mp_scan(s, "\r\n" END, strlen("\r\n" END));
        ck_assert_int_eq(cr_mp_scan_finish(pool, s, &info), CR_MP_BAD_MODEL);
    }
    /* headers: 8192 bytes accepted, one more refused */
    {
        const char *pre = "Content-Disposition: form-data; name=\"file\"; "
                          "filename=\"";
        apr_size_t n = CR_MP_MAX_HEADERS - strlen(pre) - strlen("\"\r\n\r\n");
        memset(fname, 'f', n);
        fname[n] = '\0';
        body = apr_pstrcat(pool, "--" B "\r\n", pre, fname, "\"\r\n\r\nx\r\n",
                           PART("model", "m") END, NULL);
        ck_assert_int_eq(scan_cut(B, body, strlen(body), NULL, 0, &info),
                         CR_MP_OK);
        fname[n] = 'f';
        fname[n + 1] = '\0';
        body = apr_pstrcat(pool, "--" B "\r\n", pre, fname, "\"\r\n\r\nx\r\n",
                           PART("model", "m") END, NULL);
        ck_assert_int_eq(scan_cut(B, body, strlen(body), NULL, 0, &info),
                         CR_MP_MALFORMED);
    }
}
END_TEST

START_TEST(test_short_boundary)
{
    /* A one-character boundary: "--a" in content must be after CRLF */
    static const char ok[] = "--a\r\nContent-Disposition: form-data; "
                             "name=model\r\n\r\nm-1\r\n--a--\r\n";
    static const char inside[] = "--a\r\nContent-Disposition: form-data; "
                                 "name=f\r\n\r\nx--ay\r\n--a\r\n"
                                 "Content-Disposition: form-data; "
                                 "name=model\r\n\r\nm\r\n--a--\r\n";
    check_all_cuts("a", ok, sizeof(ok) - 1, CR_MP_OK, "m-1");
    check_all_cuts("a", inside, sizeof(inside) - 1, CR_MP_MALFORMED, NULL);
    /* a boundary that overlaps itself (KMP fallbacks) */
    {
        static const char self[] = "-----a\r\nContent-Disposition: "
                                   "form-data; name=f\r\n\r\n---a-----a\r\n"
                                   "-----a\r\nContent-Disposition: "
                                   "form-data; name=model\r\n\r\nm\r\n"
                                   "-----a--";
        static const char self_ok[] = "-----a\r\nContent-Disposition: "
                                      "form-data; name=f\r\n\r\n----"
                                      "\r\n----\r\n---a\r\n"
                                      "-----a\r\nContent-Disposition: "
                                      "form-data; name=model\r\n\r\nm\r\n"
                                      "-----a--";
        check_all_cuts("---a", self, sizeof(self) - 1, CR_MP_MALFORMED,
                       NULL);
        check_all_cuts("---a", self_ok, sizeof(self_ok) - 1, CR_MP_OK, "m");
    }
}
END_TEST

/* ---- refusals ---------------------------------------------------- */

START_TEST(test_no_model)
{
    CHECK(FILEPART("file", "a.mp3", "x") PART("prompt", "p") END,
          CR_MP_NO_MODEL, NULL);
    CHECK(END, CR_MP_NO_MODEL, NULL);
    CHECK(PART("models", "m") PART("model_", "m") END, CR_MP_NO_MODEL, NULL);
}
END_TEST

START_TEST(test_duplicate_model)
{
    CHECK(PART("model", "whisper-1") PART("model", "whisper-1") END,
          CR_MP_DUPLICATE_MODEL, NULL);
    CHECK(PART("model", "a") FILEPART("file", "f", "x") PART("Model", "b")
          END, CR_MP_DUPLICATE_MODEL, NULL);
}
END_TEST

START_TEST(test_bad_model)
{
    CHECK(PART("model", "") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", " gpt") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "gpt ") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "gpt\r\n") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "g\tpt") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "g\x00pt") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "g\xc3pt") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "\xed\xa0\x80") END, CR_MP_BAD_MODEL, NULL);
    CHECK(PART("model", "\xc0\xaf") END, CR_MP_BAD_MODEL, NULL);
    CHECK(FILEPART("model", "m.txt", "gpt-4o") END, CR_MP_BAD_MODEL, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=model\r\n"
          "Content-Transfer-Encoding: base64\r\n\r\nZ3B0\r\n" END,
          CR_MP_BAD_MODEL, NULL);
}
END_TEST

START_TEST(test_malformed)
{
    /* framing */
    CHECK("", CR_MP_MALFORMED, NULL);
    CHECK("preamble\r\n" PART("model", "m") END, CR_MP_MALFORMED, NULL);
    CHECK("\r\n" PART("model", "m") END, CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m"), CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") "--" B, CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") "--" B "-", CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") "--" B "--\r", CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") END "epilogue", CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") END "\r\n", CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") "--" B "--  \r\n", CR_MP_MALFORMED, NULL);
    CHECK("--" B " \r\nContent-Disposition: form-data; name=model\r\n\r\n"
          "m\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\nContent-Disposition: form-data; name=model\n\nm\n" END,
          CR_MP_MALFORMED, NULL);
    CHECK("--" B "X\r\nContent-Disposition: form-data; name=model\r\n\r\n"
          "m\r\n" END, CR_MP_MALFORMED, NULL);
    /* the boundary inside a part: after a bare LF, mid-line, longer */
    CHECK(FILEPART("file", "a", "x\n--" B "\r\n") PART("model", "m") END,
          CR_MP_MALFORMED, NULL);
    CHECK(FILEPART("file", "a", "x--" B) PART("model", "m") END,
          CR_MP_MALFORMED, NULL);
    CHECK(FILEPART("file", "a", "x\r\n--" B "-more") PART("model", "m") END,
          CR_MP_MALFORMED, NULL);
    CHECK(PART("model", "m") "--" B "\t\r\n"
          "Content-Disposition: form-data; name=x\r\n\r\nx\r\n" END,
          CR_MP_MALFORMED, NULL);
    /* content that starts with the boundary right after the empty line */
    CHECK("--" B "\r\nContent-Disposition: form-data; name=f\r\n\r\n"
          "--" B "\r\n" PART("model", "m") END, CR_MP_MALFORMED, NULL);
    /* the boundary in a header */
    CHECK("--" B "\r\nContent-Disposition: form-data; name=f; "
          "filename=\"--" B "\"\r\n\r\nx\r\n" PART("model", "m") END,
          CR_MP_MALFORMED, NULL);
    /* headers */
    CHECK("--" B "\r\n\r\nx\r\n" PART("model", "m") END, CR_MP_MALFORMED,
          NULL);
    CHECK("--" B "\r\nContent-Type: text/plain\r\n\r\nx\r\n"
          PART("model", "m") END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: attachment; name=model\r\n\r\n"
          "m\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data\r\n\r\nm\r\n"
          PART("model", "m") END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=a; name=model\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=model\r\n"
          "Content-Disposition: form-data; name=x\r\n\r\nm\r\n" END,
          CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=\"mo\\del\"\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=f; "
          "filename=\"a\\\"; name=\"model\"\r\n\r\nm\r\n" END,
          CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=\"mode%6c\"\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=x; "
          "name*=utf-8''model\r\n\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name*0=mo; "
          "name*1=del\r\n\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=\"model\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=\"f\"; "
          "filename=a; filename=b\r\n\r\nx\r\n" PART("model", "m") END,
          CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data;\r\n name=model\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition : form-data; name=model\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=model\r\n"
          "X-A: b\rc\r\n\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=model\r\n"
          "X-A: b\x00\r\n\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data; name=model\r\n"
          "X-A: b\r\n", CR_MP_MALFORMED, NULL);
    CHECK("--" B "\r\nContent-Disposition: form-data, name=model\r\n"
          "\r\nm\r\n" END, CR_MP_MALFORMED, NULL);
}
END_TEST

START_TEST(test_first_error_wins)
{
    cr_mp_info_t info;
    static const char body[] = PART("model", "a") PART("model", "b")
                               "garbage";

    ck_assert_int_eq(scan_cut(B, body, sizeof(body) - 1, NULL, 0, &info),
                     CR_MP_DUPLICATE_MODEL);
    ck_assert_ptr_nonnull(strstr(info.detail, "more than one"));
    ck_assert_int_eq(cr_multipart_inspect(pool, CT, body, sizeof(body) - 1,
                                          &info), CR_MP_DUPLICATE_MODEL);
    ck_assert_int_eq(cr_multipart_inspect(pool, "multipart/form-data",
                                          body, sizeof(body) - 1, &info),
                     CR_MP_BAD_BOUNDARY);
    ck_assert_ptr_nonnull(strstr(info.detail, "boundary"));
}
END_TEST

/* A large body in 64 KiB pieces: the verdict and a constant-size state. */
START_TEST(test_large_upload)
{
    static char chunk[65536];
    cr_mp_scan_t *s = apr_palloc(pool, sizeof(*s));
    cr_mp_info_t info;
    const char *head = FILEPART("file", "big.wav", "");
    unsigned int seed = 1;
    apr_size_t i;
    int k;

    /* the content must not hold the boundary: bytes other than '-' */
    for (i = 0; i < sizeof(chunk); i++) {
        seed = seed * 1103515245u + 12345u;
        chunk[i] = (char)(seed >> 16);
        if (chunk[i] == '-') {
            chunk[i] = '+';
        }
    }
    cr_mp_scan_init(s, B, strlen(B));
    ck_assert_int_eq(cr_mp_scan(s, head, strlen(head) - 2), 0);
    for (k = 0; k < 400; k++) {                      /* 25 MiB */
        ck_assert_int_eq(cr_mp_scan(s, chunk, sizeof(chunk)), 0);
    }
    ck_assert_int_eq(cr_mp_scan(s, "\r\n" PART("model", "whisper-1") END,
                                strlen("\r\n" PART("model", "whisper-1")
                                       END)), 0);
    ck_assert_int_eq(cr_mp_scan_finish(pool, s, &info), CR_MP_OK);
    ck_assert_str_eq(info.model, "whisper-1");
    ck_assert_int_eq(info.parts, 2);
    ck_assert_uint_lt(sizeof(cr_mp_scan_t), 10000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("multipart");
    TCase *ct = tcase_create("content-type");
    TCase *ok = tcase_create("accepted");
    TCase *bad = tcase_create("refused");
    SRunner *sr;
    int failed;

    apr_initialize();
    tcase_add_checked_fixture(ct, setup, teardown);
    tcase_add_checked_fixture(ok, setup, teardown);
    tcase_add_checked_fixture(bad, setup, teardown);
    tcase_set_timeout(ok, 60);
    tcase_set_timeout(bad, 60);
    tcase_add_test(ct, test_content_type);
    tcase_add_test(ok, test_model_first_and_last);
    tcase_add_test(ok, test_boundary_lookalikes_in_content);
    tcase_add_test(ok, test_long_model_and_headers);
    tcase_add_test(ok, test_short_boundary);
    tcase_add_test(ok, test_large_upload);
    tcase_add_test(bad, test_no_model);
    tcase_add_test(bad, test_duplicate_model);
    tcase_add_test(bad, test_bad_model);
    tcase_add_test(bad, test_malformed);
    tcase_add_test(bad, test_first_error_wins);
    suite_add_tcase(s, ct);
    suite_add_tcase(s, ok);
    suite_add_tcase(s, bad);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed ? EXIT_FAILURE : 0;
}
