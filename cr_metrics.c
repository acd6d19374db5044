/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_metrics.c: lock-free metric tables and their Prometheus exposition
 * (see cr_metrics.h).
 */
#include <string.h>
#include <stdio.h>

#include <apr.h>
#include <apr_general.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_strings.h>

#include "cr_metrics.h"

#define METRICS_MAGIC     0x43524d33u   /* "CRM3" */

/* Bytes of one slot's label values, each NUL-terminated, in order. */
#define LABEL_BYTES       512
/* A buffer of packed labels: 16 bytes more, so that the hash may load the
 * last block whole. */
#define PACK_BYTES        (LABEL_BYTES + 16)

/* Upper bounds of the upstream latency histogram, in seconds (+Inf is
 * the last bucket). */
static const double upstream_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};
#define NBUCKETS ((int)(sizeof(upstream_buckets) / sizeof(upstream_buckets[0])) + 1)
/* The same bounds in microseconds: an elapsed time e lands in the first
 * bucket with e <= bound, exactly as e / 1e6 <= the bound in seconds
 * would put it (the division is rounded to the nearest double, and
 * bounds one microsecond apart are far more than one rounding apart). */
static const apr_int64_t upstream_bucket_usec[NBUCKETS - 1] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    5000000, 10000000, 30000000, 60000000
};
/* A slot's numbers: a counter uses [0] (requests_total also [1] and [2]
 * for its links, LINK_TOKENS and LINK_UPSTREAM below); tokens_total [0]
 * for input and [1] for output; a histogram its buckets (not
 * cumulative), then the sum in microseconds (its count is the buckets'
 * total, so _count always equals the +Inf bucket). */
#define NVALUES  (NBUCKETS + 1)
#define SUM_IDX  NBUCKETS

/* How often a reader looks again at a slot another process is filling in
 * before it gives up on it (a process killed in between). */
#define CLAIM_SPINS       100000

enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_PUBLISHED = 2 };

#define TOKENS_INPUT      0
#define TOKENS_OUTPUT     1

/* The probe compares the 64-bit hash and the length before the labels. */
typedef struct {
    apr_uint32_t state;
    apr_uint32_t labels_len;
    apr_uint64_t hash;
    char labels[LABEL_BYTES];
    apr_uint64_t values[NVALUES];
} metric_slot;

typedef struct {
    apr_uint32_t capacity;        /* slots */
    apr_uint32_t bounded;         /* label sets limited to `series` */
    apr_uint32_t used;            /* label sets claimed under the bound */
    apr_uint32_t pad;
    apr_size_t offset;            /* of the first slot, from the block */
} metric_table;

struct cr_metrics_t {
    apr_uint32_t magic;
    apr_uint32_t series;
    apr_size_t size;
    apr_uint64_t seed[2];         /* of the label hash, random per table */
    metric_table tables[CR_METRIC__COUNT];
};

typedef struct {
    const char *name;
    const char *help;
    const char *type;
    int nlabels;
    const char *labels[4];
} family_def;

static const family_def families[CR_METRIC__COUNT] = {
    { "clawdrouter_requests_total",
      "Requests the gateway answered, by key, model, upstream and status.",
      "counter", 4, { "key_id", "model", "upstream", "code" } },
    /* One label set per (key_id, model), rendered as two series with
     * direction="input" and direction="output". */
    { "clawdrouter_tokens_total",
      "Tokens of forwarded responses, by key, model and direction.",
      "counter", 2, { "key_id", "model" } },
    { "clawdrouter_refusals_total",
      "Requests the gateway refused itself, by reason.",
      "counter", 1, { "reason" } },
    { "clawdrouter_upstream_seconds",
      "Time from the hand-over to mod_proxy to the response's first byte.",
      "histogram", 1, { "upstream" } },
    { "clawdrouter_store_errors_total",
      "Requests that met a key store or rate store error.",
      "counter", 1, { "store" } }
};

/* Slots of a family: the bounded ones have room for the sets past the
 * bound (under "_other") and for open addressing; the others have label
 * values from a small fixed set (reasons, stores) or from the
 * configuration (upstream names). */
static apr_uint32_t family_capacity(int f, apr_uint32_t series)
{
    switch (f) {
    case CR_METRIC_REQUESTS:
    case CR_METRIC_TOKENS:
        return series + series / 2 + 64;
    case CR_METRIC_UPSTREAM_SECONDS:
        return 1024;
    case CR_METRIC_REFUSALS:
        return 128;
    default:
        return 16;
    }
}

