/* Licensed under the Apache License, Version 2.0. */

/* cr_reqid.c: Request-Id validation, choice and generation (SPEC section 6). */

#include <pthread.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "cr_reqid.h"

#define REQID_PREFIX "req_"
#define REQID_RANDOM_LEN 24

/* Random bytes are drawn from the system's secure source in batches of
 * this size per thread (one system call for about twenty ids, instead of
 * one for every id), and each byte is used for at most one id. */
#define RANDOM_BATCH 512

#define BASE62 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* A random byte's character: base62[byte % 62] for the bytes below
 * 248 = 4 * 62, NUL for the bytes at or above it, which are dropped so
 * that every base62 character is equally likely (no modulo bias). */
static const char byte_char[256 + 1] =
    BASE62 BASE62 BASE62 BASE62 "\0\0\0\0\0\0\0";

/* Each thread's unused random bytes.  A forked child must not use the
 * bytes its parent still holds (both would make the same ids): every fork
 * moves fork_generation on, and a batch drawn in another generation is
 * thrown away. */
typedef struct {
    unsigned char bytes[RANDOM_BATCH];
    apr_size_t next;                /* first unused byte */
    unsigned long generation;       /* fork_generation when drawn */
} random_batch;

static __thread random_batch batch;          /* generation 0: none yet */
static volatile unsigned long fork_generation = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int batching = 0;            /* the fork handler is in place */

static void on_fork_child(void)
{
    fork_generation++;
}

static void watch_forks(void)
{
    batching = pthread_atfork(NULL, NULL, on_fork_child) == 0;
}

static int reqid_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9')
        || c == '.' || c == '_' || c == ':' || c == '-';
}

int cr_reqid_valid(const char *id)
{
    apr_size_t n;

    if (id == NULL) {
        return 0;
    }
    for (n = 0; id[n] != '\0'; n++) {
        if (n >= CR_REQID_MAX_LEN || !reqid_char_ok((unsigned char)id[n])) {
            return 0;
        }
    }
    return n >= 1;
}

/* The calling thread's batch (one look-up of the thread's storage per
 * id, not one per byte). */
static random_batch *thread_batch(void) __attribute__((noinline));
static random_batch *thread_batch(void)
{
    return &batch;
}

/* b with at least one unused byte; 0 when the system gives no random
 * bytes. */
static int refill(random_batch *b)
{
    unsigned long generation = fork_generation;
    apr_size_t want;

    if (b->generation == generation && b->next < sizeof(b->bytes)) {
        return 1;
    }
    pthread_once(&fork_once, watch_forks);
    want = batching ? sizeof(b->bytes) : 64;
    /* Without the fork handler, draw only what one id needs, per id. */
    if (apr_generate_random_bytes(b->bytes + sizeof(b->bytes) - want, want)
        != APR_SUCCESS) {
        b->generation = 0;
        return 0;
    }
    b->next = sizeof(b->bytes) - want;
    b->generation = batching ? generation : 0;
    return 1;
}

/* A byte of w is 248 or more (one that is dropped): the bytes of
 * (w & 0xf8..) ^ 0xf8.. are zero exactly there. */
static int drops_any(apr_uint64_t w)
{
    const apr_uint64_t high5 = APR_UINT64_C(0xf8f8f8f8f8f8f8f8);
    const apr_uint64_t ones = APR_UINT64_C(0x0101010101010101);
    const apr_uint64_t tops = APR_UINT64_C(0x8080808080808080);
    apr_uint64_t t = (w & high5) ^ high5;

    return ((t - ones) & ~t & tops) != 0;
}

const char *cr_reqid_generate(apr_pool_t *p)
{
    char *id = apr_palloc(p, sizeof(REQID_PREFIX) + REQID_RANDOM_LEN);
    char *out = id + sizeof(REQID_PREFIX) - 1;
    random_batch *b;
    apr_size_t have = 0;
    int failures = 0;

    b = thread_batch();
    memcpy(id, REQID_PREFIX, sizeof(REQID_PREFIX) - 1);
    while (have < REQID_RANDOM_LEN) {
        const unsigned char *c, *end;

        if (!refill(b)) {
            /* No entropy source: an id is not a secret, so stay unique
             * (time and address) rather than fail the request. */
            if (++failures > 3) {
                return apr_psprintf(p, REQID_PREFIX "t%" APR_TIME_T_FMT
                                    "x%" APR_UINT64_T_HEX_FMT,
                                    apr_time_now(),
                                    (apr_uint64_t)(apr_uintptr_t)id);
            }
            continue;
        }
        c = b->bytes + b->next;
        end = b->bytes + sizeof(b->bytes);
        while (have < REQID_RANDOM_LEN && c < end) {
            apr_uint64_t w;
            int i, n;

            if (REQID_RANDOM_LEN - have >= 8 && end - c >= 8) {
                memcpy(&w, c, sizeof(w));
                if (!drops_any(w)) {
                    /* The usual case: eight characters. */
                    char *o = out + have;

                    o[0] = byte_char[c[0]];
                    o[1] = byte_char[c[1]];
                    o[2] = byte_char[c[2]];
                    o[3] = byte_char[c[3]];
                    o[4] = byte_char[c[4]];
                    o[5] = byte_char[c[5]];
                    o[6] = byte_char[c[6]];
                    o[7] = byte_char[c[7]];
                    have += 8;
                    c += 8;
                    continue;
                }
                n = 8;
            }
            else {
                n = 1;
            }
            /* Byte by byte: out[have] is written for every byte and kept
             * for the accepted ones (at most n more fit). */
            for (i = 0; i < n; i++) {
                char ch = byte_char[*c++];

                out[have] = ch;
                have += ch != '\0';
            }
        }
        b->next = (apr_size_t)(c - b->bytes);
    }
    out[have] = '\0';
    return id;
}

const char *cr_reqid_choose(apr_pool_t *p, const char *request_id,
                            const char *x_request_id,
                            const char *x_client_request_id)
{
    if (cr_reqid_valid(request_id)) {
        return apr_pstrdup(p, request_id);
    }
    if (cr_reqid_valid(x_request_id)) {
        return apr_pstrdup(p, x_request_id);
    }
    if (cr_reqid_valid(x_client_request_id)) {
        return apr_pstrdup(p, x_client_request_id);
    }
    return cr_reqid_generate(p);
}
