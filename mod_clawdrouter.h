/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter.h: what the module's httpd glue files share: the module
 * record and its configuration.  The httpd-independent core (cr_*.c
 * without httpd headers) never includes this file.
 */
#ifndef MOD_CLAWDROUTER_H
#define MOD_CLAWDROUTER_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

#include "cr_error.h"
#include "cr_route.h"
#include "cr_log.h"

extern module AP_MODULE_DECLARE_DATA clawdrouter_module;

/* Handler name of the key management console (SPEC section 9). */
#define CR_CONSOLE_HANDLER "clawdrouter-console"

#define CR_DEFAULT_MAX_BODY ((apr_off_t)32 * 1024 * 1024)

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

    /* Rate store: main server only (cr_ratestore.c). */
    const char *rate_store;           /* "shm", "memcache://...", "redis://..." */
    cr_rate_failure_e rate_failure;
    int rate_failure_set;
    void *rate_store_data;            /* cr_ratestore.c's own state */

    /* Key record cache: size from the main server; the cache itself is
     * made per child and per key store (child_init). */
    int key_cache_entries;            /* -1 unset */
    struct cr_keycache_t *key_cache;  /* NULL before child_init */
} cr_server_conf;

typedef struct {
    int enabled;                      /* -1 unset, 0 Off, 1 On */
    apr_off_t max_body;
    int max_body_set;
    const char *location;             /* the enabling <Location>'s path */
} cr_dir_conf;

/* A directive's whole-number argument: digits only, from min to max.
 * Non-zero with *n set when it is one. */
int cr_directive_number(const char *arg, apr_int64_t min, apr_int64_t max,
                        apr_int64_t *n);

#endif /* MOD_CLAWDROUTER_H */