apr_size_t cr_metrics_size(apr_uint32_t series)
{
    apr_size_t size = APR_ALIGN_DEFAULT(sizeof(cr_metrics_t));
    int f;

    for (f = 0; f < CR_METRIC__COUNT; f++) {
        size += (apr_size_t)family_capacity(f, series) * sizeof(metric_slot);
    }
    return size;
}

cr_metrics_t *cr_metrics_init(void *block, apr_size_t size,
                              apr_uint32_t series, int fresh)
{
    cr_metrics_t *m = block;
    apr_size_t offset = APR_ALIGN_DEFAULT(sizeof(cr_metrics_t));
    int f;

    if (series < 1 || size < cr_metrics_size(series)) {
        return NULL;
    }
    if (!fresh) {
        return (m->magic == METRICS_MAGIC && m->series == series
                && m->size == size) ? m : NULL;
    }
    /* The slots are zero (fresh shared memory is): only the header is
     * written. */
    memset(m, 0, sizeof(*m));
    m->series = series;
    m->size = size;
    /* A seed the client cannot guess, so that it cannot choose model
     * names that all fall on one probe sequence. */
    if (apr_generate_random_bytes((unsigned char *)m->seed,
                                  sizeof(m->seed)) != APR_SUCCESS) {
        m->seed[0] = (apr_uint64_t)apr_time_now() ^ (apr_uint64_t)(size_t)m;
        m->seed[1] = m->seed[0] * 0x9e3779b97f4a7c15ULL;
    }
    for (f = 0; f < CR_METRIC__COUNT; f++) {
        m->tables[f].capacity = family_capacity(f, series);
        m->tables[f].bounded = (f == CR_METRIC_REQUESTS
                                || f == CR_METRIC_TOKENS);
        m->tables[f].offset = offset;
        offset += (apr_size_t)m->tables[f].capacity * sizeof(metric_slot);
    }
    __atomic_store_n(&m->magic, METRICS_MAGIC, __ATOMIC_RELEASE);
    return m;
}

static metric_slot *table_slots(cr_metrics_t *m, int f)
{
    return (metric_slot *)((char *)m + m->tables[f].offset);
}

/* Pack label values, each cut to what is left of LABEL_BYTES (on a UTF-8
 * character boundary) and to CR_METRICS_LABEL_MAX. */
static apr_uint32_t pack_labels(char *buf, int n, const char *const *values)
{
    apr_size_t pos = 0;
    int i;

    for (i = 0; i < n; i++) {
        const char *v = values[i] ? values[i] : "";
        apr_size_t room = LABEL_BYTES - pos - (apr_size_t)(n - i);
        apr_size_t full = strlen(v), len = full;

        if (len > CR_METRICS_LABEL_MAX) {
            len = CR_METRICS_LABEL_MAX;
        }
        if (len > room) {
            len = room;
        }
        while (len > 0 && len < full
               && ((unsigned char)v[len] & 0xC0) == 0x80) {
            len--;
        }
        memcpy(buf + pos, v, len);
        pos += len;
        buf[pos++] = '\0';
    }
    return (apr_uint32_t)pos;
}

#define HASH_MUL  0x9e3779b97f4a7c15ULL
#define HASH_MUL2 0xbf58476d1ce4e5b9ULL

/* a times b folded to 64 bits: the high half of the product (which every
 * bit of both feeds, through the carries) xor the low half. */
static APR_INLINE apr_uint64_t hash_mum(apr_uint64_t a, apr_uint64_t b)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 r = (unsigned __int128)a * b;

    return (apr_uint64_t)r ^ (apr_uint64_t)(r >> 64);
#else
    apr_uint64_t r = a * b;

    return r ^ (r >> 29) ^ ((a >> 32) * (b >> 32));
#endif
}

/* The first n bytes (1 to 8) of a word loaded from memory. */
static APR_INLINE apr_uint64_t first_bytes(apr_uint64_t w, unsigned int n)
{
#if APR_IS_BIGENDIAN
    return w & (~(apr_uint64_t)0 << (64 - n * 8));
#else
    return w & (~(apr_uint64_t)0 >> (64 - n * 8));
#endif
}

