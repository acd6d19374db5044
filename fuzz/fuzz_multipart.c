/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_multipart.c: the multipart/form-data scanner (cr_multipart.c).
 * Input: one selector byte, a Content-Type header value up to the first
 * '\n', then the body.  On every input:
 *   - the Content-Type parser's boundary is 1-70 of RFC 2046's characters,
 *     not ending in a space, and a Content-Type it refuses makes the whole
 *     inspection CR_MP_BAD_BOUNDARY;
 *   - whole buffer, pseudo-random pieces (sizes chosen by the selector) and
 *     one byte at a time give the same status, detail and model;
 *   - a body accepted is framed as any reader would see it, however
 *     lenient: it starts with "--" boundary, ends with the close delimiter
 *     (and at most a CRLF), holds "--" boundary exactly once per part plus
 *     once for the end (so no parser that splits on the boundary anywhere
 *     can see a part the scanner did not), and its model is the content of
 *     a part: the bytes between an empty line and CRLF "--" boundary.
 */

#include "fuzz_common.h"
#include "cr_multipart.h"

static uint32_t next_piece(uint32_t *seed, size_t max)
{
    *seed = *seed * 1103515245u + 12345u;
    return (uint32_t)((*seed >> 8) % max) + 1;
}

static int same(cr_mp_status_e a, const cr_mp_info_t *x, cr_mp_status_e b,
                const cr_mp_info_t *y)
{
    if (a != b || x->parts != y->parts) {
        return 0;
    }
    if (a == CR_MP_OK) {
        return x->detail == NULL && y->detail == NULL
               && strcmp(x->model, y->model) == 0;
    }
    return x->model == NULL && y->model == NULL && x->detail != NULL
           && y->detail != NULL && strcmp(x->detail, y->detail) == 0;
}

static size_t count_occurrences(const uint8_t *d, size_t n, const char *pat,
                                size_t m)
{
    size_t i, count = 0;

    for (i = 0; i + m <= n; i++) {
        if (memcmp(d + i, pat, m) == 0) {
            count++;
        }
    }
    return count;
}

static void check_accepted(const uint8_t *body, size_t n, const char *b,
                           size_t blen, const cr_mp_info_t *info)
{
    char pat[CR_MP_MAX_BOUNDARY + 3];
    char *needle;
    size_t m = blen + 2, mlen, k, framed;
    int found = 0;

    pat[0] = '-';
    pat[1] = '-';
    memcpy(pat + 2, b, blen);
    FUZZ_CHECK(n >= m && memcmp(body, pat, m) == 0);
    if (n >= m + 4 && memcmp(body + n - m - 4, pat, m) == 0
        && memcmp(body + n - 4, "--\r\n", 4) == 0) {
        framed = n - 4;
    }
    else {
        FUZZ_CHECK(n >= m + 2 && memcmp(body + n - m - 2, pat, m) == 0
                   && memcmp(body + n - 2, "--", 2) == 0);
        framed = n - 2;
    }
    /* Up to the end of the close delimiter's boundary (the "--" after it
     * may extend a boundary that ends in dashes). */
    FUZZ_CHECK(count_occurrences(body, framed, pat, m)
               == (size_t)info->parts + 1);
    mlen = strlen(info->model);
    FUZZ_CHECK(mlen >= 1 && mlen <= CR_MP_MAX_MODEL_LEN);
    FUZZ_CHECK(strchr(info->model, '\r') == NULL
               && strchr(info->model, '\n') == NULL);
    /* "\r\n\r\n" model "\r\n" "--" boundary somewhere in the body */
    needle = malloc(4 + mlen + 2 + m);
    FUZZ_CHECK(needle != NULL);
    memcpy(needle, "\r\n\r\n", 4);
    memcpy(needle + 4, info->model, mlen);
    memcpy(needle + 4 + mlen, "\r\n", 2);
    memcpy(needle + 6 + mlen, pat, m);
    for (k = 0; !found && k + 6 + mlen + m <= n; k++) {
        found = memcmp(body + k, needle, 6 + mlen + m) == 0;
    }
    free(needle);
    FUZZ_CHECK(found);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char boundary[CR_MP_MAX_BOUNDARY + 1];
    cr_mp_info_t whole, pushed, bytewise;
    cr_mp_status_e st_whole, st_push, st_byte;
    static cr_mp_scan_t scan;
    const uint8_t *rest, *nl, *body;
    size_t n, blen, pos, max_piece, i;
    const char *why;
    uint32_t seed;
    apr_pool_t *p;
    char *ctype;

    if (size < 1) {
        return 0;
    }
    apr_pool_create(&p, fuzz_root_pool);
    rest = data + 1;
    n = size - 1;
    nl = memchr(rest, '\n', n);
    if (nl == NULL) {
        ctype = fuzz_strdup(p, rest, n);
        body = rest + n;
        n = 0;
    }
    else {
        ctype = fuzz_strdup(p, rest, (size_t)(nl - rest));
        body = nl + 1;
        n -= (size_t)(nl - rest) + 1;
    }

    st_whole = cr_multipart_inspect(p, ctype, (const char *)body, n, &whole);
    if (cr_multipart_boundary(ctype, boundary, &blen, &why) != CR_MP_OK) {
        FUZZ_CHECK(why != NULL);
        FUZZ_CHECK(st_whole == CR_MP_BAD_BOUNDARY && whole.model == NULL);
        apr_pool_destroy(p);
        return 0;
    }
    FUZZ_CHECK(cr_multipart_is_form_data(ctype));
    FUZZ_CHECK(blen >= 1 && blen <= CR_MP_MAX_BOUNDARY
               && strlen(boundary) == blen && boundary[blen - 1] != ' ');
    FUZZ_CHECK(st_whole != CR_MP_BAD_BOUNDARY);

    /* Pieces of 1..max bytes: small ones, or larger. */
    max_piece = data[0] < 128 ? (size_t)data[0] % 24 + 1
                              : (size_t)(data[0] - 127) * 61;
    seed = data[0];
    cr_mp_scan_init(&scan, boundary, blen);
    for (pos = 0; pos < n; ) {
        size_t k = next_piece(&seed, max_piece);
        if (k > n - pos) {
            k = n - pos;
        }
        if (cr_mp_scan(&scan, (const char *)body + pos, k)) {
            break;
        }
        pos += k;
    }
    st_push = cr_mp_scan_finish(p, &scan, &pushed);
    FUZZ_CHECK(same(st_whole, &whole, st_push, &pushed));

    if (n <= 4096) {
        cr_mp_scan_init(&scan, boundary, blen);
        for (i = 0; i < n; i++) {
            if (cr_mp_scan(&scan, (const char *)body + i, 1)) {
                break;
            }
        }
        st_byte = cr_mp_scan_finish(p, &scan, &bytewise);
        FUZZ_CHECK(same(st_whole, &whole, st_byte, &bytewise));
    }

    if (st_whole == CR_MP_OK) {
        check_accepted(body, n, boundary, blen, &whole);
    }
    apr_pool_destroy(p);
    return 0;
}
