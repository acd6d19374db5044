/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_store.c: the DBM key store (see cr_store.h).
 *
 * Readers open the DBM read only for each lookup, like mod_authn_dbm, so
 * every change is seen at once; writers open it for one change and close
 * it straight away.  sdbm locks the file for each operation (shared for a
 * fetch, exclusive for a store), so a reader never sees half a record.
 */

#include <string.h>
#include <stdlib.h>

#include <apr_strings.h>
#include <apr_file_info.h>
#include <apr_dbm.h>

#include "cr_store.h"
#include "cr_keystore.h"
#include "cr_cred.h"

/* apr-util's sdbm refuses a key and value larger together than this
 * (PAIRMAX in sdbm_private.h); we refuse it first with a clear reason. */
#define CR_STORE_SDBM_PAIRMAX 1008

#define HASH_PREFIX "h:"
#define ID_PREFIX   "i:"

struct cr_store_t {
    apr_pool_t *pool;
    apr_dbm_t *dbm;
    const char *spec;
    const char *type;
    const char *path;
    int writable;
    apr_size_t max_pair;     /* 0 = no limit known */
    const char *error;       /* last one-line reason, or NULL */
};

static const char *const known_types[] = {
    "default", "sdbm", "gdbm", "db", "ndbm", NULL
};

apr_status_t cr_store_parse_spec(apr_pool_t *p, const char *spec,
                                 const char **type, const char **path)
{
    const char *colon;
    int i;

    if (spec == NULL || *spec == '\0') {
        return APR_EINVAL;
    }
    colon = strchr(spec, ':');
    /* A bare path (no colon, or one that starts with '/' or '.') means
     * the default DBM type. */
    if (colon == NULL || *spec == '/' || *spec == '.') {
        *type = "default";
        *path = spec;
        return APR_SUCCESS;
    }
    if (colon == spec || colon[1] == '\0') {
        return APR_EINVAL;
    }
    *type = apr_pstrmemdup(p, spec, colon - spec);
    *path = colon + 1;
    for (i = 0; known_types[i] != NULL; i++) {
        if (strcasecmp(*type, known_types[i]) == 0) {
            *type = known_types[i];
            return APR_SUCCESS;
        }
    }
    return APR_ENOTIMPL;
}

static const char *errstr(apr_pool_t *p, apr_status_t rv)
{
    char buf[256];
    return apr_pstrdup(p, apr_strerror(rv, buf, sizeof(buf)));
}

const char *cr_store_last_error(const cr_store_t *store)
{
    return (store && store->error) ? store->error : "unknown error";
}

/* Open; must_exist: fail plainly if the store's files are absent. */
static apr_status_t open_store(apr_pool_t *p, const char *spec, int writable,
                               int must_exist, cr_store_t **store,
                               char *errbuf, apr_size_t errlen)
{
    const char *type = NULL, *path = NULL, *used1 = NULL, *used2 = NULL;
    apr_finfo_t finfo;
    apr_dbm_t *dbm;
    apr_status_t rv;
    cr_store_t *s;

    rv = cr_store_parse_spec(p, spec, &type, &path);
    if (rv == APR_ENOTIMPL) {
        apr_snprintf(errbuf, errlen, "unknown DBM type \"%s\" in key store "
                     "\"%s\" (use sdbm, gdbm, db, ndbm or default)",
                     type, spec);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        apr_snprintf(errbuf, errlen, "invalid key store \"%s\" (expected "
                     "TYPE:PATH, e.g. sdbm:/var/lib/clawdrouter/keys)",
                     spec ? spec : "");
        return rv;
    }

    rv = apr_dbm_get_usednames_ex(p, type, path, &used1, &used2);
    if (rv != APR_SUCCESS) {
        apr_snprintf(errbuf, errlen, "DBM type \"%s\" is not available in "
                     "this apr-util (%s)", type, errstr(p, rv));
        return rv;
    }
    if (must_exist) {
        /* Say plainly that the store is missing, rather than whatever
         * the DBM library makes of an absent file. */
        rv = apr_stat(&finfo, used1, APR_FINFO_TYPE, p);
        if (APR_STATUS_IS_ENOENT(rv) || APR_STATUS_IS_ENOTDIR(rv)) {
            apr_snprintf(errbuf, errlen, "key store %s does not exist "
                         "(create a key to make it)", spec);
            return rv;
        }
    }

    rv = apr_dbm_open_ex(&dbm, type, path,
                         writable ? APR_DBM_RWCREATE : APR_DBM_READONLY,
                         APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        if (rv == APR_ENOTIMPL || APR_STATUS_IS_EDSOOPEN(rv)) {
            apr_snprintf(errbuf, errlen, "DBM type \"%s\" is not available "
                         "in this apr-util", type);
        }
        else {
            apr_snprintf(errbuf, errlen, "cannot open key store %s for %s: %s",
                         spec, writable ? "writing" : "reading",
                         errstr(p, rv));
        }
        return rv;
    }

    s = apr_pcalloc(p, sizeof(*s));
    s->pool = p;
    s->dbm = dbm;
    s->spec = apr_pstrdup(p, spec);
    s->type = type;
    s->path = path;
    s->writable = writable;
    /* sdbm, or a "default" that is sdbm-like (two files, .dir and .pag):
     * records must fit one sdbm page. */
    if (strcmp(type, "sdbm") == 0
        || (strcmp(type, "default") == 0 && used2 != NULL)) {
        s->max_pair = CR_STORE_SDBM_PAIRMAX;
    }
    *store = s;
    return APR_SUCCESS;
}

