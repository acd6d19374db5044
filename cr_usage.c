/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_usage.c: the usage scanner of cr_usage.h.  Two small state machines:
 * the server-sent events lines (field name, data, blank line) and, under
 * it, a JSON lexer that follows only the structure (depth, object or array,
 * which name looked for the current member name is) and reads the numbers
 * of a usage object.  Under a value where no name looked for can be it
 * follows only strings and brackets, sixty-four bytes at a time; where the
 * CPU has AVX2, so it does at the levels above a usage object too, where
 * only the brackets and the name a '{' or '[' is the value of matter.  No
 * byte of the response is kept but the first CR_USAGE_KEY_MAX of a member
 * name split between two pieces.
 */

#include <string.h>
#include <strings.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__) \
    && !defined(CR_USAGE_NO_AVX2)
#include <immintrin.h>
#endif

#include "cr_usage.h"

/* JSON lexer states.  The first six are those of a level where a name the
 * scanner looks for can be (a watched level: the top level, the object of
 * a top-level "message" or "response", a usage object); the last three
 * those of the levels under any other value, where only strings and
 * brackets are followed until the level that holds it is back. */
enum {
    LX_NORMAL = 0,      /* between tokens */
    LX_KEY,             /* in a member name split between pieces */
    LX_KEY_ESC,         /* ... after a backslash */
    LX_STR,             /* in a string value */
    LX_STR_ESC,         /* ... after a backslash */
    LX_NUMBER,          /* in the number of a usage field */
    LX_SKIP,            /* passing over a value: between tokens */
    LX_SKIP_STR,        /* ... in a string (a name or a value) */
    LX_SKIP_ESC         /* ... after a backslash in it */
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

/* The member names looked for (u->key): a usage field's index
 * (CR_USAGE_F_*), or one of these. */
enum {
    K_NONE = -1,        /* any other name, or one with an escape */
    K_USAGE = CR_USAGE_F__COUNT,
    K_CHOICES,
    K_MESSAGE,
    K_RESPONSE
};

/* Longest count read (digits). */
#define NUM_MAX_DIGITS 15

/* The scanner's small helpers are inlined into its loop (gcc and clang
 * otherwise call the larger ones). */
#if defined(__GNUC__)
#define CR_HOT_INLINE APR_INLINE __attribute__((always_inline))
#else
#define CR_HOT_INLINE APR_INLINE
#endif

/* A usage field's count that lies whole in the piece, as it most often
 * does: its digits from first (the count's first digit), at most
 * NUM_MAX_DIGITS of them, and a ',' or '}' after them.  Then the count is
 * field key's pending value and *p is where that ',' or '}' is; 0 when it
 * is not so (the count is then read digit by digit, across pieces). */
static CR_HOT_INLINE int count_in_place(cr_usage_t *u, int key,
                                        const char *first, const char *end,
                                        const char **p)
{
    const char *d = first + 1;
    apr_int64_t n = *first - '0';

    while (d < end && *d >= '0' && *d <= '9'
           && d - first < NUM_MAX_DIGITS) {
        n = n * 10 + (*d++ - '0');
    }
    if (d < end && (*d == ',' || *d == '}')) {
        u->pending[key] = n;
        u->pending_set[key] = 1;
        *p = d;
        return 1;
    }
    return 0;
}

/* Is level d an object (bit d of objbits; levels past 63 never are)? */
#define IS_OBJECT(bits, d) ((d) >= 1 && (d) < 64 && (((bits) >> (d)) & 1))

/* Are the n bytes at a those at b (n >= 4)?  Compared a word at a time,
 * the last word overlapping the one before it (b a literal: its words are
 * constants). */
static CR_HOT_INLINE apr_uint64_t word_at(const char *p, apr_size_t size)
{
    apr_uint64_t w = 0;
    apr_uint32_t h;

    if (size == 8) {
        memcpy(&w, p, 8);
        return w;
    }
    memcpy(&h, p, 4);
    return h;
}

static CR_HOT_INLINE int same_bytes(const char *a, const char *b,
                                    apr_size_t n)
{
    apr_size_t w = n < 8 ? 4 : 8, i;

    for (i = 0; i + w < n; i += w) {
        if (word_at(a + i, w) != word_at(b + i, w)) {
            return 0;
        }
    }
    return word_at(a + n - w, w) == word_at(b + n - w, w);
}

/* Which name looked for the n bytes at p are (told apart by their lengths
 * first). */
static CR_HOT_INLINE int name_kind(const char *p, apr_size_t n)
{
#define NAME_IS(lit) same_bytes(p, lit, sizeof(lit) - 1)
    switch (n) {
    case sizeof("usage") - 1:
        return NAME_IS("usage") ? K_USAGE : K_NONE;
    case sizeof("choices") - 1:                 /* also "message" */
        return NAME_IS("choices") ? K_CHOICES
               : NAME_IS("message") ? K_MESSAGE : K_NONE;
    case sizeof("response") - 1:
        return NAME_IS("response") ? K_RESPONSE : K_NONE;
    case sizeof("input_tokens") - 1:
        return NAME_IS("input_tokens") ? CR_USAGE_F_INPUT : K_NONE;
    case sizeof("prompt_tokens") - 1:           /* also "output_tokens" */
        return NAME_IS("prompt_tokens") ? CR_USAGE_F_INPUT
               : NAME_IS("output_tokens") ? CR_USAGE_F_OUTPUT : K_NONE;
    case sizeof("completion_tokens") - 1:
        return NAME_IS("completion_tokens") ? CR_USAGE_F_OUTPUT : K_NONE;
    case sizeof("cache_read_input_tokens") - 1:
        return NAME_IS("cache_read_input_tokens") ? CR_USAGE_F_CACHE_READ
               : K_NONE;
    case sizeof("cache_creation_input_tokens") - 1:
        return NAME_IS("cache_creation_input_tokens")
               ? CR_USAGE_F_CACHE_CREATION : K_NONE;
    default:
        return K_NONE;
    }
#undef NAME_IS
}

/* The deepest watched level: every level below it is watched too (a
 * usage object only lies in a watched level), every level deeper is not. */
static APR_INLINE unsigned int watched_max(unsigned int usage_depth,
                                           int top_key)
{
    return usage_depth ? usage_depth : top_key != TOP_OTHER ? 2 : 1;
}

/* The JSON state at the start of a document. */
static void json_reset(cr_usage_t *u)
{
    u->depth = 0;
    u->objbits = 0;
    u->lex = LX_NORMAL;
    u->expect_key = 0;
    u->key = K_NONE;
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
    /* Most responses are application/json: told at the first byte. */
    if ((*p == 't' || *p == 'T')
        && strncasecmp(p, sse, sizeof(sse) - 1) == 0) {
        p += sizeof(sse) - 1;
        if (*p == '\0' || *p == ';' || *p == ' ' || *p == '\t') {
            return CR_USAGE_SSE;
        }
    }
    return CR_USAGE_JSON;
}

/* The first byte at or after p that is a or b, or end.  Most of a
 * response is the text of strings, which only '"' and '\\' end (and the
 * data lines of a stream, which only a line end ends): looked at sixteen
 * bytes at a time where SSE2 is there. */
static APR_INLINE const char *find2(const char *p, const char *end, char a,
                                    char b)
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

/* Pass over n bytes of levels deeper than base byte by byte (where SSE2
 * is not there, and a block with a backslash outside strings).  *instr:
 * in a string, *esc: the first byte is escaped.
 * Returns how many bytes were read: those up to the bracket that brings
 * the depth back to base, or n. */
static CR_HOT_INLINE apr_size_t skip_bytes(const char *p, apr_size_t n,
                                           unsigned int *depth,
                                           unsigned int *instr,
                                           unsigned int *esc,
                                           unsigned int base)
{
    apr_size_t i = 0;

    if (*esc && n > 0) {
        *esc = 0;
        i = 1;
    }
    for (; i < n; i++) {
        char c = p[i];

        if (*instr) {
            if (c == '"') {
                *instr = 0;
            }
            else if (c == '\\') {
                if (i + 1 == n) {
                    *esc = 1;
                    return n;
                }
                i++;
            }
        }
        else if (c == '"') {
            *instr = 1;
        }
        else if ((c & 0xDF) == '[') {       /* '[' or '{' */
            ++*depth;
        }
        else if ((c & 0xDF) == ']' && --*depth == base) {  /* ']' or '}' */
            return i + 1;
        }
    }
    return n;
}

#if defined(__SSE2__)
/* Bits of the 64 bytes at p that are c (after AND with fold). */
#define MASK16(x, v) ((apr_uint64_t)(unsigned int)_mm_movemask_epi8( \
                          _mm_cmpeq_epi8((x), (v))))
