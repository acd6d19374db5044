/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_store.h: the DBM key store, shared by the module (read only, opened
 * per request like mod_authn_dbm, so every change is seen at once) and by
 * clawdrouter-keys and the console (which write).
 *
 * Entries:  "h:" SHA256HEX -> record JSON      (the lookup of a request)
 *           "i:" ID        -> SHA256HEX        (the CLI's and console's index)
 * Writers hold the DBM open only for the few operations of one change; the
 * DBM's own lock (sdbm: exclusive for writers, shared for readers) keeps a
 * reader from ever seeing a half-written record.
 */
#ifndef CR_STORE_H
#define CR_STORE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include "cr_key.h"

typedef struct cr_store_t cr_store_t;

/* "TYPE:PATH" (TYPE one of apr-util's DBM types: sdbm, gdbm, db, ndbm, or
 * "default", case-insensitive), or a bare PATH meaning "default".
 * APR_EINVAL if malformed, APR_ENOTIMPL (with *type set) for an unknown
 * TYPE. */
apr_status_t cr_store_parse_spec(apr_pool_t *p, const char *spec,
                                 const char **type, const char **path);

/* Open for reading (writable = 0) or for writing, creating it if missing
 * (writable = 1).  errbuf gets a one-line reason on failure. */
apr_status_t cr_store_open(apr_pool_t *p, const char *spec, int writable,
                           cr_store_t **store, char *errbuf,
                           apr_size_t errlen);
void cr_store_close(cr_store_t *store);

/* A one-line reason for the last failure of fetch, put or list on this
 * store (never NULL; never contains a key). */
const char *cr_store_last_error(const cr_store_t *store);

/* APR_SUCCESS with *rec set; APR_NOTFOUND; another status if the store or
 * the record is unusable. */
apr_status_t cr_store_fetch_by_hash(cr_store_t *store, apr_pool_t *p,
                                    const char *hash, cr_key_record_t **rec);
apr_status_t cr_store_fetch_by_id(cr_store_t *store, apr_pool_t *p,
                                  const char *id, cr_key_record_t **rec,
                                  const char **hash);
/* Write (insert or replace) a record and its id index. */
apr_status_t cr_store_put(cr_store_t *store, const char *hash,
                          const cr_key_record_t *rec);
/* Every record, oldest first. */
apr_status_t cr_store_list(cr_store_t *store, apr_pool_t *p,
                           apr_array_header_t **records);

/* The operations of clawdrouter-keys and the console, each opening the
 * store for writing only as long as it takes.  *err gets a one-line reason.
 * cr_store_create_key fills rec (id, created_at, hint, status set by it from
 * the template's name, models, rpm, expires_at) and returns the key once. */
apr_status_t cr_store_create_key(apr_pool_t *p, const char *spec,
                                 const cr_key_record_t *tmpl,
                                 const char **key, cr_key_record_t **rec,
                                 const char **err);
apr_status_t cr_store_revoke_key(apr_pool_t *p, const char *spec,
                                 const char *id, cr_key_record_t **rec,
                                 const char **err);
/* Fields of changes that are set (name/models non-NULL, rpm != -2,
 * expires_at != -1) replace the record's. */
#define CR_STORE_RPM_KEEP      (-2)   /* also for tpm and quota */
#define CR_STORE_PERIOD_KEEP   (-2)   /* quota_period */
#define CR_STORE_EXPIRES_KEEP  ((apr_time_t)-1)
apr_status_t cr_store_update_key(apr_pool_t *p, const char *spec,
                                 const char *id,
                                 const cr_key_record_t *changes,
                                 cr_key_record_t **rec, const char **err);

#endif /* CR_STORE_H */
