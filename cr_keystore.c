/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keystore.c: the key store interface and its DBM backend (cr_store.c
 * for reads and changes, cr_keycache.c for the request path's lookups).
 */

#include <apr_strings.h>

#include "cr_keystore.h"
#include "cr_keycache.h"
#include "cr_store.h"
#include "cr_cred.h"

typedef struct {
    const char *spec;          /* "TYPE:PATH" */
    cr_keycache_t *cache;
} dbm_backend_t;

static cr_keystore_result_e dbm_lookup(cr_keystore_t *ks, void *req,
                                       apr_pool_t *p, const char *key,
                                       cr_key_record_t **rec, int *hit,
                                       apr_status_t *rv, char *errbuf,
                                       apr_size_t errlen)
{
    dbm_backend_t *b = ks->backend;

    (void)req;
    switch (cr_keycache_lookup(b->cache, p, key, rec, hit, rv, errbuf,
                               errlen)) {
    case CR_KEYCACHE_FOUND:
        return CR_KEYSTORE_FOUND;
    case CR_KEYCACHE_NOT_FOUND:
        return CR_KEYSTORE_NOT_FOUND;
    case CR_KEYCACHE_OPEN_FAILED:
        return CR_KEYSTORE_UNAVAILABLE;
    case CR_KEYCACHE_HASH_FAILED:
        return CR_KEYSTORE_HASH_FAILED;
    default:
        return CR_KEYSTORE_READ_FAILED;
    }
}

static apr_status_t dbm_open_reader(apr_pool_t *p, const dbm_backend_t *b,
                                    cr_store_t **store, const char **err)
{
    char errbuf[512] = "";
    apr_status_t rv = cr_store_open(p, b->spec, 0, store, errbuf,
                                    sizeof(errbuf));

    if (rv != APR_SUCCESS) {
        *err = apr_pstrdup(p, errbuf[0] ? errbuf : "cannot open the store");
    }
    return rv;
}

static apr_status_t dbm_get(cr_keystore_t *ks, void *req, apr_pool_t *p,
                            const char *id, cr_key_record_t **rec,
                            const char **err)
{
    cr_store_t *store;
    apr_status_t rv;

    (void)req;
    if ((rv = dbm_open_reader(p, ks->backend, &store, err)) != APR_SUCCESS) {
        return rv;
    }
    rv = cr_store_fetch_by_id(store, p, id, rec, NULL);
    if (rv == APR_NOTFOUND) {
        *err = cr_keystore_not_found_message(p, id);
    }
    else if (rv != APR_SUCCESS) {
        *err = apr_pstrdup(p, cr_store_last_error(store));
    }
    cr_store_close(store);
    return rv;
}

static apr_status_t dbm_list(cr_keystore_t *ks, void *req, apr_pool_t *p,
                             apr_array_header_t **records, const char **err)
{
    cr_store_t *store;
    apr_status_t rv;

    (void)req;
    if ((rv = dbm_open_reader(p, ks->backend, &store, err)) != APR_SUCCESS) {
        return rv;
    }
    rv = cr_store_list(store, p, records);
    if (rv != APR_SUCCESS) {
        *err = apr_pstrdup(p, cr_store_last_error(store));
    }
    cr_store_close(store);
    return rv;
}

static apr_status_t dbm_create(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const cr_key_record_t *tmpl, const char **key,
                               cr_key_record_t **rec, const char **err)
{
    dbm_backend_t *b = ks->backend;

    (void)req;
    return cr_store_create_key(p, b->spec, tmpl, key, rec, err);
}

static apr_status_t dbm_update(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const char *id,
                               const cr_key_record_t *changes,
                               cr_key_record_t **rec, const char **err)
{
    dbm_backend_t *b = ks->backend;

    (void)req;
    return cr_store_update_key(p, b->spec, id, changes, rec, err);
}

static apr_status_t dbm_revoke(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const char *id, cr_key_record_t **rec,
                               const char **err)
{
    dbm_backend_t *b = ks->backend;

    (void)req;
    return cr_store_revoke_key(p, b->spec, id, rec, err);
}

static const cr_keystore_ops_t dbm_ops = {
    "dbm", dbm_lookup, dbm_get, dbm_list, dbm_create, dbm_update, dbm_revoke
};

apr_status_t cr_keystore_dbm_create(apr_pool_t *p, const char *spec,
                                    int entries, apr_interval_time_t settle,
                                    int threads, cr_keystore_t **ks)
{
    dbm_backend_t *b = apr_pcalloc(p, sizeof(*b));
    cr_keystore_t *k = apr_pcalloc(p, sizeof(*k));
    apr_status_t rv;

    b->spec = apr_pstrdup(p, spec);
    rv = cr_keycache_create(p, spec, entries, settle, threads,
                            &b->cache);
    if (rv != APR_SUCCESS) {
        /* A cache of no records cannot fail to be made. */
        (void)cr_keycache_create(p, spec, 0, 0, 1, &b->cache);
    }
    k->ops = &dbm_ops;
    k->name = b->spec;
    k->backend = b;
    *ks = k;
    return rv;
}

cr_keystore_result_e cr_keystore_lookup(cr_keystore_t *ks, void *req,
                                        apr_pool_t *p, const char *key,
                                        cr_key_record_t **rec, int *hit,
                                        apr_status_t *rv, char *errbuf,
                                        apr_size_t errlen)
{
    *hit = 0;
    *rv = APR_SUCCESS;
    return ks->ops->lookup(ks, req, p, key, rec, hit, rv, errbuf, errlen);
}

apr_status_t cr_keystore_get(cr_keystore_t *ks, void *req, apr_pool_t *p,
                             const char *id, cr_key_record_t **rec,
                             const char **err)
{
    *err = NULL;
    return ks->ops->get(ks, req, p, id, rec, err);
}

apr_status_t cr_keystore_list(cr_keystore_t *ks, void *req, apr_pool_t *p,
                              apr_array_header_t **records, const char **err)
{
    *err = NULL;
    return ks->ops->list(ks, req, p, records, err);
}

apr_status_t cr_keystore_create(cr_keystore_t *ks, void *req, apr_pool_t *p,
                                const cr_key_record_t *tmpl,
                                const char **key, cr_key_record_t **rec,
                                const char **err)
{
    *err = NULL;
    return ks->ops->create(ks, req, p, tmpl, key, rec, err);
}

apr_status_t cr_keystore_update(cr_keystore_t *ks, void *req, apr_pool_t *p,
                                const char *id,
                                const cr_key_record_t *changes,
                                cr_key_record_t **rec, const char **err)
{
    *err = NULL;
    return ks->ops->update(ks, req, p, id, changes, rec, err);
}

apr_status_t cr_keystore_revoke(cr_keystore_t *ks, void *req, apr_pool_t *p,
                                const char *id, cr_key_record_t **rec,
                                const char **err)
{
    *err = NULL;
    return ks->ops->revoke(ks, req, p, id, rec, err);
}

const char *cr_keystore_not_found_message(apr_pool_t *p, const char *id)
{
    return cr_key_id_wellformed(id)
           ? apr_psprintf(p, "no key with id %s", id)
           : "no key with that id (ids look like key_ and 16 letters or "
             "digits)";
}

void cr_keystore_apply_changes(cr_key_record_t *r,
                               const cr_key_record_t *changes)
{
    if (changes->name != NULL) {
        r->name = changes->name;
    }
    if (changes->models != NULL) {
        r->models = changes->models;
    }
    if (changes->rpm != CR_STORE_RPM_KEEP) {
        r->rpm = changes->rpm;
    }
    if (changes->tpm != CR_STORE_RPM_KEEP) {
        r->tpm = changes->tpm;
    }
    if (changes->quota != CR_STORE_RPM_KEEP) {
        r->quota = changes->quota;
    }
    if ((int)changes->quota_period != CR_STORE_PERIOD_KEEP) {
        r->quota_period = changes->quota_period;
    }
    if (changes->expires_at != CR_STORE_EXPIRES_KEEP) {
        r->expires_at = changes->expires_at;
    }
}

cr_key_record_t *cr_keystore_new_record(apr_pool_t *p,
                                        const cr_key_record_t *tmpl,
                                        const char *id, const char *key)
{
    cr_key_record_t *r = apr_pcalloc(p, sizeof(*r));

    r->id = id;
    r->name = tmpl->name ? tmpl->name : "";
    r->models = tmpl->models;
    r->rpm = tmpl->rpm;
    r->tpm = tmpl->tpm;
    r->quota = tmpl->quota;
    r->quota_period = tmpl->quota_period;
    r->created_at = apr_time_from_sec(apr_time_sec(apr_time_now()));
    r->expires_at = tmpl->expires_at;
    r->status = CR_KEY_ACTIVE;
    r->hint = cr_cred_mask(p, key);
    return r;
}
