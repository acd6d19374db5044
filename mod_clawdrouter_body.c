/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_body.c: step 3 of SPEC section 4, the request body: read
 * once into the request's brigade (never copied into one buffer),
 * inspected where it lies, and replayed to mod_proxy byte for byte.
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

/* How much the body reader asks for at a time. */
#define CR_READ_CHUNK         (64 * 1024)

/* ------------------------------------------------------------------ */
/* The request body                                                    */
/* ------------------------------------------------------------------ */

/* Read the whole body into a brigade (setaside in the request pool), at
 * most limit bytes.  *too_large is set when it is larger. */
static apr_status_t read_body(request_rec *r, apr_off_t limit,
                              apr_bucket_brigade **body, apr_off_t *total,
                              int *too_large)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    apr_bucket_brigade *kept = apr_brigade_create(r->pool,
                                                  r->connection->bucket_alloc);
    int seen_eos = 0;

    *total = 0;
    *too_large = 0;
    while (!seen_eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb,
                                         AP_MODE_READBYTES, APR_BLOCK_READ,
                                         CR_READ_CHUNK);
        if (rv != APR_SUCCESS) {
            apr_brigade_destroy(bb);
            return rv;
        }
        while (!APR_BRIGADE_EMPTY(bb)) {
            apr_bucket *e = APR_BRIGADE_FIRST(bb);

            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
                apr_bucket_delete(e);
                continue;
            }
            if (APR_BUCKET_IS_METADATA(e)) {
                apr_bucket_delete(e);
                continue;
            }
            if (e->length == (apr_size_t)-1) {
                const char *data;
                apr_size_t len;
                rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
                if (rv != APR_SUCCESS) {
                    apr_brigade_destroy(bb);
                    return rv;
                }
            }
            *total += (apr_off_t)e->length;
            if (*total > limit) {
                *too_large = 1;
                apr_brigade_destroy(bb);
                return APR_SUCCESS;
            }
            rv = apr_bucket_setaside(e, r->pool);
            if (rv != APR_SUCCESS) {
                apr_brigade_destroy(bb);
                return rv;
            }
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(kept, e);
        }
    }
    apr_brigade_destroy(bb);
    *body = kept;
    return APR_SUCCESS;
}

/* cr_json_read_fn over a brigade, for cr_body_inspect_stream: the body is
 * inspected where it lies, never copied into one buffer. */
typedef struct {
    apr_bucket_brigade *bb;
    apr_bucket *bucket;
    apr_size_t offset;
} cr_brigade_reader;

static apr_size_t brigade_read(void *buf, apr_size_t len, void *baton)
{
    cr_brigade_reader *rd = baton;
    apr_size_t copied = 0;

    while (copied < len && rd->bucket != APR_BRIGADE_SENTINEL(rd->bb)) {
        const char *data;
        apr_size_t avail, n;

        if (apr_bucket_read(rd->bucket, &data, &avail, APR_BLOCK_READ)
            != APR_SUCCESS) {
            return (apr_size_t)-1;
        }
        if (rd->offset >= avail) {
            rd->bucket = APR_BUCKET_NEXT(rd->bucket);
            rd->offset = 0;
            continue;
        }
        n = avail - rd->offset;
        if (n > len - copied) {
            n = len - copied;
        }
        memcpy((char *)buf + copied, data + rd->offset, n);
        copied += n;
        rd->offset += n;
    }
    return copied;
}

/* Input filter that hands mod_proxy the body the gateway already read,
 * then end-of-stream.  It sits above HTTP_IN, which is at its end. */
apr_status_t cr_body_replay_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                  ap_input_mode_t mode,
                                  apr_read_type_e block,
                                  apr_off_t readbytes)
{
    apr_bucket_brigade *kept = f->ctx;
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
    if (mode == AP_MODE_EXHAUSTIVE) {
        APR_BRIGADE_CONCAT(bb, kept);
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                                    f->c->bucket_alloc));
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

/* Step 3: read and inspect the body; the model is the result. */
int cr_body_check_request(request_rec *r, cr_request_ctx *ctx,
                          apr_off_t limit, apr_bucket_brigade **body)
{
    const char *clen = apr_table_get(r->headers_in, "Content-Length");
    cr_body_info_t info;
    cr_body_status_e bs;
    cr_brigade_reader reader;
    apr_off_t total;
    apr_status_t rv;
    int too_large;

    if (r->method_number != M_POST) {
        return cr_request_send_error(r, ctx, CR_ERR_METHOD_NOT_ALLOWED,
                          apr_psprintf(r->pool, "Method %s is not "
                                       "supported here; use POST.",
                                       r->method));
    }
    if (!cr_body_content_type_is_json(apr_table_get(r->headers_in,
                                                    "Content-Type"))) {
        return cr_request_send_error(r, ctx, CR_ERR_UNSUPPORTED_MEDIA_TYPE,
                          "The request body must be JSON "
                          "(Content-Type: application/json).");
    }
    if (clen) {
        apr_off_t declared;
        if (apr_strtoff(&declared, clen, NULL, 10) == APR_SUCCESS
            && declared > limit) {
            return cr_request_send_error(r, ctx, CR_ERR_TOO_LARGE,
                              apr_psprintf(r->pool, "Request body is larger "
                                           "than %" APR_OFF_T_FMT " bytes.",
                                           limit));
        }
    }
    rv = read_body(r, limit, body, &total, &too_large);
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

    reader.bb = *body;
    reader.bucket = APR_BRIGADE_FIRST(*body);
    reader.offset = 0;
    memset(&info, 0, sizeof(info));
    bs = cr_body_inspect_stream(r->pool, brigade_read, &reader, &info);
    if (bs != CR_BODY_OK) {
        return cr_request_send_error(r, ctx, CR_ERR_INVALID_BODY,
                          info.detail ? info.detail
                                      : "The request body must be a JSON "
                                        "object with a string \"model\".");
    }
    ctx->model = info.model;
    apr_table_setn(r->subprocess_env, CR_ENV_MODEL, info.model);
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
