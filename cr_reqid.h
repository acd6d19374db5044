/* Licensed under the Apache License, Version 2.0. */

/* cr_reqid.h: Request-Id rules (SPEC section 6). */
#ifndef CR_REQID_H
#define CR_REQID_H

#include <apr_pools.h>

#define CR_REQID_MAX_LEN 128

/* 1..128 characters of A-Z a-z 0-9 . _ : - */
int cr_reqid_valid(const char *id);

/* A fresh id: "req_" + 24 base62 characters from a secure source. */
const char *cr_reqid_generate(apr_pool_t *p);

/* The id to use: the first *valid* one of Request-Id, X-Request-Id,
 * X-Client-Request-Id (any may be NULL), else a fresh one.  The result is
 * from p. */
const char *cr_reqid_choose(apr_pool_t *p, const char *request_id,
                            const char *x_request_id,
                            const char *x_client_request_id);

#endif /* CR_REQID_H */
