/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_num.h: the decimal text of integers, written where it goes.  The
 * request path writes a handful of numbers per request (rate-limit
 * headers, token counts, durations); each is written once, in place, two
 * digits a division, with no buffer to copy from, no allocation and (being
 * inline) no call.
 */

#ifndef CR_NUM_H
#define CR_NUM_H

#include <string.h>

#include <apr.h>

/* Longest text cr_num_put_int64 writes: a sign and 19 digits, or 20
 * digits for cr_num_put_uint64 (no NUL is written). */
#define CR_NUM_TEXT_MAX 20

/* "00" "01" ... "99", and 10^0 ... 10^19 (cr_num.c). */
extern const char cr_num_digit_pairs[200];
extern const apr_uint64_t cr_num_powers_of_ten[20];

/* How many digits u has, without a loop: 1233 / 4096 is just above
 * log10(2), so t + 1 below is the digit count of the largest number of
 * u's bit length, and u has t digits when it is below 10^t. */
static APR_INLINE unsigned int cr_num_digit_count(apr_uint64_t u)
{
    unsigned int bits, t;

    if (u < 10) {
        return 1;
    }
    bits = 64 - (unsigned int)__builtin_clzll(u);
    t = (bits * 1233) >> 12;
    return t + 1 - (u < cr_num_powers_of_ten[t]);
}

/* The decimal digits of u at out (no NUL); returns the end. */
static APR_INLINE char *cr_num_put_uint64(char *out, apr_uint64_t u)
{
    char *end = out + cr_num_digit_count(u), *d = end;
    apr_uint32_t w;

    /* From the last digit back to out, two at a time; in 32 bits once
     * the rest fits (a cheaper division, and the usual case). */
    while (u > APR_UINT32_MAX) {
        apr_uint64_t q = u / 100;

        d -= 2;
        memcpy(d, cr_num_digit_pairs + (u - q * 100) * 2, 2);
        u = q;
    }
    w = (apr_uint32_t)u;
    while (w >= 100) {
        apr_uint32_t q = w / 100;

        d -= 2;
        memcpy(d, cr_num_digit_pairs + (w - q * 100) * 2, 2);
        w = q;
    }
    if (w >= 10) {
        memcpy(d - 2, cr_num_digit_pairs + w * 2, 2);
    }
    else {
        d[-1] = (char)('0' + w);
    }
    return end;
}

/* The decimal text of v at out, with a '-' when it is negative (no NUL);
 * returns the end. */
static APR_INLINE char *cr_num_put_int64(char *out, apr_int64_t v)
{
    if (v < 0) {
        *out++ = '-';
        return cr_num_put_uint64(out, 0 - (apr_uint64_t)v);
    }
    return cr_num_put_uint64(out, (apr_uint64_t)v);
}

#endif /* CR_NUM_H */
