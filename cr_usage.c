/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_usage.c: the usage scanner of cr_usage.h.  Two small state machines:
 * the server-sent events lines (field name, data, blank line) and, under
 * it, a JSON lexer that follows only the structure (depth, object or array,
 * the current member name) and reads the numbers of a usage object.  No
 * byte of the response is kept beyond the first CR_USAGE_KEY_MAX of a
 * member name.
 */

#include <string.h>
#include <strings.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cr_usage.h"

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
#define NUM_MAX_DIGITS 15

/* Is the member name just read this one? */
#define KEY_IS(u, lit) ((u)->key_len == (int)sizeof(lit) - 1 \
                        && memcmp((u)->key, lit, sizeof(lit) - 1) == 0)

/* The number of a name in the usage object, -1 for any other (told apart
 * by their lengths first). */
static int usage_field(const cr_usage_t *u)
{
    switch (u->key_len) {
    case sizeof("prompt_tokens") - 1:          /* also "output_tokens" */
        return KEY_IS(u, "prompt_tokens") ? CR_USAGE_F_INPUT
               : KEY_IS(u, "output_tokens") ? CR_USAGE_F_OUTPUT : -1;
    case sizeof("input_tokens") - 1:
        return KEY_IS(u, "input_tokens") ? CR_USAGE_F_INPUT : -1;
    case sizeof("completion_tokens") - 1:
        return KEY_IS(u, "completion_tokens") ? CR_USAGE_F_OUTPUT : -1;
    case sizeof("cache_creation_input_tokens") - 1:
        return KEY_IS(u, "cache_creation_input_tokens")
               ? CR_USAGE_F_CACHE_CREATION : -1;
    case sizeof("cache_read_input_tokens") - 1:
        return KEY_IS(u, "cache_read_input_tokens")
               ? CR_USAGE_F_CACHE_READ : -1;
    default:
        return -1;
    }
}

/* The JSON state at the start of a document. */
static void json_reset(cr_usage_t *u)
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

void cr_usage_init(cr_usage_t *u, cr_usage_format_e format, int signals)
{
    memset(u, 0, sizeof(*u));
    u->format = format;
    u->signals = signals;
    u->sse = SSE_LINE_START;
    json_reset(u);
}

