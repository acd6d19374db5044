/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_common.h: what every libFuzzer target of the core shares: APR set
 * up once per process, a fresh pool per input (destroyed afterwards, so
 * LeakSanitizer sees anything the core forgets to give back), and a way to
 * cut one input into several NUL-terminated strings, as httpd hands header
 * values to the core.
 */
#ifndef CR_FUZZ_COMMON_H
#define CR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

/* A failed invariant is a finding: abort so libFuzzer saves the input. */
#define FUZZ_CHECK(cond)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__,   \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

static apr_pool_t *fuzz_root_pool;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&fuzz_root_pool, NULL) != APR_SUCCESS) {
        abort();
    }
    return 0;
}

static apr_status_t fuzz_free(void *mem)
{
    free(mem);
    return APR_SUCCESS;
}

/* A NUL-terminated copy of n bytes in a malloc block of exactly n + 1
 * bytes, freed with p.  Not from the pool: ASan sees a read past the end
 * of a malloc block, but not past the end of a piece of a pool block. */
static char *fuzz_strdup(apr_pool_t *p, const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL) {
        abort();
    }
    memcpy(s, data, n);
    s[n] = '\0';
    apr_pool_cleanup_register(p, s, fuzz_free, apr_pool_cleanup_null);
    return s;
}

/* Split data at '\n' into at most max strings (see fuzz_strdup; an
 * embedded NUL ends that string early, as it would in a C header value).  A field that is exactly "\x01" stands for NULL (a
 * header that is not there).  Returns the number of fields. */
static int fuzz_split(apr_pool_t *p, const uint8_t *data, size_t size,
                      const char **fields, int max)
{
    int n = 0;
    size_t start = 0, i;

    for (i = 0; i <= size && n < max; i++) {
        if (i == size || (data[i] == '\n' && n < max - 1)) {
            char *s = fuzz_strdup(p, data + start, i - start);
            fields[n++] = (s[0] == '\x01' && s[1] == '\0') ? NULL : s;
            start = i + 1;
        }
    }
    while (n < max) {
        fields[n++] = NULL;
    }
    return max;
}

#endif /* CR_FUZZ_COMMON_H */