#define MASK64(x0, x1, x2, x3, v) \
    (MASK16(x0, v) | (MASK16(x1, v) << 16) | (MASK16(x2, v) << 32) \
     | (MASK16(x3, v) << 48))
#endif

/* Pass over the levels deeper than base (lex one of LX_SKIP*, *depth >
 * base): only '"', '\\' and the brackets matter there.  Sixty-four bytes
 * at a time: which bytes are inside strings is worked out for the whole
 * block at once (the prefix XOR of its unescaped quotes), and only the
 * brackets outside strings are looked at one by one.  Returns just after
 * the bracket that brings the depth back to base (lex LX_NORMAL), or
 * end. */
static const char *skip_run(const char *p, const char *end,
                            unsigned int *depthp, int *lexp,
                            unsigned int base)
{
    unsigned int depth = *depthp;
    unsigned int instr = *lexp != LX_SKIP;
    unsigned int esc = *lexp == LX_SKIP_ESC;

#if defined(__SSE2__)
    const __m128i vq = _mm_set1_epi8('"');
    const __m128i vbs = _mm_set1_epi8('\\');
    /* '[' ']' '{' '}' (and 'Y' '_' 'y' DEL, told apart below) are the
     * bytes b with b & 0xD9 == 0x59. */
    const __m128i vfold = _mm_set1_epi8((char)0xD9);
    const __m128i vbr = _mm_set1_epi8(0x59);
    char tail[64];

    while (p < end) {
        apr_size_t n = (apr_size_t)(end - p);
        const char *b = p;
        apr_uint64_t mq, mbs, mbr, e, s, m;
        unsigned int esc_next = 0;
        __m128i x0, x1, x2, x3;

        if (n < 64) {
            /* The last bytes, in a block of their own (the NULs after
             * them are none of the bytes looked for). */
            memset(tail, 0, sizeof(tail));
            memcpy(tail, p, n);
            b = tail;
        }
        else {
            n = 64;
        }
        x0 = _mm_loadu_si128((const __m128i *)(const void *)b);
        x1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 16));
        x2 = _mm_loadu_si128((const __m128i *)(const void *)(b + 32));
        x3 = _mm_loadu_si128((const __m128i *)(const void *)(b + 48));
        mq = MASK64(x0, x1, x2, x3, vq);
        mbs = MASK64(x0, x1, x2, x3, vbs);
        mbr = MASK64(_mm_and_si128(x0, vfold), _mm_and_si128(x1, vfold),
                     _mm_and_si128(x2, vfold), _mm_and_si128(x3, vfold),
                     vbr);

        /* The escaped bytes: each backslash not itself escaped escapes
         * the next byte (the next block's first after the last byte). */
        e = esc;
        for (m = mbs; m; m &= m - 1) {
            apr_uint64_t bit = m & (0 - m);
            if (!(e & bit)) {
                if (bit == (apr_uint64_t)1 << (n - 1)) {
                    esc_next = 1;
                }
                e |= bit << 1;
            }
        }
        /* In a string after byte i: bit i of the prefix XOR of the
         * unescaped quotes, the state before the block XORed in. */
        s = mq & ~e;
        s ^= s << 1;
        s ^= s << 2;
        s ^= s << 4;
        s ^= s << 8;
        s ^= s << 16;
        s ^= s << 32;
        s ^= 0 - (apr_uint64_t)instr;
        if (mbs & ~s) {
            /* A backslash outside a string escapes nothing: this block
             * byte by byte. */
            p += skip_bytes(p, n, &depth, &instr, &esc, base);
            if (depth == base) {
                *depthp = depth;
                *lexp = LX_NORMAL;
                return p;
            }
            continue;
        }
        /* The brackets outside strings, in order. */
        for (m = mbr & ~s; m; m &= m - 1) {
            char c = b[__builtin_ctzll(m)];
            if ((c & 0xDF) == '[') {
                depth++;
            }
            else if ((c & 0xDF) == ']' && --depth == base) {
                *depthp = depth;
                *lexp = LX_NORMAL;
                return p + __builtin_ctzll(m) + 1;
            }
        }
        instr = (unsigned int)((s >> (n - 1)) & 1);
        esc = esc_next;
        p += n;
    }
    *lexp = esc ? LX_SKIP_ESC : instr ? LX_SKIP_STR : LX_SKIP;