cr_usage_format_e cr_usage_format_for(const char *content_type)
{
    static const char sse[] = "text/event-stream";
    const char *p = content_type;

    if (!p) {
        return CR_USAGE_JSON;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (strncasecmp(p, sse, sizeof(sse) - 1) == 0) {
        p += sizeof(sse) - 1;
        if (*p == '\0' || *p == ';' || *p == ' ' || *p == '\t') {
            return CR_USAGE_SSE;
        }
    }
    return CR_USAGE_JSON;
}

/* Is level d (1-based, d <= CR_USAGE_DEPTH_BITS) an object? */
static int level_is_object(const cr_usage_t *u, unsigned int d)
{
    return d >= 1 && d <= CR_USAGE_DEPTH_BITS
           && ((u->objbits >> (d - 1)) & 1);
}

/* A value begins at the current depth, with the current member name;
 * c is its first byte. */
static void value_start(cr_usage_t *u, char c)
{
    if (u->usage_depth && u->depth == u->usage_depth) {
        u->field_idx = (c >= '0' && c <= '9') || c == '-'
                       ? usage_field(u) : -1;
    }
    if (u->depth == 1) {
        if (c == '{' && KEY_IS(u, "usage")) {
            u->usage_depth = 2;
        }
        else if (c == '[' && KEY_IS(u, "choices")) {
            u->choices = 1;
        }
        u->top_key = TOP_OTHER;
        if (c == '{') {
            if (KEY_IS(u, "message")) {
                u->top_key = TOP_MESSAGE;
            }
            else if (KEY_IS(u, "response")) {
                u->top_key = TOP_RESPONSE;
            }
        }
    }
    else if (u->depth == 2 && c == '{' && u->top_key != TOP_OTHER
             && !u->usage_depth && level_is_object(u, 2)
             && KEY_IS(u, "usage")) {
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
static APR_INLINE void string_start(cr_usage_t *u)
{
    if (u->expect_key && level_is_object(u, u->depth)) {
        u->key_len = 0;
        u->lex = LX_KEY;
    }
    else {
        value_start(u, '"');
        u->lex = LX_STR;
    }
}

/* A ',' outside a string: the next member or element. */
static APR_INLINE void next_member(cr_usage_t *u)
{
    if (level_is_object(u, u->depth)) {
        u->expect_key = 1;
    }
    u->key_len = -1;
    u->field_idx = -1;
}

static void push(cr_usage_t *u, int is_object)
{
    u->depth++;
    if (u->depth <= CR_USAGE_DEPTH_BITS) {
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

static void pop(cr_usage_t *u)
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
static void number_end(cr_usage_t *u)
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
static inline int json_byte(cr_usage_t *u, char c)
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
            if (u->key_len < CR_USAGE_KEY_MAX) {
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
                if (u->num_len >= NUM_MAX_DIGITS) {
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
        number_end(u);
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
        string_start(u);
        break;
    case ':':
        u->expect_key = 0;
        break;
    case ',':
        next_member(u);
        break;
    case '{':
        value_start(u, c);
        push(u, 1);
        break;
    case '[':
        value_start(u, c);
        push(u, 0);
        break;
    case '}':
    case ']':
        pop(u);
        break;
    default:
        /* A number or a literal; only a usage field's number is read. */
        if (!u->expect_key && u->usage_depth && u->depth == u->usage_depth
            && (c == '-' || (c >= '0' && c <= '9'))) {
            value_start(u, c);
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
static const char *find2(const char *p, const char *end, char a, char b)
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
static const char *json_run(cr_usage_t *u, const char *p, const char *end,
                            int stop_on_keep, int *kept)
{
    while (p < end) {
        const char *q;
        char c;

        switch (u->lex) {
        case LX_STR:
            p = find2(p, end, '"', '\\');
            if (p == end) {
                return end;
            }
            u->lex = *p++ == '"' ? LX_NORMAL : LX_STR_ESC;
            continue;
        case LX_KEY:
            q = find2(p, end, '"', '\\');
            if (u->key_len >= 0) {
                apr_size_t n = (apr_size_t)(q - p);
                if (n <= (apr_size_t)(CR_USAGE_KEY_MAX - u->key_len)) {
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
                next_member(u);
                p++;
                continue;
            case '"':
                string_start(u);
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
        if (json_byte(u, *p++) && stop_on_keep) {
            *kept = 1;
            return p;
        }
    }
    return end;
}

/* The end of an event (its blank line). */
static void event_end(cr_usage_t *u)
{
    if (u->lex == LX_NUMBER) {
        number_end(u);
    }
    u->in_event = 0;
    json_reset(u);
}

apr_size_t cr_usage_feed(cr_usage_t *u, const char *data, apr_size_t len,
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
        (void)json_run(u, data, data + len, 0, &kept);
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
                event_end(u);
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
                json_reset(u);
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
                    (void)json_byte(u, '\n');
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
                (void)json_byte(u, '\n');
                u->sse = c == '\r' ? SSE_CR : SSE_LINE_START;
            }
            else {
                /* The rest of the line (or of the piece) at once. */
                const char *eol = find2(data + i, data + len, '\n', '\r');
                const char *q = json_run(u, data + i, eol, u->signals,
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

int cr_usage_event_is_usage_only(const cr_usage_t *u)
{
    return u->event_choices_empty && u->event_usage;
}

int cr_usage_result(const cr_usage_t *u, apr_int64_t *input,
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

/* ------------------------------------------------------------------ */
/* Asking the upstream for usage                                       */
/* ------------------------------------------------------------------ */

/* Insert text before offset at. */
static apr_status_t insert_at(apr_bucket_brigade *bb, apr_off_t at,
                              const char *text)
{
    apr_bucket *e, *ins;
    apr_status_t rv = apr_brigade_partition(bb, at, &e);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    ins = apr_bucket_immortal_create(text, strlen(text), bb->bucket_alloc);
    APR_BUCKET_INSERT_BEFORE(e, ins);
    return APR_SUCCESS;
}

/* Replace the bytes [from, to) with text. */
static apr_status_t replace_span(apr_bucket_brigade *bb, apr_off_t from,
                                 apr_off_t to, const char *text)
{
    apr_bucket *start, *end;
    apr_status_t rv;

    if ((rv = apr_brigade_partition(bb, to, &end)) != APR_SUCCESS
        || (rv = apr_brigade_partition(bb, from, &start)) != APR_SUCCESS) {
        return rv;
    }
    while (start != end) {
        apr_bucket *next = APR_BUCKET_NEXT(start);
        apr_bucket_delete(start);
        start = next;
    }
    APR_BUCKET_INSERT_BEFORE(end, apr_bucket_immortal_create(
                                      text, strlen(text), bb->bucket_alloc));
    return APR_SUCCESS;
}

/* Is there anything but JSON white space in [from, to)?  Read where the
 * bytes lie. */
static apr_status_t span_has_content(apr_bucket_brigade *bb, apr_off_t from,
                                     apr_off_t to, int *content)
{
    apr_bucket *e;
    apr_off_t pos = 0;

    *content = 0;
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb) && pos < to;
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len, i;
        apr_status_t rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);

        if (rv != APR_SUCCESS) {
            return rv;
        }
        for (i = 0; i < len && pos < to; i++, pos++) {
            char c = data[i];
            if (pos >= from && c != ' ' && c != '\t' && c != '\n'
                && c != '\r') {
                *content = 1;
                return APR_SUCCESS;
            }
        }
    }
    return APR_SUCCESS;
}

apr_status_t cr_usage_request_usage(apr_bucket_brigade *body,
                                    const cr_usage_request_t *req,
                                    int *changed, apr_off_t *delta)
{
    static const char member[] = "\"include_usage\":true";
    static const char object[] = "{\"include_usage\":true}";
    static const char added[] = ",\"stream_options\":{\"include_usage\":true}";
    apr_status_t rv = APR_SUCCESS;
    int content;

    *changed = 0;
    *delta = 0;
    switch (req->stream_options) {
    case 0:
        rv = insert_at(body, req->object_end, added);
        *delta = (apr_off_t)strlen(added);
        break;
    case 1:
        if (req->include_usage == 1) {
            return APR_SUCCESS;
        }
        if (req->include_usage != 0) {
            rv = replace_span(body, req->include_usage_start,
                              req->include_usage_end, "true");
            *delta = 4 - (req->include_usage_end - req->include_usage_start);
            break;
        }
        /* Added as the object's last member, before its '}'. */
        rv = span_has_content(body, req->stream_options_start + 1,
                              req->stream_options_end - 1, &content);
        if (rv == APR_SUCCESS) {
            rv = insert_at(body, req->stream_options_end - 1,
                           content ? "," "\"include_usage\":true" : member);
            *delta = (apr_off_t)strlen(member) + (content ? 1 : 0);
        }
        break;
    case 2:
        rv = replace_span(body, req->stream_options_start,
                          req->stream_options_end, object);
        *delta = (apr_off_t)strlen(object)
                 - (req->stream_options_end - req->stream_options_start);
        break;
    default:
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        *delta = 0;
        return rv;
    }
    *changed = 1;
    return APR_SUCCESS;
}
