/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_keystore.c: ClawdRouterKeyStore dbd, the key store on
 * mod_dbd's pooled connections (SPEC section 12).
 *
 * As mod_authn_dbd: mod_dbd's optional functions are looked up when the
 * directive is read, the statements (cr_keysql.c's SQL, %s placeholders)
 * are registered then with ap_dbd_prepare, and mod_dbd prepares them on
 * every connection it opens; a request finds them in ap_dbd_t.prepared
 * under their labels.  Every value is a bound parameter: no SQL is ever
 * built from a key, an id or a record.
 *
 * No record cache: every lookup reads the row, so a key made, changed or
 * revoked by any host (the CLI or a console) counts at every host's next
 * request.
 *
 * A connection the database dropped (a restart, pg_terminate_backend, an
 * idle timeout) is only noticed when a statement fails on it.  Then a
 * statement of no parameter tells a dead connection from an SQL error;
 * a dead one is reconnected (apr_dbd_check_conn: PQreset for pgsql), our
 * statements are prepared again on the new session and the operation runs
 * again, so the request is not refused.  The request's connection comes
 * from ap_dbd_acquire; when mod_dbd gives none (it has just thrown a dead
 * one away) a fresh one comes from ap_dbd_open.  No connection twice in a
 * row, or a dead one that cannot be reconnected: the database is down,
 * 500 key_store_unavailable, nothing forwarded, and one error-log line per
 * CR_KEYSTORE_LOG_INTERVAL per child.
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "apr_dbd.h"
#include "apr_optional.h"
#include "apr_strings.h"

#include "mod_dbd.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_config.h"
#include "mod_clawdrouter_keystore.h"
#include "cr_time.h"
#include "cr_keysql.h"
#include "cr_log.h"

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(clawdrouter);
#endif

/* How many times one operation may ask mod_dbd for a connection. */
#define DBD_MAX_ATTEMPTS 8
/* sqlite3: mod_dbd opens a connection and prepares its statements without
 * a busy timeout, so a writer (clawdrouter-keys) holding the file for a
 * moment makes the open fail; try again after a pause, this many times. */
#define DBD_SQLITE_OPENS 6
#define DBD_SQLITE_PAUSE apr_time_from_msec(50)

/* mod_dbd's "no DBDriver" name (mod_dbd.c's no_dbdriver). */
#define DBD_NO_DRIVER "[DBDriver unset]"

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare_fn = NULL;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire_fn = NULL;
static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open_fn = NULL;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close_fn = NULL;

/* mod_dbd (found at post_config). */
static module *dbd_module_ptr = NULL;

/* apr_time_sec() of this child's last "unavailable" line (0: none). */
static apr_uint32_t last_unavailable_log = 0;

static int find_dbd_functions(void)
{
    if (dbd_prepare_fn == NULL) {
        dbd_prepare_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
        dbd_acquire_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
        dbd_open_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
        dbd_close_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    }
    return dbd_prepare_fn != NULL && dbd_acquire_fn != NULL
           && dbd_open_fn != NULL && dbd_close_fn != NULL;
}

const char *cr_keystore_dbd_configure(cmd_parms *cmd)
{
    int i;

    if (!find_dbd_functions()) {
        return apr_psprintf(cmd->pool, "%s dbd needs mod_dbd: load it "
                            "(LoadModule dbd_module .../mod_dbd.so, or "
                            "a2enmod dbd) before this line, and configure "
                            "DBDriver and DBDParams", cmd->cmd->name);
    }
    for (i = 0; i < CR_KEYSQL_NSTMTS; i++) {
        dbd_prepare_fn(cmd->server, cr_keysql_sql((cr_keysql_stmt_e)i),
                       cr_keysql_label((cr_keysql_stmt_e)i));
    }
    return NULL;
}

/* mod_dbd's configuration of s: its per-server record starts with its
 * dbd_cfg_t pointer (mod_dbd.c's svr_cfg, the same since httpd 2.2). */
static const dbd_cfg_t *dbd_config_of(server_rec *s, module *dbd)
{
    dbd_cfg_t *const *svr = ap_get_module_config(s->module_config, dbd);

    return svr ? *svr : NULL;
}

int cr_keystore_dbd_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    module *dbd = ap_find_linked_module("mod_dbd.c");
    server_rec *sp;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    dbd_module_ptr = dbd;
    for (sp = s; sp; sp = sp->next) {
        cr_server_conf *sconf = cr_config_server(sp);
        const dbd_cfg_t *cfg;

        if (sconf->key_store == NULL
            || strcmp(sconf->key_store, CR_KEYSTORE_DBD_SPEC) != 0) {
            continue;
        }
        if (dbd == NULL || !find_dbd_functions()) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, sp, CRLOGNO(0900)
                         CR_DIR_KEY_STORE " dbd (server %s:%u) needs "
                         "mod_dbd: load it (a2enmod dbd) and configure "
                         "DBDriver and DBDParams; not starting",
                         sp->server_hostname ? sp->server_hostname : "",
                         (unsigned)sp->port);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        cfg = dbd_config_of(sp, dbd);
        if (cfg == NULL || cfg->name == NULL
            || strcmp(cfg->name, DBD_NO_DRIVER) == 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, sp, CRLOGNO(0901)
                         CR_DIR_KEY_STORE " dbd (server %s:%u): no DBDriver "
                         "is configured for this server (DBDriver pgsql "
                         "and DBDParams, in this virtual host or the main "
                         "server); not starting",
                         sp->server_hostname ? sp->server_hostname : "",
                         (unsigned)sp->port);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (cfg->persist == 0 && sp == s) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, sp, CRLOGNO(0902)
                         CR_DIR_KEY_STORE " dbd: DBDPersist Off opens a "
                         "database connection for every request");
        }
    }
    return OK;
}

