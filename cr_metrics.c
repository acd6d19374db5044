/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_metrics.c: lock-free metric tables and their Prometheus exposition
 * (see cr_metrics.h).
 */
#include <string.h>
#include <stdio.h>

#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_strings.h>

#include "cr_metrics.h"

#define METRICS_MAGIC     0x43524d31u   /* "CRM1" */

/* Bytes of one slot's label values, each NUL-terminated, in order. */
#define LABEL_BYTES       512

/* Upper bounds of the upstream latency histogram, in seconds (+Inf is
 * the last bucket). */
static const double upstream_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};
#define NBUCKETS ((int)(sizeof(upstream_buckets) / sizeof(upstream_buckets[0])) + 1)
/* A slot's numbers: a counter uses [0]; a histogram its buckets (not
 * cumulative), then the sum in microseconds, then the count. */
#define NVALUES  (NBUCKETS + 2)
#define SUM_IDX  NBUCKETS
#define COUNT_IDX (NBUCKETS + 1)

/* How often a reader looks again at a slot another process is filling in
 * before it gives up on it (a process killed in between). */
#define CLAIM_SPINS       100000

enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_PUBLISHED = 2 };

typedef struct {
    apr_uint32_t state;
    apr_uint32_t hash;
    apr_uint32_t labels_len;
    apr_uint32_t pad;
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
    { "clawdrouter_tokens_total",
      "Tokens of forwarded responses, by key, model and direction.",
      "counter", 3, { "key_id", "model", "direction" } },
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

static apr_uint32_t labels_hash(const char *buf, apr_uint32_t len)
{
    apr_uint32_t h = 2166136261u;     /* FNV-1a */
    apr_uint32_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char)buf[i]) * 16777619u;
    }
    return h;
}

static int slot_is(const metric_slot *s, apr_uint32_t hash, const char *buf,
                   apr_uint32_t len)
{
    return s->hash == hash && s->labels_len == len
           && memcmp(s->labels, buf, len) == 0;
}

/* The slot of a label set, claimed if create and it has none. */
static metric_slot *find_slot(cr_metrics_t *m, int f, const char *buf,
                              apr_uint32_t len, int create)
{
    metric_slot *slots = table_slots(m, f);
    apr_uint32_t cap = m->tables[f].capacity;
    apr_uint32_t hash = labels_hash(buf, len);
    apr_uint32_t i = hash % cap, n;

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

/* The slot for a label set of family f.  Past the bound, a new set is
 * counted with key_id and model (values 0 and 1) as "_other". */
static metric_slot *series_slot(cr_metrics_t *m, int f, const char **values,
                                int n)
{
    metric_table *t = &m->tables[f];
    char buf[LABEL_BYTES];
    apr_uint32_t len;
    metric_slot *s;

    len = pack_labels(buf, n, values);
    if (!t->bounded) {
        return find_slot(m, f, buf, len, 1);
    }
    s = find_slot(m, f, buf, len, 0);
    if (s) {
        return s;
    }
    if (__atomic_fetch_add(&t->used, 1, __ATOMIC_ACQ_REL) < m->series) {
        return find_slot(m, f, buf, len, 1);
    }
    __atomic_fetch_sub(&t->used, 1, __ATOMIC_ACQ_REL);
    values[0] = CR_METRICS_OTHER;
    values[1] = CR_METRICS_OTHER;
    len = pack_labels(buf, n, values);
    return find_slot(m, f, buf, len, 1);
}

static void add(metric_slot *s, int idx, apr_uint64_t n)
{
    if (s) {
        __atomic_fetch_add(&s->values[idx], n, __ATOMIC_RELAXED);
    }
}

void cr_metrics_count_request(cr_metrics_t *m, const char *key_id,
                              const char *model, const char *upstream,
                              int status)
{
    char code[16];
    const char *values[4];

    if (!m) {
        return;
    }
    if (status >= 100 && status <= 999) {
        /* The usual HTTP status: three digits, without a format string. */
        code[0] = (char)('0' + status / 100);
        code[1] = (char)('0' + status / 10 % 10);
        code[2] = (char)('0' + status % 10);
        code[3] = '\0';
    }
    else {
        apr_snprintf(code, sizeof(code), "%d", status);
    }
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
    const char *values[3];

    if (!m) {
        return;
    }
    values[0] = key_id;
    values[1] = model;
    values[2] = "input";
    add(series_slot(m, CR_METRIC_TOKENS, values, 3), 0,
        input > 0 ? (apr_uint64_t)input : 0);
    values[0] = key_id;
    values[1] = model;
    values[2] = "output";
    add(series_slot(m, CR_METRIC_TOKENS, values, 3), 0,
        output > 0 ? (apr_uint64_t)output : 0);
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

void cr_metrics_observe_upstream(cr_metrics_t *m, const char *upstream,
                                 apr_interval_time_t elapsed)
{
    const char *values[1];
    metric_slot *s;
    double secs;
    int b;

    if (!m) {
        return;
    }
    if (elapsed < 0) {
        elapsed = 0;
    }
    values[0] = upstream;
    s = series_slot(m, CR_METRIC_UPSTREAM_SECONDS, values, 1);
    secs = (double)elapsed / (double)APR_USEC_PER_SEC;
    for (b = 0; b < NBUCKETS - 1 && secs > upstream_buckets[b]; b++) {
        ;
    }
    add(s, b, 1);
    add(s, SUM_IDX, (apr_uint64_t)elapsed);
    add(s, COUNT_IDX, 1);
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
                    set->values[COUNT_IDX]);
            }
        }
    }
    return apr_array_pstrcat(p, parts, '\0');
}
