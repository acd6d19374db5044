/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_reqid.c: the client's Request-Id headers (cr_reqid_choose,
 * cr_reqid_valid).  Input: "<Request-Id>\n<X-Request-Id>\n
 * <X-Client-Request-Id>"; "\x01" for an absent header.
 */

#include "fuzz_common.h"
#include "cr_reqid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *fields[3], *id;
    int i, first_valid = -1;

    apr_pool_create(&p, fuzz_root_pool);
    fuzz_split(p, data, size, fields, 3);

    for (i = 0; i < 3; i++) {
        if (fields[i] != NULL && cr_reqid_valid(fields[i])) {
            FUZZ_CHECK(strlen(fields[i]) >= 1
                       && strlen(fields[i]) <= CR_REQID_MAX_LEN);
            if (first_valid < 0) {
                first_valid = i;
            }
        }
    }
    id = cr_reqid_choose(p, fields[0], fields[1], fields[2]);
    /* Whatever came in, what goes out (into response headers and logs)
     * is a valid id: the first valid one offered, else a fresh one. */
    FUZZ_CHECK(id != NULL && cr_reqid_valid(id));
    if (first_valid >= 0) {
        FUZZ_CHECK(strcmp(id, fields[first_valid]) == 0);
    }
    else {
        FUZZ_CHECK(strncmp(id, "req_", 4) == 0);
    }

    apr_pool_destroy(p);
    return 0;
}
