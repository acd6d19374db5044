/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_keystore.h: ClawdRouterKeyStore dbd (SPEC section 12),
 * the key store on mod_dbd's pooled connections.  The table and the SQL
 * are cr_keysql.c's (the same as clawdrouter-keys --store pgsql:...), the
 * statements are prepared by mod_dbd on every connection it opens, under
 * cr_keysql_label()'s labels, as mod_authn_dbd prepares its queries.  No
 * record cache: every request reads its row, so a key made, changed or
 * revoked on any host counts at every host's next request.
 */
#ifndef MOD_CLAWDROUTER_KEYSTORE_H
#define MOD_CLAWDROUTER_KEYSTORE_H

#include "httpd.h"
#include "http_config.h"

#include "cr_keystore.h"

/* The value of ClawdRouterKeyStore that selects this store. */
#define CR_KEYSTORE_DBD_SPEC "dbd"

/* Log at most one line per this many seconds per child while the key
 * store cannot be read. */
#define CR_KEYSTORE_LOG_INTERVAL 10

/* ClawdRouterKeyStore dbd in cmd's server: find mod_dbd's functions and
 * register the statements with ap_dbd_prepare.  An error message when
 * mod_dbd is not loaded, else NULL. */
const char *cr_keystore_dbd_configure(cmd_parms *cmd);

/* post_config: refuse to start when a server uses the dbd store but has no
 * DBDriver (or mod_dbd is not loaded). */
int cr_keystore_dbd_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s);

/* The store (one per process; the connections are mod_dbd's). */
cr_keystore_t *cr_keystore_dbd_create(apr_pool_t *p);

/* Is ks the dbd store? */
int cr_keystore_is_dbd(const cr_keystore_t *ks);

/* The request path's message for a key store that cannot be read (rv and
 * reason: the lookup's status and one-line error), whichever the store:
 * at most one line per CR_KEYSTORE_LOG_INTERVAL per child, since a store
 * that is down fails every request and a line each would flood the log. */
void cr_keystore_log_unavailable(request_rec *r, const cr_keystore_t *ks,
                                 apr_status_t rv, const char *reason);

#endif /* MOD_CLAWDROUTER_KEYSTORE_H */
