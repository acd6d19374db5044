/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_usage.c: the token usage of forwarded responses (SPEC
 * section 11), httpd glue over the scanner of cr_usage.c.
 *
 * An output filter reads every forwarded response as it passes: each
 * brigade is scanned and passed on at once, nothing is kept back.  The one
 * exception is a streamed OpenAI chat for which the gateway asked the
 * upstream for usage (mod_clawdrouter_body.c): there the bytes of each
 * event are held from its start until the scanner knows the event is not
 * the usage-only chunk (its "choices" is not empty: a few dozen bytes into
 * the event) and that chunk is dropped, so the client gets the stream it
 * asked for.
 *
 * When the response has ended (or the request is logged, whichever comes
 * first) the counts go into the request's context and into
 * CLAWDROUTER_INPUT_TOKENS, _OUTPUT_TOKENS and _TOTAL_TOKENS for the
 * access log; a response without usage leaves them unset and says why in
 * the error log (info).
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_request.h"
#include "mod_clawdrouter_tokens.h"
#include "mod_clawdrouter_usage.h"
#include "cr_num.h"
#include "cr_usage.h"

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(clawdrouter);
#endif

/* An event held longer than this (no "choices" decided yet) is let go:
 * it is not the small usage-only chunk. */
#define CR_USAGE_HOLD_MAX (64 * 1024)

struct cr_usage_filter_t {
    cr_usage_t scan;
    int scanning;                 /* the response's bytes are read */
    const char *not_read;         /* why they are not (for the log) */
    int strip;                    /* take the usage-only chunk out */
    int holding;                  /* bytes of an event are held */
    apr_off_t held_len;
    apr_bucket_brigade *held;
    apr_bucket_brigade *out;
    int seen_eos;
    int done;                     /* counts settled */
    int started;                  /* the response's first brigade seen */
    const char *content_encoding; /* the response's, found at the start */
    apr_int64_t dropped;          /* events taken out */
};

/* Settle the counts (once): context, environment, and a log line when
 * there are none. */
void cr_usage_finish(request_rec *r, cr_request_ctx *ctx)
{
    cr_usage_filter_t *fc = ctx->usage_filter;
    apr_int64_t in = 0, out = 0;
    const char *why;

    if (!ctx->forwarded || ctx->usage_done) {
        return;
    }
    ctx->usage_done = 1;
    if (fc) {
        fc->done = 1;
    }
    if (fc && fc->scanning && cr_usage_result(&fc->scan, &in, &out)) {
        ctx->usage_seen = 1;
        ctx->input_tokens = in;
        ctx->output_tokens = out;
        /* Added, not set: this runs once per request (usage_done), and
         * apr_table_setn would compare the name with every CLAWDROUTER_
         * variable already there (they share apr_table's checksum).  The
         * three numbers are written into one allocation. */
        {
            char *text = apr_palloc(r->pool, 3 * (CR_NUM_TEXT_MAX + 1));
            char *end;

            end = cr_num_put_int64(text, in);
            *end++ = '\0';
            apr_table_addn(r->subprocess_env, CR_ENV_INPUT_TOKENS, text);
            text = end;
            end = cr_num_put_int64(text, out);
            *end++ = '\0';
            apr_table_addn(r->subprocess_env, CR_ENV_OUTPUT_TOKENS, text);
            text = end;
            *cr_num_put_int64(text, in + out) = '\0';
            apr_table_addn(r->subprocess_env, CR_ENV_TOTAL_TOKENS, text);
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0701)
                      "usage of the response: %" APR_INT64_T_FMT " input, %"
                      APR_INT64_T_FMT " output tokens%s", in, out,
                      fc->dropped ? " (usage chunk taken out)" : "");
        cr_tokens_charge_response(r, ctx);
        return;
    }
    if (!fc) {
        why = "the response was an error the gateway made";
    }
    else if (!fc->scanning) {
        why = fc->not_read;
    }
    else if (r->connection->aborted) {
        why = "the client went away before the response ended";
    }
    else if (r->status < 200 || r->status >= 300) {
        why = "the upstream answered with an error";
    }
    else if (!fc->seen_eos) {
        why = "the response ended early";
    }
    else {
        why = "the upstream reported none";
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0700)
                  "no token usage for this response (status %d): %s",
                  r->status, why);
}

