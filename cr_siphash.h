/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_siphash.h: SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012), with the 64-bit output of the paper and the
 * 128-bit output of the authors' reference code (vectors.h, vectors_sip128).
 *
 * A keyed function: under a secret 16-byte key its output cannot be told
 * from random, so it tags short strings (the key cache's index and check,
 * cr_keycache.c) without the cost of SHA-256.  Not a hash for storage: a
 * tag is only as secret as its key.
 */
#ifndef CR_SIPHASH_H
#define CR_SIPHASH_H

#include <apr.h>

#define CR_SIPHASH_KEY_LEN 16

/* A 128-bit tag: the two 64-bit halves, as the reference code writes them
 * (each little-endian: bytes 0-7 are lo, 8-15 hi). */
typedef struct {
    apr_uint64_t lo;
    apr_uint64_t hi;
} cr_siphash128_t;

/* SipHash-2-4, 64-bit output, of len bytes at data under key. */
apr_uint64_t cr_siphash24_64(const unsigned char key[CR_SIPHASH_KEY_LEN],
                             const void *data, apr_size_t len);

/* SipHash-2-4, 128-bit output. */
cr_siphash128_t cr_siphash24_128(const unsigned char key[CR_SIPHASH_KEY_LEN],
                                 const void *data, apr_size_t len);

/* The tag as the reference code's 16 output bytes. */
void cr_siphash128_bytes(const cr_siphash128_t *tag, unsigned char out[16]);

/* Are the two tags equal?  Branch-free over all 128 bits. */
int cr_siphash128_equal(const cr_siphash128_t *a, const cr_siphash128_t *b);

#endif /* CR_SIPHASH_H */
