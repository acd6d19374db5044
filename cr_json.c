/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_json.c: Jansson behind a pool-bound handle.  This is the only file
 * that includes <jansson.h>.
 *
 * Every handle owns exactly one reference to its Jansson value; a cleanup
 * on the handle's pool drops it.  Values shared between handles (a member
 * fetched with cr_json_get, a value stored with cr_json_set) are kept alive
 * by Jansson's reference counting, so pools may be destroyed in any order.
 */

#include <string.h>
#include <stdlib.h>

#include <apr_strings.h>
#include <jansson.h>

#include "cr_json.h"

struct cr_json_t {
    json_t *json;
};

static apr_status_t json_release(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

/* Wrap a value the caller owns one reference to; the reference passes to
 * the handle (and is dropped at once if the handle cannot be made). */
static cr_json_t *wrap_owned(apr_pool_t *p, json_t *json)
{
    cr_json_t *j;

    if (json == NULL) {
        return NULL;
    }
    j = apr_palloc(p, sizeof(*j));
    j->json = json;
    apr_pool_cleanup_register(p, json, json_release, apr_pool_cleanup_null);
    return j;
}

/* Wrap a borrowed value: the handle takes a reference of its own. */
static cr_json_t *wrap_borrowed(apr_pool_t *p, json_t *json)
{
    if (json == NULL) {
        return NULL;
    }
    return wrap_owned(p, json_incref(json));
}

/* Our own wording for a parse failure.  Jansson's text may quote the input
 * ("invalid token near 'sk-...'"), and a request body may hold secrets, so
 * only the error code and the position are used. */
static const char *describe_error(apr_pool_t *p, const json_error_t *error,
                                  cr_json_error_e *kind)
{
    const char *what;
    cr_json_error_e k;

    switch (json_error_code(error)) {
    case json_error_duplicate_key:
        k = CR_JSON_ERR_DUPLICATE;
        what = "an object repeats a member name";
        break;
    case json_error_stack_overflow:
        k = CR_JSON_ERR_TOO_DEEP;
        what = "arrays and objects are nested too deeply";
        break;
    case json_error_end_of_input_expected:
        k = CR_JSON_ERR_TRAILING;
        what = "unexpected data after the JSON value";
        break;
    case json_error_premature_end_of_input:
        k = CR_JSON_ERR_SYNTAX;
        what = "the JSON text ends too early";
        break;
    case json_error_invalid_utf8:
        k = CR_JSON_ERR_SYNTAX;
        what = "the text is not valid UTF-8";
        break;
    case json_error_null_character:
    case json_error_null_byte_in_key:
        k = CR_JSON_ERR_SYNTAX;
        what = "a string contains a NUL character";
        break;
    case json_error_numeric_overflow:
        k = CR_JSON_ERR_SYNTAX;
        what = "a number is too large";
        break;
    case json_error_out_of_memory:
        k = CR_JSON_ERR_OTHER;
        what = "out of memory";
        break;
    case json_error_invalid_syntax:
    default:
        k = CR_JSON_ERR_SYNTAX;
        what = "invalid JSON syntax";
        break;
    }
    if (kind) {
        *kind = k;
    }
    return apr_psprintf(p, "%s (line %d, column %d, position %d)", what,
                        error->line, error->column, error->position);
}

static size_t load_flags(unsigned int flags)
{
    /* No JSON_DISABLE_EOF_CHECK (trailing data is an error), no
     * JSON_ALLOW_NUL (a NUL in a string is an error), any value at the top
     * level (the caller checks the type it wants). */
    size_t jflags = JSON_DECODE_ANY;

    if (flags & CR_JSON_REJECT_DUPLICATES) {
        jflags |= JSON_REJECT_DUPLICATES;
    }
    return jflags;
}

cr_json_t *cr_json_parse_ex(apr_pool_t *p, const char *data, apr_size_t len,
                            unsigned int flags, const char **err,
                            cr_json_error_e *kind)
{
    json_error_t error;
    json_t *json;

    if (kind) {
        *kind = CR_JSON_ERR_NONE;
    }
    if (data == NULL) {
        data = "";
        len = 0;
    }
    json = json_loadb(data, len, load_flags(flags), &error);
    if (json == NULL) {
        const char *msg = describe_error(p, &error, kind);
        if (err) {
            *err = msg;
        }
        return NULL;
    }
    return wrap_owned(p, json);
}

cr_json_t *cr_json_parse(apr_pool_t *p, const char *data, apr_size_t len,
                         unsigned int flags, const char **err)
{
    return cr_json_parse_ex(p, data, len, flags, err, NULL);
}

typedef struct {
    cr_json_read_fn read_fn;
    void *baton;
    int failed;
} stream_ctx;

/* Jansson treats a failed read like the end of the input; remember it so
 * the caller hears "read error", not "truncated JSON". */
static size_t stream_read(void *buffer, size_t buflen, void *data)
{
    stream_ctx *ctx = data;
    apr_size_t n;

    if (ctx->failed) {
        return (size_t)-1;
    }
    n = ctx->read_fn(buffer, buflen, ctx->baton);
    if (n == (apr_size_t)-1 || n > buflen) {
        ctx->failed = 1;
        return (size_t)-1;
    }
    return n;
}

cr_json_t *cr_json_parse_stream_ex(apr_pool_t *p, cr_json_read_fn read_fn,
                                   void *baton, unsigned int flags,
                                   const char **err, cr_json_error_e *kind)
{
    return cr_json_parse_stream_at(p, read_fn, baton, flags, err, kind, NULL);
}

cr_json_t *cr_json_parse_stream_at(apr_pool_t *p, cr_json_read_fn read_fn,
                                   void *baton, unsigned int flags,
                                   const char **err, cr_json_error_e *kind,
                                   apr_size_t *position)
{
    json_error_t error;
    json_t *json;
    stream_ctx ctx;

    if (kind) {
        *kind = CR_JSON_ERR_NONE;
    }
    if (position) {
        *position = 0;
    }
    ctx.read_fn = read_fn;
    ctx.baton = baton;
    ctx.failed = 0;
    json = json_load_callback(stream_read, &ctx, load_flags(flags), &error);
    if (ctx.failed) {
        /* A value may have parsed before the failure; it is not the whole
         * input, so it is not a result. */
        json_decref(json);
        if (kind) {
            *kind = CR_JSON_ERR_READ;
        }
        if (err) {
            *err = "reading the JSON text failed";
        }
        return NULL;
    }
    if (json == NULL) {
        const char *msg = describe_error(p, &error, kind);
        if (err) {
            *err = msg;
        }
        if (position && error.position > 0) {
            *position = (apr_size_t)error.position;
        }
        return NULL;
    }
    return wrap_owned(p, json);
}

cr_json_t *cr_json_parse_stream(apr_pool_t *p, cr_json_read_fn read_fn,
                                void *baton, unsigned int flags,
                                const char **err)
{
    return cr_json_parse_stream_ex(p, read_fn, baton, flags, err, NULL);
}

cr_json_t *cr_json_new_object(apr_pool_t *p)
{
    return wrap_owned(p, json_object());
}

cr_json_t *cr_json_new_array(apr_pool_t *p)
{
    return wrap_owned(p, json_array());
}

cr_json_type_e cr_json_type(const cr_json_t *j)
{
    if (j == NULL || j->json == NULL) {
        return CR_JSON_NULL;
    }
    switch (json_typeof(j->json)) {
    case JSON_OBJECT:  return CR_JSON_OBJECT;
    case JSON_ARRAY:   return CR_JSON_ARRAY;
    case JSON_STRING:  return CR_JSON_STRING;
    case JSON_INTEGER: return CR_JSON_INTEGER;
    case JSON_REAL:    return CR_JSON_REAL;
    case JSON_TRUE:    return CR_JSON_TRUE;
    case JSON_FALSE:   return CR_JSON_FALSE;
    case JSON_NULL:
    default:           return CR_JSON_NULL;
    }
}

cr_json_t *cr_json_get(apr_pool_t *p, const cr_json_t *obj, const char *name)
{
    if (obj == NULL || name == NULL || !json_is_object(obj->json)) {
        return NULL;
    }
    return wrap_borrowed(p, json_object_get(obj->json, name));
}

apr_size_t cr_json_array_size(const cr_json_t *arr)
{
    if (arr == NULL) {
        return 0;
    }
    /* json_array_size() is 0 for anything that is not an array. */
    return json_array_size(arr->json);
}

apr_size_t cr_json_object_size(const cr_json_t *obj)
{
    if (obj == NULL) {
        return 0;
    }
    /* json_object_size() is 0 for anything that is not an object. */
    return json_object_size(obj->json);
}

cr_json_t *cr_json_array_get(apr_pool_t *p, const cr_json_t *arr, apr_size_t i)
{
    if (arr == NULL || !json_is_array(arr->json)) {
        return NULL;
    }
    return wrap_borrowed(p, json_array_get(arr->json, i));
}

const char *cr_json_string(apr_pool_t *p, const cr_json_t *j)
{
    const char *value;
    size_t len;

    if (j == NULL || !json_is_string(j->json)) {
        return NULL;
    }
    value = json_string_value(j->json);
    len = json_string_length(j->json);
    /* A string with an embedded NUL would be silently cut short in C. */
    if (memchr(value, '\0', len) != NULL) {
        return NULL;
    }
    return apr_pstrmemdup(p, value, len);
}

int cr_json_integer(const cr_json_t *j, apr_int64_t *value)
{
    if (j == NULL || !json_is_integer(j->json)) {
        return -1;
    }
    if (value) {
        *value = (apr_int64_t)json_integer_value(j->json);
    }
    return 0;
}

int cr_json_is_null(const cr_json_t *j)
{
    return j != NULL && json_is_null(j->json);
}

int cr_json_is_true(const cr_json_t *j)
{
    return j != NULL && json_is_true(j->json);
}

/* Store a new value (one reference owned by us) as a member; the object
 * takes that reference, also on failure (json_object_set_new). */
static int set_new(cr_json_t *obj, const char *name, json_t *value)
{
    if (obj == NULL || name == NULL || !json_is_object(obj->json)) {
        json_decref(value);
        return -1;
    }
    if (value == NULL) {
        return -1;
    }
    return json_object_set_new(obj->json, name, value) == 0 ? 0 : -1;
}

int cr_json_set_string(cr_json_t *obj, const char *name, const char *value)
{
    /* json_string() refuses invalid UTF-8, which makes this fail. */
    return set_new(obj, name, value ? json_string(value) : json_null());
}

int cr_json_set_integer(cr_json_t *obj, const char *name, apr_int64_t value)
{
    return set_new(obj, name, json_integer((json_int_t)value));
}

int cr_json_set_bool(cr_json_t *obj, const char *name, int value)
{
    return set_new(obj, name, json_boolean(value));
}

int cr_json_set_null(cr_json_t *obj, const char *name)
{
    return set_new(obj, name, json_null());
}

int cr_json_set(cr_json_t *obj, const char *name, cr_json_t *value)
{
    if (value == NULL) {
        return cr_json_set_null(obj, name);
    }
    if (obj == NULL || name == NULL || !json_is_object(obj->json)
        || value->json == NULL) {
        return -1;
    }
    /* json_object_set() takes a reference of its own; the handle keeps its. */
    return json_object_set(obj->json, name, value->json) == 0 ? 0 : -1;
}

int cr_json_array_append_string(cr_json_t *arr, const char *value)
{
    json_t *s;

    if (arr == NULL || !json_is_array(arr->json)) {
        return -1;
    }
    s = value ? json_string(value) : json_null();
    if (s == NULL) {
        return -1;
    }
    return json_array_append_new(arr->json, s) == 0 ? 0 : -1;
}

int cr_json_array_append(cr_json_t *arr, cr_json_t *value)
{
    if (arr == NULL || !json_is_array(arr->json)) {
        return -1;
    }
    if (value == NULL) {
        return json_array_append_new(arr->json, json_null()) == 0 ? 0 : -1;
    }
    return json_array_append(arr->json, value->json) == 0 ? 0 : -1;
}

/* Copy a malloc()ed string from Jansson into the pool. */
static const char *pool_copy_and_free(apr_pool_t *p, char *s)
{
    const char *copy;

    if (s == NULL) {
        return NULL;
    }
    copy = apr_pstrdup(p, s);
    free(s);
    return copy;
}

const char *cr_json_dump(apr_pool_t *p, const cr_json_t *j, unsigned int flags)
{
    size_t jflags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER;

    if (j == NULL || j->json == NULL) {
        return NULL;
    }
    if (flags & CR_JSON_PRETTY) {
        jflags |= JSON_INDENT(2);
    }
    else {
        jflags |= JSON_COMPACT;
    }
    return pool_copy_and_free(p, json_dumps(j->json, jflags));
}

const char *cr_json_quote(apr_pool_t *p, const char *value)
{
    json_t *s;
    const char *quoted;

    if (value == NULL) {
        return "null";
    }
    s = json_string(value);
    if (s == NULL) {
        /* Not valid UTF-8: quote a copy with every non-ASCII byte replaced,
         * rather than emit a document that is not JSON. */
        char *ascii = apr_pstrdup(p, value);
        char *c;
        for (c = ascii; *c; c++) {
            if ((unsigned char)*c >= 0x80) {
                *c = '?';
            }
        }
        s = json_string(ascii);
        if (s == NULL) {
            return NULL;
        }
    }
    quoted = pool_copy_and_free(p, json_dumps(s, JSON_ENCODE_ANY));
    json_decref(s);
    return quoted;
}
