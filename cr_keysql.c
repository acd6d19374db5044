/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keysql.c: the SQL key store through apr_dbd (see cr_keysql.h).
 * Prepared statements with bound parameters only.
 */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "cr_keysql.h"
#include "cr_store.h"

static const char *const stmt_sql[CR_KEYSQL_NSTMTS] = {
    "SELECT record FROM " CR_KEYSQL_TABLE " WHERE key_hash = %s",
    "SELECT key_hash, record FROM " CR_KEYSQL_TABLE " WHERE id = %s",
    "SELECT key_hash, record FROM " CR_KEYSQL_TABLE,
    "INSERT INTO " CR_KEYSQL_TABLE " (key_hash, id, record) "
        "VALUES (%s, %s, %s)",
    "UPDATE " CR_KEYSQL_TABLE " SET record = %s WHERE id = %s"
};

static const char *const stmt_label[CR_KEYSQL_NSTMTS] = {
    "clawdrouter_key_by_hash",
    "clawdrouter_key_by_id",
    "clawdrouter_key_list",
    "clawdrouter_key_insert",
    "clawdrouter_key_update"
};

const char *cr_keysql_sql(cr_keysql_stmt_e which)
{
    return stmt_sql[which];
}

const char *cr_keysql_label(cr_keysql_stmt_e which)
{
    return stmt_label[which];
}

const char *cr_keysql_create_table_sql(void)
{
    return "CREATE TABLE IF NOT EXISTS " CR_KEYSQL_TABLE " ("
           "key_hash VARCHAR(64) PRIMARY KEY, "
           "id VARCHAR(64) NOT NULL UNIQUE, "
           "record TEXT NOT NULL)";
}

/* s up to its first line break, trailing spaces dropped. */
static const char *one_line(apr_pool_t *p, const char *s)
{
    char *line = apr_pstrdup(p, s), *end;

    if ((end = strpbrk(line, "\r\n")) != NULL) {
        *end = '\0';
    }
    end = line + strlen(line);
    while (end > line && end[-1] == ' ') {
        *--end = '\0';
    }
    return line;
}

/* The driver's message on one line ("ERROR:  " and the SQL excerpt that
 * PostgreSQL appends dropped), with a hint when the table is missing. */
static const char *db_error(cr_keysql_conn_t *c, apr_pool_t *p, int rc)
{
    const char *e = apr_dbd_error(c->driver, c->handle, rc);
    char *line;

    if (e == NULL || *e == '\0') {
        e = "(no message)";
    }
    if (strncmp(e, "ERROR:", 6) == 0) {
        e += 6;
        while (*e == ' ') {
            e++;
        }
    }
    line = (char *)one_line(p, e);
    if (strstr(line, CR_KEYSQL_TABLE) != NULL
        && (strstr(line, "does not exist") || strstr(line, "no such table")
            || strstr(line, "doesn't exist"))) {
        return apr_psprintf(p, "database error: %s (create the table: "
                            "clawdrouter-keys init)", line);
    }
    return apr_psprintf(p, "database error: %s", line);
}

/* Run a select; every row's columns (ncols) into an array of const char *
 * arrays.  Reads the whole result, so the connection is free afterwards. */
static int select_rows(cr_keysql_conn_t *c, apr_pool_t *p,
                       cr_keysql_stmt_e which, int nargs, const char **args,
                       int ncols, apr_array_header_t **rows)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rc, i;

    if (c->stmt[which] == NULL) {
        return -1;
    }
    rc = apr_dbd_pselect(c->driver, p, c->handle, &res, c->stmt[which], 1,
                         nargs, args);
    if (rc != 0) {
        return rc;
    }
    *rows = apr_array_make(p, 4, sizeof(const char **));
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        const char **cols = apr_pcalloc(p, sizeof(*cols) * ncols);
        for (i = 0; i < ncols; i++) {
            const char *v = apr_dbd_get_entry(c->driver, row, i);
            cols[i] = v ? apr_pstrdup(p, v) : NULL;
        }
        APR_ARRAY_PUSH(*rows, const char **) = cols;
    }
    return 0;
}

