/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_multipart.c: the multipart/form-data scanner (see cr_multipart.h for
 * what it accepts and refuses, and why).
 *
 * The body is a sequence of states fed byte ranges:
 *   FIRST      the body's first bytes, which must be "--" boundary;
 *   DELIM_END  after "--" boundary: CRLF (a part follows) or "--" (end);
 *   HEADERS    a part's header block, copied (bounded) up to its empty
 *              line, then parsed;
 *   CONTENT    a part's content, searched for "--" boundary (memchr for
 *              the first '-', then KMP); a match must be preceded by a
 *              CRLF that lies inside the content, else the body is refused;
 *              the "model" part's first bytes are kept;
 *   CLOSE      after the close delimiter: one optional CRLF;
 *   END        nothing more may come.
 */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "cr_multipart.h"

enum {
    ST_FIRST = 0,
    ST_DELIM_END,
    ST_HEADERS,
    ST_CONTENT,
    ST_CLOSE,
    ST_END,
    ST_ERROR
};

/* ------------------------------------------------------------------ */
/* Character classes                                                   */
/* ------------------------------------------------------------------ */

/* RFC 9110 tchar. */
static int is_tchar(unsigned char c)
{
    return apr_isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 2046 bchars (space included; see valid_boundary). */
static int is_bchar(unsigned char c)
{
    return apr_isalnum(c) || (c != 0 && strchr("'()+_,-./:=? ", c) != NULL);
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* ASCII case-insensitive comparison of [s, s+len) with lower-case lit. */
static int ci_equal(const char *s, apr_size_t len, const char *lit)
{
    apr_size_t n = strlen(lit), i;

    if (len != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (apr_tolower((unsigned char)s[i]) != lit[i]) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Parameters: ";" token "=" (token / quoted-string)                   */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name, *value;
    apr_size_t name_len, value_len;
} mp_param;

/* The next parameter of [*p, end).  1 with *out set, 0 at the end, -1 on
 * a syntax error (*why set).  Empty parameters (";;", a trailing ';') are
 * skipped. */
static int next_param(const char **p, const char *end, mp_param *out,
                      const char **why)
{
    const char *s = *p;

    for (;;) {
        while (s < end && is_ows((unsigned char)*s)) {
            s++;
        }
        if (s == end) {
            *p = s;
            return 0;
        }
        if (*s != ';') {
            *why = "a parameter is not separated by ';'";
            return -1;
        }
        s++;
        while (s < end && is_ows((unsigned char)*s)) {
            s++;
        }
        if (s < end && *s != ';') {
            break;
        }
    }
    out->name = s;
    while (s < end && is_tchar((unsigned char)*s)) {
        s++;
    }
    out->name_len = s - out->name;
    if (out->name_len == 0 || s == end || *s != '=') {
        *why = "a parameter is not name=value";
        return -1;
    }
    s++;
    if (s < end && *s == '"') {
        s++;
        out->value = s;
        while (s < end && *s != '"') {
            unsigned char c = (unsigned char)*s;
            if (c == '\\') {
                *why = "a quoted parameter holds a backslash";
                return -1;
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                *why = "a quoted parameter holds a control character";
                return -1;
            }
            s++;
        }
        if (s == end) {
            *why = "a quoted parameter is not closed";
            return -1;
        }
        out->value_len = s - out->value;
        s++;
    }
    else {
        out->value = s;
        while (s < end && is_tchar((unsigned char)*s)) {
            s++;
        }
        out->value_len = s - out->value;
        if (out->value_len == 0) {
            *why = "a parameter has no value";
            return -1;
        }
    }
    *p = s;
    return 1;
}

/* The media type of a header value: [*start, *end) trimmed, *params the
 * first byte after it. */
static void media_type(const char *v, const char **start, const char **end,
                       const char **params)
{
    const char *s = v, *e;

    while (is_ows((unsigned char)*s)) {
        s++;
    }
    e = strchr(s, ';');
    if (e == NULL) {
        e = s + strlen(s);
    }
    *params = e;
    while (e > s && is_ows((unsigned char)e[-1])) {
        e--;
    }
    *start = s;
    *end = e;
}

int cr_multipart_is_form_data(const char *content_type)
{
    const char *s, *e, *params;

    if (content_type == NULL) {
        return 0;
    }
    media_type(content_type, &s, &e, &params);
    return ci_equal(s, e - s, "multipart/form-data");
}

static int valid_boundary(const char *b, apr_size_t len)
{
    apr_size_t i;

    if (len < 1 || len > CR_MP_MAX_BOUNDARY || b[len - 1] == ' ') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!is_bchar((unsigned char)b[i])) {
            return 0;
        }
    }
    return 1;
}

cr_mp_status_e cr_multipart_boundary(const char *content_type, char *out,
                                     apr_size_t *len, const char **why)
{
    const char *s, *e, *params, *end;
    mp_param prm;
    int found = 0, rc;

    *why = NULL;
    *len = 0;
    out[0] = '\0';
    if (!cr_multipart_is_form_data(content_type)) {
        *why = "it is not multipart/form-data";
        return CR_MP_BAD_BOUNDARY;
    }
    media_type(content_type, &s, &e, &params);
    end = params + strlen(params);
    while ((rc = next_param(&params, end, &prm, why)) == 1) {
        if (!ci_equal(prm.name, prm.name_len, "boundary")) {
            continue;
        }
        if (found) {
            *why = "there are two boundary parameters";
            return CR_MP_BAD_BOUNDARY;
        }
        found = 1;
        if (!valid_boundary(prm.value, prm.value_len)) {
            *why = "the boundary is not 1 to 70 of RFC 2046's characters";
            return CR_MP_BAD_BOUNDARY;
        }
        memcpy(out, prm.value, prm.value_len);
        out[prm.value_len] = '\0';
        *len = prm.value_len;
    }
    if (rc < 0) {
        return CR_MP_BAD_BOUNDARY;
    }
    if (!found) {
        *why = "there is no boundary parameter";
        return CR_MP_BAD_BOUNDARY;
    }
    return CR_MP_OK;
}

/* ------------------------------------------------------------------ */
/* The scanner                                                         */
/* ------------------------------------------------------------------ */

static int fail_at(cr_mp_scan_t *s, cr_mp_status_e err, const char *what,
                   apr_off_t at)
{
    if (s->err == CR_MP_OK) {
        s->err = err;
        s->err_what = what;
        s->err_at = at;
    }
    s->state = ST_ERROR;
    return 1;
}

void cr_mp_scan_init(cr_mp_scan_t *s, const char *boundary, apr_size_t len)
{
    apr_size_t q, k;

    s->pos = 0;
    s->state = ST_FIRST;
    s->q = 0;
    s->sub = 0;
    s->hist_len = 0;
    s->content_start = 0;
    s->hdr_len = 0;
    s->is_model = 0;
    s->model_seen = 0;
    s->value_len = 0;
    s->model_len = 0;
    s->model[0] = '\0';
    s->parts = 0;
    s->err = CR_MP_OK;
    s->err_what = NULL;
    s->err_at = 0;
    if (len < 1 || len > CR_MP_MAX_BOUNDARY) {
        s->pat_len = 0;
        fail_at(s, CR_MP_BAD_BOUNDARY, "the boundary is not 1 to 70 "
                "characters", 0);
        return;
    }
    s->pat[0] = '-';
    s->pat[1] = '-';
    memcpy(s->pat + 2, boundary, len);
    s->pat_len = len + 2;
    /* KMP: fail[q] is the longest proper border of pat[0, q). */
    s->fail[0] = 0;
    s->fail[1] = 0;
    k = 0;
    for (q = 1; q < s->pat_len; q++) {
        while (k > 0 && s->pat[q] != s->pat[k]) {
            k = s->fail[k];
        }
        if (s->pat[q] == s->pat[k]) {
            k++;
        }
        s->fail[q + 1] = (unsigned char)k;
    }
}

/* The byte at absolute offset at, which lies in this piece (starting at
 * absolute offset base) or in the kept end of the earlier ones. */
static unsigned char byte_at(const cr_mp_scan_t *s, const char *data,
                             apr_off_t base, apr_off_t at)
{
    if (at >= base) {
        return (unsigned char)data[at - base];
    }
    return s->hist[s->hist_len - (apr_size_t)(base - at)];
}

/* Is [v, v+len) acceptable UTF-8 for a model name: no control character,
 * no white space at either end, no overlong form, surrogate or code point
 * past U+10FFFF? */
static int valid_model(const unsigned char *v, apr_size_t len)
{
    apr_size_t i = 0;

    if (len == 0 || v[0] == ' ' || v[len - 1] == ' ') {
        return 0;
    }
    while (i < len) {
        unsigned char c = v[i];
        unsigned int cp, min;
        apr_size_t need, k;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return 0;
            }
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        }
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        }
        else {
            return 0;
        }
        if (len - i <= need) {
            return 0;
        }
        for (k = 1; k <= need; k++) {
            if ((v[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (v[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

/* The part's header block is complete (hdr ends with its empty line):
 * check it and learn whether this is the model field. */
static int parse_headers(cr_mp_scan_t *s, apr_off_t at)
{
    const char *h = s->hdr, *end = s->hdr + s->hdr_len, *line;
    const char *cte = NULL;
    apr_size_t cte_len = 0, i;
    int dispositions = 0, filename = 0;
    const char *name = NULL;
    apr_size_t name_len = 0;

    s->parts++;
    /* "--" boundary anywhere in the headers is no delimiter. */
    if (s->hdr_len >= s->pat_len) {
        for (i = 0; i + s->pat_len <= s->hdr_len; i++) {
            if (h[i] == '-' && memcmp(h + i, s->pat, s->pat_len) == 0) {
                return fail_at(s, CR_MP_MALFORMED, "the boundary appears "
                               "inside a part's headers", at);
            }
        }
    }
    /* Lines end in CRLF: no bare CR or LF, no NUL. */
    for (i = 0; i < s->hdr_len; i++) {
        if (h[i] == '\0'
            || (h[i] == '\r' && (i + 1 == s->hdr_len || h[i + 1] != '\n'))
            || (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))) {
            return fail_at(s, CR_MP_MALFORMED, "a part's headers hold a "
                           "bare CR, LF or NUL", at);
        }
    }
    for (line = h; line < end; ) {
        const char *eol = memchr(line, '\r', end - line);
        const char *colon, *v, *ve;

        /* eol is never NULL: the block ends with CRLF. */
        if (eol == NULL || eol == line) {
            break;                              /* the empty line */
        }
        if (is_ows((unsigned char)*line)) {
            return fail_at(s, CR_MP_MALFORMED, "a part's header is folded",
                           at);
        }
        for (colon = line; colon < eol && is_tchar((unsigned char)*colon);
             colon++) {
        }
        if (colon == line || colon == eol || *colon != ':') {
            return fail_at(s, CR_MP_MALFORMED, "a part's header line is "
                           "not name: value", at);
        }
        v = colon + 1;
        ve = eol;
        while (v < ve && is_ows((unsigned char)*v)) {
            v++;
        }
        while (ve > v && is_ows((unsigned char)ve[-1])) {
            ve--;
        }
        if (ci_equal(line, colon - line, "content-disposition")) {
            const char *p = v, *why = NULL;
            mp_param prm;
            int rc, fn = 0, fnstar = 0;

            if (++dispositions > 1) {
                return fail_at(s, CR_MP_MALFORMED, "a part has two "
                               "Content-Disposition headers", at);
            }
            while (p < ve && is_tchar((unsigned char)*p)) {
                p++;
            }
            if (!ci_equal(v, p - v, "form-data")) {
                return fail_at(s, CR_MP_MALFORMED, "a part's "
                               "Content-Disposition is not form-data", at);
            }
            while ((rc = next_param(&p, ve, &prm, &why)) == 1) {
                if (ci_equal(prm.name, prm.name_len, "name")) {
                    if (name != NULL) {
                        return fail_at(s, CR_MP_MALFORMED, "a part has two "
                                       "names", at);
                    }
                    if (memchr(prm.value, '%', prm.value_len) != NULL) {
                        return fail_at(s, CR_MP_MALFORMED, "a part's name "
                                       "holds '%'", at);
                    }
                    name = prm.value;
                    name_len = prm.value_len;
                }
                else if (ci_equal(prm.name, prm.name_len, "filename")) {
                    if (fn++) {
                        return fail_at(s, CR_MP_MALFORMED, "a part has two "
                                       "filenames", at);
                    }
                }
                else if (ci_equal(prm.name, prm.name_len, "filename*")) {
                    if (fnstar++) {
                        return fail_at(s, CR_MP_MALFORMED, "a part has two "
                                       "filenames", at);
                    }
                }
                else if (memchr(prm.name, '*', prm.name_len) != NULL) {
                    return fail_at(s, CR_MP_MALFORMED, "a part's "
                                   "Content-Disposition has an extended "
                                   "parameter", at);
                }
            }
            if (rc < 0) {
                return fail_at(s, CR_MP_MALFORMED, why, at);
            }
            filename = fn || fnstar;
        }
        else if (ci_equal(line, colon - line, "content-transfer-encoding")) {
            cte = v;
            cte_len = ve - v;
        }
        line = eol + 2;
    }
    if (dispositions == 0 || name == NULL) {
        return fail_at(s, CR_MP_MALFORMED, "a part has no "
                       "Content-Disposition: form-data with a name", at);
    }
    s->is_model = ci_equal(name, name_len, "model");
    if (!s->is_model) {
        return 0;
    }
    if (s->model_seen) {
        return fail_at(s, CR_MP_DUPLICATE_MODEL, "appears twice", at);
    }
    s->model_seen = 1;
    if (filename) {
        return fail_at(s, CR_MP_BAD_MODEL, "is a file (it has a filename)",
                       at);
    }
    if (cte != NULL && !ci_equal(cte, cte_len, "7bit")
        && !ci_equal(cte, cte_len, "8bit")
        && !ci_equal(cte, cte_len, "binary")) {
        return fail_at(s, CR_MP_BAD_MODEL, "has a Content-Transfer-Encoding",
                       at);
    }
    return 0;
}

/* A delimiter ends the current part's content at absolute offset end. */
static int end_part(cr_mp_scan_t *s, apr_off_t end)
{
    apr_size_t n = (apr_size_t)(end - s->content_start);

    if (!s->is_model) {
        return 0;
    }
    if (n > CR_MP_MAX_MODEL_LEN) {
        return fail_at(s, CR_MP_BAD_MODEL, "is longer than 256 bytes", end);
    }
    if (!valid_model((const unsigned char *)s->value, n)) {
        return fail_at(s, CR_MP_BAD_MODEL, "is empty, not UTF-8, or has a "
                       "control character or a space at either end", end);
    }
    memcpy(s->model, s->value, n);
    s->model[n] = '\0';
    s->model_len = n;
    s->is_model = 0;
    return 0;
}

/* Keep the end of this piece for looking behind a match in the next. */
static void keep_history(cr_mp_scan_t *s, const char *data, apr_size_t len)
{
    apr_size_t cap = sizeof(s->hist);

    if (len >= cap) {
        memcpy(s->hist, data + len - cap, cap);
        s->hist_len = cap;
    }
    else if (s->hist_len + len <= cap) {
        memcpy(s->hist + s->hist_len, data, len);
        s->hist_len += len;
    }
    else {
        apr_size_t keep = cap - len;
        memmove(s->hist, s->hist + s->hist_len - keep, keep);
        memcpy(s->hist + keep, data, len);
        s->hist_len = cap;
    }
}

/* Scan content bytes data[*i, len); base is data[0]'s absolute offset.
 * Returns nonzero on error; *i is past the delimiter when one was found
 * (the state is then DELIM_END). */
static int scan_content(cr_mp_scan_t *s, const char *data, apr_size_t len,
                        apr_off_t base, apr_size_t *i)
{
    const unsigned char *pat = s->pat;
    apr_size_t j = *i, q = s->q, from = *i;
    int found = 0;

    while (j < len) {
        if (q == 0) {
            const char *dash = memchr(data + j, '-', len - j);
            if (dash == NULL) {
                j = len;
                break;
            }
            j = dash - data;
        }
        {
            unsigned char c = (unsigned char)data[j];
            while (q > 0 && pat[q] != c) {
                q = s->fail[q];
            }
            if (pat[q] == c) {
                q++;
            }
            j++;
        }
        if (q == s->pat_len) {
            found = 1;
            break;
        }
    }
    if (s->is_model && s->value_len < sizeof(s->value)) {
        apr_size_t n = j - from;
        if (n > sizeof(s->value) - s->value_len) {
            n = sizeof(s->value) - s->value_len;
        }
        memcpy(s->value + s->value_len, data + from, n);
        s->value_len += n;
    }
    s->q = q;
    *i = j;
    if (found) {
        apr_off_t start = base + (apr_off_t)j - (apr_off_t)s->pat_len;

        s->q = 0;
        if (start - 2 < s->content_start
            || byte_at(s, data, base, start - 2) != '\r'
            || byte_at(s, data, base, start - 1) != '\n') {
            return fail_at(s, CR_MP_MALFORMED, "the boundary appears inside "
                           "a part, not after a CRLF", start);
        }
        if (end_part(s, start - 2)) {
            return 1;
        }
        s->state = ST_DELIM_END;
        s->sub = 0;
    }
    return 0;
}

int cr_mp_scan(cr_mp_scan_t *s, const char *data, apr_size_t len)
{
    apr_off_t base = s->pos;
    apr_size_t i = 0;

    while (i < len && s->state != ST_ERROR) {
        unsigned char c = (unsigned char)data[i];

        switch (s->state) {
        case ST_FIRST:
            if (c != s->pat[s->sub]) {
                fail_at(s, CR_MP_MALFORMED, "it does not start with the "
                        "boundary", base + (apr_off_t)i);
                break;
            }
            i++;
            if (++s->sub == s->pat_len) {
                s->state = ST_DELIM_END;
                s->sub = 0;
            }
            break;
        case ST_DELIM_END:
            i++;
            if (s->sub == 0 && (c == '\r' || c == '-')) {
                s->sub = c == '\r' ? 1 : 2;
            }
            else if (s->sub == 1 && c == '\n') {
                s->state = ST_HEADERS;
                s->hdr_len = 0;
            }
            else if (s->sub == 2 && c == '-') {
                s->state = ST_CLOSE;
                s->sub = 0;
            }
            else {
                fail_at(s, CR_MP_MALFORMED, "a boundary is not followed by "
                        "CRLF or \"--\"", base + (apr_off_t)i - 1);
            }
            break;
        case ST_HEADERS:
            if (s->hdr_len == sizeof(s->hdr)) {
                fail_at(s, CR_MP_MALFORMED, "a part's headers are larger "
                        "than 8192 bytes", base + (apr_off_t)i);
                break;
            }
            s->hdr[s->hdr_len++] = (char)c;
            i++;
            if (c == '\n'
                && ((s->hdr_len == 2 && s->hdr[0] == '\r')
                    || (s->hdr_len >= 4
                        && memcmp(s->hdr + s->hdr_len - 4, "\r\n\r\n", 4)
                           == 0))) {
                if (parse_headers(s, base + (apr_off_t)i)) {
                    break;
                }
                s->state = ST_CONTENT;
                s->content_start = base + (apr_off_t)i;
                s->q = 0;
                s->value_len = 0;
            }
            break;
        case ST_CONTENT:
            scan_content(s, data, len, base, &i);
            break;
        case ST_CLOSE:
            i++;
            if (s->sub == 0 && c == '\r') {
                s->sub = 1;
            }
            else if (s->sub == 1 && c == '\n') {
                s->state = ST_END;
            }
            else {
                fail_at(s, CR_MP_MALFORMED, "something follows the final "
                        "boundary", base + (apr_off_t)i - 1);
            }
            break;
        default:                                /* ST_END */
            fail_at(s, CR_MP_MALFORMED, "something follows the final "
                    "boundary", base + (apr_off_t)i);
            break;
        }
    }
    s->pos = base + (apr_off_t)len;
    if (s->state == ST_ERROR) {
        return 1;
    }
    keep_history(s, data, len);
    return 0;
}

cr_mp_status_e cr_mp_scan_finish(apr_pool_t *p, cr_mp_scan_t *s,
                                 cr_mp_info_t *info)
{
    info->model = NULL;
    info->detail = NULL;
    info->parts = s->parts;
    if (s->err == CR_MP_OK && s->state != ST_END
        && !(s->state == ST_CLOSE && s->sub == 0)) {
        fail_at(s, CR_MP_MALFORMED, s->pos == 0 ? "it is empty"
                : "it ends before the final boundary", s->pos);
    }
    if (s->err == CR_MP_OK && !s->model_seen) {
        s->err = CR_MP_NO_MODEL;
    }
    switch (s->err) {
    case CR_MP_OK:
        info->model = apr_pstrmemdup(p, s->model, s->model_len);
        break;
    case CR_MP_BAD_BOUNDARY:
        info->detail = "The multipart/form-data Content-Type has no valid "
                       "boundary.";
        break;
    case CR_MP_MALFORMED:
        info->detail = apr_psprintf(p, "The multipart/form-data body is "
                                    "malformed: %s (byte %" APR_OFF_T_FMT
                                    ").", s->err_what, s->err_at);
        break;
    case CR_MP_NO_MODEL:
        info->detail = "The multipart/form-data body has no \"model\" "
                       "field.";
        break;
    case CR_MP_DUPLICATE_MODEL:
        info->detail = "The multipart/form-data body has more than one "
                       "\"model\" field.";
        break;
    default:
        info->detail = apr_psprintf(p, "The \"model\" field %s.",
                                    s->err_what);
        break;
    }
    return s->err;
}

cr_mp_status_e cr_multipart_inspect(apr_pool_t *p, const char *content_type,
                                    const char *data, apr_size_t len,
                                    cr_mp_info_t *info)
{
    char boundary[CR_MP_MAX_BOUNDARY + 1];
    apr_size_t blen;
    const char *why;
    cr_mp_scan_t *s;

    if (cr_multipart_boundary(content_type, boundary, &blen, &why)
        != CR_MP_OK) {
        info->model = NULL;
        info->parts = 0;
        info->detail = apr_psprintf(p, "The multipart/form-data Content-Type "
                                    "has no valid boundary: %s.", why);
        return CR_MP_BAD_BOUNDARY;
    }
    s = apr_palloc(p, sizeof(*s));
    cr_mp_scan_init(s, boundary, blen);
    cr_mp_scan(s, data, len);
    return cr_mp_scan_finish(p, s, info);
}