#else
    p += skip_bytes(p, (apr_size_t)(end - p), &depth, &instr, &esc, base);
    if (depth == base) {
        *depthp = depth;
        *lexp = LX_NORMAL;
        return p;
    }
    *lexp = esc ? LX_SKIP_ESC : instr ? LX_SKIP_STR : LX_SKIP;
#endif
    *depthp = depth;
    return p;
}

/* A usage object ends: its fields are the counts now. */
static void usage_end(cr_usage_t *u)
{
    int any = 0;

    /* Written out: four fields. */
#define USAGE_TAKE(i) do { \
        if (u->pending_set[i]) { \
            u->field[i] = u->pending[i]; \
            u->field_set[i] = 1; \
            any = 1; \
        } \
    } while (0)
    USAGE_TAKE(CR_USAGE_F_INPUT);
    USAGE_TAKE(CR_USAGE_F_OUTPUT);
    USAGE_TAKE(CR_USAGE_F_CACHE_CREATION);
    USAGE_TAKE(CR_USAGE_F_CACHE_READ);
#undef USAGE_TAKE
    if (any) {
        u->seen = 1;
        u->event_usage = 1;
    }
}

/* Where the x86 CPU has them, AVX2 and carry-less multiplication read the
 * structure of the levels where only a usage object can begin
 * (struct_scan; chosen at run time: the build assumes no more than SSE2,
 * and without them those levels are read token by token). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__SSE2__) \
    && !defined(CR_USAGE_NO_AVX2)
#define CR_USAGE_AVX2 1
#define HAVE_AVX2() (__builtin_cpu_supports("avx2") \
                     && __builtin_cpu_supports("pclmul"))
#else
#define CR_USAGE_AVX2 0
#define HAVE_AVX2() 0
#endif

#if CR_USAGE_AVX2
/* JSON white space. */
#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')

/* The member name that a '{' or '[' at b is the value of, from the bytes
 * since safe (where key and expect_key were the state): K_UNSURE unless
 * they are the usual ',' (or nothing) "name" ':' (white space between),
 * which makes it certain.  blk: the block b is in, quotes and bslash its
 * unescaped quotes and backslashes (bit i: blk[i]). */
#define K_UNSURE (-2)
static APR_INLINE int member_key(const char *safe, const char *b, int key,
                                 int expect_key, apr_uint64_t objbits,
                                 unsigned int depth, const char *blk,
                                 apr_uint64_t quotes, apr_uint64_t bslash)
{
    apr_size_t i = (apr_size_t)(b - safe), close, open, lim, ci;

    if (i >= 2 && b[-1] == ':' && b[-2] == '"') {
        i -= 2;                 /* most often: "name":{ */
    }
    else {
        while (i > 0 && IS_WS(safe[i - 1])) {
            i--;
        }
        if (i == 0) {
            return key;         /* nothing since safe */
        }
        if (safe[i - 1] != ':') {
            return K_UNSURE;
        }
        i--;
        while (i > 0 && IS_WS(safe[i - 1])) {
            i--;
        }
        if (i == 0 || safe[i - 1] != '"') {
            return K_UNSURE;
        }
        i--;
    }
    /* A string ends just before the ':' (the quote is not escaped: the
     * ':' would be in the string).  Its first quote, with nothing
     * escaped between (a name with an escape is left to the tokens), at
     * most CR_USAGE_KEY_MAX bytes before. */
    close = i;
    lim = close > CR_USAGE_KEY_MAX + 1 ? close - (CR_USAGE_KEY_MAX + 1) : 0;
    ci = (apr_size_t)(safe + close - blk);
    if (safe + close > blk && ci < 64
        && (quotes & (((apr_uint64_t)1 << ci) - 1))) {
        /* From the block's quotes. */
        apr_uint64_t m = quotes & (((apr_uint64_t)1 << ci) - 1);
        apr_size_t oi = 63 - (apr_size_t)__builtin_clzll(m);

        if (blk + oi < safe + lim
            || (bslash & (((apr_uint64_t)1 << ci) - 1)
                & ~(((apr_uint64_t)2 << oi) - 1))) {
            return K_UNSURE;    /* too long, or an escape in it */
        }
        open = (apr_size_t)(blk + oi - safe);
    }
    else {
        open = close;
        do {
            if (open == lim) {
                return K_UNSURE;
            }
            open--;
        } while (safe[open] != '"' && safe[open] != '\\');
        if (safe[open] != '"') {
            return K_UNSURE;
        }
    }
    /* Was it a name?  What came before it says so. */
    i = open;
    if (i == 0 || safe[i - 1] != ',') {
        while (i > 0 && IS_WS(safe[i - 1])) {
            i--;
        }
    }
    if (i == 0 ? !expect_key
        : safe[i - 1] != ',' || !IS_OBJECT(objbits, depth)) {
        return K_UNSURE;
    }
    return name_kind(safe + open + 1, close - open - 1);
}

