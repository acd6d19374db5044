/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_config.h: the module's configuration, shared by every
 * httpd glue file: directive names, the server and directory records, and
 * the few helpers that read them.  mod_clawdrouter_config.c holds the
 * create/merge functions and the directive table.
 */
#ifndef MOD_CLAWDROUTER_CONFIG_H
#define MOD_CLAWDROUTER_CONFIG_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

#include "cr_route.h"

/* Directive names, defined once. */
#define CR_DIR_KEY_STORE      "ClawdRouterKeyStore"
#define CR_DIR_UPSTREAM       "ClawdRouterUpstream"
#define CR_DIR_ROUTE          "ClawdRouterRoute"
#define CR_DIR_ENABLE         "ClawdRouter"
#define CR_DIR_RATE_STORE     "ClawdRouterRateStore"
#define CR_DIR_RATE_FAILURE   "ClawdRouterRateStoreFailure"
#define CR_DIR_DEFAULT_RPM    "ClawdRouterDefaultRPM"
#define CR_DIR_MAX_BODY       "ClawdRouterMaxBodySize"
#define CR_DIR_KEY_CACHE      "ClawdRouterKeyCache"
#define CR_DIR_METRICS_SERIES "ClawdRouterMetricsSeries"
#define CR_DIR_DEFAULT_TPM    "ClawdRouterDefaultTPM"
#define CR_DIR_STATE_FILE     "ClawdRouterStateFile"
#define CR_DIR_STREAM_USAGE   "ClawdRouterStreamUsage"
#define CR_DIR_MODELS_TTL     "ClawdRouterModelsCacheTTL"
#define CR_DIR_MODEL          "ClawdRouterModel"

#define CR_DEFAULT_MAX_BODY ((apr_off_t)32 * 1024 * 1024)
/* How long an upstream's /models list is kept (SPEC section 10). */
#define CR_DEFAULT_MODELS_TTL 300

typedef enum {
    CR_RATE_FAIL_OPEN = 0,
    CR_RATE_FAIL_CLOSED = 1
} cr_rate_failure_e;

typedef struct {
    const char *key_store;            /* "TYPE:PATH", NULL = unset */
    apr_array_header_t *upstreams;    /* of cr_upstream_t */
    apr_array_header_t *routes;       /* of cr_route_t, file order */
    apr_array_header_t *locations;    /* of const char *: every <Location>
                                       * with ClawdRouter On, for errors
                                       * httpd makes before its walk */
    apr_int64_t default_rpm;
    int default_rpm_set;
    apr_off_t max_body;
    int max_body_set;
    apr_int64_t default_tpm;          /* 0 = none */
    int default_tpm_set;
    /* GET /models (mod_clawdrouter_models.c). */
    apr_int64_t models_ttl;           /* seconds; 0 = never fetched */
    int models_ttl_set;
    apr_array_header_t *models;       /* of cr_model_decl_t, file order */

    /* Token quotas across full restarts: main server only. */
    const char *state_file;

    /* Rate store: main server only (cr_ratestore.c). */
    const char *rate_store;           /* "shm", "memcache://...", "redis://..." */
    cr_rate_failure_e rate_failure;
    int rate_failure_set;
    void *rate_store_data;            /* cr_ratestore.c's own state */

    /* Key record cache: size from the main server; the cache itself is
     * made per child and per key store (child_init). */
    int key_cache_entries;            /* -1 unset */
    /* Label sets per metric family: main server only. */
    apr_int64_t metrics_series;       /* 0 = no metrics */
    int metrics_series_set;
    struct cr_keystore_t *keystore;   /* NULL before child_init */
} cr_server_conf;

typedef struct {
    int enabled;                      /* -1 unset, 0 Off, 1 On */
    apr_off_t max_body;
    int max_body_set;
    const char *location;             /* the enabling <Location>'s path */
    int stream_usage;                 /* -1 unset (On), 0 Off, 1 On */
} cr_dir_conf;

/* The module's slots of AP_DECLARE_MODULE. */
void *cr_config_create_server(apr_pool_t *p, server_rec *s);
void *cr_config_merge_server(apr_pool_t *p, void *basev, void *addv);
void *cr_config_create_dir(apr_pool_t *p, char *path);
void *cr_config_merge_dir(apr_pool_t *p, void *basev, void *addv);
extern const command_rec cr_config_cmds[];

/* The records in force for a server and for a request. */
cr_server_conf *cr_config_server(const server_rec *s);
cr_dir_conf *cr_config_dir(const request_rec *r);

/* A directive's whole-number argument: digits only, from min to max.
 * Non-zero with *n set when it is one. */
int cr_directive_number(const char *arg, apr_int64_t min, apr_int64_t max,
                        apr_int64_t *n);

/* The largest body for a request of this directory and server. */
apr_off_t cr_config_max_body(const cr_dir_conf *dconf,
                             const cr_server_conf *sconf);

/* The part of a <Location> path that prefixes the URLs below it:
 * "/v1/" and "/v1" both prefix "/v1/chat/completions" as "/v1". */
apr_size_t cr_config_location_prefix_len(const char *loc);

#endif /* MOD_CLAWDROUTER_CONFIG_H */
