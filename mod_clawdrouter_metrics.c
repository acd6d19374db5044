/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_metrics.c: Prometheus metrics of the gateway (SPEC
 * section 13).
 *
 * One table in anonymous shared memory, made by the parent in post_config
 * and inherited by every child, so the page sums every process of the
 * host.  It is kept in the process pool's user data, so a graceful
 * restart (a new configuration, the same parent) keeps the counts; a
 * change of ClawdRouterMetricsSeries starts a new table.  Counting is
 * atomic additions (cr_metrics.c), with no lock on the request path.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"

#include "apr_shm.h"
#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_metrics.h"
#include "mod_clawdrouter_request.h"
#include "cr_error.h"
#include "cr_metrics.h"

#define METRICS_USERDATA_KEY "clawdrouter-metrics-shm"

typedef struct {
    apr_shm_t *shm;
    cr_metrics_t *metrics;
    apr_uint32_t series;
} metrics_keeper;

/* The table of this generation (the parent's, inherited by children). */
static cr_metrics_t *metrics;

int cr_metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    cr_server_conf *conf = cr_config_server(s);
    apr_pool_t *keep = s->process->pool;
    apr_uint32_t series = conf->metrics_series_set
                          ? (apr_uint32_t)conf->metrics_series
                          : CR_METRICS_DEFAULT_SERIES;
    metrics_keeper *k = NULL;
    apr_size_t size;
    apr_status_t rv;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    apr_pool_userdata_get((void **)&k, METRICS_USERDATA_KEY, keep);
    if (!k) {
        k = apr_pcalloc(keep, sizeof(*k));
        apr_pool_userdata_set(k, METRICS_USERDATA_KEY, NULL, keep);
    }
    if (series == 0) {
        /* No metrics: nothing counted, the page answers 404. */
        metrics = NULL;
        return OK;
    }
    /* The table of the previous generation, if this module lays tables
     * out the same way (a graceful restart onto a newer build of the
     * module does not read an older layout as its own). */
    if (k->metrics && k->series == series
        && cr_metrics_init(apr_shm_baseaddr_get(k->shm),
                           apr_shm_size_get(k->shm), series, 0)) {
        metrics = k->metrics;
        return OK;
    }
    if (k->shm) {
        if (k->series != series) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, CRLOGNO(0801)
                         CR_DIR_METRICS_SERIES " changed to %u: the metrics "
                         "start again from zero", series);
        }
        apr_shm_destroy(k->shm);
        k->shm = NULL;
        k->metrics = NULL;
    }
    size = cr_metrics_size(series);
    /* Anonymous shared memory is zero-filled, as cr_metrics_init wants. */
    rv = apr_shm_create(&k->shm, size, NULL, keep);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CRLOGNO(0800)
                     "the metrics' shared memory (%" APR_SIZE_T_FMT
                     " bytes) cannot be made", size);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    k->metrics = cr_metrics_init(apr_shm_baseaddr_get(k->shm),
                                 apr_shm_size_get(k->shm), series, 1);
    k->series = series;
    metrics = k->metrics;
    return OK;
}

int cr_metrics_log_transaction(request_rec *r)
{
    cr_request_ctx *ctx = cr_ctx_get(r);
    const request_rec *last = r;
    cr_metrics_request_t req;

    if (!ctx || !metrics || r->main || !ctx->request_id) {
        return DECLINED;
    }
    while (last->next) {
        last = last->next;
    }
    req.key_id = ctx->key ? ctx->key->id : "";
    req.model = ctx->model ? ctx->model : "";
    req.upstream = ctx->upstream ? ctx->upstream->name : "";
    req.status = last->status;
    req.usage_seen = ctx->usage_seen;
    req.input_tokens = ctx->input_tokens;
    req.output_tokens = ctx->output_tokens;
    req.latency_seen = ctx->forwarded && ctx->forwarded_at
                       && ctx->first_byte_at;
    req.upstream_elapsed = ctx->first_byte_at - ctx->forwarded_at;
    req.refusal = NULL;
    if (ctx->refused) {
        req.refusal = cr_error_refusal_reason(ctx->refusal);
        if (!req.refusal) {
            req.refusal = "";
        }
    }
    req.store_error = ctx->store_error;
    cr_metrics_count_transaction(metrics, &req);
    return DECLINED;
}

int cr_metrics_handler(request_rec *r)
{
    const char *page;

    if (!r->handler || strcmp(r->handler, CR_METRICS_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        r->allowed = AP_METHOD_BIT << M_GET;
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!metrics) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CRLOGNO(0802)
                      "metrics page asked for, but " CR_DIR_METRICS_SERIES
                      " is 0: no metrics are kept");
        return HTTP_NOT_FOUND;
    }
    page = cr_metrics_render(metrics, r->pool);
    ap_set_content_type(r, "text/plain; version=0.0.4");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t)strlen(page));
    if (!r->header_only) {
        ap_rwrite(page, (int)strlen(page), r);
    }
    return OK;
}