/* The state struct_scan reads and leaves. */
typedef struct {
    unsigned int depth;
    apr_uint64_t objbits;
    int expect_key;
    int key;
    const char *safe;           /* the state above is the state there */
    const char *at;             /* SS_OPEN: the '{', SS_KEEP: the byte */
    unsigned int instr;         /* SS_END: inside a string */
    unsigned int esc;           /* ... and the next byte escaped */
} struct_state_t;

/* What struct_scan stopped at. */
enum {
    SS_END = 0,                 /* the bytes ended */
    SS_OPEN,                    /* a usage object's '{' (key K_USAGE) */
    SS_TOKENS,                  /* something unusual: the bytes from safe
                                 * on token by token */
    SS_KEEP,                    /* "choices" is not empty, at ->at (its
                                 * first byte), and stop_on_keep */
    SS_CHOICES                  /* the bytes ended before the first byte
                                 * of "choices" */
};

/* The levels where only a "usage" (or "choices", "message", "response")
 * object can begin (usage_depth 0, depth at most watched_max), from p
 * (outside strings) to end (lo: the start of the caller's bytes):
 * nothing there does anything but the brackets and the name that a '{'
 * or '[' is the value of (member_key), so only the brackets outside
 * strings are looked at, sixty-four bytes at a time (which bytes are
 * inside strings is worked out for the whole block at once: the prefix
 * XOR of its unescaped quotes), the levels under any other value passed
 * over in the same blocks.  A '{' or '[' is read as json_run's open reads
 * it; the one of a usage object is left to it (SS_OPEN). */
__attribute__((target("avx2,pclmul"), noinline))
static int struct_scan(cr_usage_t *u, const char *lo, const char *p,
                       const char *end, int stop_on_keep,
                       struct_state_t *st)
{
    __m256i vq = _mm256_set1_epi8('"');
    __m256i vbs = _mm256_set1_epi8('\\');
    __m256i vfold = _mm256_set1_epi8((char)0xDF);
    __m256i vlb = _mm256_set1_epi8('[');
    __m256i vrb = _mm256_set1_epi8(']');
    const __m128i vones = _mm_set1_epi8((char)0xFF);
    unsigned int depth = st->depth;
    apr_uint64_t objbits = st->objbits;
    int expect_key = st->expect_key;
    int key = st->key;
    const char *safe = st->safe;
    unsigned int base = watched_max(0, u->top_key);
    unsigned int instr = 0, esc = 0;
    int status = SS_END;
    char tail[64];

    /* Opaque to gcc, which would otherwise build them again for every
     * block. */
    __asm__("" : "+x"(vq), "+x"(vbs), "+x"(vfold), "+x"(vlb), "+x"(vrb));
    while (p < end) {
        apr_size_t n = (apr_size_t)(end - p);
        const char *b = p;
        unsigned int shift = 0;
        apr_uint64_t mq, mbs, mbr, e, s, m;
        unsigned int esc_next = 0;
        __m256i x0, x1, y0, y1;

        if (n < 64) {
            if ((apr_size_t)(p - lo) >= 64 - n) {
                /* The 64 bytes that end at end, those before p shifted
                 * out of the masks. */
                shift = (unsigned int)(64 - n);
                b = end - 64;
            }
            else {
                /* In a block of their own (the NULs after them are none
                 * of the bytes looked for), copied without a call (the
                 * constants stay in their registers). */
                volatile char *t = tail;    /* not made a memcpy call */
                apr_size_t i;

                _mm256_storeu_si256((__m256i *)(void *)tail,
                                    _mm256_setzero_si256());
                _mm256_storeu_si256((__m256i *)(void *)(tail + 32),
                                    _mm256_setzero_si256());
                for (i = 0; i < n; i++) {
                    t[i] = p[i];
                }
                b = tail;
            }
        }
        else {
            n = 64;
        }
        x0 = _mm256_loadu_si256((const __m256i *)(const void *)b);
        x1 = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32));
        y0 = _mm256_and_si256(x0, vfold);
        y1 = _mm256_and_si256(x1, vfold);
#define MASK32(v) ((apr_uint64_t)(unsigned int)_mm256_movemask_epi8(v))
        mq = (MASK32(_mm256_cmpeq_epi8(x0, vq))
              | (MASK32(_mm256_cmpeq_epi8(x1, vq)) << 32)) >> shift;
        mbs = (MASK32(_mm256_cmpeq_epi8(x0, vbs))
               | (MASK32(_mm256_cmpeq_epi8(x1, vbs)) << 32)) >> shift;
        mbr = (MASK32(_mm256_or_si256(_mm256_cmpeq_epi8(y0, vlb),
                                      _mm256_cmpeq_epi8(y0, vrb)))
               | (MASK32(_mm256_or_si256(_mm256_cmpeq_epi8(y1, vlb),
                                         _mm256_cmpeq_epi8(y1, vrb)))
                  << 32)) >> shift;
