/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_body.c: is a request body a JSON object with a usable "model"?
 * (SPEC section 4.3).  Only reads the body; the gateway forwards the bytes
 * it received unchanged.
 */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "cr_body.h"

/* Classify a parse result and the "model"/"stream" members. */
static cr_body_status_e examine(apr_pool_t *p, cr_json_t *doc,
                                const char *err, cr_json_error_e kind,
                                cr_body_info_t *info)
{
    cr_json_t *model, *stream;
    const char *name;

    if (doc == NULL) {
        switch (kind) {
        case CR_JSON_ERR_DUPLICATE:
            info->detail = apr_pstrcat(p, "The request body is not accepted: ",
                                       err, ".", NULL);
            return CR_BODY_DUPLICATE_MEMBER;
        case CR_JSON_ERR_READ:
            info->detail = "The request body could not be read.";
            return CR_BODY_READ_ERROR;
        default:
            info->detail = apr_pstrcat(p, "The request body is not valid JSON: ",
                                       err ? err : "parse error", ".", NULL);
            return CR_BODY_INVALID_JSON;
        }
    }

    if (cr_json_type(doc) != CR_JSON_OBJECT) {
        info->detail = "The request body must be a JSON object.";
        return CR_BODY_NOT_OBJECT;
    }

    stream = cr_json_get(p, doc, "stream");
    info->stream = cr_json_is_true(stream);

    model = cr_json_get(p, doc, "model");
    if (model == NULL) {
        info->detail = "The request body has no \"model\" member.";
        return CR_BODY_NO_MODEL;
    }
    name = cr_json_string(p, model);
    if (name == NULL) {
        info->detail = "The \"model\" member must be a string.";
        return CR_BODY_MODEL_NOT_STRING;
    }
    if (name[0] == '\0') {
        info->detail = "The \"model\" member must not be empty.";
        return CR_BODY_MODEL_NOT_STRING;
    }
    if (strlen(name) > CR_BODY_MAX_MODEL_LEN) {
        info->detail = apr_psprintf(p, "The \"model\" member is longer than "
                                    "%d bytes.", CR_BODY_MAX_MODEL_LEN);
        return CR_BODY_MODEL_NOT_STRING;
    }
    info->model = name;
    return CR_BODY_OK;
}

static void info_reset(cr_body_info_t *info)
{
    info->model = NULL;
    info->stream = 0;
    info->detail = NULL;
}

cr_body_status_e cr_body_inspect(apr_pool_t *p, const char *data,
                                 apr_size_t len, cr_body_info_t *info)
{
    cr_json_t *doc;
    const char *err = NULL;
    cr_json_error_e kind;

    info_reset(info);
    if (data == NULL || len == 0) {
        info->detail = "The request body is empty; a JSON object is expected.";
        return CR_BODY_EMPTY;
    }
    doc = cr_json_parse_ex(p, data, len, CR_JSON_REJECT_DUPLICATES, &err,
                           &kind);
    return examine(p, doc, err, kind, info);
}

/* Strings longer than this are parsed only up to here: the rest of the
 * string's plain text is checked here and skipped on its way to Jansson.
 * The gateway needs the model (at most CR_BODY_MAX_MODEL_LEN bytes) and
 * the document's structure, not the text of prompts: skipping it keeps a
 * large body (a base64 image, a long conversation) from being held twice
 * in memory and from costing parser time by the byte (Jansson costs about
 * 130 instructions a byte, the check here a few).  The body itself is
 * forwarded unchanged. */
#define CR_BODY_STRING_KEEP 512

/* Inside a nested array or object (messages, tools, content blocks) no
 * string value is examined, so none of its plain text is kept. */
#define CR_BODY_NESTED_STRING_KEEP 0

typedef enum {
    LEX_OUTSIDE = 0,     /* between tokens */
    LEX_STRING,          /* inside a string literal */
    LEX_ESCAPE,          /* just after a backslash inside a string */
    LEX_UNICODE          /* inside the four hex digits of a u-escape */
} lex_state_e;

/* Deepest nesting whose object/array kind is tracked; Jansson refuses
 * deeper documents anyway (its limit is 2048). */
#define CR_BODY_TRACK_DEPTH 2048

