/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_body.c: differential fuzzing of the body inspector (cr_body.c)
 * against Jansson.  On every input:
 *   - Jansson (json_loadb, JSON_DECODE_ANY, the flags cr_json.c uses,
 *     without JSON_REJECT_DUPLICATES) says whether the bytes are JSON;
 *     the scanner must agree.  Where it is JSON, a small splitter of a
 *     known-valid object finds the top-level members, Jansson decodes each
 *     name, and the scanner must refuse exactly the duplicates of "model",
 *     "stream", "stream_options" (and "include_usage" inside it), and
 *     otherwise give the same model, stream flag, value spans (which
 *     Jansson must parse to the same values) and object end;
 *   - whole buffer, cr_body_inspect_stream and the push interface in
 *     pseudo-random piece sizes all give the same answer.
 * The first two bytes choose the pieces; the rest is the body.
 */

#include <jansson.h>

#include "fuzz_common.h"
#include "cr_body.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    uint32_t seed;
    size_t max_piece;
} piece_reader;

static size_t next_piece(piece_reader *r)
{
    r->seed = r->seed * 1103515245u + 12345u;
    return (size_t)((r->seed >> 8) % r->max_piece) + 1;
}

static apr_size_t read_pieces(void *buf, apr_size_t len, void *baton)
{
    piece_reader *r = baton;
    size_t n = r->size - r->pos, piece = next_piece(r);

    if (n > piece) {
        n = piece;
    }
    if (n > len) {
        n = len;
    }
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return n;
}

/* ---- the reference: spans of a valid JSON text ---------------------- */

static size_t skip_ws(const uint8_t *d, size_t n, size_t i)
{
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n'
                     || d[i] == '\r')) {
        i++;
    }
    return i;
}

/* One past the end of the value (valid JSON) starting at d[i]. */
static size_t skip_value(const uint8_t *d, size_t n, size_t i)
{
    int depth = 0;

    do {
        if (d[i] == '"') {
            for (i++; d[i] != '"'; i++) {
                if (d[i] == '\\') {
                    i++;
                }
            }
            i++;
        }
        else if (d[i] == '{' || d[i] == '[') {
            depth++;
            i++;
        }
        else if (d[i] == '}' || d[i] == ']') {
            depth--;
            i++;
        }
        else if (depth == 0) {
            /* A scalar at the top: up to a delimiter. */
            while (i < n && d[i] != ',' && d[i] != '}' && d[i] != ']'
                   && d[i] != ' ' && d[i] != '\t' && d[i] != '\n'
                   && d[i] != '\r') {
                i++;
            }
        }
        else {
            i++;
        }
    } while (depth > 0);
    return i;
}

typedef struct {
    int count;                  /* occurrences of the name */
    size_t start, end;          /* the (last) value's span */
} member_ref;

/* Count the members named want[k] of the valid object at d[i]. */
static void members(const uint8_t *d, size_t n, size_t i,
                    const char *const *want, member_ref *out, int nwant)
{
    int k;

    memset(out, 0, sizeof(*out) * nwant);
    i = skip_ws(d, n, i) + 1;            /* '{' */
    for (;;) {
        size_t ns, ne, vs, ve;
        json_t *name;
        json_error_t e;

        i = skip_ws(d, n, i);
        if (d[i] == '}') {
            return;
        }
        if (d[i] == ',') {
            i = skip_ws(d, n, i + 1);
        }
        ns = i;
        ne = skip_value(d, n, i);
        i = skip_ws(d, n, ne) + 1;       /* ':' */
        vs = skip_ws(d, n, i);
        ve = skip_value(d, n, vs);
        i = ve;
        name = json_loadb((const char *)d + ns, ne - ns, JSON_DECODE_ANY, &e);
        FUZZ_CHECK(name != NULL && json_is_string(name));
        for (k = 0; k < nwant; k++) {
            if (strcmp(json_string_value(name), want[k]) == 0) {
                out[k].count++;
                out[k].start = vs;
                out[k].end = ve;
            }
        }
        json_decref(name);
    }
}

/* The span [start, end) parses to the same value as v. */
static void check_span(const uint8_t *d, apr_off_t start, apr_off_t end,
                       json_t *v)
{
    json_error_t e;
    json_t *j;

    FUZZ_CHECK(start >= 0 && end > start);
    j = json_loadb((const char *)d + start, (size_t)(end - start),
                   JSON_DECODE_ANY, &e);
    FUZZ_CHECK(j != NULL && json_equal(j, v));
    json_decref(j);
}

