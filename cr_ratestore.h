/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_ratestore.h: where rate-limit state lives (httpd glue).  "shm" keeps
 * it in shared memory on this host; "memcache://" and "redis://" share it
 * between hosts.  Backends sit behind one vtable picked by
 * ClawdRouterRateStore.  docs/RATELIMIT.md describes each of them.
 */
#ifndef CR_RATESTORE_H
#define CR_RATESTORE_H

#include "httpd.h"
#include "http_config.h"
#include "cr_rate.h"

#define CR_DIR_RATE_SHM_ENTRIES "ClawdRouterRateShmEntries"
#define CR_RATE_SHM_ENTRIES_DEFAULT 10000

/* Directive handlers (RSRC_CONF, main server). */
const char *cr_ratestore_cmd_store(cmd_parms *cmd, void *dummy,
                                   const char *arg);
const char *cr_ratestore_cmd_failure(cmd_parms *cmd, void *dummy,
                                     const char *arg);
const char *cr_ratestore_cmd_shm_entries(cmd_parms *cmd, void *dummy,
                                         const char *arg);

/* Further directives of the rate store, spliced into the module's
 * command table (each entry ends with a comma). */
#define CR_RATESTORE_COMMANDS \
    AP_INIT_TAKE1(CR_DIR_RATE_SHM_ENTRIES, cr_ratestore_cmd_shm_entries, \
                  NULL, RSRC_CONF, \
                  "keys the shm rate store holds at once (default 10000)"),

/* Hook bodies, called from mod_clawdrouter.c's hooks. */
int cr_ratestore_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp);
int cr_ratestore_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s);
void cr_ratestore_child_init(apr_pool_t *p, server_rec *s);

/* Decide one request of the key key_id (limit rpm > 0; key_fnv is
 * cr_rate_id_fnv(key_id)).  APR_SUCCESS with *result filled; any other
 * status means the shared store could not be asked (the caller applies
 * ClawdRouterRateStoreFailure; this function has already logged the
 * outage, at most once per 10 s per process). */
apr_status_t cr_ratestore_take(request_rec *r, const char *key_id,
                               apr_uint64_t key_fnv, apr_int64_t rpm,
                               cr_rate_result_t *result);

/* For the token counts that live in the same store (cr_tokenshared.c). */
typedef enum {
    CR_RATESTORE_SHM = 0,
    CR_RATESTORE_MEMCACHE,
    CR_RATESTORE_REDIS
} cr_ratestore_kind_e;

/* Which store serves this process (after post_config). */
cr_ratestore_kind_e cr_ratestore_kind(void);
/* memcache: the client of this child (NULL before child_init). */
struct apr_memcache_t *cr_ratestore_memcache(void);
/* redis: the server's address. */
void cr_ratestore_redis_addr(const char **host, apr_port_t *port);
/* memcache: are servers worth trying (apr-util's dead marks lifted unless
 * one timed out less than 5 s ago)?  Is any marked live? */
int cr_ratestore_revive(void);
int cr_ratestore_any_live(void);
/* Report a failure of the store (the outage line, at most once per 10 s
 * per process; r may be NULL) and return a failure status; report that it
 * worked (the "reachable again" line after an outage). */
apr_status_t cr_ratestore_failed(request_rec *r, apr_status_t rv,
                                 const char *what);
void cr_ratestore_worked(request_rec *r);

#endif /* CR_RATESTORE_H */
