/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_cred.c: the credential headers (cr_cred_extract, cr_cred_mask).
 * Input: "<Authorization>\n<x-api-key>"; "\x01" for an absent header.
 * cr_cred_key_wellformed (a class table) and the Bearer scheme test are
 * compared with the per-character code they replaced on every input.
 */

#include <strings.h>

#include <apr_lib.h>

#include "fuzz_common.h"
#include "cr_cred.h"

/* The key check before the class table: per character, apr_isalnum and
 * below 0x80. */
static int reference_wellformed(const char *key)
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

/* The extraction before: strncasecmp for the scheme, the key copied. */
static cr_cred_status_e reference_extract(apr_pool_t *p, const char *auth,
                                          const char *api, const char **key)
{
    const char *bearer = NULL;
    int have_api = api != NULL && *api != '\0';
    int offer = 0;    /* 0 none, 1 key, 2 other */

    if (auth != NULL) {
        while (*auth == ' ' || *auth == '\t') {
            auth++;
        }
        if (*auth != '\0') {
            if (strncasecmp(auth, "Bearer", 6) != 0
                || (auth[6] != ' ' && auth[6] != '\0')) {
                offer = 2;
            }
            else {
                bearer = auth + 6;
                while (*bearer == ' ') {
                    bearer++;
                }
                offer = *bearer != '\0' ? 1 : 0;
            }
        }
    }
    if (offer == 2) {
        if (!have_api) {
            return CR_CRED_MALFORMED;
        }
        offer = 0;
    }
    if (offer == 0 && !have_api) {
        return CR_CRED_MISSING;
    }
    if ((offer == 1 && strlen(bearer) > CR_CRED_MAX_KEY_LEN)
        || (have_api && strlen(api) > CR_CRED_MAX_KEY_LEN)) {
        return CR_CRED_MALFORMED;
    }
    if (offer == 1 && have_api && strcmp(bearer, api) != 0) {
        return CR_CRED_CONFLICT;
    }
    if (!reference_wellformed(offer == 1 ? bearer : api)) {
        return CR_CRED_MALFORMED;
    }
    *key = apr_pstrdup(p, offer == 1 ? bearer : api);
    return CR_CRED_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *fields[2], *key = NULL, *mask;
    cr_cred_status_e st;

    apr_pool_create(&p, fuzz_root_pool);
    fuzz_split(p, data, size, fields, 2);

    st = cr_cred_extract(p, fields[0], fields[1], &key);
    FUZZ_CHECK(st == CR_CRED_OK || st == CR_CRED_MISSING
               || st == CR_CRED_MALFORMED || st == CR_CRED_CONFLICT);
    {
        const char *ref_key = NULL;

        /* the same verdict and the same key as the code before */
        FUZZ_CHECK(reference_extract(p, fields[0], fields[1], &ref_key)
                   == st);
        FUZZ_CHECK(st != CR_CRED_OK || strcmp(ref_key, key) == 0);
        FUZZ_CHECK(cr_cred_key_wellformed(fields[0])
                   == reference_wellformed(fields[0]));
        FUZZ_CHECK(cr_cred_key_wellformed(fields[1])
                   == reference_wellformed(fields[1]));
    }
    if (st == CR_CRED_OK) {
        /* What is accepted is a well formed key that one header carried. */
        FUZZ_CHECK(key != NULL && cr_cred_key_wellformed(key));
        FUZZ_CHECK(strlen(key) <= CR_CRED_MAX_KEY_LEN);
        FUZZ_CHECK((fields[1] != NULL && strcmp(key, fields[1]) == 0)
                   || (fields[0] != NULL && strstr(fields[0], key) != NULL));
        mask = cr_cred_mask(p, key);
        /* The masked form never shows the key itself. */
        FUZZ_CHECK(mask != NULL && strstr(mask, key) == NULL
                   && strlen(mask) == 5 + 3 + 4);
    }
    /* The mask of arbitrary text is printable and short. */
    mask = cr_cred_mask(p, fields[0]);
    FUZZ_CHECK(mask != NULL && strlen(mask) <= 12);
    mask = cr_cred_mask(p, fields[1]);
    FUZZ_CHECK(mask != NULL && strlen(mask) <= 12);

    apr_pool_destroy(p);
    return 0;
}
