/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_body.h: inspection of a request body (SPEC section 4.3): it must be a
 * JSON object with a string "model".  The body itself is never changed;
 * the gateway forwards the bytes it read.
 *
 * The inspector is a validating scanner that builds no tree: one pass over
 * the bytes, as delivered (in pieces of any size, state carried across
 * them, nothing copied into one buffer), in constant memory (a bit stack
 * of CR_BODY_MAX_DEPTH bits and the model's CR_BODY_MAX_MODEL_LEN bytes),
 * whatever the body's size and shape.  See docs/HARDENING.md, finding 1.
 *
 * What it refuses (CR_BODY_INVALID_JSON), exactly as Jansson's
 * json_loadb(JSON_DECODE_ANY) does: syntax errors, trailing data, bad
 * UTF-8 anywhere (overlong forms, surrogates, past U+10FFFF, cut
 * sequences), control characters in strings, bad escapes, lone or
 * mismatched surrogate escapes, \u0000, integers outside 64 bits, reals
 * that overflow a double, and values nested deeper than
 * CR_BODY_MAX_DEPTH (Jansson's own limit, counted the same way).  One
 * refusal more than Jansson 2.14: a NUL byte right after a number or a
 * literal ("[1\0]"), which Jansson drops unseen (its lexer's unget of the
 * byte loses it) and any other parser refuses.
 *
 * Duplicates (CR_BODY_DUPLICATE_MEMBER) are refused only for the members
 * the gateway decides on: top-level "model", "stream", "stream_options",
 * and "include_usage" inside a top-level "stream_options" object, however
 * their names are written (escapes included).  Any parser the upstream
 * may use could read either copy of those, so the gateway could check one
 * model and forward another.  Duplicates anywhere else (inside messages,
 * tools, schemas, or other top-level members) are accepted and forwarded:
 * the gateway decides nothing on them, so no disagreement between parsers
 * about them can change what it checks, and detecting them would need
 * memory in proportion to the body (every name of every object).
 */
#ifndef CR_BODY_H
#define CR_BODY_H

#include <apr.h>
#include <apr_pools.h>
#include "cr_json.h"

typedef enum {
    CR_BODY_OK = 0,
    CR_BODY_EMPTY,             /* no bytes at all */
    CR_BODY_INVALID_JSON,      /* syntax error, bad UTF-8, too deep, trailing data */
    CR_BODY_DUPLICATE_MEMBER,  /* a member the gateway decides on, twice */
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

/* Longest "model" accepted, in bytes of UTF-8 once escapes are decoded
 * (longer is CR_BODY_MODEL_NOT_STRING). */
#define CR_BODY_MAX_MODEL_LEN 256

/* Deepest nesting accepted: a value (scalar, array or object) at depth
 * CR_BODY_MAX_DEPTH + 1, the top-level value being at depth 1, makes the
 * body invalid ("The request body is not valid JSON: it is nested deeper
 * than 2048 levels (position N)."), as in Jansson. */
#define CR_BODY_MAX_DEPTH 2048

/* The scanner's state; its fields are private to cr_body.c.  Constant
 * size (about 600 bytes): put it on the stack. */
typedef struct {
    /* First, what cr_body_scan_init clears (read before it is written): */
    apr_off_t pos;                 /* bytes consumed before this piece */
    apr_uint64_t stack_top;        /* the bit stack's innermost 64 levels */
    int state, kind;               /* lexer state; string kind */
    unsigned int depth;            /* open containers */
    int top;                       /* 0 no value yet, 1 object, 2 other */
    int role1, role2;              /* watched member at depth 1 / 2 */
    int seen;                      /* decided members seen (bits) */
    int so_object;                 /* stream_options' value is an object */
    int capture;                   /* 0, or where decoded text goes */
    int model_state;               /* 0 none, 1 string, 2 not a string,
                                    * 3 too long */
    int stream;                    /* results */
    int stream_options, include_usage;
    cr_body_status_e err;          /* the first error */
    /* The rest is written before it is read (not cleared): */
    const char *err_what;
    apr_off_t err_at;
    apr_off_t object_end;
    apr_off_t so_start, so_end, iu_start, iu_end;
    /* strings */
    apr_size_t cap_len;
    int cap_over;
    apr_size_t model_len;
    int utf8_need;
    unsigned int utf8_lo, utf8_hi, utf8_cp;
    int hex_left;
    unsigned int hex_val, high;
    /* literals and numbers */
    const char *lit;
    int lit_val;
    int num_neg, num_real, num_sig;
    apr_uint64_t num_int;
    apr_int64_t num_digits, num_lead, num_sigcount, num_exp;
    int num_cmp, num_eneg;
    unsigned char in_object[CR_BODY_MAX_DEPTH / 8];
    char name[16];
    char model[CR_BODY_MAX_MODEL_LEN + 1];
} cr_body_scan_t;

/* Push interface: init, then the body's pieces in order (any sizes, none
 * needs to outlive the call), then finish for the verdict.  scan returns
 * nonzero once the body is already known to be refused (the rest need not
 * be scanned). */
void cr_body_scan_init(cr_body_scan_t *s);
int cr_body_scan(cr_body_scan_t *s, const char *data, apr_size_t len);
cr_body_status_e cr_body_scan_finish(apr_pool_t *p, cr_body_scan_t *s,
                                     cr_body_info_t *info);

/* A whole buffer. */
cr_body_status_e cr_body_inspect(apr_pool_t *p, const char *data,
                                 apr_size_t len, cr_body_info_t *info);
/* The same over a body delivered by a read callback (the verdict and the
 * fields are exactly cr_body_inspect's). */
cr_body_status_e cr_body_inspect_stream(apr_pool_t *p, cr_json_read_fn read_fn,
                                        void *baton, cr_body_info_t *info);

/* Is this Content-Type one whose body the gateway inspects as JSON?
 * NULL/empty (absent) and application/json (any parameters, any case, also
 * "+json" suffixes) are; multipart/form-data and everything else is not. */
int cr_body_content_type_is_json(const char *content_type);

#endif /* CR_BODY_H */
