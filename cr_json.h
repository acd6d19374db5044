/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_json.h: the only door to Jansson.
 *
 * A cr_json_t is a handle on a Jansson value bound to an APR pool: the
 * handle holds one reference, dropped by a cleanup of that pool, so no JSON
 * value outlives (or leaks past) the request or command that made it.
 * Nothing outside cr_json.c includes <jansson.h>.
 */
#ifndef CR_JSON_H
#define CR_JSON_H

#include <apr_pools.h>

typedef struct cr_json_t cr_json_t;

typedef enum {
    CR_JSON_OBJECT, CR_JSON_ARRAY, CR_JSON_STRING, CR_JSON_INTEGER,
    CR_JSON_REAL, CR_JSON_TRUE, CR_JSON_FALSE, CR_JSON_NULL
} cr_json_type_e;

/* Parse flags. */
#define CR_JSON_REJECT_DUPLICATES 0x1   /* an object with a repeated member is an error */

/* Dump flags. */
#define CR_JSON_COMPACT 0x0
#define CR_JSON_PRETTY  0x1

/* Source of bytes for cr_json_parse_stream(): fill buf with up to len bytes,
 * return the count, 0 at the end, (apr_size_t)-1 on a read error. */
typedef apr_size_t (*cr_json_read_fn)(void *buf, apr_size_t len, void *baton);

/* Parse a whole text.  On failure returns NULL and, if err is not NULL,
 * a short message (allocated from p) describing what is wrong and where. */
cr_json_t *cr_json_parse(apr_pool_t *p, const char *data, apr_size_t len,
                         unsigned int flags, const char **err);
cr_json_t *cr_json_parse_stream(apr_pool_t *p, cr_json_read_fn read_fn,
                                void *baton, unsigned int flags,
                                const char **err);

/* The same, also telling why a parse failed (for callers that answer
 * differently, e.g. to a repeated member); kind may be NULL. */
typedef enum {
    CR_JSON_ERR_NONE = 0,
    CR_JSON_ERR_SYNTAX,        /* not JSON: bad token, bad UTF-8, NUL, truncated */
    CR_JSON_ERR_TRAILING,      /* a value followed by more than whitespace */
    CR_JSON_ERR_DUPLICATE,     /* repeated member (CR_JSON_REJECT_DUPLICATES) */
    CR_JSON_ERR_TOO_DEEP,      /* nesting beyond the parser's depth limit */
    CR_JSON_ERR_READ,          /* the read callback reported an error */
    CR_JSON_ERR_OTHER          /* out of memory and the like */
} cr_json_error_e;

cr_json_t *cr_json_parse_ex(apr_pool_t *p, const char *data, apr_size_t len,
                            unsigned int flags, const char **err,
                            cr_json_error_e *kind);
cr_json_t *cr_json_parse_stream_ex(apr_pool_t *p, cr_json_read_fn read_fn,
                                   void *baton, unsigned int flags,
                                   const char **err, cr_json_error_e *kind);
/* The same, also giving the byte offset in the stream (as read) at which
 * the parser stopped on an error; position may be NULL. */
cr_json_t *cr_json_parse_stream_at(apr_pool_t *p, cr_json_read_fn read_fn,
                                   void *baton, unsigned int flags,
                                   const char **err, cr_json_error_e *kind,
                                   apr_size_t *position);

cr_json_t *cr_json_new_object(apr_pool_t *p);
cr_json_t *cr_json_new_array(apr_pool_t *p);

cr_json_type_e cr_json_type(const cr_json_t *j);

/* Members and elements; the result is a new handle from p, or NULL. */
cr_json_t *cr_json_get(apr_pool_t *p, const cr_json_t *obj, const char *name);
apr_size_t cr_json_array_size(const cr_json_t *arr);
/* Number of members of an object (0 for anything else). */
apr_size_t cr_json_object_size(const cr_json_t *obj);
cr_json_t *cr_json_array_get(apr_pool_t *p, const cr_json_t *arr, apr_size_t i);

/* Scalar values: NULL / non-zero return when the value has another type.
 * A string with an embedded NUL is treated as not a string. */
const char *cr_json_string(apr_pool_t *p, const cr_json_t *j);
int cr_json_integer(const cr_json_t *j, apr_int64_t *value);
int cr_json_is_null(const cr_json_t *j);
int cr_json_is_true(const cr_json_t *j);

/* Object member setters; value NULL stores JSON null.  Return 0 on success. */
int cr_json_set_string(cr_json_t *obj, const char *name, const char *value);
int cr_json_set_integer(cr_json_t *obj, const char *name, apr_int64_t value);
int cr_json_set_bool(cr_json_t *obj, const char *name, int value);
int cr_json_set_null(cr_json_t *obj, const char *name);
int cr_json_set(cr_json_t *obj, const char *name, cr_json_t *value);
int cr_json_array_append_string(cr_json_t *arr, const char *value);
int cr_json_array_append(cr_json_t *arr, cr_json_t *value);

/* Serialise (keys in insertion order); NULL on failure. */
const char *cr_json_dump(apr_pool_t *p, const cr_json_t *j, unsigned int flags);

/* A JSON string literal (with quotes) for value, for callers that build
 * small documents by hand. */
const char *cr_json_quote(apr_pool_t *p, const char *value);

#endif /* CR_JSON_H */
