/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_body.c: step 3 of SPEC section 4, the request body: read
 * once into the request's brigade (never copied into one buffer),
 * inspected where it lies (JSON by cr_body.c, multipart/form-data uploads
 * by cr_multipart.c, SPEC section 10), and replayed to mod_proxy byte for
 * byte.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_body.h"
#include "mod_clawdrouter_request.h"
#include "cr_body.h"
#include "cr_load.h"
#include "cr_multipart.h"

/* How much the body reader asks for at a time. */
#define CR_READ_CHUNK         (64 * 1024)

/* ------------------------------------------------------------------ */
/* The request body                                                    */
/* ------------------------------------------------------------------ */

/* The kept body: small reads are copied into blocks of CR_KEEP_BLOCK
 * bytes (heap buckets from the connection's bucket allocator, which
 * return to it when the request's brigade is destroyed); a large read is
 * kept as it came, when it does not hold much more memory than its
 * bytes, and so is the body's first small read (usually the whole body
 * of a small request, in the buffer httpd read the request into: it pins
 * at most one block, which is not copied).  However the client chunks the
 * body (even one byte a chunk), the kept body costs at most about twice
 * its bytes plus two blocks (docs/HARDENING.md, finding 2). */
#define CR_KEEP_BLOCK   8000          /* APR_BUCKET_BUFF_SIZE: one 8 KiB node */
#define CR_KEEP_AS_IS   4000          /* reads this large may stay as they are */

typedef struct {
    apr_bucket_brigade *bb;
    apr_bucket *block;                /* the block being filled, or NULL */
    char *buf;
    int pinned;                       /* a small read was kept as it is */
} cr_body_keeper;

/* Copy into the kept body's blocks, the new ones inserted before `at` (the
 * kept brigade's sentinel, or the read bucket that is being copied when
 * it lies in the kept brigade itself). */
static void keep_copy(cr_body_keeper *k, const char *data, apr_size_t len,
                      apr_bucket *at)
{
    apr_bucket_alloc_t *ba = k->bb->bucket_alloc;

    while (len > 0) {
        apr_size_t n;

        if (k->block == NULL || k->block->length == CR_KEEP_BLOCK) {
            k->buf = apr_bucket_alloc(CR_KEEP_BLOCK, ba);
            k->block = apr_bucket_heap_create(k->buf, CR_KEEP_BLOCK,
                                              apr_bucket_free, ba);
            k->block->length = 0;
            APR_BUCKET_INSERT_BEFORE(at, k->block);
        }
        n = CR_KEEP_BLOCK - k->block->length;
        if (n > len) {
            n = len;
        }
        memcpy(k->buf + k->block->length, data, n);
        k->block->length += n;
        data += n;
        len -= n;
    }
}

/* May this bucket be kept as it is?  Only at a block boundary (nothing is
 * reordered, no block is left half empty), and when it is large and does
 * not pin a much larger buffer, or when it is the first small read and
 * pins at most one block (a transient one is copied to its size when it
 * is set aside). */
static int keep_as_is(cr_body_keeper *k, apr_bucket *e)
{
    if (k->block != NULL && k->block->length < CR_KEEP_BLOCK) {
        return 0;
    }
    if (APR_BUCKET_IS_HEAP(e)) {
        const apr_bucket_heap *h = e->data;
        if (e->length >= CR_KEEP_AS_IS && h->alloc_len / 2 <= e->length) {
            return 1;
        }
        if (!k->pinned && h->alloc_len <= CR_KEEP_BLOCK) {
            k->pinned = 1;
            return 1;
        }
        return 0;
    }
    if (APR_BUCKET_IS_POOL(e)) {
        return 0;
    }
    if (e->length >= CR_KEEP_AS_IS) {
        return 1;
    }
    if (!k->pinned && APR_BUCKET_IS_TRANSIENT(e)) {
        k->pinned = 1;
        return 1;
    }
    return 0;
}

/* A body scanner's push function (cr_body_scan, cr_mp_scan): nonzero
 * once the body is known to be refused. */
typedef int (*body_scan_fn)(void *scanner, const char *data, apr_size_t len);

static int scan_json(void *scanner, const char *data, apr_size_t len)
{
    return cr_body_scan(scanner, data, len);
}

static int scan_multipart(void *scanner, const char *data, apr_size_t len)
{
    return cr_mp_scan(scanner, data, len);
}

/* Read the whole body (at most limit bytes) into the kept brigade and
 * scan it as it arrives (the scanners need no copy and keep no state
 * beyond their constant-size structs).  *too_large is set when it is
 * larger.  Once the scanner has refused the body, the rest is read (to
 * keep the connection) and counted but not kept.  While the kept brigade
 * holds no data it is where HTTP_IN reads into (a small body arrives in
 * one read, EOS included: one brigade in all); after that, reads go to a
 * brigade of their own and what is kept moves over.  The kept body ends
 * with HTTP_IN's EOS bucket. */