apr_status_t cr_store_open(apr_pool_t *p, const char *spec, int writable,
                           cr_store_t **store, char *errbuf,
                           apr_size_t errlen)
{
    return open_store(p, spec, writable, !writable, store, errbuf, errlen);
}

void cr_store_close(cr_store_t *store)
{
    if (store && store->dbm) {
        apr_dbm_close(store->dbm);
        store->dbm = NULL;
    }
}

/* Fetch a key's value as a NUL-terminated copy from p. */
static apr_status_t fetch(cr_store_t *store, apr_pool_t *p, const char *key,
                          const char **value, apr_size_t *len)
{
    apr_datum_t k, v;
    apr_status_t rv;

    k.dptr = (char *)key;
    k.dsize = strlen(key);
    v.dptr = NULL;
    v.dsize = 0;
    rv = apr_dbm_fetch(store->dbm, k, &v);
    if (rv != APR_SUCCESS) {
        store->error = apr_psprintf(store->pool, "cannot read key store "
                                    "%s: %s", store->spec, errstr(p, rv));
        return rv;
    }
    if (v.dptr == NULL) {
        return APR_NOTFOUND;
    }
    *value = apr_pstrmemdup(p, v.dptr, v.dsize);
    *len = v.dsize;
    return APR_SUCCESS;
}