#undef MASK32
        /* The escaped bytes: each backslash not itself escaped escapes
         * the next byte (the next block's first after the last byte). */
        e = esc;
        for (m = mbs; m; m &= m - 1) {
            apr_uint64_t bit = m & (0 - m);
            if (!(e & bit)) {
                if (bit == (apr_uint64_t)1 << ((n - 1) & 63)) {
                    esc_next = 1;
                }
                e |= bit << 1;
            }
        }
        /* In a string after byte i: bit i of the prefix XOR of the
         * unescaped quotes (a carry-less product with all ones), the
         * state before the block XORed in. */
        mq &= ~e;
        s = (apr_uint64_t)_mm_cvtsi128_si64(_mm_clmulepi64_si128(
                _mm_cvtsi64_si128((long long)mq), vones, 0))
            ^ (0 - (apr_uint64_t)instr);
        if (mbs & ~s) {
            /* A backslash outside a string escapes nothing. */
            if (depth <= base) {
                status = SS_TOKENS;
                goto done;
            }
            p += skip_bytes(p, n, &depth, &instr, &esc, base);
            if (depth == base) {
                expect_key = 0;
                key = K_NONE;
                safe = p;
            }
            continue;
        }
        /* The brackets outside strings, in order (bit i is p[i]). */
        for (m = mbr & ~s; m; m &= m - 1) {
            const char *q = p + __builtin_ctzll(m);
            char c = *q;

            if (depth > base) {
                /* Under a value where nothing is looked for. */
                if (c == '[' || c == '{') {
                    depth++;
                }
                else if (--depth == base) {
                    expect_key = 0;
                    key = K_NONE;
                    safe = q + 1;
                }
                continue;
            }
            if (c == ']' || c == '}') {
                if (depth > 0) {
                    depth--;
                    expect_key = 0;
                    key = K_NONE;
                }
                safe = q + 1;
                continue;
            }
            /* A value that holds others begins: what it is (as json_run's
             * open reads it). */
            if (depth == 0) {
                key = K_NONE;   /* nothing is looked for at the top */
            }
            else {
                int k = member_key(safe, q, key, expect_key, objbits,
                                   depth, p, mq, mbs);

                if (k == K_UNSURE) {
                    status = SS_TOKENS;
                    goto done;
                }
                key = k;
                if (key == K_USAGE && c == '{'
                    && (depth == 1
                        || (u->top_key != TOP_OTHER && IS_OBJECT(objbits, 2)))) {
                    st->at = q;
                    status = SS_OPEN;
                    goto done;
                }
                if (depth == 1) {
                    u->top_key = c == '{' && key == K_MESSAGE ? TOP_MESSAGE
                                 : c == '{' && key == K_RESPONSE
                                 ? TOP_RESPONSE : TOP_OTHER;
                }
            }
            depth++;
            objbits = c == '{' ? objbits | (apr_uint64_t)1 << depth
                      : objbits & ~((apr_uint64_t)1 << depth);
            expect_key = c == '{';
            safe = q + 1;
            if (depth == 2 && c == '[' && key == K_CHOICES) {
                /* Its first byte tells whether it is empty (the
                 * usage-only chunk of a stream) or not. */
                const char *f = q + 1;

                while (f < end && IS_WS(*f)) {
                    f++;
                }
                key = K_NONE;
                if (f == end) {
                    u->choices = 1;
                    status = SS_CHOICES;
                    goto done;
                }
                if (*f == ']') {
                    u->event_choices_empty = 1;
                }
                else if (stop_on_keep) {
                    st->at = f;
                    status = SS_KEEP;
                    goto done;
                }
                safe = f;
            }
            key = K_NONE;
            base = watched_max(0, u->top_key);
        }
        instr = (unsigned int)((s >> ((n - 1) & 63)) & 1);
        esc = esc_next;
        p += n;
    }
done:
    _mm256_zeroupper();
    st->depth = depth;
    st->objbits = objbits;
    st->expect_key = expect_key;
    st->key = key;
    st->safe = safe;
    st->instr = instr;
    st->esc = esc;
    return status;
}
#endif

/* Classes of the bytes between tokens (json_class). */
enum {
    C_OTHER = 0,        /* any other byte: read as a literal's */
    C_WS,               /* JSON white space */
    C_COLON,
    C_COMMA,
    C_QUOTE,
    C_OPEN,             /* '{' '[' */
    C_CLOSE,            /* '}' ']' */
    C_LIT               /* a byte of a number or a literal: the rest of
                         * one is passed over at once */
};

static const unsigned char json_class[256] = {
    [' '] = C_WS, ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS,
    [':'] = C_COLON, [','] = C_COMMA, ['"'] = C_QUOTE,
    ['{'] = C_OPEN, ['['] = C_OPEN, ['}'] = C_CLOSE, [']'] = C_CLOSE,
    ['0'] = C_LIT, ['1'] = C_LIT, ['2'] = C_LIT, ['3'] = C_LIT,
    ['4'] = C_LIT, ['5'] = C_LIT, ['6'] = C_LIT, ['7'] = C_LIT,
    ['8'] = C_LIT, ['9'] = C_LIT, ['.'] = C_LIT, ['-'] = C_LIT,
    ['+'] = C_LIT, ['E'] = C_LIT,
    ['a'] = C_LIT, ['b'] = C_LIT, ['c'] = C_LIT, ['d'] = C_LIT,
    ['e'] = C_LIT, ['f'] = C_LIT, ['g'] = C_LIT, ['h'] = C_LIT,
    ['i'] = C_LIT, ['j'] = C_LIT, ['k'] = C_LIT, ['l'] = C_LIT,
    ['m'] = C_LIT, ['n'] = C_LIT, ['o'] = C_LIT, ['p'] = C_LIT,
    ['q'] = C_LIT, ['r'] = C_LIT, ['s'] = C_LIT, ['t'] = C_LIT,
    ['u'] = C_LIT, ['v'] = C_LIT, ['w'] = C_LIT, ['x'] = C_LIT,
    ['y'] = C_LIT, ['z'] = C_LIT
};

