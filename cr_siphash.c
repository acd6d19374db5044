/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_siphash.c: SipHash-2-4 from the paper's definition (section 2):
 *
 *   v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom",
 *   v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes";
 *   the message in 64-bit little-endian words m_i, the last one padded
 *   with zeros and carrying the length mod 256 in its top byte;
 *   per word: v3 ^= m; c = 2 SipRounds; v0 ^= m;
 *   then v2 ^= 0xff, d = 4 SipRounds, the output v0 ^ v1 ^ v2 ^ v3.
 *
 * The 128-bit output (the authors' later extension, as their reference
 * code computes it): v1 ^= 0xee at the start, v2 ^= 0xee instead of 0xff
 * before the first four rounds (its output the low half), then
 * v1 ^= 0xdd, four more rounds, and the high half.
 */

#include "cr_siphash.h"

#define ROTL(x, b) (apr_uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                  \
    do {                                          \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0;    \
        v0 = ROTL(v0, 32);                        \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;    \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;    \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2;    \
        v2 = ROTL(v2, 32);                        \
    } while (0)

/* A 64-bit little-endian word, whatever the host's byte order (one load
 * on a little-endian host). */
static APR_INLINE apr_uint64_t load_le64(const unsigned char *p)
{
    return (apr_uint64_t)p[0] | (apr_uint64_t)p[1] << 8
           | (apr_uint64_t)p[2] << 16 | (apr_uint64_t)p[3] << 24
           | (apr_uint64_t)p[4] << 32 | (apr_uint64_t)p[5] << 40
           | (apr_uint64_t)p[6] << 48 | (apr_uint64_t)p[7] << 56;
}

static void store_le64(unsigned char *p, apr_uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* The whole function; wide: the 128-bit output. */
static cr_siphash128_t siphash24(const unsigned char *key, const void *data,
                                 apr_size_t len, int wide)
{
    const unsigned char *in = data;
    const unsigned char *end = in + (len & ~(apr_size_t)7);
    apr_uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    apr_uint64_t v0 = k0 ^ APR_UINT64_C(0x736f6d6570736575);
    apr_uint64_t v1 = k1 ^ APR_UINT64_C(0x646f72616e646f6d);
    apr_uint64_t v2 = k0 ^ APR_UINT64_C(0x6c7967656e657261);
    apr_uint64_t v3 = k1 ^ APR_UINT64_C(0x7465646279746573);
    apr_uint64_t m, b = (apr_uint64_t)len << 56;
    cr_siphash128_t out;

    if (wide) {
        v1 ^= 0xee;
    }
    for (; in != end; in += 8) {
        m = load_le64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    switch (len & 7) {
    case 7: b |= (apr_uint64_t)in[6] << 48; /* fall through */
    case 6: b |= (apr_uint64_t)in[5] << 40; /* fall through */
    case 5: b |= (apr_uint64_t)in[4] << 32; /* fall through */
    case 4: b |= (apr_uint64_t)in[3] << 24; /* fall through */
    case 3: b |= (apr_uint64_t)in[2] << 16; /* fall through */
    case 2: b |= (apr_uint64_t)in[1] << 8;  /* fall through */
    case 1: b |= (apr_uint64_t)in[0];       /* fall through */
    default: break;
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;

    v2 ^= wide ? 0xee : 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out.lo = v0 ^ v1 ^ v2 ^ v3;
    out.hi = 0;
    if (wide) {
        v1 ^= 0xdd;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        out.hi = v0 ^ v1 ^ v2 ^ v3;
    }
    return out;
}

apr_uint64_t cr_siphash24_64(const unsigned char key[CR_SIPHASH_KEY_LEN],
                             const void *data, apr_size_t len)
{
    return siphash24(key, data, len, 0).lo;
}

cr_siphash128_t cr_siphash24_128(const unsigned char key[CR_SIPHASH_KEY_LEN],
                                 const void *data, apr_size_t len)
{
    return siphash24(key, data, len, 1);
}

void cr_siphash128_bytes(const cr_siphash128_t *tag, unsigned char out[16])
{
    store_le64(out, tag->lo);
    store_le64(out + 8, tag->hi);
}

int cr_siphash128_equal(const cr_siphash128_t *a, const cr_siphash128_t *b)
{
    apr_uint64_t d = (a->lo ^ b->lo) | (a->hi ^ b->hi);

    /* 1 when d is 0, without a branch on the data: (d | -d) has its top
     * bit set exactly when d is not 0. */
    return (int)(1 & (((d | (0 - d)) >> 63) ^ 1));
}
