/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_load.h: unaligned loads of 2, 4 and 8 bytes, to compare a name with
 * a word of a literal at once (the literal's words are constants once
 * compiled; memcpy of a constant size is one load).
 */

#ifndef CR_LOAD_H
#define CR_LOAD_H

#include <string.h>

#include <apr.h>

static APR_INLINE apr_uint64_t cr_load8(const void *p)
{
    apr_uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static APR_INLINE apr_uint32_t cr_load4(const void *p)
{
    apr_uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static APR_INLINE apr_uint16_t cr_load2(const void *p)
{
    apr_uint16_t v;

    memcpy(&v, p, 2);
    return v;
}

#endif /* CR_LOAD_H */
