/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_body.c: request body inspection (cr_body_inspect,
 * cr_body_inspect_stream, cr_body_content_type_is_json).  The first byte
 * chooses the size of the pieces the streaming reader hands out (as
 * brigades do); the rest is the body.  Both ways must agree.
 */

#include "fuzz_common.h"
#include "cr_body.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos, piece;
} piece_reader;

static apr_size_t read_pieces(void *buf, apr_size_t len, void *baton)
{
    piece_reader *r = baton;
    size_t n = r->size - r->pos;

    if (n > r->piece) {
        n = r->piece;
    }
    if (n > len) {
        n = len;
    }
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    cr_body_info_t whole, streamed;
    cr_body_status_e st_whole, st_stream;
    piece_reader reader;
    char *ctype;

    if (size < 1) {
        return 0;
    }
    apr_pool_create(&p, fuzz_root_pool);
    reader.data = data + 1;
    reader.size = size - 1;
    reader.pos = 0;
    /* Small pieces, or pieces around the size of Jansson's own buffer
     * (1024), where a read ends mid-character or mid-escape. */
    reader.piece = data[0] < 200 ? (size_t)data[0] % 17 + 1
                                 : (size_t)(data[0] - 200) * 19 + 1;

    st_whole = cr_body_inspect(p, (const char *)data + 1, size - 1, &whole);
    st_stream = cr_body_inspect_stream(p, read_pieces, &reader, &streamed);

    /* The streaming path skips the plain text of strings (cr_body.c,
     * CR_BODY_STRING_KEEP) but checks it as Jansson would: both ways must
     * come to the same verdict on every input. */
    FUZZ_CHECK(st_whole == st_stream);
    if (st_whole == CR_BODY_OK) {
        FUZZ_CHECK(whole.model != NULL && streamed.model != NULL);
        FUZZ_CHECK(strcmp(whole.model, streamed.model) == 0);
        FUZZ_CHECK(whole.model[0] != '\0'
                   && strlen(whole.model) <= CR_BODY_MAX_MODEL_LEN);
        FUZZ_CHECK(whole.stream == streamed.stream);
        FUZZ_CHECK(whole.detail == NULL);
    }
    else {
        FUZZ_CHECK(whole.model == NULL && whole.detail != NULL);
    }
    if (st_stream == CR_BODY_OK) {
        FUZZ_CHECK(streamed.model != NULL && streamed.detail == NULL);
    }
    else {
        FUZZ_CHECK(streamed.model == NULL && streamed.detail != NULL);
    }

    /* The same bytes as a Content-Type header value. */
    ctype = fuzz_strdup(p, data + 1, size - 1);
    (void)cr_body_content_type_is_json(ctype);

    apr_pool_destroy(p);
    return 0;
}
