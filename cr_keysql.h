/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keysql.h: the SQL key store (SPEC section 12) through apr_dbd, shared
 * by clawdrouter-keys (its own connection: pgsql:CONNINFO, sqlite3:PATH,
 * mysql:PARAMS) and the module's ClawdRouterKeyStore dbd (mod_dbd's pooled
 * connections, statements prepared at configuration time under the labels
 * below).  One table:
 *
 *   CREATE TABLE IF NOT EXISTS clawdrouter_keys (
 *       key_hash VARCHAR(64) PRIMARY KEY,   -- SHA-256 hex of the key
 *       id       VARCHAR(64) NOT NULL UNIQUE,
 *       record   TEXT NOT NULL              -- cr_key.c's JSON record
 *   );
 *
 * Every value reaches the database as a bound parameter of a prepared
 * statement; no SQL is ever built from a key, an id or a record.
 */
#ifndef CR_KEYSQL_H
#define CR_KEYSQL_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_dbd.h>
#include "cr_key.h"
#include "cr_keystore.h"

#define CR_KEYSQL_TABLE "clawdrouter_keys"

typedef enum {
    CR_KEYSQL_BY_HASH = 0,     /* hash -> record */
    CR_KEYSQL_BY_ID,           /* id -> key_hash, record */
    CR_KEYSQL_LIST,            /* -> key_hash, record */
    CR_KEYSQL_INSERT,          /* key_hash, id, record */
    CR_KEYSQL_UPDATE,          /* record, id */
    CR_KEYSQL_NSTMTS
} cr_keysql_stmt_e;

/* The statement's SQL (apr_dbd's %s placeholders) and its mod_dbd label. */
const char *cr_keysql_sql(cr_keysql_stmt_e which);
const char *cr_keysql_label(cr_keysql_stmt_e which);
/* CREATE TABLE IF NOT EXISTS ... (no parameter). */
const char *cr_keysql_create_table_sql(void);

/* One connection and its prepared statements. */
typedef struct {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_dbd_prepared_t *stmt[CR_KEYSQL_NSTMTS];
} cr_keysql_conn_t;

/* As the cr_keystore_ops_t operations, on one connection. */
cr_keystore_result_e cr_keysql_lookup(cr_keysql_conn_t *c, apr_pool_t *p,
                                      const char *hash,
                                      cr_key_record_t **rec, char *errbuf,
                                      apr_size_t errlen);
apr_status_t cr_keysql_get(cr_keysql_conn_t *c, apr_pool_t *p,
                           const char *id, cr_key_record_t **rec,
                           const char **hash, const char **err);
apr_status_t cr_keysql_list(cr_keysql_conn_t *c, apr_pool_t *p,
                            apr_array_header_t **records,
                            apr_array_header_t **hashes, const char **err);
apr_status_t cr_keysql_put_new(cr_keysql_conn_t *c, apr_pool_t *p,
                               const char *hash, const cr_key_record_t *rec,
                               const char **err);
apr_status_t cr_keysql_create(cr_keysql_conn_t *c, apr_pool_t *p,
                              const cr_key_record_t *tmpl, const char **key,
                              cr_key_record_t **rec, const char **err);
apr_status_t cr_keysql_update(cr_keysql_conn_t *c, apr_pool_t *p,
                              const char *id, const cr_key_record_t *changes,
                              cr_key_record_t **rec, const char **err);
apr_status_t cr_keysql_revoke(cr_keysql_conn_t *c, apr_pool_t *p,
                              const char *id, cr_key_record_t **rec,
                              const char **err);

/* Is spec an SQL store of the CLI ("pgsql:", "sqlite3:", "mysql:")? */
int cr_keysql_is_spec(const char *spec);
/* Open the CLI's SQL store "DRIVER:PARAMS" (one connection for the life of
 * p; statements prepared).  With create_table, create the table first. */
apr_status_t cr_keystore_sql_open(apr_pool_t *p, const char *spec,
                                  int create_table, cr_keystore_t **ks,
                                  const char **err);
/* The CLI store's connection (NULL for another store). */
cr_keysql_conn_t *cr_keystore_sql_conn(cr_keystore_t *ks);

#endif /* CR_KEYSQL_H */
