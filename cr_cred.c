/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_cred.c: the client's credential, from "Authorization: Bearer KEY" or
 * "x-api-key: KEY" (SPEC section 4.1).  Lengths are checked before any
 * copy, so a huge header costs nothing; the two headers are compared in
 * constant time.
 */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <openssl/crypto.h>

#include "cr_cred.h"

#define BEARER "Bearer"
#define BEARER_LEN (sizeof(BEARER) - 1)

int cr_cred_key_wellformed(const char *key)
{
    apr_size_t i;

    if (key == NULL || strncmp(key, "sk-", 3) != 0) {
        return 0;
    }
    for (i = 3; key[i] != '\0'; i++) {
        if (i >= CR_CRED_MAX_KEY_LEN || !apr_isalnum(key[i])
            || (unsigned char)key[i] >= 0x80) {
            return 0;
        }
    }
    return i - 3 >= CR_CRED_MIN_RANDOM_LEN;
}

/* What one header offers: nothing, a candidate key (not yet checked), or
 * something that cannot be a key. */
typedef enum { OFFER_NONE, OFFER_KEY, OFFER_OTHER } offer_e;

/* Authorization: "Bearer" (any case), one or more spaces, the key. */
static offer_e authorization_offer(const char *value, const char **key)
{
    const char *rest;

    if (value == NULL) {
        return OFFER_NONE;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    if (*value == '\0') {
        return OFFER_NONE;  /* an empty header counts as absent */
    }
    if (strncasecmp(value, BEARER, BEARER_LEN) != 0
        || (value[BEARER_LEN] != ' ' && value[BEARER_LEN] != '\0')) {
        return OFFER_OTHER;
    }
    rest = value + BEARER_LEN;
    while (*rest == ' ') {
        rest++;
    }
    if (*rest == '\0') {
        return OFFER_NONE;  /* "Bearer" alone counts as absent */
    }
    *key = rest;
    return OFFER_KEY;
}

cr_cred_status_e cr_cred_extract(apr_pool_t *p, const char *authorization,
                                 const char *x_api_key, const char **key)
{
    const char *bearer = NULL, *chosen;
    apr_size_t bearer_len = 0, api_len = 0;
    offer_e auth;
    int have_api = (x_api_key != NULL && *x_api_key != '\0');

    auth = authorization_offer(authorization, &bearer);
    if (auth == OFFER_OTHER) {
        if (!have_api) {
            return CR_CRED_MALFORMED;
        }
        auth = OFFER_NONE;  /* another scheme, with x-api-key: ignored */
    }
    if (auth == OFFER_NONE && !have_api) {
        return CR_CRED_MISSING;
    }

    /* Reject over-long values by length alone, before copying or
     * comparing anything. */
    if (auth == OFFER_KEY) {
        bearer_len = strnlen(bearer, CR_CRED_MAX_KEY_LEN + 1);
        if (bearer_len > CR_CRED_MAX_KEY_LEN) {
            return CR_CRED_MALFORMED;
        }
    }
    if (have_api) {
        api_len = strnlen(x_api_key, CR_CRED_MAX_KEY_LEN + 1);
        if (api_len > CR_CRED_MAX_KEY_LEN) {
            return CR_CRED_MALFORMED;
        }
    }

    if (auth == OFFER_KEY && have_api) {
        if (bearer_len != api_len
            || CRYPTO_memcmp(bearer, x_api_key, api_len) != 0) {
            return CR_CRED_CONFLICT;
        }
    }
    chosen = (auth == OFFER_KEY) ? bearer : x_api_key;
    if (!cr_cred_key_wellformed(chosen)) {
        return CR_CRED_MALFORMED;
    }
    *key = apr_pstrmemdup(p, chosen, (auth == OFFER_KEY) ? bearer_len
                                                          : api_len);
    return CR_CRED_OK;
}

const char *cr_cred_mask(apr_pool_t *p, const char *key)
{
    apr_size_t len;

    /* Only a well formed key shows any of its characters: anything else
     * might be a secret of another kind, or contain control characters. */
    if (!cr_cred_key_wellformed(key)) {
        return "sk-...";
    }
    len = strlen(key);
    return apr_pstrcat(p, apr_pstrmemdup(p, key, 5), "...",
                       key + len - 4, NULL);
}