typedef struct {
    cr_json_read_fn read_fn;
    void *baton;
    apr_size_t total;
    lex_state_e state;
    unsigned int depth;  /* nesting depth */
    int expect_name;     /* the next string is an object member name */
    int in_name;         /* the current string is a member name: kept whole */
    unsigned char in_object[CR_BODY_TRACK_DEPTH / 8];  /* bit per level */
    apr_size_t run;      /* plain bytes of the current string kept so far */
    int hex_left;        /* hex digits still to come in a u-escape */
    int skipping;        /* dropping the plain text of the current string */
    /* The skipped text is checked as Jansson would check it. */
    int utf8_need;       /* continuation bytes still to come */
    apr_uint32_t utf8_cp;    /* the code point so far */
    apr_uint32_t utf8_min;   /* the least code point of this length */
    const char *invalid;     /* what was wrong with skipped text, or NULL */
    apr_size_t invalid_at;   /* and its offset in the body */
    apr_size_t emitted;      /* bytes handed to the parser so far */
    apr_size_t marker_at;    /* where in those the 0x01 marker went */
} counting_reader;

/* Check skipped plain string text: no control character, and strict
 * UTF-8 (no overlong form, no surrogate, nothing past U+10FFFF), which is
 * what Jansson checks.  A sequence may span reads.  Returns the offset of
 * the first bad byte, or n; *what says what is wrong. */
static apr_size_t check_skipped_text(counting_reader *reader,
                                     const unsigned char *s, apr_size_t n,
                                     const char **what)
{
    const apr_uint64_t ones = APR_UINT64_C(0x0101010101010101);
    const apr_uint64_t highs = APR_UINT64_C(0x8080808080808080);
    apr_size_t i = 0;

    while (i < n) {
        unsigned char c;

        if (reader->utf8_need == 0) {
            /* Eight ASCII characters at a time: no high bit, no byte
             * below 0x20 (a byte below 0x20 borrows into its high bit). */
            while (i + 8 <= n) {
                apr_uint64_t x;
                memcpy(&x, s + i, 8);
                if ((x | ((x - ones * 0x20) & ~x)) & highs) {
                    break;
                }
                i += 8;
            }
            if (i == n) {
                break;
            }
            c = s[i];
            if (c < 0x20) {
                *what = "a string contains a control character";
                return i;
            }
            if (c >= 0x80) {
                if (c < 0xC2 || c > 0xF4) {
                    *what = "the text is not valid UTF-8";
                    return i;
                }
                reader->utf8_need = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
                reader->utf8_cp = c & (0x3F >> reader->utf8_need);
                reader->utf8_min = reader->utf8_need == 1 ? 0x80
                                   : reader->utf8_need == 2 ? 0x800
                                   : 0x10000;
            }
            i++;
            continue;
        }
        c = s[i];
        if ((c & 0xC0) != 0x80) {
            *what = "the text is not valid UTF-8";
            return i;
        }
        reader->utf8_cp = (reader->utf8_cp << 6) | (c & 0x3F);
        if (--reader->utf8_need == 0
            && (reader->utf8_cp < reader->utf8_min
                || reader->utf8_cp > 0x10FFFF
                || (reader->utf8_cp >= 0xD800 && reader->utf8_cp <= 0xDFFF))) {
            *what = "the text is not valid UTF-8";
            return i;
        }
        i++;
    }
    return n;
}

/* Invalid skipped text at body offset `at`: put a control character at
 * data[kept], where the parser will refuse the document as it would have
 * refused the text, and end the read there (the parser stops at it; later
 * reads pass through untouched).  Returns the new number of bytes kept.
 * kept is never past the bad byte's place in data, so nothing unread is
 * overwritten and the read never grows. */
static apr_size_t mark_invalid(counting_reader *reader, unsigned char *data,
                               apr_size_t kept, const char *what,
                               apr_size_t at)
{
    reader->invalid = what;
    reader->invalid_at = at;
    reader->marker_at = reader->emitted + kept;
    reader->utf8_need = 0;
    data[kept] = 0x01;
    return kept + 1;
}

/* Filter one read in place; returns the number of bytes kept.  Only the
 * plain text of string values is shortened, never member names, escapes
 * or structure.  Dropping starts only at a character boundary, so the kept
 * text is whole characters; the dropped text is checked here instead of
 * by Jansson, and each dropped run leaves one 'x' in its place, so that
 * escapes on either side of it are not joined (a high and a low surrogate
 * escape with text between them stay invalid). */
