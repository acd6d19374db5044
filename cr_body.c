/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_body.c: is a request body a JSON object with a usable "model"?
 * (SPEC section 4.3).  Only reads the body; the gateway forwards the bytes
 * it received unchanged.
 *
 * A validating scanner in one pass that builds no tree (simdjson's idea:
 * find the structural characters and validate UTF-8 as the bytes go by).
 * The plain text of strings, most of an agent's body, is skipped 64
 * bytes at a time (32-byte AVX2 compares where the processor has them,
 * chosen at run time, else SSE2's 16; eight with a portable word loop),
 * stopping only at '"', '\\', a control character or a byte >= 0x80.  Only
 * the members the gateway decides on are decoded (cr_body.h), and a
 * decided-on name that lies whole in a piece is compared where it lies.
 * State is carried across pieces byte for byte, so the body may arrive in
 * pieces of any size.
 */

#include <stddef.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "cr_body.h"
#include "cr_load.h"

/* Lexer states. */
enum {
    S_VALUE = 0,       /* a value is expected */
    S_VALUE_OR_CLOSE,  /* after '[': a value or ']' */
    S_NAME_OR_CLOSE,   /* after '{': a member name or '}' */
    S_NAME,            /* after ',' in an object: a member name */
    S_COLON,           /* after a member name */
    S_AFTER,           /* after a value: ',', '}', ']' or the end */
    S_STR,             /* in a string */
    S_STR_ESC,         /* after a backslash */
    S_STR_HEX,         /* in the four hex digits of a u-escape */
    S_STR_LOW_BS,      /* after a high surrogate escape: '\\' must follow */
    S_STR_LOW_U,       /* ... then 'u' */
    S_STR_UTF8,        /* in a multi-byte UTF-8 character */
    S_NUM_MINUS,       /* after '-' */
    S_NUM_ZERO,        /* after a leading '0' */
    S_NUM_INT,         /* in the integer digits */
    S_NUM_DOT,         /* after '.' */
    S_NUM_FRAC,        /* in the fraction digits */
    S_NUM_E,           /* after 'e' */
    S_NUM_ESIGN,       /* after the exponent's sign */
    S_NUM_EXP,         /* in the exponent digits */
    S_LIT,             /* in true, false or null */
    S_ERROR            /* refused; the rest is not looked at */
};

/* Value types, for the watched members. */
enum { T_STRING, T_NUMBER, T_TRUE, T_FALSE, T_NULL, T_OBJECT, T_ARRAY };

/* The members the gateway decides on. */
enum { ROLE_NONE = 0, ROLE_MODEL, ROLE_STREAM, ROLE_SO, ROLE_IU };
#define SEEN_MODEL   1
#define SEEN_STREAM  2
#define SEEN_SO      4
#define SEEN_IU      8

/* Where decoded string text goes. */
enum { CAP_NONE = 0, CAP_NAME, CAP_MODEL };

/* String kinds. */
enum { K_NAME = 0, K_VALUE };

/* 2^1024 - 2^970: the least magnitude strtod() rounds to infinity (and
 * Jansson refuses as "real number overflow"), as 309 significant digits;
 * it is d.ddd... * 10^308. */
static const char real_limit[] =
    "179769313486231580793728971405303415079934132710037826936173778980444"
    "968292764750946649017977587207096330286416692887910946555547851940402"
    "630657488671505820681908902000708383676273854845817711531764475730270"
    "069855571366959622842914819860834936475292719074168444365510704342711"
    "559699508093042880177904174497792";
#define REAL_LIMIT_DIGITS ((apr_int64_t)sizeof(real_limit) - 1)
#define REAL_LIMIT_EXP    308
#define EXP_SATURATE      APR_INT64_C(1000000000000000)

/* Bytes that end a run of plain string text: '"', '\\', controls and
 * bytes >= 0x80 (1); everything else (0). */
static const unsigned char stops[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
};

#if defined(__SSE2__)
/* The bytes of a 16-byte block that end plain text, as the sign bits of
 * the result: '\\' by equality; '"', the controls and the bytes >= 0x80
 * at once, because x ^ 0x02 moves '"' to 0x20 and keeps the controls
 * below it, and its saturating difference with 0x21 is negative exactly
 * for those and for the bytes >= 0x80 (negative already). */
static APR_INLINE __m128i stop_bytes(const unsigned char *p)
{
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);

    return _mm_or_si128(_mm_cmpeq_epi8(a, _mm_set1_epi8('\\')),
                        _mm_subs_epi8(_mm_xor_si128(a, _mm_set1_epi8(0x02)),
                                      _mm_set1_epi8(0x21)));
}

