/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keystore.h: the key store interface (SPEC sections 3 and 12).  The
 * request path, the console and clawdrouter-keys reach every key store
 * backend through this small table of operations, so none of them knows
 * which store it reads:
 *   - DBM (cr_keystore_dbm_create: cr_store.c, with cr_keycache.c's
 *     per-process record cache for lookups);
 *   - SQL through apr_dbd (the CLI's pgsql:/sqlite3: stores, and the
 *     module's ClawdRouterKeyStore dbd, whose backend lives in the glue).
 *
 * `req` is the caller's context handed through to the backend (the
 * request_rec in the module, NULL in the CLI); `*err` gets a one-line
 * reason on failure, never a key.
 */
#ifndef CR_KEYSTORE_H
#define CR_KEYSTORE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "cr_key.h"

typedef struct cr_keystore_t cr_keystore_t;

typedef enum {
    CR_KEYSTORE_FOUND = 0,     /* *rec set */
    CR_KEYSTORE_NOT_FOUND,     /* no record for this key */
    CR_KEYSTORE_UNAVAILABLE,   /* the store cannot be opened or reached */
    CR_KEYSTORE_READ_FAILED,   /* the record cannot be read */
    CR_KEYSTORE_HASH_FAILED    /* the key's SHA-256 cannot be computed */
} cr_keystore_result_e;

typedef struct {
    const char *type;          /* "dbm", "pgsql", "sqlite3", "dbd" ... */
    /* The record of the presented key (the request path): the backend
     * finds it by the key's SHA-256 (cr_key_hash), which a cache may
     * spare (the DBM backend's, cr_keycache.h).  *hit: answered by a
     * cache.  The key is never kept beyond the call. */
    cr_keystore_result_e (*lookup)(cr_keystore_t *ks, void *req,
                                   apr_pool_t *p, const char *key,
                                   cr_key_record_t **rec, int *hit,
                                   apr_status_t *rv, char *errbuf,
                                   apr_size_t errlen);
    /* APR_SUCCESS, APR_NOTFOUND, or another status with *err. */
    apr_status_t (*get)(cr_keystore_t *ks, void *req, apr_pool_t *p,
                        const char *id, cr_key_record_t **rec,
                        const char **err);
    /* Every record, oldest first.  A DBM store that does not exist yet
     * answers an ENOENT status. */
    apr_status_t (*list)(cr_keystore_t *ks, void *req, apr_pool_t *p,
                         apr_array_header_t **records, const char **err);
    /* As cr_store_create_key, cr_store_update_key, cr_store_revoke_key. */
    apr_status_t (*create)(cr_keystore_t *ks, void *req, apr_pool_t *p,
                           const cr_key_record_t *tmpl, const char **key,
                           cr_key_record_t **rec, const char **err);
    apr_status_t (*update)(cr_keystore_t *ks, void *req, apr_pool_t *p,
                           const char *id, const cr_key_record_t *changes,
                           cr_key_record_t **rec, const char **err);
    apr_status_t (*revoke)(cr_keystore_t *ks, void *req, apr_pool_t *p,
                           const char *id, cr_key_record_t **rec,
                           const char **err);
} cr_keystore_ops_t;

struct cr_keystore_t {
    const cr_keystore_ops_t *ops;
    const char *name;          /* for messages; never a password */
    void *backend;
};

/* A DBM store "TYPE:PATH" with a per-process record cache of `entries`
 * records (0: none) used by at most `threads` threads at once (see
 * cr_keycache_create).  Allocate it per process (child_init, or the
 * CLI). */
apr_status_t cr_keystore_dbm_create(apr_pool_t *p, const char *spec,
                                    int entries, apr_interval_time_t settle,
                                    int threads, cr_keystore_t **ks);

cr_keystore_result_e cr_keystore_lookup(cr_keystore_t *ks, void *req,
                                        apr_pool_t *p, const char *key,
                                        cr_key_record_t **rec, int *hit,
                                        apr_status_t *rv, char *errbuf,
                                        apr_size_t errlen);
apr_status_t cr_keystore_get(cr_keystore_t *ks, void *req, apr_pool_t *p,
                             const char *id, cr_key_record_t **rec,
                             const char **err);
apr_status_t cr_keystore_list(cr_keystore_t *ks, void *req, apr_pool_t *p,
                              apr_array_header_t **records,
                              const char **err);
apr_status_t cr_keystore_create(cr_keystore_t *ks, void *req, apr_pool_t *p,
                                const cr_key_record_t *tmpl,
                                const char **key, cr_key_record_t **rec,
                                const char **err);
apr_status_t cr_keystore_update(cr_keystore_t *ks, void *req, apr_pool_t *p,
                                const char *id,
                                const cr_key_record_t *changes,
                                cr_key_record_t **rec, const char **err);
apr_status_t cr_keystore_revoke(cr_keystore_t *ks, void *req, apr_pool_t *p,
                                const char *id, cr_key_record_t **rec,
                                const char **err);

/* Shared by the backends: the fields of changes that are set (see
 * cr_store_update_key) replace rec's; a new active record from a create's
 * template, its id and its key. */
void cr_keystore_apply_changes(cr_key_record_t *rec,
                               const cr_key_record_t *changes);
cr_key_record_t *cr_keystore_new_record(apr_pool_t *p,
                                        const cr_key_record_t *tmpl,
                                        const char *id, const char *key);

/* The message of a get that found no record for id. */
const char *cr_keystore_not_found_message(apr_pool_t *p, const char *id);

#endif /* CR_KEYSTORE_H */