#define CLASS_OF(c) json_class[(unsigned char)(c)]

/* The bytes [p, end) of JSON (lo: the start of the caller's bytes).  A
 * watched level's structure is followed token by token (but by
 * struct_scan, where it can, above a usage object); the levels under any
 * other value are passed over by skip_run; a string is read to its end at
 * once and a member name is told
 * where it lies (its first bytes are copied only when a piece ends inside
 * it).  The usual sequences (a name, ':', a string; a value, ',', a name)
 * are read without going back to the token loop.  The state every token
 * uses lives in locals and goes back to u at the end (the rest, rarely
 * changed, stays in u: fewer registers to keep, fewer spills).  With
 * stop_on_keep, returns just after the byte that showed a non-empty
 * "choices" (*kept set); else end. */
static const char *json_run(cr_usage_t *u, const char *lo, const char *p,
                            const char *end, int stop_on_keep, int *kept)
{
    unsigned int depth = u->depth;
    unsigned int usage_depth = u->usage_depth;
    apr_uint64_t objbits = u->objbits;
    int lex = u->lex;
    int expect_key = u->expect_key;
    int key = u->key;
    apr_int64_t num = 0;
    int num_len = 0;
    const char *q;
    char c;
#if CR_USAGE_AVX2
    struct_state_t st;
#else
    (void)lo;
#endif

    switch (lex) {
    case LX_NORMAL:
        if (u->choices == 1) {
            goto choices_first;
        }
#if CR_USAGE_AVX2
        if (!usage_depth && depth <= watched_max(0, u->top_key)
            && HAVE_AVX2()) {
            goto structure;
        }
#endif
        goto normal;
    case LX_KEY:
        goto name;
    case LX_KEY_ESC:
        goto name_esc;
    case LX_STR:
        goto string;
    case LX_STR_ESC:
        goto string_esc;
    case LX_NUMBER:
        num = u->num;
        num_len = u->num_len;
        goto number;
    default:
        goto skip;
    }

normal:
    while (p < end) {
        int cls;

        c = *p++;
        cls = CLASS_OF(c);
        if (cls == C_WS) {
            continue;
        }
        switch (cls) {
        case C_COLON:
            expect_key = 0;
            break;
        case C_COMMA:
            if (IS_OBJECT(objbits, depth)) {
                expect_key = 1;
            }
            key = K_NONE;
            break;
        case C_QUOTE:
            if (expect_key && IS_OBJECT(objbits, depth)) {
name_start:
                /* A member name, told where it lies if it ends here. */
                q = find2(p, end, '"', '\\');
                if (q == end || *q != '"') {
                    key = K_NONE;
                    u->key_len = 0;
                    goto name;
                }
                key = name_kind(p, (apr_size_t)(q - p));
                expect_key = 0;
                p = q + 1;
                /* Most often the ':' and the value follow at once. */
                if (p < end && *p == ':') {
                    p++;
                    if (p == end) {
                        break;
                    }
                    if (*p == '"') {
                        p++;
                        goto value_string;
                    }
                    if (*p == '{' || *p == '[') {
                        c = *p++;
                        goto open;
                    }
                    if (usage_depth && key >= 0
                        && key < CR_USAGE_F__COUNT) {
                        if (depth == usage_depth
                            && *p >= '0' && *p <= '9') {
                            /* A usage field's count. */
                            if (count_in_place(u, key, p, end, &p)) {
                                goto after_value;
                            }
                            /* Else as the default case below starts
                             * it. */
                            u->field_idx = key;
                            num = *p++ - '0';
                            num_len = 1;
                            goto number;
                        }
                    }
                    else if (CLASS_OF(*p) == C_LIT
                             || CLASS_OF(*p) == C_OTHER) {
                        /* A number or a literal that is no usage field's
                         * count (as the default case below passes over
                         * it). */
                        p++;
                        goto literal;
                    }
                }
                break;
            }
            /* The string's text, to its closing quote. */
string:
            for (;;) {
                q = find2(p, end, '"', '\\');
                if (q == end) {
                    p = end;
                    lex = LX_STR;
                    goto out;
                }
                p = q + 1;
                if (*q == '"') {
                    break;
                }
string_esc:
                if (p == end) {
                    lex = LX_STR_ESC;
                    goto out;
                }
                p++;            /* the escaped byte */
            }
            goto after_value;
value_string:
            /* A member's string value (the level is an object: a ','
             * brings a name). */
            for (;;) {
                q = find2(p, end, '"', '\\');
                if (q == end) {
                    p = end;
                    lex = LX_STR;
                    goto out;
                }
                p = q + 1;
                if (*q != '"') {
                    goto string_esc;
                }
                break;
            }
            if (p < end && *p == ',') {
                p++;
                key = K_NONE;
                expect_key = 1;
                if (p < end && *p == '"') {
                    p++;
                    goto name_start;
                }
            }
            break;
after_value:
            /* A value has ended: most often a ',' and the next member's
             * name follow at once. */
            if (p < end && *p == ',') {
                p++;
                key = K_NONE;
                if (IS_OBJECT(objbits, depth)) {
                    expect_key = 1;
                    if (p < end && *p == '"') {
                        p++;
                        goto name_start;
                    }
                }
            }
            else if (p < end && (*p == '}' || *p == ']')) {
                p++;
                goto close;
            }
            break;
        case C_OPEN:
open:
            /* A value that holds others begins: what it is. */
            if (depth == 1) {
                u->top_key = TOP_OTHER;
                if (c == '[') {
                    if (key == K_CHOICES) {
                        u->choices = 1;
                    }
                }
                else if (key == K_USAGE) {
                    usage_depth = 2;
                }
                else if (key == K_MESSAGE) {
                    u->top_key = TOP_MESSAGE;
                }
                else if (key == K_RESPONSE) {
                    u->top_key = TOP_RESPONSE;
                }
            }
            else if (depth == 2 && c == '{' && key == K_USAGE
                     && u->top_key != TOP_OTHER && !usage_depth
                     && IS_OBJECT(objbits, 2)) {
                usage_depth = 3;
            }
            if (c == '{' && usage_depth && depth + 1 == usage_depth) {
                int i;
                for (i = 0; i < CR_USAGE_F__COUNT; i++) {
                    u->pending_set[i] = 0;
                }
            }
            /* One level deeper. */
            depth++;
            if (depth < 64) {
                apr_uint64_t bit = (apr_uint64_t)1 << depth;
                objbits = c == '{' ? objbits | bit : objbits & ~bit;
            }
            expect_key = c == '{';
            key = K_NONE;
            if (u->choices == 1) {
                goto choices_first;
            }
            if (depth > watched_max(usage_depth, u->top_key)) {
                lex = LX_SKIP;
                goto skip;
            }
            if (expect_key && p < end && *p == '"') {
                p++;
                goto name_start;
            }
            break;
        case C_CLOSE:
close:
            if (depth == 0) {
                break;          /* not JSON; nothing to follow */
            }
            if (usage_depth && depth == usage_depth) {
                usage_end(u);
                usage_depth = 0;
#if CR_USAGE_AVX2
                if (end - p >= 64 && HAVE_AVX2()) {
                    /* Much is left: its structure. */
                    depth--;
                    expect_key = 0;
                    key = K_NONE;
                    goto structure;
                }
#endif
            }
            depth--;
            expect_key = 0;
            key = K_NONE;
            goto after_value;
        default:
            /* A number or a literal: only a usage field's number is
             * read (after its name: elsewhere, and after any other name,
             * nothing but '"', ':', ',' and the brackets does anything
             * until one of them). */
            if (usage_depth && !expect_key && key >= 0
                && key < CR_USAGE_F__COUNT) {
                if (depth == usage_depth
                    && (c == '-' || (c >= '0' && c <= '9'))) {
                    /* c, its first digit, was at p - 1 */
                    if (c != '-'
                        && count_in_place(u, key, p - 1, end, &p)) {
                        goto after_value;
                    }
                    u->field_idx = key;
                    if (c == '-') {
                        num = 0;
                        num_len = -1;
                    }
                    else {
                        num = c - '0';
                        num_len = 1;
                    }
                    goto number;
                }
                break;
            }
literal:
#if defined(__SSE2__)
            /* The next of them, sixteen bytes at a time (a timestamp's
             * digits, white space). */
            if (end - p >= 16) {
                __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
                __m128i y = _mm_and_si128(x, _mm_set1_epi8((char)0xDF));
                unsigned int m = (unsigned int)_mm_movemask_epi8(
                    _mm_or_si128(
                        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                     _mm_cmpeq_epi8(x, _mm_set1_epi8(':'))),
                        _mm_or_si128(
                            _mm_cmpeq_epi8(x, _mm_set1_epi8(',')),
                            _mm_or_si128(
                                _mm_cmpeq_epi8(y, _mm_set1_epi8('[')),
                                _mm_cmpeq_epi8(y, _mm_set1_epi8(']'))))));
                if (!m) {
                    p += 16;
                    break;
                }
                p += __builtin_ctz(m);
                goto after_value;
            }
#endif
            while (p < end && CLASS_OF(*p) == C_LIT) {
                p++;
            }
            goto after_value;
        }
    }
    lex = LX_NORMAL;
    goto out;