static apr_size_t skip_long_strings(counting_reader *reader,
                                    unsigned char *data, apr_size_t n)
{
    apr_size_t i = 0, kept = 0, j;
    apr_size_t next_quote = 0;   /* where the next '"' from i is, or n */
    int quote_known = 0;
    apr_size_t offset = reader->total - n;    /* of data[0] in the body */

    if (reader->invalid) {
        return n;              /* the parser has stopped at the marker */
    }
    while (i < n) {
        switch (reader->state) {
        case LEX_OUTSIDE:
            /* Structure: note whether the next string names a member. */
            for (j = i; j < n && data[j] != '"'; j++) {
                switch (data[j]) {
                case '{':
                case '[':
                    if (reader->depth < CR_BODY_TRACK_DEPTH) {
                        unsigned char bit =
                            (unsigned char)(1u << (reader->depth % 8));
                        if (data[j] == '{') {
                            reader->in_object[reader->depth / 8] |= bit;
                        }
                        else {
                            reader->in_object[reader->depth / 8] &= ~bit;
                        }
                    }
                    reader->depth++;
                    reader->expect_name = (data[j] == '{');
                    break;
                case '}':
                case ']':
                    if (reader->depth > 0) {
                        reader->depth--;
                    }
                    reader->expect_name = 0;
                    break;
                case ',':
                    reader->expect_name = reader->depth > 0
                        && reader->depth <= CR_BODY_TRACK_DEPTH
                        && (reader->in_object[(reader->depth - 1) / 8]
                            & (1u << ((reader->depth - 1) % 8)));
                    break;
                case ':':
                    reader->expect_name = 0;
                    break;
                default:
                    break;
                }
            }
            if (j < n) {
                reader->state = LEX_STRING;
                reader->run = 0;
                reader->skipping = 0;
                reader->utf8_need = 0;
                reader->in_name = reader->expect_name;
                reader->expect_name = 0;
                j++;                        /* the opening quote */
            }
            memmove(data + kept, data + i, j - i);
            kept += j - i;
            i = j;
            break;
        case LEX_STRING: {
            /* The run of plain characters up to the next quote or
             * backslash; memchr, because this is most of a body's bytes. */
            const unsigned char *backslash;
            apr_size_t take = 0;

            if (!quote_known || next_quote < i) {
                /* Found once per string and read, however many escapes
                 * come before it. */
                const unsigned char *quote = memchr(data + i, '"', n - i);
                quote_known = 1;
                next_quote = quote ? (apr_size_t)(quote - data) : n;
            }
            j = next_quote;
            backslash = memchr(data + i, '\\', j - i);
            if (backslash) {
                j = backslash - data;
            }
            if (!reader->skipping) {
                apr_size_t keep = reader->depth > 1
                                  ? CR_BODY_NESTED_STRING_KEEP
                                  : CR_BODY_STRING_KEEP;
                take = j - i;
                /* Member names are kept whole: two long names that share
                 * their first bytes must not look like duplicates. */
                if (!reader->in_name && reader->run + take > keep) {
                    take = reader->run < keep ? keep - reader->run : 0;
                    while (i + take < j && (data[i + take] & 0xC0) == 0x80) {
                        take++;
                    }
                    reader->skipping = (i + take < j);
                }
                memmove(data + kept, data + i, take);
                kept += take;
                reader->run += take;
            }
            if (i + take < j) {
                /* Dropped: checked here, one 'x' left in its place (there
                 * is room: at least one byte was dropped). */
                const char *what = NULL;
                apr_size_t bad = check_skipped_text(reader, data + i + take,
                                                    j - i - take, &what);
                if (bad < j - i - take) {
                    return mark_invalid(reader, data, kept, what,
                                        offset + i + take + bad);
                }
                data[kept++] = 'x';
            }
            i = j;
            if (i < n) {
                if (reader->utf8_need > 0) {
                    /* A character cut short by the quote or backslash at
                     * data[i]: the marker goes at kept <= i, the read ends
                     * there. */
                    return mark_invalid(reader, data, kept, "the text is "
                                        "not valid UTF-8", offset + i);
                }
                if (data[i] == '"') {
                    reader->state = LEX_OUTSIDE;
                    reader->skipping = 0;
                    data[kept++] = '"';
                }
                else {
                    /* Escapes are always kept: Jansson checks them.  An
                     * escape counts as one toward the kept length, which
                     * so never exceeds the decoded length: a string cut
                     * here is longer than any model in both parses. */
                    reader->state = LEX_ESCAPE;
                    data[kept++] = '\\';
                    if (!reader->skipping) {
                        reader->run++;
                    }
                }
                i++;
            }
            break;
        }
        case LEX_ESCAPE:
        case LEX_UNICODE:
            if (reader->state == LEX_ESCAPE && data[i] == 'u') {
                reader->state = LEX_UNICODE;
                reader->hex_left = 4;
            }
            else if (reader->state == LEX_ESCAPE || --reader->hex_left <= 0) {
                reader->state = LEX_STRING;
            }
            data[kept++] = data[i];
            i++;
            break;
        }
    }
    return kept;
}