static apr_status_t read_body(request_rec *r, apr_off_t limit,
                              apr_bucket_brigade **body, apr_off_t *total,
                              int *too_large, body_scan_fn scan_fn,
                              void *scan)
{
    apr_bucket_brigade *kept = apr_brigade_create(r->pool,
                                                  r->connection->bucket_alloc);
    apr_bucket_brigade *bb = kept, *own = NULL;
    cr_body_keeper keeper;
    apr_status_t rv = APR_SUCCESS;
    int seen_eos = 0, refused = 0;

    keeper.bb = kept;
    keeper.block = NULL;
    keeper.buf = NULL;
    keeper.pinned = 0;
    *total = 0;
    *too_large = 0;
    while (!seen_eos) {
        apr_bucket *e;

        if (bb == kept && !APR_BRIGADE_EMPTY(kept)) {
            if (own == NULL) {
                own = apr_brigade_create(r->pool,
                                         r->connection->bucket_alloc);
            }
            bb = own;
        }
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, CR_READ_CHUNK);
        if (rv != APR_SUCCESS) {
            break;
        }
        e = APR_BRIGADE_FIRST(bb);
        while (e != APR_BRIGADE_SENTINEL(bb)) {
            apr_bucket *next = APR_BUCKET_NEXT(e);
            const char *data;
            apr_size_t len;

            if (APR_BUCKET_IS_EOS(e)) {
                /* Kept: the replay filter hands it on after the data. */
                seen_eos = 1;
                if (bb != kept) {
                    APR_BUCKET_REMOVE(e);
                    APR_BRIGADE_INSERT_TAIL(kept, e);
                }
                e = next;
                continue;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                apr_bucket_delete(e);
                e = next;
                continue;
            }
            rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                break;
            }
            /* A read may change the bucket (a morph, a split). */
            next = APR_BUCKET_NEXT(e);
            *total += (apr_off_t)len;
            if (*total > limit) {
                *too_large = 1;
                break;
            }
            if (len > 0 && !refused) {
                refused = scan_fn(scan, data, len);
            }
            if (len == 0 || refused) {
                apr_bucket_delete(e);
            }
            else if (keep_as_is(&keeper, e)) {
                rv = apr_bucket_setaside(e, r->pool);
                if (rv != APR_SUCCESS) {
                    break;
                }
                if (bb != kept) {
                    APR_BUCKET_REMOVE(e);
                    APR_BRIGADE_INSERT_TAIL(kept, e);
                }
                keeper.block = NULL;
            }
            else {
                keep_copy(&keeper, data, len,
                          bb == kept ? e : APR_BRIGADE_SENTINEL(kept));
                apr_bucket_delete(e);
            }
            e = next;
        }
        if (rv != APR_SUCCESS || *too_large) {
            break;
        }
    }
    if (own != NULL) {
        apr_brigade_destroy(own);
    }
    if (rv != APR_SUCCESS || *too_large) {
        apr_brigade_cleanup(kept);
        return rv;
    }
    *body = kept;
    return APR_SUCCESS;
}

/* Input filter that hands mod_proxy the body the gateway already read,
 * then end-of-stream (HTTP_IN's own EOS bucket, kept after the data, so
 * that a read that takes the whole body gets its end too; a fresh one
 * for every read after that).  It sits above HTTP_IN, which is at its
 * end. */