choices_first:
    /* The first byte after "choices":[ tells whether it is empty (the
     * usage-only chunk of a stream) or not. */
    while (p < end && CLASS_OF(*p) == C_WS) {
        p++;
    }
    if (p == end) {
        lex = LX_NORMAL;
        goto out;
    }
    u->choices = 0;
    if (*p == ']') {
        u->event_choices_empty = 1;
    }
    else if (stop_on_keep) {
        *kept = 1;
        end = p + 1;            /* the rest is for the next call */
        goto normal;
    }
    /* The array's level is not watched: passed over from its first
     * byte, as a value under it would be. */
    if (depth > watched_max(usage_depth, u->top_key)) {
        lex = LX_SKIP;
        goto skip;
    }
    goto normal;

name:
    /* The rest of a member name split between pieces: its first u->key_len
     * bytes are in key_part (-1: it matches no name looked for). */
    for (;;) {
        q = find2(p, end, '"', '\\');
        if (u->key_len >= 0) {
            apr_size_t n = (apr_size_t)(q - p);
            if (n <= (apr_size_t)(CR_USAGE_KEY_MAX - u->key_len)) {
                memcpy(u->key_part + u->key_len, p, n);
                u->key_len += (int)n;
            }
            else {
                u->key_len = -1;
            }
        }
        if (q == end) {
            p = end;
            lex = LX_KEY;
            goto out;
        }
        p = q + 1;
        if (*q == '"') {
            break;
        }
        u->key_len = -1;           /* an escaped name matches no name here */
name_esc:
        if (p == end) {
            lex = LX_KEY_ESC;
            goto out;
        }
        p++;
    }
    key = u->key_len >= 0 ? name_kind(u->key_part, (apr_size_t)u->key_len)
                       : K_NONE;
    u->key_len = -1;
    expect_key = 0;
    goto normal;