/* Pass reads through, counting bytes (to tell an empty body from a
 * truncated one) and dropping the plain text of long strings. */
static apr_size_t count_read(void *buf, apr_size_t len, void *baton)
{
    counting_reader *reader = baton;
    apr_size_t n, kept;

    do {
        n = reader->read_fn(buf, len, reader->baton);
        if (n == (apr_size_t)-1 || n == 0) {
            return n;
        }
        reader->total += n;
        kept = skip_long_strings(reader, buf, n);
        if (kept > n) {
            /* Cannot happen; if it did, fail closed (a read error), and
             * the fuzzer's invariant says so. */
            return (apr_size_t)-1;
        }
    } while (kept == 0);    /* 0 would mean the end of the body */
    reader->emitted += kept;
    return kept;
}

cr_body_status_e cr_body_inspect_stream(apr_pool_t *p, cr_json_read_fn read_fn,
                                        void *baton, cr_body_info_t *info)
{
    counting_reader reader;
    cr_json_t *doc;
    const char *err = NULL;
    cr_json_error_e kind;
    apr_size_t stopped_at = 0;

    info_reset(info);
    memset(&reader, 0, sizeof(reader));
    reader.read_fn = read_fn;
    reader.baton = baton;
    doc = cr_json_parse_stream_at(p, count_read, &reader,
                                  CR_JSON_REJECT_DUPLICATES, &err, &kind,
                                  &stopped_at);
    if (doc == NULL && kind != CR_JSON_ERR_READ && reader.total == 0) {
        info->detail = "The request body is empty; a JSON object is expected.";
        return CR_BODY_EMPTY;
    }
    if (doc == NULL && kind == CR_JSON_ERR_SYNTAX && reader.invalid
        && stopped_at >= reader.marker_at) {
        /* Jansson stopped at the byte put in place of skipped text (not
         * at an error before it): say what was wrong there, at its place
         * in the body. */
        info->detail = apr_psprintf(p, "The request body is not valid JSON: "
                                    "%s (position %" APR_SIZE_T_FMT ").",
                                    reader.invalid, reader.invalid_at);
        return CR_BODY_INVALID_JSON;
    }
    return examine(p, doc, err, kind, info);
}

int cr_body_content_type_is_json(const char *content_type)
{
    const char *start, *end, *slash;
    apr_size_t len;

    if (content_type == NULL) {
        return 1;
    }
    start = content_type;
    while (apr_isspace(*start)) {
        start++;
    }
    if (*start == '\0') {
        return 1;
    }
    /* The media type is everything before the parameters. */
    end = strchr(start, ';');
    if (end == NULL) {
        end = start + strlen(start);
    }
    while (end > start && apr_isspace(end[-1])) {
        end--;
    }
    len = end - start;

    if (len == sizeof("application/json") - 1
        && strncasecmp(start, "application/json", len) == 0) {
        return 1;
    }
    /* application/<anything>+json, e.g. application/vnd.api+json */
    slash = memchr(start, '/', len);
    if (slash != NULL
        && (apr_size_t)(slash - start) == sizeof("application") - 1
        && strncasecmp(start, "application", slash - start) == 0
        && (apr_size_t)(end - slash - 1) > sizeof("+json") - 1
        && strncasecmp(end - (sizeof("+json") - 1), "+json",
                       sizeof("+json") - 1) == 0) {
        return 1;
    }
    return 0;
}
