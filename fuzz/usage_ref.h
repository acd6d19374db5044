/* Licensed under the Apache License, Version 2.0. */

/*
 * usage_ref.h: the response usage scanner as it was before the structural
 * scanner of cr_usage.c (main at 59e7fb4, byte for byte but for the
 * names), kept as the reference the fuzzer (fuzz_usage.c) and the unit
 * test (test_usage.c) compare today's scanner with: the same counts, the
 * same signals at the same offsets, on every input fed in any pieces.
 * Included by one source file of each program (its functions are
 * static).
 */
#ifndef CR_USAGE_REF_H
#define CR_USAGE_REF_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cr_usage.h"

#define REF_USAGE_KEY_MAX 32
#define REF_USAGE_DEPTH_BITS 64

typedef struct {
    /* Results. */
    int seen;                           /* a usage object was read */
    apr_int64_t field[CR_USAGE_F__COUNT];
    int field_set[CR_USAGE_F__COUNT];

    /* Configuration. */
    cr_usage_format_e format;
    int signals;                        /* stop at event boundaries */

    /* JSON structure. */
    unsigned int depth;
    apr_uint64_t objbits;               /* bit d-1: level d is an object */
    int lex;                            /* lexer state (cr_usage.c) */
    int expect_key;                     /* innermost object wants a name */
    int key_len;                        /* -1: name not kept */
    char key[REF_USAGE_KEY_MAX];
    int top_key;                        /* kind of the level-1 member that
                                         * holds level 2 */
    unsigned int usage_depth;           /* depth inside a usage object, 0 */
    int field_idx;                      /* usage field whose value is
                                         * read, -1 none */
    int num_len;                        /* digits of that value, -1 bad */
    apr_int64_t num;
    apr_int64_t pending[CR_USAGE_F__COUNT];
    int pending_set[CR_USAGE_F__COUNT];
    int choices;                        /* 0 not at choices, 1 after its '[',
                                         * 2 it is empty, 3 not empty */

    /* Server-sent events. */
    int sse;                            /* line state (cr_usage.c) */
    int name_len;
    char name[8];
    int in_event;                       /* an event has begun */
    int event_usage;                    /* this event had a usage object */
    int event_choices_empty;            /* this event's "choices" is [] */
    int start_signalled;
} ref_usage_t;

/* JSON lexer states. */
enum {
    LX_NORMAL = 0,      /* between tokens */
    LX_KEY,             /* in a member name */
    LX_KEY_ESC,         /* ... after a backslash */
    LX_STR,             /* in a string value */
    LX_STR_ESC,         /* ... after a backslash */
    LX_NUMBER           /* in the number of a usage field */
};

/* Server-sent events line states. */
enum {
    SSE_LINE_START = 0,
    SSE_NAME,           /* the field name */
    SSE_DATA_SPACE,     /* after "data:", an optional space */
    SSE_DATA,           /* a data line's value */
    SSE_SKIP,           /* another field, or a comment */
    SSE_CR,             /* after the CR that ended a line: LF may follow */
    SSE_BLANK_CR        /* after the CR of a blank line: LF may follow */
};

/* Kinds of the level-1 member that holds a level-2 object. */
enum {
    TOP_OTHER = 0,
    TOP_MESSAGE,        /* Anthropic message_start */
    TOP_RESPONSE        /* the Responses API's events */
};

/* Longest count read (digits). */
#define REF_NUM_MAX_DIGITS 15

/* Is the member name just read this one? */
#define REF_KEY_IS(u, lit) ((u)->key_len == (int)sizeof(lit) - 1 \
                        && memcmp((u)->key, lit, sizeof(lit) - 1) == 0)

/* The number of a name in the usage object, -1 for any other (told apart
 * by their lengths first). */
static int ref_usage_field(const ref_usage_t *u)
{
    switch (u->key_len) {
    case sizeof("prompt_tokens") - 1:          /* also "output_tokens" */
        return REF_KEY_IS(u, "prompt_tokens") ? CR_USAGE_F_INPUT
               : REF_KEY_IS(u, "output_tokens") ? CR_USAGE_F_OUTPUT : -1;
    case sizeof("input_tokens") - 1:
        return REF_KEY_IS(u, "input_tokens") ? CR_USAGE_F_INPUT : -1;
    case sizeof("completion_tokens") - 1:
        return REF_KEY_IS(u, "completion_tokens") ? CR_USAGE_F_OUTPUT : -1;
    case sizeof("cache_creation_input_tokens") - 1:
        return REF_KEY_IS(u, "cache_creation_input_tokens")
               ? CR_USAGE_F_CACHE_CREATION : -1;
    case sizeof("cache_read_input_tokens") - 1:
        return REF_KEY_IS(u, "cache_read_input_tokens")
               ? CR_USAGE_F_CACHE_READ : -1;
    default:
        return -1;
    }
}

