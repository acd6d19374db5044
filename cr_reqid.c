/* Licensed under the Apache License, Version 2.0. */

/* cr_reqid.c: Request-Id validation, choice and generation (SPEC section 6). */

#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "cr_reqid.h"

#define REQID_PREFIX "req_"
#define REQID_RANDOM_LEN 24

static const char base62[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static int reqid_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == ':' || c == '-';
}

int cr_reqid_valid(const char *id)
{
    apr_size_t n;

    if (id == NULL) {
        return 0;
    }
    for (n = 0; id[n] != '\0'; n++) {
        if (n >= CR_REQID_MAX_LEN || !reqid_char_ok((unsigned char)id[n])) {
            return 0;
        }
    }
    return n >= 1;
}

const char *cr_reqid_generate(apr_pool_t *p)
{
    /* 248 = 4 * 62: bytes at or above it are dropped so that every base62
     * character is equally likely (no modulo bias). */
    enum { UNBIASED_LIMIT = 4 * 62 };
    char *id = apr_palloc(p, sizeof(REQID_PREFIX) + REQID_RANDOM_LEN);
    char *out = id + sizeof(REQID_PREFIX) - 1;
    unsigned char random[64];
    apr_size_t have = 0, i;
    int attempts = 0;

    memcpy(id, REQID_PREFIX, sizeof(REQID_PREFIX) - 1);
    while (have < REQID_RANDOM_LEN) {
        if (apr_generate_random_bytes(random, sizeof(random)) != APR_SUCCESS) {
            /* No entropy source: an id is not a secret, so stay unique
             * (time and address) rather than fail the request. */
            if (++attempts > 3) {
                return apr_psprintf(p, REQID_PREFIX "t%" APR_TIME_T_FMT
                                    "x%" APR_UINT64_T_HEX_FMT,
                                    apr_time_now(),
                                    (apr_uint64_t)(apr_uintptr_t)id);
            }
            continue;
        }
        for (i = 0; i < sizeof(random) && have < REQID_RANDOM_LEN; i++) {
            if (random[i] < UNBIASED_LIMIT) {
                out[have++] = base62[random[i] % 62];
            }
        }
    }
    out[have] = '\0';
    return id;
}

const char *cr_reqid_choose(apr_pool_t *p, const char *request_id,
                            const char *x_request_id,
                            const char *x_client_request_id)
{
    if (cr_reqid_valid(request_id)) {
        return apr_pstrdup(p, request_id);
    }
    if (cr_reqid_valid(x_request_id)) {
        return apr_pstrdup(p, x_request_id);
    }
    if (cr_reqid_valid(x_client_request_id)) {
        return apr_pstrdup(p, x_client_request_id);
    }
    return cr_reqid_generate(p);
}
