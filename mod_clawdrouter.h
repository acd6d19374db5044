/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter.h: what the module's httpd glue files share: the module
 * record and its configuration (mod_clawdrouter_config.h).  The
 * httpd-independent core (cr_*.c without httpd headers) never includes
 * this file.
 */
#ifndef MOD_CLAWDROUTER_H
#define MOD_CLAWDROUTER_H

#include "httpd.h"
#include "http_config.h"
#include "apr_tables.h"

#include "cr_error.h"
#include "cr_route.h"
#include "cr_log.h"
#include "mod_clawdrouter_config.h"

extern module AP_MODULE_DECLARE_DATA clawdrouter_module;

/* Handler name of the key management console (SPEC section 9). */
#define CR_CONSOLE_HANDLER "clawdrouter-console"

#endif /* MOD_CLAWDROUTER_H */