/* The first brigade: what the response is. */
static void usage_start(ap_filter_t *f, cr_usage_filter_t *fc,
                        cr_request_ctx *ctx)
{
    request_rec *r = f->r;
    const char *ce = fc->content_encoding;
    const char *ct = r->content_type ? r->content_type
                     : apr_table_get(r->headers_out, "Content-Type");
    cr_usage_format_e fmt = cr_usage_format_for(ct);

    if (ce && *ce && strcasecmp(ce, "identity") != 0) {
        fc->not_read = apr_psprintf(r->pool, "the response is encoded (%s)",
                                    ce);
        return;
    }
    if (r->header_only) {
        fc->not_read = "a HEAD request has no body";
        return;
    }
    fc->scanning = 1;
    fc->strip = ctx->usage_strip && fmt == CR_USAGE_SSE;
    cr_usage_init(&fc->scan, fmt, fc->strip);
    if (fc->strip) {
        /* What the client gets is shorter than what the upstream sent. */
        apr_table_unset(r->headers_out, "Content-Length");
        fc->held = apr_brigade_create(r->pool, f->c->bucket_alloc);
        fc->out = apr_brigade_create(r->pool, f->c->bucket_alloc);
    }
}

/* Let go of what is held. */
static void release_held(cr_usage_filter_t *fc)
{
    APR_BRIGADE_CONCAT(fc->out, fc->held);
    fc->holding = 0;
    fc->held_len = 0;
}

/* Put a bucket where it goes now: held with its event, or out. */
static apr_status_t place(ap_filter_t *f, cr_usage_filter_t *fc,
                          apr_bucket *e)
{
    APR_BUCKET_REMOVE(e);
    if (fc->holding) {
        apr_status_t rv = apr_bucket_setaside(e, f->r->pool);
        if (rv != APR_SUCCESS) {
            apr_bucket_destroy(e);
            return rv;
        }
        APR_BRIGADE_INSERT_TAIL(fc->held, e);
        if (e->length != (apr_size_t)-1) {
            fc->held_len += (apr_off_t)e->length;
        }
        if (fc->held_len > CR_USAGE_HOLD_MAX) {
            release_held(fc);
        }
    }
    else {
        APR_BRIGADE_INSERT_TAIL(fc->out, e);
    }
    return APR_SUCCESS;
}

/* The stream with the usage-only chunk taken out: bb is emptied into
 * fc->out (and fc->held). */
static apr_status_t strip_brigade(ap_filter_t *f, cr_usage_filter_t *fc,
                                  apr_bucket_brigade *bb)
{
    apr_status_t rv;

    while (!APR_BRIGADE_EMPTY(bb)) {
        apr_bucket *e = APR_BRIGADE_FIRST(bb);
        const char *data;
        apr_size_t len, pos = 0;

        if (APR_BUCKET_IS_EOS(e)) {
            fc->seen_eos = 1;
            release_held(fc);
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(fc->out, e);
            continue;
        }
        if (APR_BUCKET_IS_METADATA(e)) {
            if ((rv = place(f, fc, e)) != APR_SUCCESS) {
                return rv;
            }
            continue;
        }
        rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (len == 0) {
            apr_bucket_delete(e);
            continue;
        }
        while (pos < len) {
            cr_usage_signal_e sig;
            apr_size_t n = cr_usage_feed(&fc->scan, data + pos, len - pos,
                                         &sig);

            if (n > 0) {
                if (pos + n < len) {
                    /* e keeps the first n bytes; the rest follows it. */
                    if ((rv = apr_bucket_split(e, n)) != APR_SUCCESS) {
                        return rv;
                    }
                }
                {
                    apr_bucket *next = APR_BUCKET_NEXT(e);
                    if ((rv = place(f, fc, e)) != APR_SUCCESS) {
                        return rv;
                    }
                    e = next;
                }
                pos += n;
            }
            switch (sig) {
            case CR_USAGE_SIG_EVENT_START:
                fc->holding = 1;
                fc->held_len = 0;
                break;
            case CR_USAGE_SIG_KEEP:
                if (fc->holding) {
                    release_held(fc);
                }
                break;
            case CR_USAGE_SIG_EVENT_END:
                if (fc->holding) {
                    if (cr_usage_event_is_usage_only(&fc->scan)) {
                        apr_brigade_cleanup(fc->held);
                        fc->holding = 0;
                        fc->held_len = 0;
                        fc->dropped++;
                    }
                    else {
                        release_held(fc);
                    }
                }
                break;
            default:
                break;
            }
        }
    }
    return APR_SUCCESS;
}