static APR_INLINE unsigned int stop_mask(const unsigned char *p)
{
    return (unsigned int)_mm_movemask_epi8(stop_bytes(p));
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define CR_BODY_AVX2 1
/* The same 32 bytes at a time, where the processor has AVX2 (chosen at
 * run time): a long run of plain text, at least 64 bytes from p to end.
 * Returns the first byte that ends it, or end. */
__attribute__((target("avx2")))
static const unsigned char *skip_plain_avx2(const unsigned char *p,
                                            const unsigned char *end)
{
    const __m256i bslash = _mm256_set1_epi8('\\');
    const __m256i two = _mm256_set1_epi8(0x02);
    const __m256i lim = _mm256_set1_epi8(0x21);
    const unsigned char *q = p;
    apr_uint64_t m;

#define STOPS32(x) _mm256_or_si256(_mm256_cmpeq_epi8((x), bslash), \
                       _mm256_subs_epi8(_mm256_xor_si256((x), two), lim))
#define MASK64(at) ((apr_uint64_t)(unsigned int)_mm256_movemask_epi8(STOPS32( \
                       _mm256_loadu_si256((const __m256i *)(const void *)(at)))) \
                   | (apr_uint64_t)(unsigned int)_mm256_movemask_epi8(STOPS32( \
                       _mm256_loadu_si256((const __m256i *)(const void *)((at) + 32)))) \
                     << 32)
    /* One 64-byte step first (most runs end in it), then 128 at a time. */
    m = MASK64(q);
    if (m) {
        return q + __builtin_ctzll(m);
    }
    q += 64;
    while (end - q >= 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)q);
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(const void *)(q + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(const void *)(q + 96));
        __m256i sa = STOPS32(a), sb = STOPS32(b);
        __m256i sc = STOPS32(c), sd = STOPS32(d);
        __m256i s = _mm256_or_si256(_mm256_or_si256(sa, sb),
                                    _mm256_or_si256(sc, sd));
        if (_mm256_movemask_epi8(s)) {
            m = (apr_uint64_t)(unsigned int)_mm256_movemask_epi8(sa)
                | (apr_uint64_t)(unsigned int)_mm256_movemask_epi8(sb) << 32;
            if (m) {
                return q + __builtin_ctzll(m);
            }
            m = (apr_uint64_t)(unsigned int)_mm256_movemask_epi8(sc)
                | (apr_uint64_t)(unsigned int)_mm256_movemask_epi8(sd) << 32;
            return q + 64 + __builtin_ctzll(m);
        }
        q += 128;
    }
    while (end - q >= 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)q);
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(q + 32));
        __m256i s = _mm256_or_si256(STOPS32(a), STOPS32(b));
        if (_mm256_movemask_epi8(s)) {
            m = MASK64(q);
            return q + __builtin_ctzll(m);
        }
        q += 64;
    }
    if (q == end) {
        return end;
    }
    /* The last bytes: the last 64 (those before q are plain already). */
    m = MASK64(end - 64);
    return m ? end - 64 + __builtin_ctzll(m) : end;
#undef STOPS32
#undef MASK64
}
#endif

#if defined(__GNUC__)
#define CR_BODY_ALWAYS_INLINE APR_INLINE __attribute__((always_inline))
#else
#define CR_BODY_ALWAYS_INLINE APR_INLINE
#endif

/* The first byte at or after p that ends plain text, or end (start is
 * where the piece begins: bytes from there may be read again).  Inlined
 * where a string opens: most strings end in its first look. */
static CR_BODY_ALWAYS_INLINE const unsigned char *
skip_plain(const unsigned char *p, const unsigned char *end,
           const unsigned char *start)
{
#if defined(__SSE2__)
    unsigned int m;

    /* Most strings are short (names, types): one look at 16 first. */
    if (end - p >= 16) {
        m = stop_mask(p);
        if (m) {
            return p + __builtin_ctz(m);
        }
        p += 16;
#if defined(CR_BODY_AVX2)
        if (end - p >= 64 && __builtin_cpu_supports("avx2")) {
            return skip_plain_avx2(p, end);
        }
#endif
        while (end - p >= 64) {
            __m128i a = stop_bytes(p), b = stop_bytes(p + 16);
            __m128i c = stop_bytes(p + 32), d = stop_bytes(p + 48);
            if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b),
                                               _mm_or_si128(c, d)))) {
                apr_uint64_t m64 =
                    (apr_uint64_t)(unsigned int)_mm_movemask_epi8(a)
                    | (apr_uint64_t)(unsigned int)_mm_movemask_epi8(b) << 16
                    | (apr_uint64_t)(unsigned int)_mm_movemask_epi8(c) << 32
                    | (apr_uint64_t)(unsigned int)_mm_movemask_epi8(d) << 48;
                return p + __builtin_ctzll(m64);
            }
            p += 64;
        }
        while (end - p >= 16) {
            m = stop_mask(p);
            if (m) {
                return p + __builtin_ctz(m);
            }
            p += 16;
        }
    }
    if (p < end && end - start >= 16) {
        /* The last bytes: the piece's last 16, those before p masked. */
        m = stop_mask(end - 16) >> (16 - (end - p));
        return m ? p + __builtin_ctz(m) : end;
    }
#else
    const apr_uint64_t ones = APR_UINT64_C(0x0101010101010101);
    const apr_uint64_t highs = APR_UINT64_C(0x8080808080808080);

    (void)start;
    while (end - p >= 8) {
        apr_uint64_t x, q, b;
        memcpy(&x, p, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        /* A zero byte of q or b, a byte < 0x20, or a high bit. */
        if (((q - ones) & ~q) & highs || ((b - ones) & ~b) & highs
            || (x | ((x - ones * 0x20) & ~x)) & highs) {
            break;
        }
        p += 8;
    }
#endif
    while (p < end && !stops[*p]) {
        p++;
    }
    return p;
}

/* skip_plain where a string opens; *quote tells whether the byte it
 * stops at is the string's closing '"' (the usual end of a short string,
 * known at once from the first look). */
static CR_BODY_ALWAYS_INLINE const unsigned char *
skip_plain_open(const unsigned char *p, const unsigned char *end,
                const unsigned char *start, int *quote)
{
#if defined(__SSE2__)
    if (end - p >= 16) {
        unsigned int m = stop_mask(p);
        if (m) {
            p += __builtin_ctz(m);
            *quote = (*p == '"');
            return p;
        }
    }
#endif
    p = skip_plain(p, end, start);
    *quote = (p != end && *p == '"');
    return p;
}

/* ---- state helpers ------------------------------------------------- */

static int fail(cr_body_scan_t *s, cr_body_status_e err, const char *what,
                apr_off_t at)
{
    if (s->err == CR_BODY_OK) {
        s->err = err;
        s->err_what = what;
        s->err_at = at;
    }
    return S_ERROR;
}

/* The capture helpers take where decoded text goes (the scanner keeps
 * it in a local) and return where the rest goes (CAP_NONE once the text
 * is too long to matter). */