static int run_query(cr_keysql_conn_t *c, apr_pool_t *p,
                     cr_keysql_stmt_e which, int nargs, const char **args,
                     int *nrows)
{
    if (c->stmt[which] == NULL) {
        return -1;
    }
    return apr_dbd_pquery(c->driver, p, c->handle, nrows, c->stmt[which],
                          nargs, args);
}

static cr_key_record_t *parse_record(apr_pool_t *p, const char *text,
                                     const char **err)
{
    const char *perr = NULL;
    cr_key_record_t *rec;

    if (text == NULL) {
        *err = "a record of the key table is empty";
        return NULL;
    }
    rec = cr_key_record_parse(p, text, strlen(text), &perr);
    if (rec == NULL) {
        *err = apr_psprintf(p, "a record of the key table is unusable: %s",
                            perr ? perr : "bad JSON");
    }
    return rec;
}

cr_keystore_result_e cr_keysql_lookup(cr_keysql_conn_t *c, apr_pool_t *p,
                                      const char *hash,
                                      cr_key_record_t **rec, char *errbuf,
                                      apr_size_t errlen)
{
    apr_array_header_t *rows;
    const char *err = NULL;
    const char *args[1];
    int rc;

    args[0] = hash;
    rc = select_rows(c, p, CR_KEYSQL_BY_HASH, 1, args, 1, &rows);
    if (rc != 0) {
        apr_cpystrn(errbuf, c->stmt[CR_KEYSQL_BY_HASH] == NULL
                            ? "statement not prepared"
                            : db_error(c, p, rc), errlen);
        return CR_KEYSTORE_UNAVAILABLE;
    }
    if (rows->nelts == 0) {
        return CR_KEYSTORE_NOT_FOUND;
    }
    *rec = parse_record(p, APR_ARRAY_IDX(rows, 0, const char **)[0], &err);
    if (*rec == NULL) {
        apr_cpystrn(errbuf, err, errlen);
        return CR_KEYSTORE_READ_FAILED;
    }
    return CR_KEYSTORE_FOUND;
}

apr_status_t cr_keysql_get(cr_keysql_conn_t *c, apr_pool_t *p,
                           const char *id, cr_key_record_t **rec,
                           const char **hash, const char **err)
{
    apr_array_header_t *rows;
    const char **cols;
    const char *args[1];
    int rc;

    args[0] = id;
    rc = select_rows(c, p, CR_KEYSQL_BY_ID, 1, args, 2, &rows);
    if (rc != 0) {
        *err = db_error(c, p, rc);
        return APR_EGENERAL;
    }
    if (rows->nelts == 0) {
        *err = cr_keystore_not_found_message(p, id);
        return APR_NOTFOUND;
    }
    cols = APR_ARRAY_IDX(rows, 0, const char **);
    if ((*rec = parse_record(p, cols[1], err)) == NULL) {
        return APR_EGENERAL;
    }
    if (hash) {
        *hash = cols[0];
    }
    return APR_SUCCESS;
}

typedef struct {
    cr_key_record_t *rec;
    const char *hash;
} rec_hash_t;

static int compare_records(const void *a, const void *b)
{
    const cr_key_record_t *ra = ((const rec_hash_t *)a)->rec;
    const cr_key_record_t *rb = ((const rec_hash_t *)b)->rec;

    if (ra->created_at != rb->created_at) {
        return ra->created_at < rb->created_at ? -1 : 1;
    }
    return strcmp(ra->id, rb->id);
}