apr_status_t cr_body_replay_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                  ap_input_mode_t mode,
                                  apr_read_type_e block,
                                  apr_off_t readbytes)
{
    apr_bucket_brigade *kept = f->ctx;
    const cr_request_ctx *rctx;
    apr_bucket *e;
    apr_status_t rv;

    (void)block;
    if (mode != AP_MODE_READBYTES && mode != AP_MODE_SPECULATIVE
        && mode != AP_MODE_EXHAUSTIVE) {
        return APR_ENOTIMPL;
    }
    if (APR_BRIGADE_EMPTY(kept)) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                    f->c->bucket_alloc));
        return APR_SUCCESS;
    }
    rctx = cr_ctx_get(f->r);       /* (none after an internal redirect) */
    /* An upstream URL is http://, https:// or balancer://.  Only
     * mod_proxy_http takes the whole body at once: a balancer's members
     * may be AJP or FastCGI, which copy a read into a buffer of the size
     * they asked for. */
    if (mode == AP_MODE_EXHAUSTIVE
        || (mode == AP_MODE_READBYTES && rctx && rctx->upstream
            && (rctx->upstream->url[0] | 0x20) == 'h')) {
        /* All of it (see mod_clawdrouter_body.h): it is in memory already,
         * and only mod_proxy_http reads it here, which takes any amount. */
        int eos = APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(kept));
        APR_BRIGADE_CONCAT(bb, kept);
        if (!eos) {
            APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                        f->c->bucket_alloc));
        }
        return APR_SUCCESS;
    }
    rv = apr_brigade_partition(kept, readbytes, &e);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        return rv;
    }
    if (mode == AP_MODE_SPECULATIVE) {
        apr_bucket *b;
        for (b = APR_BRIGADE_FIRST(kept); b != e; b = APR_BUCKET_NEXT(b)) {
            apr_bucket *copy;
            rv = apr_bucket_copy(b, &copy);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            APR_BRIGADE_INSERT_TAIL(bb, copy);
        }
        return APR_SUCCESS;
    }
    while (APR_BRIGADE_FIRST(kept) != e) {
        apr_bucket *b = APR_BRIGADE_FIRST(kept);
        APR_BUCKET_REMOVE(b);
        APR_BRIGADE_INSERT_TAIL(bb, b);
    }
    return APR_SUCCESS;
}

/* The body's kind, from its Content-Type. */
typedef enum {
    BODY_JSON = 0,
    BODY_MULTIPART,
    BODY_OTHER
} body_kind_e;

static body_kind_e body_kind(const cr_request_ctx *ctx, const char *ctype)
{
    if (cr_body_content_type_is_json(ctype)) {
        return BODY_JSON;
    }
    /* multipart/form-data: OpenAI's uploads (audio/transcriptions,
     * audio/translations, images/edits...); the Anthropic API has none
     * that names a model. */
    if (ctx->protocol == CR_PROTO_OPENAI && cr_multipart_is_form_data(ctype)) {
        return BODY_MULTIPART;
    }
    return BODY_OTHER;
}

/* The JSON verdict: the model, and where the body asks for usage. */
static int json_verdict(request_rec *r, cr_request_ctx *ctx,
                        cr_body_scan_t *scan)
{
    cr_body_info_t info;

    if (cr_body_scan_finish(r->pool, scan, &info) != CR_BODY_OK) {
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_BODY,
                          info.detail ? info.detail
                                      : "The request body must be a JSON "
                                        "object with a string \"model\".");
    }
    ctx->model = info.model;
    /* Where the body asks for usage (mod_clawdrouter_usage.c). */
    ctx->stream = info.stream;
    ctx->usage_request.object_end = info.object_end;
    ctx->usage_request.stream_options = info.stream_options;
    ctx->usage_request.stream_options_start = info.stream_options_start;
    ctx->usage_request.stream_options_end = info.stream_options_end;
    ctx->usage_request.include_usage = info.include_usage;
    ctx->usage_request.include_usage_start = info.include_usage_start;
    ctx->usage_request.include_usage_end = info.include_usage_end;
    return OK;
}

/* The multipart verdict: the model is the form field "model". */
static int multipart_verdict(request_rec *r, cr_request_ctx *ctx,
                             cr_mp_scan_t *scan, apr_off_t total)
{
    cr_mp_info_t info;

    if (cr_mp_scan_finish(r->pool, scan, &info) != CR_MP_OK) {
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_BODY,
                                     info.detail);
    }
    ctx->model = info.model;
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0650)
                  "multipart/form-data body of %" APR_OFF_T_FMT " bytes, "
                  "%d parts, model field '%s'", total, info.parts,
                  info.model);
    return OK;
}

/* Content-Length and Content-Type, in one pass over the request's
 * headers: for each, what apr_table_get answers (the first entry of that
 * name, in any case).  A name is compared a word at a time once its
 * length is known, each letter or'ed with 0x20 (which gives a lower-case
 * letter from that letter in either case and from no other byte), each
 * '-' exactly. */
static void body_headers(const request_rec *r, const char **clen,
                         const char **ctype)
{
    /* 0x20 under each letter of "content-" and of "t-length". */
    static const char fold_content[8] = {
        0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0
    };
    static const char fold_t_length[8] = {
        0x20, 0, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20
    };
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;

    *clen = *ctype = NULL;
    for (i = 0; i < arr->nelts; i++) {
        const char *k = e[i].key;
        apr_size_t n;

        if ((k[0] | 0x20) != 'c') {
            continue;
        }
        n = strlen(k);
        if ((n != 14 && n != 12)
            || (cr_load8(k) | cr_load8(fold_content)) != cr_load8("content-")) {
            continue;
        }
        if (n == 14) {
            if (*clen != NULL
                || (cr_load8(k + 6) | cr_load8(fold_t_length))
                   != cr_load8("t-length")) {
                continue;
            }
            *clen = e[i].val;
        }
        else {
            if (*ctype != NULL
                || (cr_load4(k + 8) | 0x20202020u) != cr_load4("type")) {
                continue;
            }
            *ctype = e[i].val;
        }
        if (*clen != NULL && *ctype != NULL) {
            break;
        }
    }
}