static int cap_byte(cr_body_scan_t *s, int capture, unsigned char c)
{
    if (capture == CAP_MODEL) {
        if (s->model_len < CR_BODY_MAX_MODEL_LEN) {
            s->model[s->model_len++] = (char)c;
            return capture;
        }
        /* Too long: no need to keep decoding. */
        s->model_state = 3;
        return CAP_NONE;
    }
    if (capture == CAP_NAME) {
        if (s->cap_len < sizeof(s->name)) {
            s->name[s->cap_len++] = (char)c;
            return capture;
        }
        s->cap_over = 1;          /* not one of the names we look for */
    }
    return CAP_NONE;
}

/* n bytes of plain text, as n calls of cap_byte store them. */
static int cap_run(cr_body_scan_t *s, int capture, const unsigned char *p,
                   apr_size_t n)
{
    if (capture == CAP_MODEL) {
        apr_size_t room = CR_BODY_MAX_MODEL_LEN - s->model_len;
        if (n > room) {
            memcpy(s->model + s->model_len, p, room);
            s->model_len += room;
            s->model_state = 3;   /* too long: no need to keep decoding */
            return CAP_NONE;
        }
        memcpy(s->model + s->model_len, p, n);
        s->model_len += n;
    }
    else {
        apr_size_t room = sizeof(s->name) - s->cap_len;
        if (n > room) {
            memcpy(s->name + s->cap_len, p, room);
            s->cap_len += room;
            s->cap_over = 1;      /* not one of the names we look for */
            return CAP_NONE;
        }
        memcpy(s->name + s->cap_len, p, n);
        s->cap_len += n;
    }
    return capture;
}