/* The JSON state at the start of a document. */
static void ref_json_reset(ref_usage_t *u)
{
    u->depth = 0;
    u->objbits = 0;
    u->lex = LX_NORMAL;
    u->expect_key = 0;
    u->key_len = -1;
    u->top_key = TOP_OTHER;
    u->usage_depth = 0;
    u->field_idx = -1;
    u->num_len = 0;
    u->num = 0;
    u->choices = 0;
}

static void ref_usage_init(ref_usage_t *u, cr_usage_format_e format,
                           int signals)
{
    memset(u, 0, sizeof(*u));
    u->format = format;
    u->signals = signals;
    u->sse = SSE_LINE_START;
    ref_json_reset(u);
}

/* Is level d (1-based, d <= REF_USAGE_DEPTH_BITS) an object? */
static int ref_level_is_object(const ref_usage_t *u, unsigned int d)
{
    return d >= 1 && d <= REF_USAGE_DEPTH_BITS
           && ((u->objbits >> (d - 1)) & 1);
}

/* A value begins at the current depth, with the current member name;
 * c is its first byte. */
static void ref_value_start(ref_usage_t *u, char c)
{
    if (u->usage_depth && u->depth == u->usage_depth) {
        u->field_idx = (c >= '0' && c <= '9') || c == '-'
                       ? ref_usage_field(u) : -1;
    }
    if (u->depth == 1) {
        if (c == '{' && REF_KEY_IS(u, "usage")) {
            u->usage_depth = 2;
        }
        else if (c == '[' && REF_KEY_IS(u, "choices")) {
            u->choices = 1;
        }
        u->top_key = TOP_OTHER;
        if (c == '{') {
            if (REF_KEY_IS(u, "message")) {
                u->top_key = TOP_MESSAGE;
            }
            else if (REF_KEY_IS(u, "response")) {
                u->top_key = TOP_RESPONSE;
            }
        }
    }
    else if (u->depth == 2 && c == '{' && u->top_key != TOP_OTHER
             && !u->usage_depth && ref_level_is_object(u, 2)
             && REF_KEY_IS(u, "usage")) {
        u->usage_depth = 3;
    }
    if (u->usage_depth && u->depth + 1 == u->usage_depth && c == '{') {
        int i;
        for (i = 0; i < CR_USAGE_F__COUNT; i++) {
            u->pending_set[i] = 0;
        }
    }
}

/* A '"' outside a string: a member name or a string value begins. */
static APR_INLINE void ref_string_start(ref_usage_t *u)
{
    if (u->expect_key && ref_level_is_object(u, u->depth)) {
        u->key_len = 0;
        u->lex = LX_KEY;
    }
    else {
        ref_value_start(u, '"');
        u->lex = LX_STR;
    }
}

/* A ',' outside a string: the next member or element. */
static APR_INLINE void ref_next_member(ref_usage_t *u)
{
    if (ref_level_is_object(u, u->depth)) {
        u->expect_key = 1;
    }
    u->key_len = -1;
    u->field_idx = -1;
}

static void ref_push(ref_usage_t *u, int is_object)
{
    u->depth++;
    if (u->depth <= REF_USAGE_DEPTH_BITS) {
        apr_uint64_t bit = (apr_uint64_t)1 << (u->depth - 1);
        if (is_object) {
            u->objbits |= bit;
        }
        else {
            u->objbits &= ~bit;
        }
    }
    u->expect_key = is_object;
    u->key_len = -1;
}

static void ref_pop(ref_usage_t *u)
{
    if (u->depth == 0) {
        return;                 /* not JSON; nothing to follow */
    }
    if (u->usage_depth && u->depth == u->usage_depth) {
        int i, any = 0;
        for (i = 0; i < CR_USAGE_F__COUNT; i++) {
            if (u->pending_set[i]) {
                u->field[i] = u->pending[i];
                u->field_set[i] = 1;
                any = 1;
            }
        }
        if (any) {
            u->seen = 1;
            u->event_usage = 1;
        }
        u->usage_depth = 0;
    }
    u->depth--;
    u->expect_key = 0;
    u->key_len = -1;
    u->field_idx = -1;
}