/* The declared Content-Length as apr_strtoff(base 10) reads it: nonzero
 * if it can be read.  The usual form (digits only, which HTTP_IN insists
 * on) is read here; anything else as apr_strtoff reads it. */
static int declared_length(const char *clen, apr_off_t *len)
{
    const char *c = clen;
    apr_off_t v = 0;

    while (*c >= '0' && *c <= '9' && c - clen < 18) {
        v = v * 10 + (*c - '0');
        c++;
    }
    if (*c == '\0' && c != clen) {
        *len = v;
        return 1;
    }
    return apr_strtoff(len, clen, NULL, 10) == APR_SUCCESS;
}

/* Step 3: read and inspect the body; the model is the result. */
int cr_body_check_request(request_rec *r, cr_request_ctx *ctx,
                          apr_off_t limit, apr_bucket_brigade **body)
{
    const char *clen, *ctype;
    cr_body_scan_t json_scan;
    cr_mp_scan_t *mp_scan = NULL;
    body_kind_e kind;
    apr_off_t total;
    apr_status_t rv;
    int too_large, rc;

    body_headers(r, &clen, &ctype);
    if (r->method_number != M_POST) {
        return cr_request_send_error(r, ctx, CR_ERR_METHOD_NOT_ALLOWED,
                          apr_psprintf(r->pool, "Method %s is not "
                                       "supported here; use POST.",
                                       r->method));
    }
    kind = body_kind(ctx, ctype);
    if (kind == BODY_OTHER) {
        return cr_request_send_error(r, ctx, CR_ERR_UNSUPPORTED_MEDIA_TYPE,
                          ctx->protocol == CR_PROTO_OPENAI
                          ? "The request body must be JSON (Content-Type: "
                            "application/json) or multipart/form-data."
                          : "The request body must be JSON "
                            "(Content-Type: application/json).");
    }
    if (kind == BODY_MULTIPART) {
        char boundary[CR_MP_MAX_BOUNDARY + 1];
        apr_size_t blen;
        const char *why;

        if (cr_multipart_boundary(ctype, boundary, &blen, &why)
            != CR_MP_OK) {
            return cr_request_send_error(r, ctx, CR_ERR_INVALID_BODY,
                          apr_psprintf(r->pool, "The multipart/form-data "
                                       "Content-Type has no valid boundary: "
                                       "%s.", why));
        }
        mp_scan = apr_palloc(r->pool, sizeof(*mp_scan));
        cr_mp_scan_init(mp_scan, boundary, blen);
    }
    else {
        cr_body_scan_init(&json_scan);
    }
    if (clen) {
        apr_off_t declared;
        if (declared_length(clen, &declared) && declared > limit) {
            return cr_request_send_error(r, ctx, CR_ERR_TOO_LARGE,
                              apr_psprintf(r->pool, "Request body is larger "
                                           "than %" APR_OFF_T_FMT " bytes.",
                                           limit));
        }
    }
    if (mp_scan) {
        rv = read_body(r, limit, body, &total, &too_large, scan_multipart,
                       mp_scan);
    }
    else {
        rv = read_body(r, limit, body, &total, &too_large, scan_json,
                       &json_scan);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, CRLOGNO(0104)
                      "reading the request body failed");
        if (rv == AP_FILTER_ERROR) {
            /* HTTP_IN already judged it (e.g. LimitRequestBody); answer
             * in JSON all the same. */
            return cr_request_send_error(r, ctx, CR_ERR_TOO_LARGE, NULL);
        }
        r->connection->keepalive = AP_CONN_CLOSE;
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_BODY,
                          "The request body could not be read "
                          "completely.");
    }
    ctx->body_read = !too_large;
    if (too_large) {
        return cr_request_send_error(r, ctx, CR_ERR_TOO_LARGE,
                          apr_psprintf(r->pool, "Request body is larger than "
                                       "%" APR_OFF_T_FMT " bytes.", limit));
    }

    rc = mp_scan ? multipart_verdict(r, ctx, mp_scan, total)
                 : json_verdict(r, ctx, &json_scan);
    if (rc != OK) {
        return rc;
    }
    cr_request_table_put(r->subprocess_env, ctx->env_ours, CR_ENV_MODEL,
                         ctx->model);
    return OK;
}
