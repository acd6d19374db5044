/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_metrics.h: the metrics' glue (SPEC section 13): the
 * shared table, the counting at the end of each gateway request and the
 * clawdrouter-metrics handler.
 */
#ifndef MOD_CLAWDROUTER_METRICS_H
#define MOD_CLAWDROUTER_METRICS_H

#include "httpd.h"

/* Handler name of the Prometheus page. */
#define CR_METRICS_HANDLER "clawdrouter-metrics"

/* post_config: make the shared table, or keep the one of the previous
 * generation (graceful restart). */
int cr_metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s);

/* log_transaction: count a finished gateway request. */
int cr_metrics_log_transaction(request_rec *r);

/* The handler. */
int cr_metrics_handler(request_rec *r);

#endif /* MOD_CLAWDROUTER_METRICS_H */