/* ------------------------------------------------------------------ */
/* The operations                                                      */
/* ------------------------------------------------------------------ */

typedef enum {
    OP_LOOKUP, OP_GET, OP_LIST, OP_CREATE, OP_UPDATE, OP_REVOKE
} op_kind_e;

typedef struct {
    op_kind_e kind;
    const char *hash;                 /* lookup */
    const char *id;                   /* get, update, revoke */
    const cr_key_record_t *tmpl;      /* create's template, update's changes */
    cr_key_record_t **rec;
    apr_array_header_t **records;     /* list */
    const char **key;                 /* create */
    cr_keystore_result_e result;      /* lookup's answer */
    apr_status_t rv;                  /* the others' answer */
    const char *err;
    char errbuf[256];
} op_t;

/* Run op on c; non-zero when it failed (for any reason). */
static int run_op(cr_keysql_conn_t *c, apr_pool_t *p, op_t *op)
{
    op->err = NULL;
    switch (op->kind) {
    case OP_LOOKUP:
        op->errbuf[0] = '\0';
        op->result = cr_keysql_lookup(c, p, op->hash, op->rec, op->errbuf,
                                      sizeof(op->errbuf));
        return op->result == CR_KEYSTORE_UNAVAILABLE
               || op->result == CR_KEYSTORE_READ_FAILED;
    case OP_GET:
        op->rv = cr_keysql_get(c, p, op->id, op->rec, NULL, &op->err);
        break;
    case OP_LIST:
        op->rv = cr_keysql_list(c, p, op->records, NULL, &op->err);
        break;
    case OP_CREATE:
        op->rv = cr_keysql_create(c, p, op->tmpl, op->key, op->rec,
                                  &op->err);
        break;
    case OP_UPDATE:
        op->rv = cr_keysql_update(c, p, op->id, op->tmpl, op->rec, &op->err);
        break;
    default:
        op->rv = cr_keysql_revoke(c, p, op->id, op->rec, &op->err);
        break;
    }
    return op->rv != APR_SUCCESS;
}

/* The operation could not reach the database at all. */
static void set_unreachable(op_t *op)
{
    static const char msg[] = "no connection to the database (mod_dbd "
                              "could not open one; see its messages)";

    if (op->kind == OP_LOOKUP) {
        op->result = CR_KEYSTORE_UNAVAILABLE;
        apr_cpystrn(op->errbuf, msg, sizeof(op->errbuf));
    }
    else {
        op->rv = APR_ECONNREFUSED;
        op->err = msg;
    }
}

/* Our statements of a connection, from mod_dbd's table of them. */
static void fill_conn(cr_keysql_conn_t *c, ap_dbd_t *dbd)
{
    int i;

    c->driver = dbd->driver;
    c->handle = dbd->handle;
    for (i = 0; i < CR_KEYSQL_NSTMTS; i++) {
        c->stmt[i] = dbd->prepared == NULL ? NULL : apr_hash_get(
            dbd->prepared, cr_keysql_label((cr_keysql_stmt_e)i),
            APR_HASH_KEY_STRING);
    }
}

/* PostgreSQL: after a reconnect the session has none of the statements
 * mod_dbd prepared (apr_dbd_pgsql's check_conn, called by mod_dbd for
 * every connection it hands out, reconnects a broken one with PQreset).
 * Prepare ours again under their labels; 0 when the first one exists
 * already (the session is the old one: nothing to do). */
