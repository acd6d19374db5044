/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_cred.c: the credential headers (cr_cred_extract, cr_cred_mask).
 * Input: "<Authorization>\n<x-api-key>"; "\x01" for an absent header.
 */

#include "fuzz_common.h"
#include "cr_cred.h"

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