apr_status_t cr_keysql_list(cr_keysql_conn_t *c, apr_pool_t *p,
                            apr_array_header_t **records,
                            apr_array_header_t **hashes, const char **err)
{
    apr_array_header_t *rows, *recs;
    rec_hash_t *pairs;
    int rc, i;

    rc = select_rows(c, p, CR_KEYSQL_LIST, 0, NULL, 2, &rows);
    if (rc != 0) {
        *err = db_error(c, p, rc);
        return APR_EGENERAL;
    }
    pairs = apr_pcalloc(p, sizeof(*pairs) * (rows->nelts + 1));
    for (i = 0; i < rows->nelts; i++) {
        const char **cols = APR_ARRAY_IDX(rows, i, const char **);
        if ((pairs[i].rec = parse_record(p, cols[1], err)) == NULL) {
            return APR_EGENERAL;
        }
        pairs[i].hash = cols[0];
    }
    qsort(pairs, rows->nelts, sizeof(*pairs), compare_records);
    recs = apr_array_make(p, rows->nelts + 1, sizeof(cr_key_record_t *));
    if (hashes) {
        *hashes = apr_array_make(p, rows->nelts + 1, sizeof(const char *));
    }
    for (i = 0; i < rows->nelts; i++) {
        APR_ARRAY_PUSH(recs, cr_key_record_t *) = pairs[i].rec;
        if (hashes) {
            APR_ARRAY_PUSH(*hashes, const char *) = pairs[i].hash;
        }
    }
    *records = recs;
    return APR_SUCCESS;
}