static int prepare_again(ap_dbd_t *dbd)
{
    int i;

    if (dbd->prepared == NULL
        || strcmp(apr_dbd_name(dbd->driver), "pgsql") != 0) {
        return 0;
    }
    for (i = 0; i < CR_KEYSQL_NSTMTS; i++) {
        apr_dbd_prepared_t *stmt = NULL;
        const char *label = cr_keysql_label((cr_keysql_stmt_e)i);

        if (apr_dbd_prepare(dbd->driver, dbd->pool, dbd->handle,
                            cr_keysql_sql((cr_keysql_stmt_e)i), label,
                            &stmt) != 0) {
            return 0;
        }
        apr_hash_set(dbd->prepared, label, APR_HASH_KEY_STRING, stmt);
    }
    return 1;
}

/* A statement failed on dbd.  1: the connection is a new session with our
 * statements prepared again (run the operation again on it); 0: a live
 * session (the failure is the database's answer); -1: dead.  libpq reports
 * a connection the server ended (pg_terminate_backend, a restart) as an
 * error of the statement and may still call the connection good, so a
 * statement of no parameter settles whether it lives; a failure of that one
 * marks it bad, and check_conn then reconnects it once. */
static int revive(ap_dbd_t *dbd, apr_pool_t *p)
{
    apr_status_t rv = apr_dbd_check_conn(dbd->driver, p, dbd->handle);
    int nrows = 0;

    if ((rv == APR_SUCCESS || APR_STATUS_IS_ENOTIMPL(rv))
        && apr_dbd_query(dbd->driver, dbd->handle, &nrows, "SELECT 1") == 0) {
        return prepare_again(dbd);
    }
    rv = apr_dbd_check_conn(dbd->driver, p, dbd->handle);
    if (rv != APR_SUCCESS
        || apr_dbd_query(dbd->driver, dbd->handle, &nrows, "SELECT 1") != 0) {
        return -1;
    }
    return prepare_again(dbd) ? 1 : -1;
}

/* Does r's server use DBDriver sqlite3? */
static int uses_sqlite(request_rec *r)
{
    const dbd_cfg_t *cfg = dbd_module_ptr == NULL ? NULL
                           : dbd_config_of(r->server, dbd_module_ptr);

    return cfg != NULL && cfg->name != NULL
           && strcmp(cfg->name, "sqlite3") == 0;
}

static void with_database(request_rec *r, apr_pool_t *p, op_t *op)
{
    int attempt, nulls = 0, ran = 0, max_nulls = 2;

    for (attempt = 0; attempt < DBD_MAX_ATTEMPTS; attempt++) {
        /* The request's connection first (shared with the request's
         * other dbd users, released at its end), then fresh ones. */
        int own = attempt > 0;
        ap_dbd_t *dbd = own ? dbd_open_fn(r->pool, r->server)
                            : dbd_acquire_fn(r);
        cr_keysql_conn_t c;
        int failed, state = 0;

        if (dbd == NULL) {
            /* mod_dbd threw a dead connection away, or could not open
             * one; twice in a row: the database is down (sqlite3: the
             * file was locked by a writer; a pause, and again). */
            if (nulls == 0 && uses_sqlite(r)) {
                max_nulls = DBD_SQLITE_OPENS;
            }
            if (++nulls >= max_nulls) {
                break;
            }
            if (max_nulls > 2) {
                apr_sleep(DBD_SQLITE_PAUSE);
            }
            continue;
        }
        nulls = 0;
        fill_conn(&c, dbd);
        failed = run_op(&c, p, op);
        ran = 1;
        if (failed && (state = revive(dbd, p)) > 0) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0903)
                          "key store dbd: the database had dropped the "
                          "connection; reconnected, statements prepared "
                          "again");
            fill_conn(&c, dbd);
            failed = run_op(&c, p, op);
            state = 0;
        }
        if (own) {
            /* Back to the pool; a dead one is checked by mod_dbd at its
             * next open. */
            dbd_close_fn(r->server, dbd);
        }
        if (!failed || state == 0) {
            /* Done, or an error of the database on a live connection (no
             * table, no privilege, a bad record): the same again. */
            return;
        }
        /* Dead, and a new connection could not be made either: the
         * database is unreachable; trying the rest of the pool would only
         * add connect timeouts to this request. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0905)
                      "key store dbd: a connection is dead and the "
                      "database cannot be reached");
        break;
    }
    if (!ran) {
        set_unreachable(op);
    }
    else if (op->kind == OP_LOOKUP) {
        /* the last connection tried was dead */
        op->result = CR_KEYSTORE_UNAVAILABLE;
    }
}