/* The end of a usage field's number. */
static void ref_number_end(ref_usage_t *u)
{
    if (u->num_len > 0 && u->field_idx >= 0) {
        u->pending[u->field_idx] = u->num;
        u->pending_set[u->field_idx] = 1;
    }
    u->field_idx = -1;
    u->lex = LX_NORMAL;
}

/* One byte of JSON.  Returns 1 when the current event has just shown a
 * non-empty "choices". */
static APR_INLINE int ref_json_byte(ref_usage_t *u, char c)
{
    int keep = 0;

    switch (u->lex) {
    case LX_KEY:
        if (c == '"') {
            u->lex = LX_NORMAL;
            u->expect_key = 0;
        }
        else if (c == '\\') {
            u->key_len = -1;    /* an escaped name matches no name here */
            u->lex = LX_KEY_ESC;
        }
        else if (u->key_len >= 0) {
            if (u->key_len < REF_USAGE_KEY_MAX) {
                u->key[u->key_len++] = c;
            }
            else {
                u->key_len = -1;
            }
        }
        return 0;
    case LX_KEY_ESC:
        u->lex = LX_KEY;
        return 0;
    case LX_STR:
        if (c == '"') {
            u->lex = LX_NORMAL;
        }
        else if (c == '\\') {
            u->lex = LX_STR_ESC;
        }
        return 0;
    case LX_STR_ESC:
        u->lex = LX_STR;
        return 0;
    case LX_NUMBER:
        if (c >= '0' && c <= '9') {
            if (u->num_len >= 0) {
                if (u->num_len >= REF_NUM_MAX_DIGITS) {
                    u->num_len = -1;
                }
                else {
                    u->num = u->num * 10 + (c - '0');
                    u->num_len++;
                }
            }
            return 0;
        }
        if (c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
            u->num_len = -1;
            return 0;
        }
        ref_number_end(u);
        break;                  /* c itself is read below */
    default:
        break;
    }

    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        return 0;
    }
    if (u->choices == 1) {
        if (c == ']') {
            u->event_choices_empty = 1;
        }
        else {
            keep = 1;
        }
        u->choices = 0;
    }
    switch (c) {
    case '"':
        ref_string_start(u);
        break;
    case ':':
        u->expect_key = 0;
        break;
    case ',':
        ref_next_member(u);
        break;
    case '{':
        ref_value_start(u, c);
        ref_push(u, 1);
        break;
    case '[':
        ref_value_start(u, c);
        ref_push(u, 0);
        break;
    case '}':
    case ']':
        ref_pop(u);
        break;
    default:
        /* A number or a literal; only a usage field's number is read. */
        if (!u->expect_key && u->usage_depth && u->depth == u->usage_depth
            && (c == '-' || (c >= '0' && c <= '9'))) {
            ref_value_start(u, c);
            if (u->field_idx >= 0) {
                u->lex = LX_NUMBER;
                u->num = 0;
                u->num_len = 0;
                if (c == '-') {
                    u->num_len = -1;
                }
                else {
                    u->num = c - '0';
                    u->num_len = 1;
                }
            }
        }
        break;
    }
    return keep;
}

/* The first byte at or after p that is a or b, or end.  Most of a
 * response is the text of strings, which only '"' and '\\' end (and the
 * data lines of a stream, which only a line end ends): looked at sixteen
 * bytes at a time where SSE2 is there. */
static const char *ref_find2(const char *p, const char *end, char a, char b)
{
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8(a);
    const __m128i vb = _mm_set1_epi8(b);

    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned int m = (unsigned int)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)));
        if (m) {
            return p + __builtin_ctz(m);
        }
        p += 16;
    }
#endif
    while (p < end && *p != a && *p != b) {
        p++;
    }
    return p;
}

/* The bytes [p, end) of JSON, exactly as json_byte reads them one by one,
 * but the text of a string or a member name in one step, and white space
 * and a string's closing quote without a call.  With stop_on_keep,
 * returns just after the byte that showed a non-empty "choices" (*kept
 * set); else end. */
