/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_cred.h: the client's credential, from "Authorization: Bearer KEY" or
 * "x-api-key: KEY", on either protocol's paths (SPEC section 4.1).
 */
#ifndef CR_CRED_H
#define CR_CRED_H

#include <apr_pools.h>

typedef enum {
    CR_CRED_OK = 0,       /* *key is set and well formed */
    CR_CRED_MISSING,      /* no credential at all (or only empty values) */
    CR_CRED_MALFORMED,    /* present but not a well formed key, or a
                           * non-Bearer Authorization with no x-api-key */
    CR_CRED_CONFLICT      /* both headers carry keys and they differ */
} cr_cred_status_e;

/* Longest key accepted; anything longer is malformed without a lookup. */
#define CR_CRED_MAX_KEY_LEN 128
/* "sk-" then at least this many base62 characters. */
#define CR_CRED_MIN_RANDOM_LEN 40

/* Extract the key from the two header values (either may be NULL).
 * On CR_CRED_OK *key points into one of the inputs (the key is always the
 * end of its header value), so it lives as long as that value; p is kept
 * for the API (nothing is allocated).
 * Rules:
 *  - Authorization must be "Bearer <key>" (scheme case-insensitive, one or
 *    more spaces); another scheme is ignored if x-api-key is present,
 *    else it is CR_CRED_MALFORMED.
 *  - "Bearer" with nothing after it, or an empty x-api-key, counts as absent.
 *  - Both present and different: CR_CRED_CONFLICT (compared in constant time).
 *  - The key must be cr_cred_key_wellformed(). */
cr_cred_status_e cr_cred_extract(apr_pool_t *p, const char *authorization,
                                 const char *x_api_key, const char **key);

/* "sk-" followed by 40..(CR_CRED_MAX_KEY_LEN-3) characters of [A-Za-z0-9]. */
int cr_cred_key_wellformed(const char *key);

/* A masked form safe for logs and messages: "sk-ab...c66a" (first 5 and
 * last 4 characters); for short or odd input "sk-...". */
const char *cr_cred_mask(apr_pool_t *p, const char *key);

#endif /* CR_CRED_H */