static int cap_code_point(cr_body_scan_t *s, int capture, unsigned int cp)
{
    unsigned char u[4];
    apr_size_t n;

    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    }
    else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    }
    else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    }
    else {
        u[0] = (unsigned char)(0xF0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return cap_run(s, capture, u, n);
}

/* The first byte of a multi-byte character: how many follow and the
 * range of the next one (no overlong form, no surrogate, nothing past
 * U+10FFFF).  0 if it cannot start one. */
static int utf8_lead(cr_body_scan_t *s, unsigned char c)
{
    if (c >= 0xC2 && c <= 0xDF) {
        s->utf8_need = 1;
        s->utf8_lo = 0x80;
        s->utf8_hi = 0xBF;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        s->utf8_need = 2;
        s->utf8_lo = c == 0xE0 ? 0xA0 : 0x80;
        s->utf8_hi = c == 0xED ? 0x9F : 0xBF;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        s->utf8_need = 3;
        s->utf8_lo = c == 0xF0 ? 0x90 : 0x80;
        s->utf8_hi = c == 0xF4 ? 0x8F : 0xBF;
    }
    else {
        return 0;
    }
    return 1;
}

/* A run of multi-byte characters that lie whole in [p, end): returns the
 * first byte after them (an ASCII byte, a character cut by end, or a bad
 * byte, which the caller then looks at one at a time). */
static const unsigned char *utf8_run(const unsigned char *p,
                                     const unsigned char *end)
{
    while (p < end) {
        unsigned char c = p[0];
        if (c < 0xC2) {
            return p;                  /* ASCII, or not a lead byte */
        }
        if (c <= 0xDF) {
            if (end - p < 2 || (p[1] & 0xC0) != 0x80) {
                return p;
            }
            p += 2;
        }
        else if (c <= 0xEF) {
            unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
            unsigned char hi = c == 0xED ? 0x9F : 0xBF;
            if (end - p < 3 || p[1] < lo || p[1] > hi
                || (p[2] & 0xC0) != 0x80) {
                return p;
            }
            p += 3;
        }
        else if (c <= 0xF4) {
            unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
            unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
            if (end - p < 4 || p[1] < lo || p[1] > hi
                || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) {
                return p;
            }
            p += 4;
        }
        else {
            return p;
        }
    }
    return p;
}

/* A value begins (its first byte at `at`, in a container of depth
 * depth <= 2): note it if it is one the gateway decides on.  Returns
 * where a string value's text goes (CAP_MODEL for the model's). */
static APR_INLINE int watch_start(cr_body_scan_t *s, unsigned int depth,
                                  int type, apr_off_t at)
{
    if (depth == 0) {
        s->top = type == T_OBJECT ? 1 : 2;
        return CAP_NONE;
    }
    if (s->top != 1) {
        return CAP_NONE;
    }
    if (depth == 1) {
        switch (s->role1) {
        case ROLE_MODEL:
            if (type == T_STRING) {
                s->model_state = 1;
                s->model_len = 0;
                return CAP_MODEL;
            }
            else {
                s->model_state = 2;
            }
            break;
        case ROLE_STREAM:
            s->stream = (type == T_TRUE);
            break;
        case ROLE_SO:
            s->stream_options = type == T_OBJECT ? 1 : type == T_NULL ? 2 : 3;
            s->so_object = (type == T_OBJECT);
            s->so_start = at;
            break;
        default:
            break;
        }
    }
    else if (s->role1 == ROLE_SO && s->so_object && s->role2 == ROLE_IU) {
        s->include_usage = type == T_TRUE ? 1 : type == T_FALSE ? 2 : 3;
        s->iu_start = at;
    }
    return CAP_NONE;
}

/* A value ended just before `end` (depth is its container's). */
static APR_INLINE void watch_end(cr_body_scan_t *s, unsigned int depth,
                                 apr_off_t end)
{
    if (depth == 0) {
        if (s->top == 1) {
            s->object_end = end - 1;
        }
        return;
    }
    if (s->top != 1) {
        return;
    }
    if (depth == 1) {
        if (s->role1 == ROLE_SO) {
            s->so_end = end;
        }
        s->role1 = ROLE_NONE;
    }
    else if (s->role1 == ROLE_SO && s->so_object) {
        if (s->role2 == ROLE_IU) {
            s->iu_end = end;
        }
        s->role2 = ROLE_NONE;
    }
}

/* A member name ended (its closing '"' at `at`); nm[0..n) is its
 * decoded text, or NULL if it is longer than the names we look for.
 * Returns the next state.  Inlined where a name that lies whole in the
 * piece is compared where it lies (the usual case). */
static CR_BODY_ALWAYS_INLINE int name_end(cr_body_scan_t *s,
                                          unsigned int depth,
                                          const unsigned char *nm,
                                          apr_size_t n, apr_off_t at)
{
    int role = ROLE_NONE, bit = 0;
    const char *which = NULL;

    if (nm == NULL) {
        return S_COLON;
    }
    if (depth == 1) {
        if (n == 5 && cr_load4(nm) == cr_load4("mode") && nm[4] == 'l') {
            role = ROLE_MODEL, bit = SEEN_MODEL, which = "model";
        }
        else if (n == 6 && cr_load4(nm) == cr_load4("stre")
                 && cr_load2(nm + 4) == cr_load2("am")) {
            role = ROLE_STREAM, bit = SEEN_STREAM, which = "stream";
        }
        else if (n == 14 && cr_load8(nm) == cr_load8("stream_o")
                 && cr_load8(nm + 6) == cr_load8("_options")) {
            role = ROLE_SO, bit = SEEN_SO, which = "stream_options";
        }
        s->role1 = role;
    }
    else if (n == 13 && cr_load8(nm) == cr_load8("include_")
             && cr_load8(nm + 5) == cr_load8("de_usage")) {
        role = ROLE_IU, bit = SEEN_IU, which = "include_usage";
        s->role2 = role;
    }
    if (bit) {
        if (s->seen & bit) {
            s->err_what = which;   /* named in the detail: our own word */
            s->err = CR_BODY_DUPLICATE_MEMBER;
            s->err_at = at;
            return S_ERROR;
        }
        s->seen |= bit;
    }
    return S_COLON;
}

/* The same, out of line: for a name that was decoded (escapes in it, or
 * cut by the piece's end), which is rare. */
static int name_end_decoded(cr_body_scan_t *s, unsigned int depth,
                            apr_off_t at)
{
    return name_end(s, depth, s->cap_over ? NULL
                    : (const unsigned char *)s->name, s->cap_len, at);
}

static void num_sig_digit(cr_body_scan_t *s, int d)
{
    if (s->num_cmp == 0) {
        if (s->num_sigcount >= 0 && s->num_sigcount < REAL_LIMIT_DIGITS) {
            int t = real_limit[(apr_size_t)s->num_sigcount] - '0';
            s->num_cmp = (d > t) - (d < t);
        }
        s->num_sigcount++;
    }
}

/* The first n integer digits (n <= 19, all in num_int) through
 * num_sig_digit, in order, as if each had gone through it as it came. */
static void num_sig_replay(cr_body_scan_t *s, int n)
{
    unsigned char digit[19];
    apr_uint64_t v = s->num_int;
    int i;

    for (i = n - 1; i >= 0; i--) {
        digit[i] = (unsigned char)(v % 10);
        v /= 10;
    }
    for (i = 0; i < n; i++) {
        num_sig_digit(s, digit[i]);
    }
}

/* The number has a fraction or an exponent: it is a real, and its
 * integer digits (a non-zero integer part of at most 19, not compared
 * yet) are compared with the real limit now. */
static void num_real(cr_body_scan_t *s)
{
    if (s->num_lead < 0 && s->num_digits <= 19) {
        num_sig_replay(s, (int)s->num_digits);
    }
    s->num_real = 1;
}

/* A number ended: is it in the range Jansson accepts? */
static int num_in_range(const cr_body_scan_t *s)
{
    apr_int64_t e;

    if (!s->num_real) {
        return s->num_digits <= 19
               && s->num_int <= APR_UINT64_C(9223372036854775807)
                                + (apr_uint64_t)s->num_neg;
    }
    if (!s->num_sig) {
        return 1;                      /* zero */
    }
    e = s->num_eneg ? -s->num_exp : s->num_exp;
    e += s->num_lead < 0 ? s->num_digits - 1 : -(s->num_lead + 1);
    if (e != REAL_LIMIT_EXP) {
        return e < REAL_LIMIT_EXP;
    }
    return s->num_cmp < 0
           || (s->num_cmp == 0 && s->num_sigcount < REAL_LIMIT_DIGITS);
}

static void num_reset(cr_body_scan_t *s)
{
    s->num_neg = s->num_real = s->num_sig = 0;
    s->num_int = 0;
    s->num_digits = s->num_lead = s->num_sigcount = s->num_exp = 0;
    s->num_cmp = s->num_eneg = 0;
}

#define IS_WS(c) ((c) == ' ' || (c) == '\n' || (c) == '\r' || (c) == '\t')

/* ---- the scanner --------------------------------------------------- */

void cr_body_scan_init(cr_body_scan_t *s)
{
    /* What is read before it is written only (cr_body.h); the rest
     * (positions, the number, the bit stack, the texts...) is written
     * first where it is used. */
    memset(s, 0, offsetof(cr_body_scan_t, err_what));
    s->state = S_VALUE;
}

/* The escapes that stand for one byte: that byte; 0 for the others. */
static const unsigned char simple_escape[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b', ['f'] = '\f',
    ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'
};

int cr_body_scan(cr_body_scan_t *s, const char *data, apr_size_t len)
{
    const unsigned char *base = (const unsigned char *)data;
    const unsigned char *p = base, *end = base + len;
    int st = s->state;
    /* The hot state, in locals while the piece is scanned (written back
     * at the end): the helpers that need it are given it. */
    unsigned int depth;
    apr_uint64_t win;              /* the bit stack's innermost 64 */
    int capture, kind;
    const unsigned char *stop;
    int quote;
    unsigned char c;

#define AT(q) (s->pos + (apr_off_t)((q) - base))
#define FAIL(what, q) do { st = fail(s, CR_BODY_INVALID_JSON, what, AT(q)); \
                           goto out; } while (0)
    /* Is a value beginning or ending now one the gateway may decide on
     * (the top-level value, a watched member's, or one inside
     * stream_options)? */
#define WATCHED() (depth <= 2 && (depth == 0 || s->role1 != ROLE_NONE))
    /* A value ended just before q (the state becomes S_AFTER). */
#define VALUE_END(q) do { if (WATCHED()) { watch_end(s, depth, AT(q)); } \
                        } while (0)
    /* The container closes at p (its '}' or ']'). */