/* Mix len bytes at p into h, sixteen at a time, each block's two words
 * multiplied together (one keyed with k): p lies in a buffer of
 * PACK_BYTES, so the last block is loaded whole and the bytes past len
 * masked off.  h starts from the table's random seed and k is random
 * too, so a client cannot tell which model names would share a probe
 * sequence. */
static APR_INLINE apr_uint64_t hash_absorb(apr_uint64_t h, apr_uint64_t k,
                                           const char *p, apr_uint32_t len)
{
    apr_uint32_t blocks = len >> 4;
    unsigned int rest = len & 15u;
    apr_uint64_t a, b;

    for (; blocks > 0; blocks--, p += 16) {
        memcpy(&a, p, sizeof(a));
        memcpy(&b, p + 8, sizeof(b));
        h = hash_mum(a ^ h, b ^ k);
    }
    if (rest) {
        memcpy(&a, p, sizeof(a));
        memcpy(&b, p + 8, sizeof(b));
        if (rest <= 8) {
            a = first_bytes(a, rest);
            b = 0;
        }
        else {
            b = first_bytes(b, rest - 8);
        }
        h = hash_mum(a ^ h, b ^ k);
    }
    return h;
}

static APR_INLINE apr_uint64_t hash_final(apr_uint64_t h, apr_uint32_t len)
{
    return hash_mum(h ^ len, HASH_MUL2);
}

/* The hash of a packed label set of family f (buf of PACK_BYTES).  A set
 * of requests_total is mixed in two parts, (key_id, model) and the rest,
 * so that the first part's state is the hash of tokens_total's set (the
 * same pair) before its final mix: a request hashes the pair once. */
static apr_uint64_t set_hash(const cr_metrics_t *m, int f, const char *buf,
                             apr_uint32_t len)
{
    apr_uint64_t h;

    if (f == CR_METRIC_REQUESTS) {
        apr_uint32_t pair = (apr_uint32_t)strlen(buf) + 1;

        pair += (apr_uint32_t)strlen(buf + pair) + 1;
        h = hash_absorb(m->seed[0], m->seed[1], buf, pair);
        h = hash_absorb(h, m->seed[1], buf + pair, len - pair);
    }
    else {
        h = hash_absorb(m->seed[0], m->seed[1], buf, len);
    }
    return hash_final(h, len);
}

/* Copy n bytes: up to 32 (every label of a usual request) by two
 * overlapping moves the compiler makes loads and stores, no call. */
static APR_INLINE void copy_bytes(char *dst, const char *src, apr_size_t n)
{
    if (n >= 16 && n <= 32) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    }
    else if (n >= 8 && n < 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    }
    else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    }
    else {
        memcpy(dst, src, n);
    }
}

static APR_INLINE int slot_is(const metric_slot *s, apr_uint64_t hash,
                              const char *buf, apr_uint32_t len)
{
    return s->hash == hash && s->labels_len == len
           && memcmp(s->labels, buf, len) == 0;
}

/* Where the probe of a hash starts: its high half scaled to the table,
 * without a division. */
static APR_INLINE apr_uint32_t probe_start(apr_uint64_t hash,
                                           apr_uint32_t cap)
{
    return (apr_uint32_t)(((hash >> 32) * cap) >> 32);
}

/* The slot of a label set, claimed if create and it has none. */
static metric_slot *find_slot(cr_metrics_t *m, int f, const char *buf,
                              apr_uint32_t len, apr_uint64_t hash, int create)
{
    metric_slot *slots = table_slots(m, f);
    apr_uint32_t cap = m->tables[f].capacity;
    apr_uint32_t i = probe_start(hash, cap), n;

    for (n = 0; n < cap; n++) {
        metric_slot *s = &slots[i];
        apr_uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        int spins = 0;

        while (st == SLOT_CLAIMED && spins++ < CLAIM_SPINS) {
            st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        }
        if (st == SLOT_PUBLISHED) {
            if (slot_is(s, hash, buf, len)) {
                return s;
            }
        }
        else if (st == SLOT_FREE) {
            apr_uint32_t expect = SLOT_FREE;
            if (!create) {
                return NULL;
            }
            if (__atomic_compare_exchange_n(&s->state, &expect,
                                            SLOT_CLAIMED, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                s->hash = hash;
                s->labels_len = len;
                memcpy(s->labels, buf, len);
                __atomic_store_n(&s->state, SLOT_PUBLISHED,
                                 __ATOMIC_RELEASE);
                return s;
            }
            continue;   /* another process took it: look at it again */
        }
        i = (i + 1) % cap;
    }
    return NULL;        /* full: the count is lost */
}

/* The slot of a set if it is where its probe starts (the usual case): a
 * find_slot without its loop. */
static APR_INLINE metric_slot *first_probe(cr_metrics_t *m, int f,
                                           const char *buf, apr_uint32_t len,
                                           apr_uint64_t hash)
{
    metric_slot *s = table_slots(m, f)
                     + probe_start(hash, m->tables[f].capacity);

    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == SLOT_PUBLISHED
        && slot_is(s, hash, buf, len)) {
        return s;
    }
    return NULL;
}