/* What the scanner must answer, from Jansson. */
static void check_against_jansson(const uint8_t *d, size_t n,
                                  cr_body_status_e st,
                                  const cr_body_info_t *info)
{
    static const char *const top[] = { "model", "stream", "stream_options" };
    static const char *const so[] = { "include_usage" };
    json_error_t e;
    json_t *doc, *model, *opts;
    member_ref m[3], iu[1];
    int dup;

    if (n == 0) {
        FUZZ_CHECK(st == CR_BODY_EMPTY);
        return;
    }
    doc = json_loadb((const char *)d, n, JSON_DECODE_ANY, &e);
    if (doc == NULL) {
        /* Refused; a duplicate decided member before the error may be
         * what the scanner names. */
        FUZZ_CHECK(st == CR_BODY_INVALID_JSON
                   || st == CR_BODY_DUPLICATE_MEMBER);
        return;
    }
    if (memchr(d, '\0', n) != NULL) {
        /* Jansson 2.14 drops a NUL byte that follows a number or a literal
         * (its unget of the byte loses it), so it takes "[1\0]" for [1];
         * the scanner refuses it, as every other parser would. */
        FUZZ_CHECK(st == CR_BODY_INVALID_JSON
                   || st == CR_BODY_DUPLICATE_MEMBER);
        json_decref(doc);
        return;
    }
    if (!json_is_object(doc)) {
        FUZZ_CHECK(st == CR_BODY_NOT_OBJECT);
        json_decref(doc);
        return;
    }
    members(d, n, 0, top, m, 3);
    dup = m[0].count > 1 || m[1].count > 1 || m[2].count > 1;
    opts = json_object_get(doc, "stream_options");
    iu[0].count = 0;
    if (!dup && json_is_object(opts)) {
        members(d, n, m[2].start, so, iu, 1);
        dup = iu[0].count > 1;
    }
    if (dup) {
        FUZZ_CHECK(st == CR_BODY_DUPLICATE_MEMBER);
        json_decref(doc);
        return;
    }
    model = json_object_get(doc, "model");
    if (model == NULL) {
        FUZZ_CHECK(st == CR_BODY_NO_MODEL);
    }
    else if (!json_is_string(model) || json_string_length(model) == 0
             || json_string_length(model) > CR_BODY_MAX_MODEL_LEN) {
        FUZZ_CHECK(st == CR_BODY_MODEL_NOT_STRING);
    }
    else {
        FUZZ_CHECK(st == CR_BODY_OK);
        FUZZ_CHECK(strcmp(info->model, json_string_value(model)) == 0);
        FUZZ_CHECK(info->stream == json_is_true(json_object_get(doc,
                                                                "stream")));
        /* The object ends at the last byte that is not white space. */
        FUZZ_CHECK(info->object_end >= 0 && (size_t)info->object_end < n
                   && d[info->object_end] == '}');
        FUZZ_CHECK(skip_ws(d, n, (size_t)info->object_end + 1) == n);
        if (opts == NULL) {
            FUZZ_CHECK(info->stream_options == 0);
        }
        else {
            FUZZ_CHECK(info->stream_options
                       == (json_is_object(opts) ? 1 : json_is_null(opts)
                           ? 2 : 3));
            FUZZ_CHECK((size_t)info->stream_options_start == m[2].start
                       && (size_t)info->stream_options_end == m[2].end);
            check_span(d, info->stream_options_start,
                       info->stream_options_end, opts);
        }
        if (json_is_object(opts)
            && json_object_get(opts, "include_usage") != NULL) {
            json_t *v = json_object_get(opts, "include_usage");
            FUZZ_CHECK(info->include_usage
                       == (json_is_true(v) ? 1 : json_is_false(v) ? 2 : 3));
            FUZZ_CHECK((size_t)info->include_usage_start == iu[0].start
                       && (size_t)info->include_usage_end == iu[0].end);
            check_span(d, info->include_usage_start, info->include_usage_end,
                       v);
        }
        else {
            FUZZ_CHECK(info->include_usage == 0);
        }
    }
    json_decref(doc);
}

static int same_info(cr_body_status_e a, const cr_body_info_t *x,
                     cr_body_status_e b, const cr_body_info_t *y)
{
    if (a != b) {
        return 0;
    }
    if (a != CR_BODY_OK) {
        return x->model == NULL && y->model == NULL && x->detail != NULL
               && y->detail != NULL && strcmp(x->detail, y->detail) == 0;
    }
    return strcmp(x->model, y->model) == 0 && x->stream == y->stream
           && x->detail == NULL && y->detail == NULL
           && x->object_end == y->object_end
           && x->stream_options == y->stream_options
           && x->stream_options_start == y->stream_options_start
           && x->stream_options_end == y->stream_options_end
           && x->include_usage == y->include_usage
           && x->include_usage_start == y->include_usage_start
           && x->include_usage_end == y->include_usage_end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    cr_body_info_t whole, streamed, pushed;
    cr_body_status_e st_whole, st_stream, st_push;
    piece_reader reader;
    cr_body_scan_t scan;
    const uint8_t *body;
    size_t n, pos;
    char *ctype;

    if (size < 2) {
        return 0;
    }
    apr_pool_create(&p, fuzz_root_pool);
    body = data + 2;
    n = size - 2;

    st_whole = cr_body_inspect(p, (const char *)body, n, &whole);
    check_against_jansson(body, n, st_whole, &whole);

    /* Pieces of 1..max bytes, pseudo-random: small ones, or around the
     * SIMD widths and the stream reader's buffer. */
    reader.data = body;
    reader.size = n;
    reader.pos = 0;
    reader.seed = data[1];
    reader.max_piece = data[0] < 128 ? (size_t)data[0] % 40 + 1
                                     : (size_t)(data[0] - 127) * 97;
    st_stream = cr_body_inspect_stream(p, read_pieces, &reader, &streamed);
    FUZZ_CHECK(same_info(st_whole, &whole, st_stream, &streamed));

    cr_body_scan_init(&scan);
    reader.seed = data[1] ^ 0x5a;
    for (pos = 0; pos < n; ) {
        size_t k = next_piece(&reader);
        if (k > n - pos) {
            k = n - pos;
        }
        if (cr_body_scan(&scan, (const char *)body + pos, k)) {
            break;
        }
        pos += k;
    }
    st_push = cr_body_scan_finish(p, &scan, &pushed);
    FUZZ_CHECK(same_info(st_whole, &whole, st_push, &pushed));

    /* The same bytes as a Content-Type header value. */
    ctype = fuzz_strdup(p, body, n);
    (void)cr_body_content_type_is_json(ctype);

    apr_pool_destroy(p);
    return 0;
}