#define CLOSE() do { POP(); p++; VALUE_END(p); } while (0)
    /* A container opens, or closes.  Which kind each open one is (1 an
     * object) is a bit stack: the innermost 64 levels in win (bit 0 the
     * innermost), the outer ones in s->in_object (level d at bit d). */
#define PUSH(object) do { \
        if (depth >= 64) { \
            unsigned int d_ = depth - 64; \
            unsigned char bit_ = (unsigned char)(1u << (d_ % 8)); \
            if (win >> 63) { s->in_object[d_ / 8] |= bit_; } \
            else { s->in_object[d_ / 8] &= (unsigned char)~bit_; } } \
        win = (win << 1) | (object); depth++; } while (0)
#define POP() do { \
        depth--; win >>= 1; \
        if (depth >= 64) { \
            unsigned int d_ = depth - 64; \
            win |= (apr_uint64_t)((s->in_object[d_ / 8] >> (d_ % 8)) & 1) \
                   << 63; } } while (0)
    /* The innermost open container is an object (0 at depth 0). */
#define CUR_OBJECT() (win & 1)
    /* Go on in state `state` with the byte at p (at that state's label),
     * or stop there at the end of the piece. */
#define NEXT(state, label) do { st = (state); \
                                if (p == end) { goto out; } \
                                c = *p; goto label; } while (0)
    /* A name ended just before p: the usual ":" and a string value are
     * taken at once. */
#define AFTER_NAME() do { if (end - p >= 2 && cr_load2(p) == cr_load2(":\"")) { \
                              p++; goto value_string; } \
                          NEXT(S_COLON, colon); } while (0)
    /* White space is skipped; anything else at p is refused. */