/* The slot of the packed label set buf (a set not where its probe starts:
 * see packed_slot) (len bytes, hashed) of family f,
 * whose n label values are values.  Past the bound of a bounded family, a
 * new set is counted with key_id and model (values 0 and 1) as
 * "_other". */
static metric_slot *packed_slot_probe(cr_metrics_t *m, int f,
                                     const char *buf, apr_uint32_t len,
                                     apr_uint64_t hash,
                                     const char *const *values, int n,
                                     int *overflow)
{
    metric_table *t = &m->tables[f];
    const char *other[4];
    char obuf[PACK_BYTES];
    metric_slot *s;
    int i;

    if (!t->bounded) {
        return find_slot(m, f, buf, len, hash, 1);
    }
    s = find_slot(m, f, buf, len, hash, 0);
    if (s) {
        return s;
    }
    if (__atomic_fetch_add(&t->used, 1, __ATOMIC_ACQ_REL) < m->series) {
        return find_slot(m, f, buf, len, hash, 1);
    }
    __atomic_fetch_sub(&t->used, 1, __ATOMIC_ACQ_REL);
    *overflow = 1;
    other[0] = CR_METRICS_OTHER;
    other[1] = CR_METRICS_OTHER;
    for (i = 2; i < n; i++) {
        other[i] = values[i];
    }
    len = pack_labels(obuf, n, other);
    return find_slot(m, f, obuf, len, set_hash(m, f, obuf, len), 1);
}

/* The same, inline where the set is found at once.  *overflow is set if
 * the set was counted under "_other", left alone if not. */
static APR_INLINE metric_slot *packed_slot(cr_metrics_t *m, int f,
                                           const char *buf, apr_uint32_t len,
                                           apr_uint64_t hash,
                                           const char *const *values, int n,
                                           int *overflow)
{
    metric_slot *s = first_probe(m, f, buf, len, hash);

    return s ? s : packed_slot_probe(m, f, buf, len, hash, values, n,
                                     overflow);
}

/* The slot for the label values of family f. */
static metric_slot *series_slot(cr_metrics_t *m, int f,
                                const char *const *values, int n)
{
    char buf[PACK_BYTES];
    apr_uint32_t len = pack_labels(buf, n, values);
    int overflow = 0;

    return packed_slot(m, f, buf, len, set_hash(m, f, buf, len),
                       values, n, &overflow);
}

static APR_INLINE void add(metric_slot *s, int idx, apr_uint64_t n)
{
    if (s && n) {
        __atomic_fetch_add(&s->values[idx], n, __ATOMIC_RELAXED);
    }
}

static APR_INLINE void add_tokens(metric_slot *s, apr_int64_t input,
                                  apr_int64_t output)
{
    if (!s) {
        return;
    }
    if (input > 0) {
        __atomic_fetch_add(&s->values[TOKENS_INPUT], (apr_uint64_t)input,
                           __ATOMIC_RELAXED);
    }
    if (output > 0) {
        __atomic_fetch_add(&s->values[TOKENS_OUTPUT], (apr_uint64_t)output,
                           __ATOMIC_RELAXED);
    }
}

/* The code label of a status, NUL-terminated; its length. */
static APR_INLINE apr_size_t status_code(char *code, apr_size_t size,
                                         int status)
{
    static const char digits[] =
        "00010203040506070809101112131415161718192021222324"
        "25262728293031323334353637383940414243444546474849"
        "50515253545556575859606162636465666768697071727374"
        "75767778798081828384858687888990919293949596979899";

    if (status >= 100 && status <= 999) {
        /* The usual HTTP status: three digits, without a format string. */
        int hundreds = status / 100, rest = status - hundreds * 100;

        code[0] = (char)('0' + hundreds);
        code[1] = digits[rest * 2];
        code[2] = digits[rest * 2 + 1];
        code[3] = '\0';
        return 3;
    }
    apr_snprintf(code, size, "%d", status);
    return strlen(code);
}