apr_status_t cr_keysql_put_new(cr_keysql_conn_t *c, apr_pool_t *p,
                               const char *hash, const cr_key_record_t *rec,
                               const char **err)
{
    const char *args[3];
    int rc, nrows = 0;

    args[0] = hash;
    args[1] = rec->id;
    args[2] = cr_key_record_to_json(p, rec, 0);
    if (args[2] == NULL) {
        *err = "cannot encode the record";
        return APR_EGENERAL;
    }
    rc = run_query(c, p, CR_KEYSQL_INSERT, 3, args, &nrows);
    if (rc != 0) {
        *err = db_error(c, p, rc);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t cr_keysql_create(cr_keysql_conn_t *c, apr_pool_t *p,
                              const cr_key_record_t *tmpl, const char **key,
                              cr_key_record_t **rec, const char **err)
{
    const char *k, *hash, *id = NULL;
    cr_key_record_t *existing;
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
    /* Ids are random; make sure this one is new (the UNIQUE constraint
     * refuses the insert of a duplicate anyway). */
    for (tries = 0; tries < 10; tries++) {
        if ((rv = cr_key_new_id(p, &id)) != APR_SUCCESS) {
            *err = "cannot make a key id";
            return rv;
        }
        rv = cr_keysql_get(c, p, id, &existing, NULL, err);
        if (rv == APR_NOTFOUND) {
            break;
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (rv != APR_NOTFOUND) {
        *err = "cannot find a new key id";
        return APR_EEXIST;
    }
    *err = NULL;
    *rec = cr_keystore_new_record(p, tmpl, id, k);
    if ((rv = cr_keysql_put_new(c, p, hash, *rec, err)) != APR_SUCCESS) {
        return rv;
    }
    *key = k;
    return APR_SUCCESS;
}

static apr_status_t put_changed(cr_keysql_conn_t *c, apr_pool_t *p,
                                const cr_key_record_t *rec, const char **err)
{
    const char *args[2];
    int rc, nrows = 0;

    args[0] = cr_key_record_to_json(p, rec, 0);
    args[1] = rec->id;
    if (args[0] == NULL) {
        *err = "cannot encode the record";
        return APR_EGENERAL;
    }
    rc = run_query(c, p, CR_KEYSQL_UPDATE, 2, args, &nrows);
    if (rc != 0) {
        *err = db_error(c, p, rc);
        return APR_EGENERAL;
    }
    if (nrows == 0) {
        *err = cr_keystore_not_found_message(p, rec->id);
        return APR_NOTFOUND;
    }
    return APR_SUCCESS;
}

apr_status_t cr_keysql_update(cr_keysql_conn_t *c, apr_pool_t *p,
                              const char *id, const cr_key_record_t *changes,
                              cr_key_record_t **rec, const char **err)
{
    cr_key_record_t *r;
    apr_status_t rv;

    if (changes->models != NULL && changes->models->nelts == 0) {
        *err = "a key needs at least one model glob";
        return APR_EINVAL;
    }
    if ((rv = cr_keysql_get(c, p, id, &r, NULL, err)) != APR_SUCCESS) {
        return rv;
    }
    cr_keystore_apply_changes(r, changes);
    if ((rv = put_changed(c, p, r, err)) == APR_SUCCESS) {
        *rec = r;
    }
    return rv;
}

apr_status_t cr_keysql_revoke(cr_keysql_conn_t *c, apr_pool_t *p,
                              const char *id, cr_key_record_t **rec,
                              const char **err)
{
    cr_key_record_t *r;
    apr_status_t rv;

    if ((rv = cr_keysql_get(c, p, id, &r, NULL, err)) != APR_SUCCESS) {
        return rv;
    }
    if (r->status != CR_KEY_REVOKED) {
        r->status = CR_KEY_REVOKED;
        if ((rv = put_changed(c, p, r, err)) != APR_SUCCESS) {
            return rv;
        }
    }
    *rec = r;
    return APR_SUCCESS;
}

/* The CLI's SQL store: one connection. */

static cr_keystore_result_e sql_lookup(cr_keystore_t *ks, void *req,
                                       apr_pool_t *p, const char *key,
                                       cr_key_record_t **rec, int *hit,
                                       apr_status_t *rv, char *errbuf,
                                       apr_size_t errlen)
{
    const char *hash = cr_key_hash(p, key);

    (void)req;
    *hit = 0;
    *rv = APR_SUCCESS;
    if (hash == NULL) {
        *rv = APR_EGENERAL;
        return CR_KEYSTORE_HASH_FAILED;
    }
    return cr_keysql_lookup(ks->backend, p, hash, rec, errbuf, errlen);
}

static apr_status_t sql_get(cr_keystore_t *ks, void *req, apr_pool_t *p,
                            const char *id, cr_key_record_t **rec,
                            const char **err)
{
    (void)req;
    return cr_keysql_get(ks->backend, p, id, rec, NULL, err);
}

static apr_status_t sql_list(cr_keystore_t *ks, void *req, apr_pool_t *p,
                             apr_array_header_t **records, const char **err)
{
    (void)req;
    return cr_keysql_list(ks->backend, p, records, NULL, err);
}

static apr_status_t sql_create(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const cr_key_record_t *tmpl, const char **key,
                               cr_key_record_t **rec, const char **err)
{
    (void)req;
    return cr_keysql_create(ks->backend, p, tmpl, key, rec, err);
}

static apr_status_t sql_update(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const char *id,
                               const cr_key_record_t *changes,
                               cr_key_record_t **rec, const char **err)
{
    (void)req;
    return cr_keysql_update(ks->backend, p, id, changes, rec, err);
}

static apr_status_t sql_revoke(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const char *id, cr_key_record_t **rec,
                               const char **err)
{
    (void)req;
    return cr_keysql_revoke(ks->backend, p, id, rec, err);
}

static const cr_keystore_ops_t sql_ops = {
    "sql", sql_lookup, sql_get, sql_list, sql_create, sql_update, sql_revoke
};

static const char *const sql_drivers[] = { "pgsql", "sqlite3", "mysql", NULL };

int cr_keysql_is_spec(const char *spec)
{
    int i;

    for (i = 0; sql_drivers[i]; i++) {
        apr_size_t n = strlen(sql_drivers[i]);
        if (strncasecmp(spec, sql_drivers[i], n) == 0 && spec[n] == ':') {
            return 1;
        }
    }
    return 0;
}

static apr_status_t close_conn(void *data)
{
    cr_keysql_conn_t *c = data;

    if (c->handle) {
        apr_dbd_close(c->driver, c->handle);
        c->handle = NULL;
    }
    return APR_SUCCESS;
}

/* One sqlite3 PRAGMA, its answer (one row) read and dropped.  Two are
 * used:
 * - journal_mode=WAL (kept in the file), so that httpd's readers
 *   (ClawdRouterKeyStore dbd, DBDriver sqlite3) never wait for, nor fail
 *   on, a writer such as this CLI: in the default journal mode, mod_dbd
 *   preparing its statements while a key is written gets "database is
 *   locked";
 * - busy_timeout, so that this CLI waits up to 5 s for a lock held by
 *   another connection (a gateway child opening the file, a checkpoint)
 *   instead of failing at once: apr_dbd's sqlite3 driver retries busy
 *   steps but not the preparing of a statement, and sets no timeout. */
static apr_status_t sqlite_pragma(cr_keysql_conn_t *c, apr_pool_t *p,
                                  const char *pragma, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rc;

    rc = apr_dbd_select(c->driver, p, c->handle, &res, pragma, 0);
    if (rc != 0) {
        *err = db_error(c, p, rc);
        return APR_EGENERAL;
    }
    while (apr_dbd_get_row(c->driver, p, res, &row, -1) == 0) {
        /* the setting now in force */
    }
    return APR_SUCCESS;
}

apr_status_t cr_keystore_sql_open(apr_pool_t *p, const char *spec,
                                  int create_table, cr_keystore_t **ks,
                                  const char **err)
{
    const char *colon = strchr(spec, ':');
    const char *drv, *params, *dberr = NULL;
    cr_keysql_conn_t *c = apr_pcalloc(p, sizeof(*c));
    cr_keystore_t *k;
    apr_status_t rv;
    int i, rc, nrows;

    if (!cr_keysql_is_spec(spec) || colon == NULL) {
        *err = "not an SQL key store (pgsql:, sqlite3: or mysql:)";
        return APR_EINVAL;
    }
    drv = apr_pstrmemdup(p, spec, colon - spec);
    for (i = 0; drv[i]; i++) {
        ((char *)drv)[i] = apr_tolower(drv[i]);
    }
    params = colon + 1;
    if ((rv = apr_dbd_init(p)) != APR_SUCCESS) {
        *err = "cannot initialise apr_dbd";
        return rv;
    }
    rv = apr_dbd_get_driver(p, drv, &c->driver);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(p, "the apr_dbd driver %s is not available "
                            "(install apr-util's %s driver)", drv, drv);
        return rv;
    }
    rv = apr_dbd_open_ex(c->driver, p, params, &c->handle, &dberr);
    if (rv != APR_SUCCESS || c->handle == NULL) {
        /* The message of the driver, never the parameters (a password). */
        *err = apr_psprintf(p, "cannot connect to the %s key store: %s", drv,
                            dberr ? one_line(p, dberr)
                                  : "connection refused");
        return rv != APR_SUCCESS ? rv : APR_EGENERAL;
    }
    apr_pool_cleanup_register(p, c, close_conn, apr_pool_cleanup_null);
    if (strcmp(drv, "sqlite3") == 0
        && (rv = sqlite_pragma(c, p, "PRAGMA busy_timeout = 5000",
                               err)) != APR_SUCCESS) {
        return rv;
    }
    if (create_table) {
        rc = apr_dbd_query(c->driver, c->handle, &nrows,
                           cr_keysql_create_table_sql());
        if (rc != 0) {
            *err = db_error(c, p, rc);
            return APR_EGENERAL;
        }
        if (strcmp(drv, "sqlite3") == 0
            && (rv = sqlite_pragma(c, p, "PRAGMA journal_mode=WAL",
                                   err)) != APR_SUCCESS) {
            return rv;
        }
    }
    for (i = 0; i < CR_KEYSQL_NSTMTS; i++) {
        rc = apr_dbd_prepare(c->driver, p, c->handle, stmt_sql[i], NULL,
                             &c->stmt[i]);
        if (rc != 0) {
            *err = db_error(c, p, rc);
            return APR_EGENERAL;
        }
    }
    k = apr_pcalloc(p, sizeof(*k));
    k->ops = &sql_ops;
    k->name = strcmp(drv, "sqlite3") == 0 ? apr_pstrdup(p, spec) : drv;
    k->backend = c;
    *ks = k;
    return APR_SUCCESS;
}

cr_keysql_conn_t *cr_keystore_sql_conn(cr_keystore_t *ks)
{
    return ks->ops == &sql_ops ? ks->backend : NULL;
}
