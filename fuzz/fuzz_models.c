/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_models.c: an upstream's answer to the gateway's GET /models
 * (cr_models_http_parse, then cr_models_parse_list on a 200's body).
 * Input: byte 0 picks where the answer is cut in two; the rest is what
 * the upstream sent.
 */

#include "fuzz_common.h"
#include "cr_models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *buf, *body = NULL, *body2 = NULL;
    apr_size_t len, cut, blen = 0, blen2 = 0;
    cr_http_parse_e whole, part;
    int status = 0, status2 = 0;

    if (size < 1) {
        return 0;
    }
    apr_pool_create(&p, fuzz_root_pool);
    len = size - 1;
    buf = fuzz_strdup(p, data + 1, len);
    cut = len ? (apr_size_t)data[0] * len / 255 : 0;

    whole = cr_models_http_parse(p, buf, len, 1, &status, &body, &blen);
    if (whole == CR_HTTP_COMPLETE) {
        FUZZ_CHECK(status >= 200 && status <= 999);
        FUZZ_CHECK(blen <= len && body[blen] == '\0');
    }
    /* What a first read completes, more bytes do not change. */
    part = cr_models_http_parse(p, buf, cut, 0, &status2, &body2, &blen2);
    if (part == CR_HTTP_COMPLETE) {
        int status3 = 0;
        const char *body3 = NULL;
        apr_size_t blen3 = 0;

        FUZZ_CHECK(cr_models_http_parse(p, buf, len, 0, &status3, &body3,
                                        &blen3) == CR_HTTP_COMPLETE);
        FUZZ_CHECK(status3 == status2 && blen3 == blen2
                   && memcmp(body3, body2, blen2) == 0);
    }
    if (whole == CR_HTTP_COMPLETE && status == 200) {
        apr_array_header_t *models = NULL;
        const char *err = NULL;
        int i;

        if (cr_models_parse_list(p, body, blen, "up", &models, &err)
            == APR_SUCCESS) {
            for (i = 0; i < models->nelts; i++) {
                const cr_model_t *m = &APR_ARRAY_IDX(models, i, cr_model_t);
                apr_size_t n = strlen(m->id), j;

                FUZZ_CHECK(n >= 1 && n <= CR_MODELS_MAX_ID);
                for (j = 0; j < n; j++) {
                    FUZZ_CHECK((unsigned char)m->id[j] >= 0x20
                               && m->id[j] != 0x7f);
                }
            }
            FUZZ_CHECK(cr_models_list_body(p, CR_PROTO_OPENAI, models)
                       != NULL);
            FUZZ_CHECK(cr_models_list_body(p, CR_PROTO_ANTHROPIC, models)
                       != NULL);
        }
        else {
            FUZZ_CHECK(err != NULL);
        }
    }
    apr_pool_destroy(p);
    return 0;
}