#define WS_OR_FAIL(what) do { if (IS_WS(c)) { p++; } \
                              else { FAIL(what, p); } } while (0)

    if (st == S_ERROR) {
        return 1;
    }
    depth = s->depth;
    win = s->stack_top;
    capture = s->capture;
    kind = s->kind;
    while (p < end) {
        c = *p;

        switch (st) {
        case S_STR:
        str:
            /* Plain text up to the next byte that needs a look; a string
             * being decoded (a watched member's name, the model) takes
             * it in one copy, and a name that lies whole in the piece is
             * compared where it is. */
            stop = skip_plain(p, end, base);
        str_run:
            /* The plain text [p, stop). */
            if (capture != CAP_NONE) {
                if (capture == CAP_NAME && s->cap_len == 0
                    && stop != end && *stop == '"') {
                    capture = CAP_NONE;
                    st = name_end(s, depth, p, (apr_size_t)(stop - p),
                                  AT(stop));
                    p = stop + 1;
                    if (st == S_ERROR) {
                        goto out;
                    }
                    NEXT(S_COLON, colon);
                }
                if (stop != p) {
                    capture = cap_run(s, capture, p,
                                      (apr_size_t)(stop - p));
                }
            }
            p = stop;
            /* fall through */
        str_stop:
            /* At the byte that ended the plain text (or the piece's
             * end). */
            if (p == end) {
                goto out;
            }
            c = *p;
            if (c == '"') {
                p++;
                if (kind == K_NAME) {
                    if (capture == CAP_NAME) {
                        capture = CAP_NONE;
                        st = name_end_decoded(s, depth, AT(p - 1));
                        if (st == S_ERROR) {
                            goto out;
                        }
                    }
                    NEXT(S_COLON, colon);
                }
                capture = CAP_NONE;
                VALUE_END(p);
                NEXT(S_AFTER, after);
            }
            if (c == '\\') {
                if (capture == CAP_NONE && end - p >= 2
                    && simple_escape[p[1]]) {
                    p += 2;                  /* the usual \n, \" ... */
                    goto str;
                }
                p++;
                st = S_STR_ESC;
                break;
            }
            if (c >= 0x80) {
                if (capture == CAP_NONE) {
                    const unsigned char *q = utf8_run(p, end);
                    if (q != p) {
                        p = q;
                        goto str;
                    }
                }
                if (!utf8_lead(s, c)) {
                    FAIL("the text is not valid UTF-8", p);
                }
                if (capture != CAP_NONE) {
                    capture = cap_byte(s, capture, c);
                }
                p++;
                st = S_STR_UTF8;
                break;
            }
            /* skip_plain stops at nothing else */
            FAIL("a string contains a control character", p);

        case S_STR_UTF8:
            if (c < s->utf8_lo || c > s->utf8_hi) {
                FAIL("the text is not valid UTF-8", p);
            }
            if (capture != CAP_NONE) {
                capture = cap_byte(s, capture, c);
            }
            s->utf8_lo = 0x80;
            s->utf8_hi = 0xBF;
            if (--s->utf8_need == 0) {
                st = S_STR;
            }
            p++;
            break;

        case S_STR_ESC: {
            unsigned char d = simple_escape[c];
            if (c == 'u') {
                s->hex_left = 4;
                s->hex_val = 0;
                s->high = 0;
                st = S_STR_HEX;
                p++;
                break;
            }
            if (d == 0) {
                FAIL("invalid escape in a string", p);
            }
            if (capture != CAP_NONE) {
                capture = cap_byte(s, capture, d);
            }
            st = S_STR;
            p++;
            break;
        }

        case S_STR_HEX: {
            unsigned int v = 0;
            if (c >= '0' && c <= '9') {
                v = c - '0';
            }
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                v = (c | 0x20) - 'a' + 10;
            }
            else {
                FAIL("invalid escape in a string", p);
            }
            s->hex_val = (s->hex_val << 4) | v;
            p++;
            if (--s->hex_left > 0) {
                break;
            }
            v = s->hex_val;
            if (s->high) {
                if (v < 0xDC00 || v > 0xDFFF) {
                    FAIL("invalid Unicode escape (a lone surrogate)", p - 1);
                }
                v = 0x10000 + ((s->high - 0xD800) << 10) + (v - 0xDC00);
                s->high = 0;
            }
            else if (v >= 0xD800 && v <= 0xDBFF) {
                s->high = v;
                st = S_STR_LOW_BS;
                break;
            }
            else if (v >= 0xDC00 && v <= 0xDFFF) {
                FAIL("invalid Unicode escape (a lone surrogate)", p - 1);
            }
            else if (v == 0) {
                FAIL("\\u0000 is not allowed", p - 1);
            }
            if (capture != CAP_NONE) {
                capture = cap_code_point(s, capture, v);
            }
            st = S_STR;
            break;
        }

        case S_STR_LOW_BS:
            if (c != '\\') {
                FAIL("invalid Unicode escape (a lone surrogate)", p);
            }
            st = S_STR_LOW_U;
            p++;
            break;

        case S_STR_LOW_U:
            if (c != 'u') {
                FAIL("invalid Unicode escape (a lone surrogate)", p);
            }
            s->hex_left = 4;
            s->hex_val = 0;
            st = S_STR_HEX;
            p++;
            break;

        case S_AFTER:
        after:
            if (c == ',') {
                p++;
                if (CUR_OBJECT()) {
                    if (p < end && *p == '"') {
                        goto name_open;      /* the usual ,"name" */
                    }
                    st = S_NAME;
                    break;
                }
                if (depth == 0) {
                    FAIL("data after the JSON value", p - 1);
                }
                NEXT(S_VALUE, value);
            }
            else if (c == '}') {
                if (!CUR_OBJECT()) {         /* (also at depth 0) */
                    FAIL(depth ? "unexpected character"
                                  : "data after the JSON value", p);
                }
                CLOSE();
                NEXT(S_AFTER, after);
            }
            else if (c == ']') {
                if (depth == 0 || CUR_OBJECT()) {
                    FAIL(depth ? "unexpected character"
                                  : "data after the JSON value", p);
                }
                CLOSE();
                NEXT(S_AFTER, after);
            }
            else {
                WS_OR_FAIL(depth ? "unexpected character"
                                    : "data after the JSON value");
            }
            break;

        case S_COLON:
        colon:
            if (c == ':') {
                p++;
                NEXT(S_VALUE, value);
            }
            WS_OR_FAIL("unexpected character");
            break;

        case S_NAME_OR_CLOSE:
            if (c == '}') {
                CLOSE();
                NEXT(S_AFTER, after);
            }
            /* fall through */
        case S_NAME:
            if (c != '"') {
                WS_OR_FAIL("unexpected character");
                break;
            }
            /* fall through */
        name_open:
            /* A member name opens at p (its '"').  It is decoded if it
             * may be one the gateway decides on (in the top-level object,
             * or in its stream_options object); any other is passed
             * over.  Most lie whole in the piece with nothing in them to
             * look at, and end here at once. */
            p++;
            stop = skip_plain_open(p, end, base, &quote);
            if (depth == 1
                || (depth == 2 && s->role1 == ROLE_SO && s->so_object)) {
                if (quote) {
                    st = name_end(s, depth, p, (apr_size_t)(stop - p),
                                  AT(stop));
                    p = stop + 1;
                    if (st == S_ERROR) {
                        goto out;
                    }
                    AFTER_NAME();
                }
                st = S_STR;
                kind = K_NAME;
                capture = CAP_NAME;
                s->cap_len = 0;
                s->cap_over = 0;
                goto str_run;
            }
            if (quote) {
                p = stop + 1;
                AFTER_NAME();
            }
            st = S_STR;
            kind = K_NAME;
            capture = CAP_NONE;
            p = stop;
            goto str_stop;

        case S_VALUE_OR_CLOSE:
        value_or_close:
            if (c == ']') {
                CLOSE();
                NEXT(S_AFTER, after);
            }
            /* fall through */
        case S_VALUE:
        value:
            if (c == '"') {                  /* the most frequent, first */
        value_string:                        /* (p at its '"') */
                if (depth >= CR_BODY_MAX_DEPTH) {
                    FAIL("it is nested deeper than 2048 levels", p);
                }
                p++;
                st = S_STR;
                kind = K_VALUE;
                if (WATCHED()) {
                    capture = watch_start(s, depth, T_STRING, AT(p - 1));
                    goto str;
                }
                /* Passed over, and most end here at once (as names). */
                capture = CAP_NONE;
                p = skip_plain_open(p, end, base, &quote);
                if (quote) {
                    p++;
                    NEXT(S_AFTER, after);
                }
                goto str_stop;
            }
            if (c == '{') {
                if (depth >= CR_BODY_MAX_DEPTH) {
                    FAIL("it is nested deeper than 2048 levels", p);
                }
                if (WATCHED()) {
                    (void)watch_start(s, depth, T_OBJECT, AT(p));
                }
                PUSH(1);
                p++;
                if (p < end && *p == '"') {
                    goto name_open;          /* the usual {"name" */
                }
                st = S_NAME_OR_CLOSE;
                break;
            }
            if (c == '[') {
                if (depth >= CR_BODY_MAX_DEPTH) {
                    FAIL("it is nested deeper than 2048 levels", p);
                }
                if (WATCHED()) {
                    (void)watch_start(s, depth, T_ARRAY, AT(p));
                }
                PUSH(0);
                p++;
                NEXT(S_VALUE_OR_CLOSE, value_or_close);
            }
            if (IS_WS(c)) {
                p++;
                break;
            }
            if (depth >= CR_BODY_MAX_DEPTH) {
                FAIL("it is nested deeper than 2048 levels", p);
            }
            if (c >= '1' && c <= '9') {
                /* The usual small integer, whole in the piece: at most
                 * 18 digits are always in range, and need no more look. */
                const unsigned char *q = p + 1;
                while (q < end && (unsigned int)(*q - '0') <= 9) {
                    q++;
                }
                if (q != end && q - p <= 18 && *q != '.'
                    && (*q | 0x20) != 'e') {
                    if (WATCHED()) {
                        (void)watch_start(s, depth, T_NUMBER, AT(p));
                    }
                    p = q;
                    VALUE_END(p);
                    NEXT(S_AFTER, after);
                }
            }
            switch (c) {
            case 't':
                if (WATCHED()) {
                    (void)watch_start(s, depth, T_TRUE, AT(p));
                }
                if (end - p >= 4 && cr_load4(p) == cr_load4("true")) {
                    p += 4;                  /* the whole literal is here */
                    VALUE_END(p);
                    NEXT(S_AFTER, after);
                }
                s->lit = "rue";
                st = S_LIT;
                p++;
                break;
            case 'f':
                if (WATCHED()) {
                    (void)watch_start(s, depth, T_FALSE, AT(p));
                }
                if (end - p >= 5 && cr_load4(p + 1) == cr_load4("alse")) {
                    p += 5;
                    VALUE_END(p);
                    NEXT(S_AFTER, after);
                }
                s->lit = "alse";
                st = S_LIT;
                p++;
                break;
            case 'n':
                if (WATCHED()) {
                    (void)watch_start(s, depth, T_NULL, AT(p));
                }
                if (end - p >= 4 && cr_load4(p) == cr_load4("null")) {
                    p += 4;
                    VALUE_END(p);
                    NEXT(S_AFTER, after);
                }
                s->lit = "ull";
                st = S_LIT;
                p++;
                break;
            case '-':
                if (WATCHED()) {
                    (void)watch_start(s, depth, T_NUMBER, AT(p));
                }
                num_reset(s);
                s->num_neg = 1;
                st = S_NUM_MINUS;
                p++;
                break;
            default:
                if (c >= '0' && c <= '9') {
                    if (WATCHED()) {
                        (void)watch_start(s, depth, T_NUMBER, AT(p));
                    }
                    num_reset(s);
                    goto num_minus;      /* the digit is read there */
                }
                FAIL("unexpected character", p);
            }
            break;

        case S_LIT:
            if (c != (unsigned char)*s->lit) {
                FAIL("unexpected character", p);
            }
            p++;
            if (*++s->lit == '\0') {
                VALUE_END(p);
                st = S_AFTER;
            }
            break;

        case S_NUM_MINUS:
        num_minus:
            if (c == '0') {
                s->num_digits = 1;
                st = S_NUM_ZERO;
                p++;
                break;
            }
            if (c < '1' || c > '9') {
                FAIL("invalid number", p);
            }
            s->num_lead = -1;           /* the integer part is not zero */
            s->num_sig = 1;
            st = S_NUM_INT;             /* the digit is read there */
            /* fall through */
        case S_NUM_INT: {
            /* The integer digits: the first 19 are in num_int, and only
             * a real (or a 20th digit) needs them compared with the
             * real limit (num_sig_replay, then digit by digit). */
            apr_int64_t nd = s->num_digits;
            apr_uint64_t ni = s->num_int;
            while (p < end && *p >= '0' && *p <= '9') {
                int d = *p - '0';
                if (++nd <= 19) {
                    ni = ni * 10 + (apr_uint64_t)d;
                }
                else {
                    if (nd == 20) {
                        s->num_int = ni;
                        num_sig_replay(s, 19);
                    }
                    num_sig_digit(s, d);
                }
                p++;
            }
            s->num_digits = nd;
            s->num_int = ni;
            if (p == end) {
                goto out;
            }
            c = *p;
        }
            /* fall through */
        case S_NUM_ZERO:
            if (c == '.') {
                num_real(s);
                st = S_NUM_DOT;
                p++;
            }
            else if (c == 'e' || c == 'E') {
                num_real(s);
                st = S_NUM_E;
                p++;
            }
            else if (c >= '0' && c <= '9') {
                FAIL("invalid number (a leading zero)", p);
            }
            else {
                goto num_end;
            }
            break;

        case S_NUM_DOT:
            if (c < '0' || c > '9') {
                FAIL("invalid number", p);
            }
            st = S_NUM_FRAC;
            /* fall through */
        case S_NUM_FRAC:
            while (p < end && *p >= '0' && *p <= '9') {
                int d = *p - '0';
                if (s->num_sig) {
                    num_sig_digit(s, d);
                }
                else if (d == 0) {
                    s->num_lead++;
                }
                else {
                    s->num_sig = 1;
                    num_sig_digit(s, d);
                }
                p++;
            }
            if (p == end) {
                goto out;
            }
            c = *p;
            if (c == 'e' || c == 'E') {
                st = S_NUM_E;
                p++;
                break;
            }
            goto num_end;

        case S_NUM_E:
            if (c == '+' || c == '-') {
                s->num_eneg = (c == '-');
                st = S_NUM_ESIGN;
                p++;
                break;
            }
            /* fall through */
        case S_NUM_ESIGN:
            if (c < '0' || c > '9') {
                FAIL("invalid number", p);
            }
            st = S_NUM_EXP;
            /* fall through */
        case S_NUM_EXP:
            while (p < end && *p >= '0' && *p <= '9') {
                if (s->num_exp < EXP_SATURATE) {
                    s->num_exp = s->num_exp * 10 + (*p - '0');
                }
                p++;
            }
            if (p == end) {
                goto out;
            }
            /* fall through */
        num_end:
            if (!num_in_range(s)) {
                FAIL("a number is out of range", p);
            }
            VALUE_END(p);
            NEXT(S_AFTER, after);

        case S_ERROR:
        default:
            goto out;
        }
    }
