/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_metrics.h: the gateway's Prometheus metrics (SPEC section 13) in a
 * memory block the caller provides (shared memory in the module), counted
 * by every process without a lock, and rendered in Prometheus' text
 * exposition format.
 *
 * Each metric family has a table of label sets.  A set is claimed with a
 * compare-and-swap on its slot's state word, its labels are written, then
 * it is published; counters are atomic additions.  A process killed at any
 * instant leaves at worst a slot that is never published, which others
 * skip: nothing waits on it for long and nothing is corrupted.  Should two
 * processes publish the same labels at once, the rendering adds them up,
 * so the page never shows a label set twice.
 */
#ifndef CR_METRICS_H
#define CR_METRICS_H

#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_time.h>

typedef enum {
    CR_METRIC_REQUESTS = 0,      /* key_id, model, upstream, code */
    CR_METRIC_TOKENS,            /* key_id, model, direction */
    CR_METRIC_REFUSALS,          /* reason */
    CR_METRIC_UPSTREAM_SECONDS,  /* upstream (histogram) */
    CR_METRIC_STORE_ERRORS,      /* store */
    CR_METRIC__COUNT
} cr_metric_e;

/* Default and largest ClawdRouterMetricsSeries. */
#define CR_METRICS_DEFAULT_SERIES 10000
#define CR_METRICS_MAX_SERIES     1000000

/* Longest label value kept (longer ones are cut on a character boundary;
 * a model name is at most 256 bytes). */
#define CR_METRICS_LABEL_MAX      256

/* The label value standing for the sets past the bound. */
#define CR_METRICS_OTHER          "_other"

typedef struct cr_metrics_t cr_metrics_t;

/* Bytes a block for `series` label sets per family needs. */
apr_size_t cr_metrics_size(apr_uint32_t series);

/* Lay out a new block (zeroed by the caller or not), or adopt one laid out
 * before with the same bound (a graceful restart): the counts are kept.
 * NULL if the block is of another layout. */
cr_metrics_t *cr_metrics_init(void *block, apr_size_t size,
                              apr_uint32_t series, int fresh);

/* Everything log_transaction counts for one finished request, in one
 * call: the labels are packed and hashed once, and the request's set of
 * requests_total links to its sets of tokens_total and of the upstream
 * histogram, so that a set seen before costs one lookup.  Any string may
 * be NULL (counted as ""). */
typedef struct {
    const char *key_id;
    const char *model;
    const char *upstream;
    int status;
    int usage_seen;              /* count input and output tokens */
    apr_int64_t input_tokens;
    apr_int64_t output_tokens;
    int latency_seen;            /* observe upstream_elapsed */
    apr_interval_time_t upstream_elapsed;
    const char *refusal;         /* a reason, or NULL: not refused */
    const char *store_error;     /* a store, or NULL: none */
} cr_metrics_request_t;

void cr_metrics_count_transaction(cr_metrics_t *m,
                                  const cr_metrics_request_t *req);

/* The same counts one family at a time.  Any string may be NULL (counted
 * as "").  The input and output tokens of one (key_id, model) share a
 * label set: ClawdRouterMetricsSeries bounds those pairs. */
void cr_metrics_count_request(cr_metrics_t *m, const char *key_id,
                              const char *model, const char *upstream,
                              int status);
void cr_metrics_count_tokens(cr_metrics_t *m, const char *key_id,
                             const char *model, apr_int64_t input,
                             apr_int64_t output);
void cr_metrics_count_refusal(cr_metrics_t *m, const char *reason);
void cr_metrics_observe_upstream(cr_metrics_t *m, const char *upstream,
                                 apr_interval_time_t elapsed);
void cr_metrics_count_store_error(cr_metrics_t *m, const char *store);

/* The whole exposition, text/plain; version=0.0.4. */
char *cr_metrics_render(cr_metrics_t *m, apr_pool_t *p);

/* A label value as the text format wants it: backslash, double quote and
 * newline escaped. */
char *cr_metrics_escape(apr_pool_t *p, const char *value);

#endif /* CR_METRICS_H */
