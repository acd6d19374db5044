/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_key_record.c: a key store record (cr_key_record_parse); a record
 * that parses must serialise and parse back to the same record.  The
 * --models list parser (cr_key_parse_models) gets the same bytes.
 */

#include "fuzz_common.h"
#include "cr_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    cr_key_record_t *rec, *again;
    const char *err = NULL, *json, *list;
    apr_array_header_t *models;
    int i;

    apr_pool_create(&p, fuzz_root_pool);

    rec = cr_key_record_parse(p, (const char *)data, size, &err);
    if (rec == NULL) {
        FUZZ_CHECK(err != NULL);
    }
    else {
        FUZZ_CHECK(cr_key_id_wellformed(rec->id));
        FUZZ_CHECK(rec->models != NULL && rec->models->nelts > 0);
        FUZZ_CHECK(rec->rpm >= 0 || rec->rpm == CR_KEY_RPM_UNSET);
        (void)cr_key_model_allowed(rec, "gpt-4o-mini");
        (void)cr_key_usability(rec, apr_time_now());

        json = cr_key_record_to_json(p, rec, (int)(size & 1));
        FUZZ_CHECK(json != NULL);
        again = cr_key_record_parse(p, json, strlen(json), &err);
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(strcmp(again->id, rec->id) == 0);
        FUZZ_CHECK(strcmp(again->name, rec->name) == 0);
        FUZZ_CHECK(again->rpm == rec->rpm && again->status == rec->status);
        FUZZ_CHECK(again->models->nelts == rec->models->nelts);
        for (i = 0; i < rec->models->nelts; i++) {
            FUZZ_CHECK(strcmp(APR_ARRAY_IDX(again->models, i, const char *),
                              APR_ARRAY_IDX(rec->models, i, const char *))
                       == 0);
        }
        /* Whole seconds survive the round trip. */
        FUZZ_CHECK(apr_time_sec(again->created_at)
                   == apr_time_sec(rec->created_at));
        FUZZ_CHECK(apr_time_sec(again->expires_at)
                   == apr_time_sec(rec->expires_at));
    }

    list = fuzz_strdup(p, data, size);
    models = cr_key_parse_models(p, list);
    if (models != NULL) {
        FUZZ_CHECK(models->nelts > 0);
        for (i = 0; i < models->nelts; i++) {
            const char *g = APR_ARRAY_IDX(models, i, const char *);
            FUZZ_CHECK(g[0] != '\0' && strlen(g) <= 255);
        }
    }

    apr_pool_destroy(p);
    return 0;
}
