/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_bench_genkeys: fill a key store with N keys in one open store, for the
 * large-store benchmark (the CLI opens the store once per key, far too slow
 * for a million).  Records are what `clawdrouter-keys create --models '*'`
 * writes: real random keys, their SHA-256, random ids, through
 * cr_store_put.  The keys themselves are thrown away except SAMPLE of them,
 * spread over the whole run, written one per line to KEYFILE (mode 0600) so
 * the benchmark can send requests with keys from all over the store.
 *
 *   cr_bench_genkeys STORE-SPEC N KEYFILE [SAMPLE] [RPM]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "cr_cred.h"
#include "cr_key.h"
#include "cr_store.h"

int main(int argc, char **argv)
{
    apr_pool_t *pool, *iter;
    cr_store_t *store;
    cr_key_record_t rec;
    apr_array_header_t *models;
    FILE *keyfile;
    long n, sample, every, i, written = 0;
    apr_int64_t rpm = CR_KEY_RPM_UNSET;
    apr_time_t started;
    char errbuf[256];
    apr_status_t rv;

    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s STORE-SPEC N KEYFILE [SAMPLE] [RPM]\n",
                argv[0]);
        return 2;
    }
    n = atol(argv[2]);
    sample = argc > 4 ? atol(argv[4]) : 100;
    if (argc > 5) {
        rpm = apr_atoi64(argv[5]);
    }
    if (n < 1 || sample < 1) {
        fprintf(stderr, "%s: N and SAMPLE must be positive\n", argv[0]);
        return 2;
    }
    if (sample > n) {
        sample = n;
    }
    every = n / sample;

    apr_app_initialize(&argc, (const char *const **)&argv, NULL);
    apr_pool_create(&pool, NULL);
    rv = cr_store_open(pool, argv[1], 1, &store, errbuf, sizeof(errbuf));
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "%s: cannot open %s: %s\n", argv[0], argv[1], errbuf);
        return 1;
    }
    umask(077);
    keyfile = fopen(argv[3], "w");
    if (!keyfile) {
        perror(argv[3]);
        return 1;
    }
    models = cr_key_parse_models(pool, "*");
    started = apr_time_now();
    apr_pool_create(&iter, pool);
    for (i = 0; i < n; i++) {
        const char *key, *id, *hash;

        apr_pool_clear(iter);
        if (cr_key_generate(iter, &key) != APR_SUCCESS
            || cr_key_new_id(iter, &id) != APR_SUCCESS
            || (hash = cr_key_hash(iter, key)) == NULL) {
            fprintf(stderr, "%s: cannot generate a key\n", argv[0]);
            return 1;
        }
        memset(&rec, 0, sizeof(rec));
        rec.id = id;
        rec.name = apr_psprintf(iter, "bench-%ld", i);
        rec.models = models;
        rec.rpm = rpm;
        rec.created_at = apr_time_from_sec(apr_time_sec(started));
        rec.expires_at = 0;
        rec.status = CR_KEY_ACTIVE;
        rec.hint = cr_cred_mask(iter, key);
        rv = cr_store_put(store, hash, &rec);
        if (rv != APR_SUCCESS) {
            fprintf(stderr, "%s: put #%ld failed: %s\n", argv[0], i,
                    cr_store_last_error(store));
            return 1;
        }
        if (i % every == every / 2 && written < sample) {
            fprintf(keyfile, "%s\n", key);
            written++;
        }
    }
    cr_store_close(store);
    if (fclose(keyfile) != 0) {
        perror(argv[3]);
        return 1;
    }
    printf("%ld keys in %.1f s\n", n,
           (double)(apr_time_now() - started) / APR_USEC_PER_SEC);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
