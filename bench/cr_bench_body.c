/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_bench_body.c: the body inspection alone, for callgrind.  Reads each
 * file named on the command line and inspects it as the gateway does: in
 * pieces of 8000 bytes (the size of the buckets a body arrives in), once
 * through bench_inspect(), the function callgrind is told to count (after
 * one warm-up run through bench_warm(), which it does not count):
 *
 *   cc -O2 -I. $(pkg-config --cflags apr-1) -o cr_bench_body \
 *       bench/cr_bench_body.c cr_body.c cr_json.c -lapr-1 -ljansson
 *   python3 bench/agent_bodies.py /tmp/bodies
 *   valgrind --tool=callgrind --toggle-collect=bench_inspect \
 *       ./cr_bench_body /tmp/bodies/claude_code.json
 *
 * (bench/body_callgrind.sh does all of it and prints instructions per
 * byte for each agent body.)  It uses the push interface of cr_body.h
 * where there is one (what mod_clawdrouter_body.c calls), else
 * cr_body_inspect_stream, so that it also measures older cores.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "cr_body.h"

#define PIECE 8000

typedef struct {
    const char *data;
    apr_size_t len, pos;
} reader;

#ifndef CR_BODY_MAX_DEPTH
static apr_size_t read_piece(void *buf, apr_size_t len, void *baton)
{
    reader *r = baton;
    apr_size_t n = r->len - r->pos;

    if (n > len) {
        n = len;
    }
    if (n > PIECE) {
        n = PIECE;
    }
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return n;
}
#endif

static inline cr_body_status_e inspect(apr_pool_t *p, reader *r,
                                       cr_body_info_t *info)
{
#ifdef CR_BODY_MAX_DEPTH
    cr_body_scan_t s;

    cr_body_scan_init(&s);
    while (r->pos < r->len) {
        apr_size_t n = r->len - r->pos < PIECE ? r->len - r->pos : PIECE;
        cr_body_scan(&s, r->data + r->pos, n);
        r->pos += n;
    }
    return cr_body_scan_finish(p, &s, info);
#else
    return cr_body_inspect_stream(p, read_piece, r, info);
#endif
}

/* The counted run, and the same code once before it, not counted. */
__attribute__((noinline))
cr_body_status_e bench_inspect(apr_pool_t *p, reader *r, cr_body_info_t *info);
__attribute__((noinline))
cr_body_status_e bench_warm(apr_pool_t *p, reader *r, cr_body_info_t *info);

cr_body_status_e bench_inspect(apr_pool_t *p, reader *r, cr_body_info_t *info)
{
    return inspect(p, r, info);
}

cr_body_status_e bench_warm(apr_pool_t *p, reader *r, cr_body_info_t *info)
{
    return inspect(p, r, info);
}

int main(int argc, char **argv)
{
    apr_pool_t *pool;
    int i;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    for (i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        char *data;
        long len;
        reader r;
        cr_body_info_t info;
        cr_body_status_e st;

        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            return 1;
        }
        rewind(f);
        data = malloc((size_t)len + 1);
        if (data == NULL || fread(data, 1, (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            return 1;
        }
        fclose(f);
        r.data = data;
        r.len = (apr_size_t)len;
        r.pos = 0;
        memset(&info, 0, sizeof(info));
        /* Once outside the count: lazy symbol binding and the pool's
         * first block are one-time costs, not the inspection's. */
        (void)bench_warm(pool, &r, &info);
        r.pos = 0;
        st = bench_inspect(pool, &r, &info);
        printf("%s: %ld bytes, status %d, model %s\n", argv[i], len, (int)st,
               info.model ? info.model : "-");
        free(data);
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