static cr_keystore_result_e dbd_lookup(cr_keystore_t *ks, void *req,
                                       apr_pool_t *p, const char *key,
                                       cr_key_record_t **rec, int *hit,
                                       apr_status_t *rv, char *errbuf,
                                       apr_size_t errlen)
{
    /* No cache here: every lookup reads the row by the key's SHA-256. */
    const char *hash = cr_key_hash(p, key);
    op_t op;

    (void)ks;
    *hit = 0;
    if (hash == NULL) {
        *rv = APR_EGENERAL;
        return CR_KEYSTORE_HASH_FAILED;
    }
    memset(&op, 0, sizeof(op));
    op.kind = OP_LOOKUP;
    op.hash = hash;
    op.rec = rec;
    with_database(req, p, &op);
    *hit = 0;
    *rv = op.result == CR_KEYSTORE_UNAVAILABLE ? APR_ECONNREFUSED
                                               : APR_SUCCESS;
    apr_cpystrn(errbuf, op.errbuf, errlen);
    return op.result;
}

/* The console's operations: mod_dbd's reasons are kept in op.err. */
static apr_status_t finish(apr_pool_t *p, op_t *op, const char **err)
{
    if (op->rv != APR_SUCCESS) {
        *err = op->err ? op->err : apr_psprintf(p, "key store dbd: error %d",
                                                op->rv);
    }
    return op->rv;
}

static apr_status_t dbd_get(cr_keystore_t *ks, void *req, apr_pool_t *p,
                            const char *id, cr_key_record_t **rec,
                            const char **err)
{
    op_t op;

    (void)ks;
    memset(&op, 0, sizeof(op));
    op.kind = OP_GET;
    op.id = id;
    op.rec = rec;
    with_database(req, p, &op);
    return finish(p, &op, err);
}

static apr_status_t dbd_list(cr_keystore_t *ks, void *req, apr_pool_t *p,
                             apr_array_header_t **records, const char **err)
{
    op_t op;

    (void)ks;
    memset(&op, 0, sizeof(op));
    op.kind = OP_LIST;
    op.records = records;
    with_database(req, p, &op);
    return finish(p, &op, err);
}

static apr_status_t dbd_create(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const cr_key_record_t *tmpl, const char **key,
                               cr_key_record_t **rec, const char **err)
{
    op_t op;

    (void)ks;
    memset(&op, 0, sizeof(op));
    op.kind = OP_CREATE;
    op.tmpl = tmpl;
    op.key = key;
    op.rec = rec;
    with_database(req, p, &op);
    return finish(p, &op, err);
}

static apr_status_t dbd_update(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const char *id,
                               const cr_key_record_t *changes,
                               cr_key_record_t **rec, const char **err)
{
    op_t op;

    (void)ks;
    memset(&op, 0, sizeof(op));
    op.kind = OP_UPDATE;
    op.id = id;
    op.tmpl = changes;
    op.rec = rec;
    with_database(req, p, &op);
    return finish(p, &op, err);
}

static apr_status_t dbd_revoke(cr_keystore_t *ks, void *req, apr_pool_t *p,
                               const char *id, cr_key_record_t **rec,
                               const char **err)
{
    op_t op;

    (void)ks;
    memset(&op, 0, sizeof(op));
    op.kind = OP_REVOKE;
    op.id = id;
    op.rec = rec;
    with_database(req, p, &op);
    return finish(p, &op, err);
}

static const cr_keystore_ops_t dbd_ops = {
    "dbd", dbd_lookup, dbd_get, dbd_list, dbd_create, dbd_update, dbd_revoke
};

cr_keystore_t *cr_keystore_dbd_create(apr_pool_t *p)
{
    cr_keystore_t *ks = apr_pcalloc(p, sizeof(*ks));

    ks->ops = &dbd_ops;
    ks->name = "dbd (mod_dbd)";
    ks->backend = NULL;
    return ks;
}

int cr_keystore_is_dbd(const cr_keystore_t *ks)
{
    return ks != NULL && ks->ops == &dbd_ops;
}

void cr_keystore_log_unavailable(request_rec *r, const cr_keystore_t *ks,
                                 apr_status_t rv, const char *reason)
{
    if (!reason || !*reason) {
        reason = "(no reason)";
    }
    if (!cr_time_once_per(&last_unavailable_log,
                          (apr_uint32_t)apr_time_sec(apr_time_now()),
                          CR_KEYSTORE_LOG_INTERVAL)) {
        return;               /* logged in this interval already */
    }
    if (cr_keystore_is_dbd(ks)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0904)
                      "key store dbd cannot be read: %s; gateway requests "
                      "are refused with 500 key_store_unavailable (next "
                      "such message of this process in %d s at the "
                      "earliest)", reason, CR_KEYSTORE_LOG_INTERVAL);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0102)
                      "key store %s cannot be read: %s; gateway requests "
                      "are refused with 500 key_store_unavailable (next "
                      "such message of this process in %d s at the "
                      "earliest)", ks->name, reason,
                      CR_KEYSTORE_LOG_INTERVAL);
    }
}