static const char *ref_json_run(ref_usage_t *u, const char *p,
                                const char *end, int stop_on_keep,
                                int *kept)
{
    while (p < end) {
        const char *q;
        char c;

        switch (u->lex) {
        case LX_STR:
            p = ref_find2(p, end, '"', '\\');
            if (p == end) {
                return end;
            }
            u->lex = *p++ == '"' ? LX_NORMAL : LX_STR_ESC;
            continue;
        case LX_KEY:
            q = ref_find2(p, end, '"', '\\');
            if (u->key_len >= 0) {
                apr_size_t n = (apr_size_t)(q - p);
                if (n <= (apr_size_t)(REF_USAGE_KEY_MAX - u->key_len)) {
                    memcpy(u->key + u->key_len, p, n);
                    u->key_len += (int)n;
                }
                else {
                    u->key_len = -1;    /* longer than any name looked for */
                }
            }
            p = q;
            if (p == end) {
                return end;
            }
            if (*p == '"') {            /* the name ends */
                u->lex = LX_NORMAL;
                u->expect_key = 0;
                p++;
                continue;
            }
            break;                      /* json_byte: the '\\' */
        case LX_NORMAL:
            c = *p;
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                p++;
                continue;
            }
            if (u->choices == 1) {
                break;                  /* json_byte: the byte after '[' */
            }
            /* What json_byte does with the most frequent bytes. */
            switch (c) {
            case ':':
                u->expect_key = 0;
                p++;
                continue;
            case ',':
                ref_next_member(u);
                p++;
                continue;
            case '"':
                ref_string_start(u);
                p++;
                continue;
            case '{':
            case '[':
            case '}':
            case ']':
                break;
            default:
                /* A number or a literal outside a usage object: nothing
                 * to read, up to the next structural byte or space. */
                if (!u->usage_depth) {
                    do {
                        p++;
                    } while (p < end && ((*p >= '0' && *p <= '9')
                                         || (*p >= 'a' && *p <= 'z')
                                         || *p == '.' || *p == '-'
                                         || *p == '+' || *p == 'E'));
                    continue;
                }
                break;
            }
            break;
        default:
            break;
        }
        if (ref_json_byte(u, *p++) && stop_on_keep) {
            *kept = 1;
            return p;
        }
    }
    return end;
}

/* The end of an event (its blank line). */
static void ref_event_end(ref_usage_t *u)
{
    if (u->lex == LX_NUMBER) {
        ref_number_end(u);
    }
    u->in_event = 0;
    ref_json_reset(u);
}

static apr_size_t ref_usage_feed(ref_usage_t *u, const char *data,
                                 apr_size_t len,
                                 cr_usage_signal_e *signal)
{
    cr_usage_signal_e unused;
    apr_size_t i;
    int kept = 0;

    if (!signal) {
        signal = &unused;
    }
    *signal = CR_USAGE_SIG_NONE;
    if (u->format == CR_USAGE_JSON) {
        (void)ref_json_run(u, data, data + len, 0, &kept);
        return len;
    }

    for (i = 0; i < len; i++) {
        char c = data[i];

        switch (u->sse) {
        case SSE_BLANK_CR:
            u->sse = SSE_LINE_START;
            if (c == '\n') {
                if (u->signals) {
                    *signal = CR_USAGE_SIG_EVENT_END;
                    return i + 1;
                }
                continue;
            }
            if (u->signals) {
                *signal = CR_USAGE_SIG_EVENT_END;
                return i;
            }
            break;              /* c starts a line */
        case SSE_CR:
            u->sse = SSE_LINE_START;
            if (c == '\n') {
                continue;
            }
            break;
        default:
            break;
        }

        switch (u->sse) {
        case SSE_LINE_START:
            if (c == '\n' || c == '\r') {
                if (!u->in_event) {
                    if (c == '\r') {
                        u->sse = SSE_CR;
                    }
                    continue;   /* a blank line between events */
                }
                ref_event_end(u);
                if (c == '\r') {
                    u->sse = SSE_BLANK_CR;
                    continue;
                }
                if (u->signals) {
                    *signal = CR_USAGE_SIG_EVENT_END;
                    return i + 1;
                }
                continue;
            }
            if (!u->in_event) {
                if (u->signals && !u->start_signalled) {
                    /* Say so once, before the event's first byte. */
                    u->start_signalled = 1;
                    *signal = CR_USAGE_SIG_EVENT_START;
                    return i;
                }
                u->start_signalled = 0;
                u->in_event = 1;
                u->event_usage = 0;
                u->event_choices_empty = 0;
                ref_json_reset(u);
            }
            u->sse = SSE_NAME;
            u->name_len = 0;
            /* fall through */
        case SSE_NAME:
            if (c == ':') {
                u->sse = u->name_len == 4 && memcmp(u->name, "data", 4) == 0
                         ? SSE_DATA_SPACE : SSE_SKIP;
            }
            else if (c == '\n' || c == '\r') {
                if (u->name_len == 4 && memcmp(u->name, "data", 4) == 0) {
                    (void)ref_json_byte(u, '\n');
                }
                u->sse = c == '\r' ? SSE_CR : SSE_LINE_START;
            }
            else if (u->name_len < (int)sizeof(u->name)) {
                u->name[u->name_len++] = c;
            }
            else {
                u->sse = SSE_SKIP;
            }
            break;
        case SSE_DATA_SPACE:
            u->sse = SSE_DATA;
            if (c == ' ') {
                break;
            }
            /* fall through */
        case SSE_DATA:
            if (c == '\n' || c == '\r') {
                (void)ref_json_byte(u, '\n');
                u->sse = c == '\r' ? SSE_CR : SSE_LINE_START;
            }
            else {
                /* The rest of the line (or of the piece) at once. */
                const char *eol = ref_find2(data + i, data + len, '\n', '\r');
                const char *q = ref_json_run(u, data + i, eol, u->signals,
                                         &kept);
                if (kept) {
                    *signal = CR_USAGE_SIG_KEEP;
                    return (apr_size_t)(q - data);
                }
                i = (apr_size_t)(eol - data) - 1;   /* the loop's i++ */
            }
            break;
        case SSE_SKIP:
        default:
            if (c == '\n' || c == '\r') {
                u->sse = c == '\r' ? SSE_CR : SSE_LINE_START;
            }
            break;
        }
    }
    return len;
}