out:
    if (st != S_ERROR) {
        s->pos += (apr_off_t)len;
    }
    s->state = st;
    s->depth = depth;
    s->stack_top = win;
    s->capture = capture;
    s->kind = kind;
    return st == S_ERROR;
#undef AT
#undef FAIL
#undef WATCHED
#undef VALUE_END
#undef CLOSE
#undef PUSH
#undef POP
#undef CUR_OBJECT
#undef NEXT
#undef WS_OR_FAIL
#undef AFTER_NAME
}

cr_body_status_e cr_body_scan_finish(apr_pool_t *p, cr_body_scan_t *s,
                                     cr_body_info_t *info)
{
    memset(info, 0, sizeof(*info));
    if (s->err == CR_BODY_OK && s->pos == 0 && s->state == S_VALUE) {
        info->detail = "The request body is empty; a JSON object is expected.";
        return CR_BODY_EMPTY;
    }
    if (s->err == CR_BODY_OK && s->depth == 0) {
        /* A number at the top level ends with the body. */
        switch (s->state) {
        case S_NUM_ZERO:
        case S_NUM_INT:
        case S_NUM_FRAC:
        case S_NUM_EXP:
            if (num_in_range(s)) {
                s->state = S_AFTER;
            }
            else {
                fail(s, CR_BODY_INVALID_JSON, "a number is out of range",
                     s->pos);
            }
            break;
        default:
            break;
        }
    }
    if (s->err == CR_BODY_OK && !(s->state == S_AFTER && s->depth == 0)) {
        fail(s, CR_BODY_INVALID_JSON, "the body ends before the JSON value",
             s->pos);
    }
    switch (s->err) {
    case CR_BODY_OK:
        break;
    case CR_BODY_DUPLICATE_MEMBER:
        info->detail = apr_psprintf(p, "The request body is not accepted: "
                                    "duplicate member \"%s\" (position %"
                                    APR_OFF_T_FMT ").", s->err_what,
                                    s->err_at);
        return s->err;
    case CR_BODY_READ_ERROR:
        info->detail = "The request body could not be read.";
        return s->err;
    default:
        info->detail = apr_psprintf(p, "The request body is not valid JSON: "
                                    "%s (position %" APR_OFF_T_FMT ").",
                                    s->err_what, s->err_at);
        return CR_BODY_INVALID_JSON;
    }
    if (s->top != 1) {
        info->detail = "The request body must be a JSON object.";
        return CR_BODY_NOT_OBJECT;
    }
    if (!(s->seen & SEEN_MODEL)) {
        info->detail = "The request body has no \"model\" member.";
        return CR_BODY_NO_MODEL;
    }
    if (s->model_state == 2) {
        info->detail = "The \"model\" member must be a string.";
        return CR_BODY_MODEL_NOT_STRING;
    }
    if (s->model_state == 3) {
        info->detail = apr_psprintf(p, "The \"model\" member is longer than "
                                    "%d bytes.", CR_BODY_MAX_MODEL_LEN);
        return CR_BODY_MODEL_NOT_STRING;
    }
    if (s->model_len == 0) {
        info->detail = "The \"model\" member must not be empty.";
        return CR_BODY_MODEL_NOT_STRING;
    }
    info->model = apr_pstrmemdup(p, s->model, s->model_len);
    info->stream = s->stream;
    info->object_end = s->object_end;
    info->stream_options = s->stream_options;
    if (s->stream_options) {
        info->stream_options_start = s->so_start;
        info->stream_options_end = s->so_end;
    }
    info->include_usage = s->include_usage;
    if (s->include_usage) {
        info->include_usage_start = s->iu_start;
        info->include_usage_end = s->iu_end;
    }
    return CR_BODY_OK;
}

