/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_tokens.c: token limits and quotas (SPEC section 11).
 *
 * At admission (after the request limit) the key's quota and its tpm
 * bucket are read; a key whose quota is used up, or whose bucket is at or
 * below zero, is refused with the protocol's 429.  Nothing is taken then:
 * the response's tokens are charged when its usage is known
 * (mod_clawdrouter_usage.c), so a bucket may go below zero and the
 * response that crosses a quota is never cut off.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"

#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_request.h"
#include "mod_clawdrouter_tokens.h"
#include "cr_time.h"
#include "cr_tokens.h"
#include "cr_tokenstore.h"

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(clawdrouter);
#endif

/* A quota period not set in the record is a calendar month. */
static cr_quota_period_e period_of(const cr_key_record_t *key)
{
    return key->quota_period == CR_QUOTA_UNSET ? CR_QUOTA_MONTH
                                               : key->quota_period;
}

static void set_retry_headers(request_rec *r, apr_interval_time_t wait)
{
    apr_int64_t ms, secs;

    if (wait < 1) {
        wait = 1;
    }
    ms = (wait + 999) / 1000;
    secs = (wait + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%" APR_INT64_T_FMT, secs));
    apr_table_setn(r->err_headers_out, "retry-after-ms",
                   apr_psprintf(r->pool, "%" APR_INT64_T_FMT, ms));
}

/* The token headers of SPEC section 11: the state at admission. */
static void set_token_headers(request_rec *r, cr_request_ctx *ctx,
                              const cr_rate_result_t *res)
{
    cr_request_set_limit_headers(r, ctx, 1, res->limit,
                                 res->remaining < 0 ? 0 : res->remaining,
                                 res->reset);
}

int cr_tokens_check_request(request_rec *r, cr_request_ctx *ctx,
                            const cr_server_conf *sconf)
{
    const cr_key_record_t *key = ctx->key;
    apr_int64_t tpm = key->tpm == CR_KEY_LIMIT_UNSET ? sconf->default_tpm
                                                     : key->tpm;
    apr_int64_t quota = key->quota == CR_KEY_LIMIT_UNSET ? 0 : key->quota;
    cr_quota_period_e period = period_of(key);
    apr_time_t now;
    cr_rate_result_t bucket;
    apr_int64_t used = 0;
    apr_status_t rv;

    ctx->tpm = tpm > 0 ? tpm : 0;
    ctx->quota_period = period;
    /* The clock is read only for a limit (a key without any only claims
     * its slot, so that its usage is counted). */
    now = ctx->tpm > 0 || quota > 0 ? apr_time_now() : 0;
    memset(&bucket, 0, sizeof(bucket));
    /* Only what this key needs: nothing at all for a key without limits
     * (with a shared store, no round trip). */
    rv = cr_tokenstore_state(r, key->id, ctx->key_fnv, period, ctx->tpm, now,
                             &bucket,
                             quota > 0 ? &used : NULL);
    if (rv != APR_SUCCESS) {
        if (rv == APR_ENOSPC) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, rv, r, CRLOGNO(0715)
                          "the token store is full: key %s is not counted",
                          key->id);
        }
        /* Otherwise the shared store is down (logged once per interval):
         * ClawdRouterRateStoreFailure decides, as for request limits. */
        if (sconf->rate_failure == CR_RATE_FAIL_CLOSED
            && (ctx->tpm > 0 || quota > 0)) {
            return cr_request_send_error(r, ctx,
                                         CR_ERR_RATE_STORE_UNAVAILABLE, NULL);
        }
        /* Served without token limits or headers; its tokens are still
         * charged if the store is back when the response ends. */
        ctx->tokens_counted = rv != APR_ENOSPC;
        return OK;
    }
    /* Every key's usage is counted, for the console. */
    ctx->tokens_counted = 1;
    if (ctx->tpm > 0) {
        set_token_headers(r, ctx, &bucket);
    }
    if (quota > 0 && used >= quota) {
        apr_time_t end = cr_tokens_period_end(period, now);

        apr_table_setn(r->err_headers_out, "x-should-retry", "false");
        if (end > now) {
            set_retry_headers(r, end - now);
        }
        ctx->tokens_counted = 0;
        return cr_request_send_error(r, ctx, CR_ERR_QUOTA_EXCEEDED,
                          apr_psprintf(r->pool, "Key %s has used its token "
                                       "quota of %" APR_INT64_T_FMT " for "
                                       "this %s (%" APR_INT64_T_FMT " used)"
                                       "%s.", key->id, quota,
                                       cr_key_quota_period_name(period),
                                       used,
                                       end > now
                                       ? apr_pstrcat(r->pool, "; it renews at ",
                                                     cr_time_format_rfc3339(
                                                         r->pool, end), NULL)
                                       : ""));
    }
    if (ctx->tpm > 0 && !bucket.allowed) {
        apr_int64_t ms = (bucket.retry_after + 999) / 1000;

        set_retry_headers(r, bucket.retry_after);
        ctx->tokens_counted = 0;
        return cr_request_send_error(r, ctx, CR_ERR_TOKENS_LIMITED,
                          apr_psprintf(r->pool, "Token rate limit of %"
                                       APR_INT64_T_FMT " tokens per minute "
                                       "reached for key %s; retry in %"
                                       APR_INT64_T_FMT " ms.", ctx->tpm,
                                       key->id, ms < 1 ? 1 : ms));
    }
    return OK;
}

void cr_tokens_charge_response(request_rec *r, cr_request_ctx *ctx)
{
    apr_int64_t tokens = ctx->input_tokens + ctx->output_tokens;
    apr_status_t rv;

    if (!ctx->tokens_counted || !ctx->usage_seen || tokens <= 0) {
        return;
    }
    rv = cr_tokenstore_charge(r, ctx->key->id, ctx->key_fnv, ctx->tpm, 1,
                              ctx->quota_period, apr_time_now(), tokens);
    if (rv == APR_ENOSPC) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CRLOGNO(0716)
                      "the token store is full: %" APR_INT64_T_FMT " tokens "
                      "of key %s not counted", tokens, ctx->key->id);
    }
    else if (rv != APR_SUCCESS) {
        /* The outage itself is logged once per interval (CR0201). */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, CRLOGNO(0721)
                      "the shared rate store is down: %" APR_INT64_T_FMT
                      " tokens of key %s not counted", tokens, ctx->key->id);
    }
}
