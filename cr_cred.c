/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_cred.c: the client's credential, from "Authorization: Bearer KEY" or
 * "x-api-key: KEY" (SPEC section 4.1).  Lengths are checked first, so a
 * huge header costs nothing; the two headers are compared in constant
 * time; the key is the tail of its header value, not a copy.
 */

#include <string.h>

#include <apr_strings.h>
#include <openssl/crypto.h>

#include "cr_cred.h"

#define BEARER "Bearer"
#define BEARER_LEN (sizeof(BEARER) - 1)

/* 1 for the characters of a key's random part, [A-Za-z0-9] (ASCII, as
 * apr_isalnum says in the C locale), 0 for every other byte and NUL. */
static const unsigned char key_char[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x0_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x1_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x2_ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,   /* 0x3_ */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x4_ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,   /* 0x5_ */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x6_ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,   /* 0x7_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x8_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x9_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0xA_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0xB_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0xC_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0xD_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0xE_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0   /* 0xF_ */
};

/* Is the len bytes at key (no NUL among them) a well formed key?  One
 * table load per character and no branch on the characters (the
 * per-character apr_isalnum and range test cost 606 instructions a key). */
static int key_wellformed_len(const char *key, apr_size_t len)
{
    const unsigned char *k = (const unsigned char *)key;
    unsigned int ok = 1;
    apr_size_t i;

    if (len < 3 + CR_CRED_MIN_RANDOM_LEN || len > CR_CRED_MAX_KEY_LEN
        || k[0] != 's' || k[1] != 'k' || k[2] != '-') {
        return 0;
    }
    /* eight characters a round (a key is 51), then the rest */
    for (i = 3; i + 8 <= len; i += 8) {
        ok &= key_char[k[i]] & key_char[k[i + 1]] & key_char[k[i + 2]]
              & key_char[k[i + 3]] & key_char[k[i + 4]]
              & key_char[k[i + 5]] & key_char[k[i + 6]]
              & key_char[k[i + 7]];
    }
    for (; i < len; i++) {
        ok &= key_char[k[i]];
    }
    return (int)ok;
}

int cr_cred_key_wellformed(const char *key)
{
    if (key == NULL) {
        return 0;
    }
    /* A NUL ends the key: past CR_CRED_MAX_KEY_LEN, too long anyway. */
    return key_wellformed_len(key, strnlen(key, CR_CRED_MAX_KEY_LEN + 1));
}

/* What one header offers: nothing, a candidate key (not yet checked), or
 * something that cannot be a key. */
typedef enum { OFFER_NONE, OFFER_KEY, OFFER_OTHER } offer_e;

/* Does value start with "Bearer" in any case (as strncasecmp in the C
 * locale says, without its call)?  c | 0x20 is a lower-case letter only
 * for that letter in either case; && stops at the NUL of a short value. */
static int is_bearer(const char *value)
{
    return (value[0] | 0x20) == 'b' && (value[1] | 0x20) == 'e'
           && (value[2] | 0x20) == 'a' && (value[3] | 0x20) == 'r'
           && (value[4] | 0x20) == 'e' && (value[5] | 0x20) == 'r';
}

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
    if (!is_bearer(value)
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

    (void)p;

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
    if (!key_wellformed_len(chosen, (auth == OFFER_KEY) ? bearer_len
                                                        : api_len)) {
        return CR_CRED_MALFORMED;
    }
    /* The key runs to the end of its header value: no copy needed. */
    *key = chosen;
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
