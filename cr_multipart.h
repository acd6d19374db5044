/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_multipart.h: inspection of a multipart/form-data request body (SPEC
 * section 10: OpenAI audio/transcriptions, audio/translations,
 * images/edits): the model is the form field "model".  The body itself is
 * never changed; the gateway forwards the bytes it read.
 *
 * The scanner is fed the body in pieces of any size (state carried across
 * them, a boundary split anywhere is found), in constant memory: the
 * boundary, one part's header block (at most CR_MP_MAX_HEADERS bytes) and
 * the first bytes of the "model" part's value.  The content of every other
 * part is only searched for the boundary (memchr, then a KMP automaton),
 * never copied.
 *
 * It is strict (RFC 2046 section 5.1.1 and RFC 7578), so that the model
 * it checks is the one any multipart parser the upstream may use reads.
 * Refused (CR_MP_MALFORMED):
 *   - a preamble: the body must start with "--" boundary;
 *   - "--" boundary anywhere in a part (headers or content) that is not a
 *     delimiter: CRLF "--" boundary followed at once by CRLF (next part) or
 *     "--" (the end); transport padding after a delimiter, a delimiter
 *     after a bare LF, a part whose content begins with "--" boundary right
 *     after its headers' empty line;
 *   - anything after the close delimiter but one CRLF (no epilogue); a body
 *     that ends before the close delimiter;
 *   - a part's header block larger than CR_MP_MAX_HEADERS, a bare CR or LF
 *     or a NUL in it, a folded line, a header name that is not a token or
 *     is followed by anything but ':';
 *   - a part without exactly one Content-Disposition, one that is not
 *     "form-data" with exactly one "name" parameter, a parameter that is
 *     not token=token or token="quoted" (no backslash inside quotes: RFC
 *     quoted-pair and WHATWG readings disagree), a "name*" or other
 *     starred parameter but "filename*", a duplicate parameter, a "name"
 *     with '%' in it (some parsers percent-decode names);
 * and for the model field (CR_MP_DUPLICATE_MODEL, CR_MP_BAD_MODEL):
 *   - a second part named "model" (compared ignoring ASCII case);
 *   - a "model" part with a filename, or a Content-Transfer-Encoding but
 *     7bit, 8bit or binary;
 *   - a value that is empty, longer than CR_MP_MAX_MODEL_LEN bytes, not
 *     UTF-8, with a control character or white space at either end.
 */
#ifndef CR_MULTIPART_H
#define CR_MULTIPART_H

#include <apr.h>
#include <apr_pools.h>

typedef enum {
    CR_MP_OK = 0,
    CR_MP_BAD_BOUNDARY,        /* Content-Type: no valid boundary parameter */
    CR_MP_MALFORMED,           /* framing, part headers */
    CR_MP_NO_MODEL,            /* no part named "model" */
    CR_MP_DUPLICATE_MODEL,     /* two parts named "model" */
    CR_MP_BAD_MODEL            /* the model part or its value refused */
} cr_mp_status_e;

/* Longest boundary (RFC 2046: 1 to 70 characters). */
#define CR_MP_MAX_BOUNDARY 70
/* Longest model value accepted, in bytes (the JSON scanner's limit). */
#define CR_MP_MAX_MODEL_LEN 256
/* Largest header block of one part (its lines and the empty line). */
#define CR_MP_MAX_HEADERS 8192

typedef struct {
    const char *model;         /* set on CR_MP_OK */
    const char *detail;        /* on failure: why, for the error message
                                * (no body content is quoted) */
    int parts;                 /* parts seen */
} cr_mp_info_t;

/* The scanner's state; its fields are private to cr_multipart.c.
 * Constant size (about 9 KB): allocate it from a pool or put it on a
 * thread's stack. */
typedef struct {
    apr_off_t pos;                         /* bytes consumed so far */
    int state;
    /* the delimiter pattern "--" boundary and its KMP failure table */
    unsigned char pat[CR_MP_MAX_BOUNDARY + 2];
    unsigned char fail[CR_MP_MAX_BOUNDARY + 3];
    apr_size_t pat_len;
    apr_size_t q;                          /* pattern bytes matched */
    apr_size_t sub;                        /* progress in small states */
    /* the last bytes of earlier pieces (to look behind a match) */
    unsigned char hist[CR_MP_MAX_BOUNDARY + 8];
    apr_size_t hist_len;
    /* the current part */
    apr_off_t content_start;               /* absolute offset */
    char hdr[CR_MP_MAX_HEADERS];
    apr_size_t hdr_len;
    int is_model;                          /* this part is the model field */
    int model_seen;
    char value[CR_MP_MAX_MODEL_LEN + CR_MP_MAX_BOUNDARY + 8];
    apr_size_t value_len;
    char model[CR_MP_MAX_MODEL_LEN + 1];
    apr_size_t model_len;
    int parts;
    /* the first error */
    cr_mp_status_e err;
    const char *err_what;
    apr_off_t err_at;
} cr_mp_scan_t;

/* Is this Content-Type multipart/form-data (any parameters, any case)? */
int cr_multipart_is_form_data(const char *content_type);

/* The boundary parameter of a multipart/form-data Content-Type (quoted or
 * not; exactly one; 1-70 characters of RFC 2046's bchars, not ending in a
 * space), copied into out (CR_MP_MAX_BOUNDARY + 1 bytes) with *len set.
 * CR_MP_OK or CR_MP_BAD_BOUNDARY (*why says what is wrong). */
cr_mp_status_e cr_multipart_boundary(const char *content_type, char *out,
                                     apr_size_t *len, const char **why);

/* Push interface: init with the boundary, then the body's pieces in order
 * (any sizes, none needs to outlive the call), then finish for the
 * verdict.  scan returns nonzero once the body is already known to be
 * refused (the rest need not be scanned). */
void cr_mp_scan_init(cr_mp_scan_t *s, const char *boundary, apr_size_t len);
int cr_mp_scan(cr_mp_scan_t *s, const char *data, apr_size_t len);
cr_mp_status_e cr_mp_scan_finish(apr_pool_t *p, cr_mp_scan_t *s,
                                 cr_mp_info_t *info);

/* The same over a whole buffer, from the Content-Type header value. */
cr_mp_status_e cr_multipart_inspect(apr_pool_t *p, const char *content_type,
                                    const char *data, apr_size_t len,
                                    cr_mp_info_t *info);

#endif /* CR_MULTIPART_H */
