/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_console.h: the key management console's httpd glue (SPEC section 9).
 *
 * mod_clawdrouter.c registers both functions:
 *   ap_hook_post_config(cr_console_post_config, NULL, NULL, APR_HOOK_MIDDLE);
 *   ap_hook_handler(cr_console_handler, NULL, NULL, APR_HOOK_MIDDLE);
 * The post_config hook makes the per-server-lifetime CSRF secret in the
 * parent process, so that every child (prefork, worker, event) checks the
 * tokens every other child issued.
 */
#ifndef CR_CONSOLE_H
#define CR_CONSOLE_H

#include "httpd.h"
#include "http_config.h"

/* DECLINED unless r->handler is CR_CONSOLE_HANDLER. */
int cr_console_handler(request_rec *r);

/* A post_config hook: a fresh random console secret at every (re)start. */
int cr_console_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s);

#endif /* CR_CONSOLE_H */
