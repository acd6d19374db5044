/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_body.h: inspection of a request body (SPEC section 4.3): it must be a
 * JSON object with a string "model".  The body itself is never changed;
 * the gateway forwards the bytes it read.
 */
#ifndef CR_BODY_H
#define CR_BODY_H

#include <apr_pools.h>
#include "cr_json.h"

typedef enum {
    CR_BODY_OK = 0,
    CR_BODY_EMPTY,             /* no bytes at all */
    CR_BODY_INVALID_JSON,      /* syntax error, bad UTF-8, too deep, trailing data */
    CR_BODY_DUPLICATE_MEMBER,  /* an object repeats a member name */
    CR_BODY_NOT_OBJECT,        /* valid JSON but not an object */
    CR_BODY_NO_MODEL,          /* no "model" member */
    CR_BODY_MODEL_NOT_STRING,  /* "model" is not a non-empty string */
    CR_BODY_READ_ERROR         /* the read callback failed */
} cr_body_status_e;

typedef struct {
    const char *model;     /* set on CR_BODY_OK */
    int stream;            /* top-level "stream" is true */
    const char *detail;    /* on failure: why, for the error message (no body
                            * content beyond a position is quoted) */
    /* Byte offsets into the body as received (set on CR_BODY_OK; only the
     * top-level members count). */
    apr_off_t object_end;          /* offset of the top-level object's '}' */
    int stream_options;            /* 0 absent, 1 object, 2 null, 3 other type */
    apr_off_t stream_options_start;/* its value: first byte ... */
    apr_off_t stream_options_end;  /* ... one past its last byte */
    int include_usage;             /* in stream_options: 0 absent, 1 true,
                                    * 2 false, 3 other value */
    apr_off_t include_usage_start; /* that member's value span */
    apr_off_t include_usage_end;
} cr_body_info_t;

/* Longest "model" accepted (longer is CR_BODY_MODEL_NOT_STRING). */
#define CR_BODY_MAX_MODEL_LEN 256

cr_body_status_e cr_body_inspect(apr_pool_t *p, const char *data,
                                 apr_size_t len, cr_body_info_t *info);
/* The same over a body delivered in pieces (no copy into one buffer).
 * The plain text of string values is checked in cr_body.c and skipped on
 * its way to the parser (a top-level value past its 512th byte, a nested
 * value altogether), so the verdict is the same as cr_body_inspect's; only
 * the wording of some errors differs. */
cr_body_status_e cr_body_inspect_stream(apr_pool_t *p, cr_json_read_fn read_fn,
                                        void *baton, cr_body_info_t *info);

/* Is this Content-Type one whose body the gateway inspects as JSON?
 * NULL/empty (absent) and application/json (any parameters, any case, also
 * "+json" suffixes) are; multipart/form-data and everything else is not. */
int cr_body_content_type_is_json(const char *content_type);

#endif /* CR_BODY_H */