void cr_metrics_count_request(cr_metrics_t *m, const char *key_id,
                              const char *model, const char *upstream,
                              int status)
{
    char code[16] = "";
    const char *values[4];

    if (!m) {
        return;
    }
    status_code(code, sizeof(code), status);
    values[0] = key_id;
    values[1] = model;
    values[2] = upstream;
    values[3] = code;
    add(series_slot(m, CR_METRIC_REQUESTS, values, 4), 0, 1);
}

void cr_metrics_count_tokens(cr_metrics_t *m, const char *key_id,
                             const char *model, apr_int64_t input,
                             apr_int64_t output)
{
    const char *values[2];

    if (!m) {
        return;
    }
    values[0] = key_id;
    values[1] = model;
    add_tokens(series_slot(m, CR_METRIC_TOKENS, values, 2), input, output);
}

void cr_metrics_count_refusal(cr_metrics_t *m, const char *reason)
{
    const char *values[1];

    if (!m) {
        return;
    }
    values[0] = reason;
    add(series_slot(m, CR_METRIC_REFUSALS, values, 1), 0, 1);
}

void cr_metrics_count_store_error(cr_metrics_t *m, const char *store)
{
    const char *values[1];

    if (!m) {
        return;
    }
    values[0] = store;
    add(series_slot(m, CR_METRIC_STORE_ERRORS, values, 1), 0, 1);
}

/* A requests_total slot also keeps where the other families' sets of its
 * labels are: the index + 1 of the tokens_total slot of its (key_id,
 * model) pair (only while both are counted under their own labels, not
 * "_other": an "_other" set of requests_total stands for many pairs) and
 * of the histogram slot of its upstream.  A link is written, with
 * release, once the slot it names is published, and never changes but
 * from 0 to an index: slots are never freed while the table lives, so a
 * link read once is good for every later request of the set, in every
 * process.  A process killed before writing one leaves 0 (the next
 * request looks the set up and writes it). */
#define LINK_TOKENS       1
#define LINK_UPSTREAM     2

static APR_INLINE metric_slot *linked_slot(cr_metrics_t *m,
                                           const metric_slot *from,
                                           int link, int f)
{
    apr_uint64_t i = __atomic_load_n(&from->values[link], __ATOMIC_ACQUIRE);

    if (i > 0 && i <= m->tables[f].capacity) {
        return table_slots(m, f) + (i - 1);
    }
    return NULL;
}

static void link_slot(cr_metrics_t *m, metric_slot *from, int link, int f,
                      const metric_slot *to)
{
    __atomic_store_n(&from->values[link],
                     (apr_uint64_t)(to - table_slots(m, f)) + 1,
                     __ATOMIC_RELEASE);
}

static APR_INLINE void observe(metric_slot *s, apr_interval_time_t elapsed)
{
    int b;

    if (elapsed < 0) {
        elapsed = 0;
    }
    if (!s) {
        return;
    }
    for (b = 0; b < NBUCKETS - 1 && elapsed > upstream_bucket_usec[b]; b++) {
        ;
    }
    __atomic_fetch_add(&s->values[b], 1, __ATOMIC_RELAXED);
    if (elapsed > 0) {
        __atomic_fetch_add(&s->values[SUM_IDX], (apr_uint64_t)elapsed,
                           __ATOMIC_RELAXED);
    }
}

void cr_metrics_observe_upstream(cr_metrics_t *m, const char *upstream,
                                 apr_interval_time_t elapsed)
{
    const char *values[1];

    if (!m) {
        return;
    }
    values[0] = upstream;
    observe(series_slot(m, CR_METRIC_UPSTREAM_SECONDS, values, 1), elapsed);
}