apr_status_t cr_store_fetch_by_hash(cr_store_t *store, apr_pool_t *p,
                                    const char *hash, cr_key_record_t **rec)
{
    const char *json, *err;
    apr_size_t len;
    apr_status_t rv;

    rv = fetch(store, p, apr_pstrcat(p, HASH_PREFIX, hash, NULL), &json,
               &len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *rec = cr_key_record_parse(p, json, len, &err);
    if (*rec == NULL) {
        store->error = apr_psprintf(store->pool, "corrupt record in key "
                                    "store %s: %s", store->spec, err);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t cr_store_fetch_by_id(cr_store_t *store, apr_pool_t *p,
                                  const char *id, cr_key_record_t **rec,
                                  const char **hash)
{
    const char *h;
    apr_size_t len;
    apr_status_t rv;

    if (!cr_key_id_wellformed(id)) {
        return APR_NOTFOUND;
    }
    rv = fetch(store, p, apr_pstrcat(p, ID_PREFIX, id, NULL), &h, &len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (len != CR_KEY_HASH_HEX_LEN) {
        store->error = apr_psprintf(store->pool, "corrupt index entry for "
                                    "%s in key store %s", id, store->spec);
        return APR_EGENERAL;
    }
    rv = cr_store_fetch_by_hash(store, p, h, rec);
    if (rv == APR_NOTFOUND) {
        store->error = apr_psprintf(store->pool, "index entry for %s in key "
                                    "store %s points to no record", id,
                                    store->spec);
        return APR_EGENERAL;
    }
    if (rv == APR_SUCCESS && strcmp((*rec)->id, id) != 0) {
        store->error = apr_psprintf(store->pool, "corrupt record for %s in "
                                    "key store %s: its id is %s", id,
                                    store->spec, (*rec)->id);
        return APR_EGENERAL;
    }
    if (rv == APR_SUCCESS && hash) {
        *hash = h;
    }
    return rv;
}

static apr_status_t store_pair(cr_store_t *store, const char *key,
                               const char *value)
{
    apr_datum_t k, v;
    apr_status_t rv;

    k.dptr = (char *)key;
    k.dsize = strlen(key);
    v.dptr = (char *)value;
    v.dsize = strlen(value);
    rv = apr_dbm_store(store->dbm, k, v);
    if (rv != APR_SUCCESS) {
        store->error = apr_psprintf(store->pool, "cannot write key store "
                                    "%s: %s", store->spec,
                                    errstr(store->pool, rv));
    }
    return rv;
}

apr_status_t cr_store_put(cr_store_t *store, const char *hash,
                          const cr_key_record_t *rec)
{
    apr_pool_t *p = store->pool;
    const char *json, *hkey;
    apr_status_t rv;

    if (!store->writable) {
        store->error = "key store is open read only";
        return APR_EACCES;
    }
    json = cr_key_record_to_json(p, rec, 0);
    if (json == NULL) {
        store->error = "cannot encode the record (is the name valid UTF-8?)";
        return APR_EINVAL;
    }
    hkey = apr_pstrcat(p, HASH_PREFIX, hash, NULL);
    if (store->max_pair
        && strlen(hkey) + strlen(json) > store->max_pair) {
        store->error = apr_psprintf(p, "record too large for a %s key store "
                                    "(%" APR_SIZE_T_FMT " bytes, at most %"
                                    APR_SIZE_T_FMT "): use fewer or shorter "
                                    "model globs or a shorter name",
                                    store->type, strlen(json),
                                    store->max_pair - strlen(hkey));
        return APR_EINVAL;
    }
    /* The record first, then its index: a reader by hash (the gateway)
     * never depends on the index. */
    rv = store_pair(store, hkey, json);
    if (rv == APR_SUCCESS) {
        rv = store_pair(store, apr_pstrcat(p, ID_PREFIX, rec->id, NULL),
                        hash);
    }
    return rv;
}

static int compare_records(const void *a, const void *b)
{
    const cr_key_record_t *ra = *(cr_key_record_t *const *)a;
    const cr_key_record_t *rb = *(cr_key_record_t *const *)b;

    if (ra->created_at != rb->created_at) {
        return ra->created_at < rb->created_at ? -1 : 1;
    }
    return strcmp(ra->id, rb->id);
}

apr_status_t cr_store_list(cr_store_t *store, apr_pool_t *p,
                           apr_array_header_t **records)
{
    apr_array_header_t *hashes = apr_array_make(p, 16, sizeof(const char *));
    apr_array_header_t *recs;
    apr_datum_t k;
    apr_status_t rv;
    int i;

    /* Collect the keys first: fetching while walking the DBM would move
     * some drivers' cursor. */
    rv = apr_dbm_firstkey(store->dbm, &k);
    while (rv == APR_SUCCESS && k.dptr != NULL) {
        if (k.dsize == 2 + CR_KEY_HASH_HEX_LEN
            && memcmp(k.dptr, HASH_PREFIX, 2) == 0) {
            APR_ARRAY_PUSH(hashes, const char *) =
                apr_pstrmemdup(p, k.dptr + 2, k.dsize - 2);
        }
        rv = apr_dbm_nextkey(store->dbm, &k);
    }
    if (rv != APR_SUCCESS) {
        store->error = apr_psprintf(store->pool, "cannot read key store %s: "
                                    "%s", store->spec, errstr(p, rv));
        return rv;
    }

    recs = apr_array_make(p, hashes->nelts ? hashes->nelts : 1,
                          sizeof(cr_key_record_t *));
    for (i = 0; i < hashes->nelts; i++) {
        cr_key_record_t *rec;
        rv = cr_store_fetch_by_hash(store, p,
                                    APR_ARRAY_IDX(hashes, i, const char *),
                                    &rec);
        if (rv == APR_NOTFOUND) {
            continue;  /* gone since the walk */
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        APR_ARRAY_PUSH(recs, cr_key_record_t *) = rec;
    }
    qsort(recs->elts, recs->nelts, sizeof(cr_key_record_t *),
          compare_records);
    *records = recs;
    return APR_SUCCESS;
}

/* Open for writing (creating the store only when asked: changing a key
 * in a store that does not exist is an error, not a new empty store); on
 * failure *err gets the reason. */
static apr_status_t open_for_change(apr_pool_t *p, const char *spec,
                                    int create, cr_store_t **store,
                                    const char **err)
{
    char buf[512];
    apr_status_t rv = open_store(p, spec, 1, !create, store, buf,
                                 sizeof(buf));

    if (rv != APR_SUCCESS) {
        *err = apr_pstrdup(p, buf);
    }
    return rv;
}

apr_status_t cr_store_create_key(apr_pool_t *p, const char *spec,
                                 const cr_key_record_t *tmpl,
                                 const char **key, cr_key_record_t **rec,
                                 const char **err)
{
    cr_key_record_t *r, *existing;
    cr_store_t *store;
    const char *k, *id = NULL, *hash, *h;
    apr_status_t rv;
    int tries;

    if (tmpl->models == NULL || tmpl->models->nelts == 0) {
        *err = "a key needs at least one model glob";
        return APR_EINVAL;
    }
    if ((rv = cr_key_generate(p, &k)) != APR_SUCCESS
        || (hash = cr_key_hash(p, k)) == NULL) {
        *err = "cannot generate a key (no random source or SHA-256)";
        return rv != APR_SUCCESS ? rv : APR_EGENERAL;
    }
    if ((rv = open_for_change(p, spec, 1, &store, err)) != APR_SUCCESS) {
        return rv;
    }
    /* Ids are random; make sure this one is new. */
    for (tries = 0; tries < 10; tries++) {
        if ((rv = cr_key_new_id(p, &id)) != APR_SUCCESS) {
            break;
        }
        rv = cr_store_fetch_by_id(store, p, id, &existing, &h);
        if (rv == APR_NOTFOUND) {
            rv = APR_SUCCESS;
            break;
        }
        if (rv == APR_SUCCESS) {
            rv = APR_EEXIST;
        }
    }
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot find a new key id: %s",
                            cr_store_last_error(store));
        cr_store_close(store);
        return rv;
    }

    r = cr_keystore_new_record(p, tmpl, id, k);

    rv = cr_store_put(store, hash, r);
    if (rv != APR_SUCCESS) {
        *err = apr_pstrdup(p, cr_store_last_error(store));
    }
    cr_store_close(store);
    if (rv == APR_SUCCESS) {
        *key = k;
        *rec = r;
    }
    return rv;
}

/* Fetch the record of id from a store open for writing. */
static apr_status_t fetch_for_change(cr_store_t *store, apr_pool_t *p,
                                     const char *id, cr_key_record_t **rec,
                                     const char **hash, const char **err)
{
    apr_status_t rv = cr_store_fetch_by_id(store, p, id, rec, hash);

    if (rv == APR_NOTFOUND) {
        *err = cr_key_id_wellformed(id)
               ? apr_psprintf(p, "no key with id %s", id)
               : "no key with that id (ids look like key_ and 16 letters "
                 "or digits)";
    }
    else if (rv != APR_SUCCESS) {
        *err = apr_pstrdup(p, cr_store_last_error(store));
    }
    return rv;
}

apr_status_t cr_store_revoke_key(apr_pool_t *p, const char *spec,
                                 const char *id, cr_key_record_t **rec,
                                 const char **err)
{
    cr_store_t *store;
    cr_key_record_t *r;
    const char *hash;
    apr_status_t rv;

    if ((rv = open_for_change(p, spec, 0, &store, err)) != APR_SUCCESS) {
        return rv;
    }
    rv = fetch_for_change(store, p, id, &r, &hash, err);
    if (rv == APR_SUCCESS && r->status != CR_KEY_REVOKED) {
        r->status = CR_KEY_REVOKED;
        rv = cr_store_put(store, hash, r);
        if (rv != APR_SUCCESS) {
            *err = apr_pstrdup(p, cr_store_last_error(store));
        }
    }
    cr_store_close(store);
    if (rv == APR_SUCCESS) {
        *rec = r;
    }
    return rv;
}

apr_status_t cr_store_update_key(apr_pool_t *p, const char *spec,
                                 const char *id,
                                 const cr_key_record_t *changes,
                                 cr_key_record_t **rec, const char **err)
{
    cr_store_t *store;
    cr_key_record_t *r;
    const char *hash;
    apr_status_t rv;

    if (changes->models != NULL && changes->models->nelts == 0) {
        *err = "a key needs at least one model glob";
        return APR_EINVAL;
    }
    if ((rv = open_for_change(p, spec, 0, &store, err)) != APR_SUCCESS) {
        return rv;
    }
    rv = fetch_for_change(store, p, id, &r, &hash, err);
    if (rv == APR_SUCCESS) {
        cr_keystore_apply_changes(r, changes);
        rv = cr_store_put(store, hash, r);
        if (rv != APR_SUCCESS) {
            *err = apr_pstrdup(p, cr_store_last_error(store));
        }
    }
    cr_store_close(store);
    if (rv == APR_SUCCESS) {
        *rec = r;
    }
    return rv;
}
