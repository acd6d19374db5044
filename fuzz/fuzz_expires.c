/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_expires.c: the CLI's --expires value (cr_time_parse_expires) and
 * the RFC 3339 parser under it (cr_time_parse_rfc3339).  An accepted
 * expiry lies in the future of "now" (relative form) or after 1970, and
 * formats back to a time that parses to the same second.
 */

#include "fuzz_common.h"
#include "cr_time.h"

/* A fixed "now" (2026-11-27T17:32:41Z) keeps runs reproducible. */
#define FUZZ_NOW (APR_INT64_C(1795800761) * APR_USEC_PER_SEC)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *s, *text;
    apr_time_t t = 0, back = 0;

    apr_pool_create(&p, fuzz_root_pool);
    s = fuzz_strdup(p, data, size);

    if (cr_time_parse_expires(s, FUZZ_NOW, &t) == APR_SUCCESS) {
        FUZZ_CHECK(t > 0);
        if (s[0] == '+') {
            FUZZ_CHECK(t > FUZZ_NOW);
        }
        text = cr_time_format_rfc3339(p, t);
        FUZZ_CHECK(text != NULL && strlen(text) == 20);
        FUZZ_CHECK(cr_time_parse_rfc3339(text, &back) == APR_SUCCESS);
        FUZZ_CHECK(apr_time_sec(back) == apr_time_sec(t));
    }
    if (cr_time_parse_rfc3339(s, &t) == APR_SUCCESS) {
        (void)cr_time_format_rfc3339(p, t);
    }
    (void)cr_time_format_duration(p, (apr_interval_time_t)size * 997 - 5000);

    apr_pool_destroy(p);
    return 0;
}