void cr_metrics_count_transaction(cr_metrics_t *m,
                                  const cr_metrics_request_t *req)
{
    char buf[PACK_BYTES], code[16] = "";
    const char *values[4];
    apr_size_t klen, mlen, ulen, clen, pair;
    metric_slot *rs = NULL, *ts = NULL, *us = NULL;
    int linked = 0;

    if (!m) {
        return;
    }
    values[0] = req->key_id ? req->key_id : "";
    values[1] = req->model ? req->model : "";
    values[2] = req->upstream ? req->upstream : "";
    values[3] = code;
    clen = status_code(code, sizeof(code), req->status);
    klen = strlen(values[0]);
    mlen = strlen(values[1]);
    ulen = strlen(values[2]);
    pair = klen + 1 + mlen + 1;
    if (klen <= CR_METRICS_LABEL_MAX && mlen <= CR_METRICS_LABEL_MAX
        && ulen <= CR_METRICS_LABEL_MAX
        && pair + ulen + 1 + clen + 1 <= LABEL_BYTES) {
        /* Nothing to cut: key_id, model, upstream and code packed once;
         * tokens_total's set is the first two of them, and set_hash's
         * first part (the pair) is mixed once for both. */
        apr_uint32_t plen = (apr_uint32_t)pair;
        apr_uint32_t len = (apr_uint32_t)(pair + ulen + 1 + clen + 1);
        apr_uint64_t h, hreq;
        int rs_other = 0, ts_other = 0;

        copy_bytes(buf, values[0], klen + 1);
        copy_bytes(buf + klen + 1, values[1], mlen + 1);
        copy_bytes(buf + pair, values[2], ulen + 1);
        if (clen == 3) {
            memcpy(buf + pair + ulen + 1, code, 4);
        }
        else {
            copy_bytes(buf + pair + ulen + 1, code, clen + 1);
        }
        h = hash_absorb(m->seed[0], m->seed[1], buf, plen);
        hreq = hash_final(hash_absorb(h, m->seed[1], buf + plen, len - plen),
                          len);
        rs = packed_slot(m, CR_METRIC_REQUESTS, buf, len, hreq, values, 4,
                         &rs_other);
        /* The set's labels are the request's own, uncut: its upstream
         * label is the upstream's (links are kept only then). */
        linked = rs != NULL;
        if (rs && req->usage_seen) {
            if (!rs_other) {
                ts = linked_slot(m, rs, LINK_TOKENS, CR_METRIC_TOKENS);
            }
            if (!ts) {
                ts = packed_slot(m, CR_METRIC_TOKENS, buf, plen,
                                 hash_final(h, plen), values, 2, &ts_other);
                if (ts && !rs_other && !ts_other) {
                    link_slot(m, rs, LINK_TOKENS, CR_METRIC_TOKENS, ts);
                }
            }
        }
    }
    else {
        rs = series_slot(m, CR_METRIC_REQUESTS, values, 4);
    }
    if (rs) {
        __atomic_fetch_add(&rs->values[0], 1, __ATOMIC_RELAXED);
    }
    if (req->usage_seen) {
        if (!ts) {
            ts = series_slot(m, CR_METRIC_TOKENS, values, 2);
        }
        add_tokens(ts, req->input_tokens, req->output_tokens);
    }
    if (req->latency_seen) {
        /* Every set of requests_total, "_other" too, has one upstream. */
        if (linked) {
            us = linked_slot(m, rs, LINK_UPSTREAM,
                             CR_METRIC_UPSTREAM_SECONDS);
        }
        if (!us) {
            us = series_slot(m, CR_METRIC_UPSTREAM_SECONDS, values + 2, 1);
            if (us && linked) {
                link_slot(m, rs, LINK_UPSTREAM, CR_METRIC_UPSTREAM_SECONDS,
                          us);
            }
        }
        observe(us, req->upstream_elapsed);
    }
    if (req->refusal) {
        cr_metrics_count_refusal(m, req->refusal);
    }
    if (req->store_error) {
        cr_metrics_count_store_error(m, req->store_error);
    }
}