number:
    /* The count in num, num_len (u's only when a piece ends in it). */
    while (p < end) {
        c = *p;
        if (c >= '0' && c <= '9') {
            if (num_len >= 0) {
                if (num_len >= NUM_MAX_DIGITS) {
                    num_len = -1;
                }
                else {
                    num = num * 10 + (c - '0');
                    num_len++;
                }
            }
            p++;
            continue;
        }
        if (c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
            num_len = -1;
            p++;
            continue;
        }
        /* The number ends; c is read as any byte between tokens. */
        if (num_len > 0 && u->field_idx >= 0) {
            u->pending[u->field_idx] = num;
            u->pending_set[u->field_idx] = 1;
        }
        u->field_idx = -1;
        goto after_value;
    }
    u->num = num;
    u->num_len = num_len;
    lex = LX_NUMBER;
    goto out;

skip:
    p = skip_run(p, end, &depth, &lex, watched_max(usage_depth, u->top_key));
    if (lex != LX_NORMAL) {
        goto out;
    }
    /* Back at the watched level: as after any value's end. */
    expect_key = 0;
    key = K_NONE;
#if CR_USAGE_AVX2
    if (!usage_depth && HAVE_AVX2()) {
        goto structure;
    }
#endif
    goto after_value;

#if CR_USAGE_AVX2
structure:
    /* Where only a usage (or "choices", "message", "response") object
     * can begin: its structure only (struct_scan), from p where the
     * locals are the state (lex LX_NORMAL, usage_depth 0, depth at most
     * watched_max, u->choices not 1). */
    st.depth = depth;
    st.objbits = objbits;
    st.expect_key = expect_key;
    st.key = key;
    st.safe = p;
    lex = struct_scan(u, lo, p, end, stop_on_keep, &st);
    depth = st.depth;
    objbits = st.objbits;
    expect_key = st.expect_key;
    key = st.key;
    switch (lex) {
    case SS_OPEN:
        /* A usage object's '{' (key K_USAGE): token by token. */
        c = '{';
        p = st.at + 1;
        lex = LX_NORMAL;
        goto open;
    case SS_KEEP:
        /* A non-empty "choices" (as choices_first reads it). */
        *kept = 1;
        p = st.at;
        end = p + 1;
        lex = LX_NORMAL;
        goto normal;
    case SS_CHOICES:
        lex = LX_NORMAL;
        p = end;
        goto out;
    case SS_END:
        if (depth > watched_max(0, u->top_key)) {
            lex = st.esc ? LX_SKIP_ESC : st.instr ? LX_SKIP_STR : LX_SKIP;
            p = end;
            goto out;
        }
        /* fall through */
    default:
        /* From the last bracket on, token by token. */
        lex = LX_NORMAL;
        p = st.safe;
        goto normal;
    }
#endif

out:
    u->depth = depth;
    u->usage_depth = usage_depth;
    u->objbits = objbits;
    u->lex = lex;
    u->expect_key = expect_key;
    u->key = key;
    return p;
}

/* A data line ends: a line end inside the JSON (white space, or a byte of
 * a string). */
static void json_newline(cr_usage_t *u)
{
    switch (u->lex) {
    case LX_KEY:
        u->key_len = -1;        /* no name looked for has a line end */
        break;
    case LX_KEY_ESC:
        u->lex = LX_KEY;
        break;
    case LX_STR_ESC:
        u->lex = LX_STR;
        break;
    case LX_SKIP_ESC:
        u->lex = LX_SKIP_STR;
        break;
    case LX_NUMBER:
        if (u->num_len > 0 && u->field_idx >= 0) {
            u->pending[u->field_idx] = u->num;
            u->pending_set[u->field_idx] = 1;
        }
        u->field_idx = -1;
        u->lex = LX_NORMAL;
        break;
    default:
        break;
    }
}

/* The end of an event (its blank line). */
static void event_end(cr_usage_t *u)
{
    if (u->lex == LX_NUMBER) {
        json_newline(u);
    }
    u->in_event = 0;
    json_reset(u);
}

/* cr_usage_feed for a stream. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static apr_size_t sse_feed(cr_usage_t *u, const char *data, apr_size_t len,
                           cr_usage_signal_e *signal)
{
    cr_usage_signal_e unused;
    apr_size_t i;
    int kept = 0;

    if (!signal) {
        signal = &unused;
    }
    *signal = CR_USAGE_SIG_NONE;

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
                    json_newline(u);
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
                json_newline(u);
                u->sse = c == '\r' ? SSE_CR : SSE_LINE_START;
            }
            else {
                /* The rest of the line (or of the piece) at once. */
                const char *eol = find2(data + i, data + len, '\n', '\r');
                const char *q = json_run(u, data, data + i, eol, u->signals,
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

apr_size_t cr_usage_feed(cr_usage_t *u, const char *data, apr_size_t len,
                         cr_usage_signal_e *signal)
{
    if (u->format != CR_USAGE_JSON) {
        return sse_feed(u, data, len, signal);
    }
    /* A document: no signals (the rest of the scanner is for streams). */
    if (signal) {
        *signal = CR_USAGE_SIG_NONE;
    }
    (void)json_run(u, data, data, data + len, 0, NULL);
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