static int ref_usage_event_is_usage_only(const ref_usage_t *u)
{
    return u->event_choices_empty && u->event_usage;
}

static int ref_usage_result(const ref_usage_t *u, apr_int64_t *input,
                    apr_int64_t *output)
{
    apr_int64_t in = 0, out = 0;

    if (!u->seen) {
        return 0;
    }
    if (u->field_set[CR_USAGE_F_INPUT]) {
        in = u->field[CR_USAGE_F_INPUT];
    }
    if (u->field_set[CR_USAGE_F_CACHE_CREATION]) {
        in += u->field[CR_USAGE_F_CACHE_CREATION];
    }
    if (u->field_set[CR_USAGE_F_CACHE_READ]) {
        in += u->field[CR_USAGE_F_CACHE_READ];
    }
    if (u->field_set[CR_USAGE_F_OUTPUT]) {
        out = u->field[CR_USAGE_F_OUTPUT];
    }
    *input = in;
    *output = out;
    return 1;
}

/* Feed len bytes of text to today's scanner (cr_usage_feed) and to the
 * reference, both fed the same pieces: their sizes are 1 + sizes[i] % 40,
 * i cycling over the nsizes bytes given (a piece cut short where the text
 * ends).  With signals, every call must consume as much and stop at the
 * same signal, and each event's end must agree on the usage-only chunk;
 * at the end both must hold the same fields.  Returns 0 when they agree,
 * else 1 + the offset where they parted (the fields: len + 1). */
static size_t ref_usage_compare(const char *text, size_t len,
                                cr_usage_format_e fmt, int signals,
                                const unsigned char *sizes, size_t nsizes)
{
    cr_usage_t a;
    ref_usage_t b;
    size_t off = 0, k = 0;
    int i;

    cr_usage_init(&a, fmt, signals);
    ref_usage_init(&b, fmt, signals);
    while (off < len) {
        size_t n = 1 + (nsizes ? sizes[k++ % nsizes] % 40 : 0), pos = 0;

        if (n > len - off) {
            n = len - off;
        }
        while (pos < n) {
            cr_usage_signal_e sa = CR_USAGE_SIG_NONE, sb = CR_USAGE_SIG_NONE;
            size_t ua = cr_usage_feed(&a, text + off + pos, n - pos,
                                      signals ? &sa : NULL);
            size_t ub = ref_usage_feed(&b, text + off + pos, n - pos,
                                       signals ? &sb : NULL);

            if (ua != ub || sa != sb
                || (sa == CR_USAGE_SIG_EVENT_END
                    && cr_usage_event_is_usage_only(&a)
                       != ref_usage_event_is_usage_only(&b))
                || (!ua && sa == CR_USAGE_SIG_NONE)) {
                return off + pos + 1;
            }
            pos += ua;
        }
        off += n;
    }
    if (a.seen != b.seen) {
        return len + 1;
    }
    for (i = 0; i < CR_USAGE_F__COUNT; i++) {
        if (a.field_set[i] != b.field_set[i]
            || (a.field_set[i] && a.field[i] != b.field[i])) {
            return len + 1;
        }
    }
    {
        apr_int64_t ai = 0, ao = 0, bi = 0, bo = 0;
        if (cr_usage_result(&a, &ai, &ao) != ref_usage_result(&b, &bi, &bo)
            || ai != bi || ao != bo) {
            return len + 1;
        }
    }
    return 0;
}

#endif /* CR_USAGE_REF_H */