static apr_status_t usage_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    cr_request_ctx *ctx = cr_ctx_get(r);
    cr_usage_filter_t *fc = f->ctx;
    apr_bucket *e;
    apr_status_t rv;

    /* This filter runs on every forwarded response: it also does the
     * gateway's work on the response headers (one filter, not two). */
    if (ctx && fc && !fc->started) {
        fc->started = 1;
        fc->content_encoding = cr_request_response_start(r, ctx);
    }
    if (!ctx || !fc || fc->done) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    if (!fc->scanning && !fc->not_read) {
        usage_start(f, fc, ctx);
    }
    if (!fc->scanning) {
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            if (APR_BUCKET_IS_EOS(e)) {
                fc->seen_eos = 1;
                cr_usage_finish(r, ctx);
            }
        }
        return ap_pass_brigade(f->next, bb);
    }
    if (fc->strip) {
        rv = strip_brigade(f, fc, bb);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (fc->seen_eos) {
            cr_usage_finish(r, ctx);
        }
        if (APR_BRIGADE_EMPTY(fc->out)) {
            return APR_SUCCESS;
        }
        rv = ap_pass_brigade(f->next, fc->out);
        apr_brigade_cleanup(fc->out);
        return rv;
    }

    /* Read as it passes; nothing is kept back. */
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_EOS(e)) {
            fc->seen_eos = 1;
            break;
        }
        if (APR_BUCKET_IS_METADATA(e)) {
            continue;
        }
        rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        (void)cr_usage_feed(&fc->scan, data, len, NULL);
    }
    if (fc->seen_eos) {
        cr_usage_finish(r, ctx);
    }
    return ap_pass_brigade(f->next, bb);
}

/* Does the path end in /chat/completions (a trailing slash allowed)? */
static int is_chat_path(const char *uri)
{
    static const char tail[] = "/chat/completions";
    apr_size_t n = strlen(uri), t = sizeof(tail) - 1;

    if (n > 0 && uri[n - 1] == '/') {
        n--;
    }
    return n >= t && strncmp(uri + n - t, tail, t) == 0;
}

apr_status_t cr_usage_prepare_request(request_rec *r, cr_request_ctx *ctx,
                                      apr_bucket_brigade *body)
{
    cr_dir_conf *dconf = cr_config_dir(r);
    const char *clen;
    apr_off_t delta = 0, len;
    apr_status_t rv;
    int changed = 0;

    if (ctx->protocol != CR_PROTO_OPENAI || !ctx->stream
        || dconf->stream_usage == 0 || !is_chat_path(r->uri)
        || ctx->usage_request.include_usage == 1
        /* The offsets are known (the top-level '}' is never at 0). */
        || ctx->usage_request.object_end <= 0) {
        return APR_SUCCESS;
    }
    rv = cr_usage_request_usage(body, &ctx->usage_request, &changed, &delta);
    if (rv != APR_SUCCESS || !changed) {
        return rv;
    }
    ctx->usage_strip = 1;
    clen = apr_table_get(r->headers_in, "Content-Length");
    if (clen && apr_strtoff(&len, clen, NULL, 10) == APR_SUCCESS) {
        apr_table_setn(r->headers_in, "Content-Length",
                       apr_off_t_toa(r->pool, len + delta));
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0702)
                  "stream_options.include_usage set for the upstream; its "
                  "usage chunk is taken out of the stream");
    return APR_SUCCESS;
}

/* The filter's handle from registration: added by handle, its name is
 * not looked up on every request. */
static ap_filter_rec_t *usage_filter_handle;

void cr_usage_insert_filter(request_rec *r, cr_request_ctx *ctx)
{
    cr_usage_filter_t *fc = apr_pcalloc(r->pool, sizeof(*fc));

    ctx->usage_filter = fc;
    ap_add_output_filter_handle(usage_filter_handle, fc, r, r->connection);
}

void cr_usage_register_filter(void)
{
    /* A resource filter: it sees the response before any content-set
     * filter (mod_deflate) changes it. */
    usage_filter_handle = ap_register_output_filter(CR_FILTER_USAGE,
                                                    usage_filter, NULL,
                                                    AP_FTYPE_RESOURCE);
}