cr_body_status_e cr_body_inspect(apr_pool_t *p, const char *data,
                                 apr_size_t len, cr_body_info_t *info)
{
    cr_body_scan_t s;

    cr_body_scan_init(&s);
    if (data != NULL && len > 0) {
        cr_body_scan(&s, data, len);
    }
    return cr_body_scan_finish(p, &s, info);
}

/* How much cr_body_inspect_stream asks its callback for at a time. */
#define CR_BODY_READ_PIECE 8192

cr_body_status_e cr_body_inspect_stream(apr_pool_t *p, cr_json_read_fn read_fn,
                                        void *baton, cr_body_info_t *info)
{
    cr_body_scan_t s;
    char buf[CR_BODY_READ_PIECE];

    cr_body_scan_init(&s);
    for (;;) {
        apr_size_t n = read_fn(buf, sizeof(buf), baton);
        if (n == (apr_size_t)-1) {
            if (s.err == CR_BODY_OK) {
                s.err = CR_BODY_READ_ERROR;
            }
            break;
        }
        if (n == 0 || cr_body_scan(&s, buf, n)) {
            break;
        }
    }
    return cr_body_scan_finish(p, &s, info);
}

int cr_body_content_type_is_json(const char *content_type)
{
    const char *start, *end, *slash;
    apr_size_t len;

    if (content_type == NULL) {
        return 1;
    }
    if (strlen(content_type) == sizeof("application/json") - 1) {
        /* The usual one: application/json in any case ('/' exactly; an
         * ASCII letter or'ed with 0x20 is its lower case, and no other
         * byte gives a lower-case letter). */
        static const unsigned char fold[8] = {
            0x20, 0x20, 0x20, 0, 0x20, 0x20, 0x20, 0x20
        };
        if ((cr_load8(content_type) | APR_UINT64_C(0x2020202020202020))
            == cr_load8("applicat")
            && (cr_load8(content_type + 8) | cr_load8(fold)) == cr_load8("ion/json")) {
            return 1;
        }
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