char *cr_metrics_escape(apr_pool_t *p, const char *value)
{
    apr_size_t n = 0;
    const char *c;
    char *out, *o;

    for (c = value; *c; c++) {
        n += (*c == '\\' || *c == '"' || *c == '\n') ? 2 : 1;
    }
    out = o = apr_palloc(p, n + 1);
    for (c = value; *c; c++) {
        if (*c == '\\' || *c == '"') {
            *o++ = '\\';
            *o++ = *c;
        }
        else if (*c == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

/* {name="value",...} of a packed label set, plus one more label if
 * extra_name is set (the histogram's le). */
static char *render_labels(apr_pool_t *p, const family_def *fam,
                           const char *packed, const char *extra_name,
                           const char *extra_value)
{
    const char *v = packed;
    char *out = "{";
    int i;

    for (i = 0; i < fam->nlabels; i++) {
        out = apr_pstrcat(p, out, i ? "," : "", fam->labels[i], "=\"",
                          cr_metrics_escape(p, v), "\"", NULL);
        v += strlen(v) + 1;
    }
    if (extra_name) {
        out = apr_pstrcat(p, out, fam->nlabels ? "," : "", extra_name, "=\"",
                          extra_value, "\"", NULL);
    }
    return apr_pstrcat(p, out, "}", NULL);
}

/* The numbers of one label set, summed over every slot that carries it
 * (normally one). */
typedef struct {
    const char *labels;
    apr_uint64_t values[NVALUES];
} merged_set;

char *cr_metrics_render(cr_metrics_t *m, apr_pool_t *p)
{
    apr_array_header_t *parts = apr_array_make(p, 256, sizeof(char *));
    int f;

    if (!m) {
        return "";
    }
    for (f = 0; f < CR_METRIC__COUNT; f++) {
        const family_def *fam = &families[f];
        metric_slot *slots = table_slots(m, f);
        apr_hash_t *seen = apr_hash_make(p);
        apr_array_header_t *order = apr_array_make(p, 16,
                                                   sizeof(merged_set *));
        apr_uint32_t i;
        int j, k;

        APR_ARRAY_PUSH(parts, char *) = apr_psprintf(
            p, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help,
            fam->name, fam->type);
        for (i = 0; i < m->tables[f].capacity; i++) {
            metric_slot *s = &slots[i];
            merged_set *set;

            if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE)
                != SLOT_PUBLISHED) {
                continue;
            }
            set = apr_hash_get(seen, s->labels, s->labels_len);
            if (!set) {
                set = apr_pcalloc(p, sizeof(*set));
                set->labels = apr_pmemdup(p, s->labels, s->labels_len);
                apr_hash_set(seen, set->labels, s->labels_len, set);
                APR_ARRAY_PUSH(order, merged_set *) = set;
            }
            for (k = 0; k < NVALUES; k++) {
                set->values[k] += __atomic_load_n(&s->values[k],
                                                  __ATOMIC_RELAXED);
            }
        }
        for (j = 0; j < order->nelts; j++) {
            merged_set *set = APR_ARRAY_IDX(order, j, merged_set *);

            if (f == CR_METRIC_TOKENS) {
                APR_ARRAY_PUSH(parts, char *) = apr_psprintf(
                    p, "%s%s %" APR_UINT64_T_FMT "\n%s%s %" APR_UINT64_T_FMT
                    "\n", fam->name,
                    render_labels(p, fam, set->labels, "direction", "input"),
                    set->values[TOKENS_INPUT], fam->name,
                    render_labels(p, fam, set->labels, "direction",
                                  "output"),
                    set->values[TOKENS_OUTPUT]);
                continue;
            }
            if (f != CR_METRIC_UPSTREAM_SECONDS) {
                APR_ARRAY_PUSH(parts, char *) = apr_psprintf(
                    p, "%s%s %" APR_UINT64_T_FMT "\n", fam->name,
                    render_labels(p, fam, set->labels, NULL, NULL),
                    set->values[0]);
                continue;
            }
            {
                apr_uint64_t cumulative = 0;
                for (k = 0; k < NBUCKETS; k++) {
                    char le[32];
                    cumulative += set->values[k];
                    if (k < NBUCKETS - 1) {
                        snprintf(le, sizeof(le), "%g",
                                     upstream_buckets[k]);
                    }
                    else {
                        apr_cpystrn(le, "+Inf", sizeof(le));
                    }
                    APR_ARRAY_PUSH(parts, char *) = apr_psprintf(
                        p, "%s_bucket%s %" APR_UINT64_T_FMT "\n", fam->name,
                        render_labels(p, fam, set->labels, "le", le),
                        cumulative);
                }
                APR_ARRAY_PUSH(parts, char *) = apr_psprintf(
                    p, "%s_sum%s %.6f\n%s_count%s %" APR_UINT64_T_FMT "\n",
                    fam->name, render_labels(p, fam, set->labels, NULL, NULL),
                    (double)set->values[SUM_IDX] / (double)APR_USEC_PER_SEC,
                    fam->name, render_labels(p, fam, set->labels, NULL, NULL),
                    cumulative);
            }
        }
    }
    return apr_array_pstrcat(p, parts, '\0');
}
