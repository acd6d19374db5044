/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_ratetable.c: the lock-free table of the shm rate store (see
 * cr_ratetable.h and docs/RATELIMIT.md).
 *
 * Lookup is open addressing: a key lives in one of CR_RATETABLE_PROBES
 * entries from its hash's slot on.  An entry, once claimed, is never free
 * again (eviction gives it to another key in place), so a free entry ends
 * every probe sequence: a key that is in the table is found before the
 * first free entry, and two processes adding the same key both go for
 * that same free entry, where one compare-and-swap wins and the other
 * sees the winner's tag.
 *
 * The GCRA state is one word: TAT (microseconds since the table's epoch,
 * plus 1, in the upper 52 bits) and a 12-bit tag of the rpm it was
 * computed with.  A decision reads the word, runs cr_rate_take on it and
 * stores the result with a compare-and-swap from the word read; if another
 * process got there first, it decides again on the new word.  Every
 * admitted request therefore moves the TAT of its key by one interval from
 * the value the previous one left, as under a lock: bursts are exact.
 */
#include <string.h>

#include <apr_time.h>

#include "cr_ratetable.h"

#define TABLE_MAGIC   0x43525432u          /* "CRT2" */
#define RPM_TAG_BITS  12
#define RPM_TAG_MASK  ((APR_UINT64_C(1) << RPM_TAG_BITS) - 1)
#define TAT_MAX       ((APR_UINT64_C(1) << (64 - RPM_TAG_BITS)) - 2)
#define MAX_ATTEMPTS  1000

typedef struct {
    apr_uint64_t tag;
    apr_uint64_t state;
    apr_uint64_t rpm;
    apr_uint64_t spare;            /* 32 bytes: two entries a cache line */
} entry_t;

struct cr_ratetable_t {
    apr_uint32_t magic;
    apr_uint32_t nentries;
    apr_int64_t epoch;
    apr_uint64_t evictions;
    apr_uint64_t spare[5];         /* header of 64 bytes */
    entry_t entries[1];
};

#define LOAD(p)         __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define CAS(p, old, v)  __atomic_compare_exchange_n((p), (old), (v), 0, \
                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

apr_size_t cr_ratetable_size(apr_uint32_t nentries)
{
    return APR_OFFSETOF(cr_ratetable_t, entries)
           + (apr_size_t)(nentries ? nentries : 1) * sizeof(entry_t);
}

cr_ratetable_t *cr_ratetable_init(void *mem, apr_uint32_t nentries,
                                  apr_time_t now)
{
    cr_ratetable_t *t = mem;

    memset(t, 0, cr_ratetable_size(nentries));
    t->nentries = nentries ? nentries : 1;
    t->epoch = now;
    STORE(&t->magic, TABLE_MAGIC);
    return t;
}

cr_ratetable_t *cr_ratetable_attach(void *mem, apr_uint32_t nentries)
{
    cr_ratetable_t *t = mem;

    if (!t || LOAD(&t->magic) != TABLE_MAGIC || t->nentries != nentries) {
        return NULL;
    }
    return t;
}

apr_uint64_t cr_ratetable_evictions(const cr_ratetable_t *t)
{
    return __atomic_load_n(&t->evictions, __ATOMIC_RELAXED);
}

/* FNV-1a (cr_rate_id_fnv), then MurmurHash3's finaliser to spread every
 * bit; never 0. */
static apr_uint64_t key_hash(apr_uint64_t fnv)
{
    apr_uint64_t h = fnv;

    h ^= h >> 33;
    h *= APR_UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= APR_UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h ? h : 1;
}

static apr_uint64_t rpm_tag(apr_int64_t rpm)
{
    return ((apr_uint64_t)rpm * APR_UINT64_C(0x9e3779b97f4a7c15))
           >> (64 - RPM_TAG_BITS);
}

static apr_time_t word_tat(const cr_ratetable_t *t, apr_uint64_t word)
{
    return word ? t->epoch + (apr_time_t)(word >> RPM_TAG_BITS) - 1 : 0;
}

/* The state of a word; rpm_word is the entry's rpm, which belongs to the
 * word when the tags agree (else the limit is taken as unchanged). */
static void unpack(const cr_ratetable_t *t, apr_uint64_t word,
                   apr_uint64_t rpm_word, apr_int64_t rpm,
                   cr_rate_state_t *st)
{
    st->tat = word_tat(t, word);
    st->rpm = 0;
    if (word) {
        st->rpm = rpm_tag((apr_int64_t)rpm_word) == (word & RPM_TAG_MASK)
                  ? (apr_int64_t)rpm_word : rpm;
    }
}

static apr_uint64_t pack(const cr_ratetable_t *t, const cr_rate_state_t *st)
{
    apr_int64_t rel = st->tat - t->epoch + 1;
    apr_uint64_t tat = rel < 1 ? 1 : (apr_uint64_t)rel;

    if (tat > TAT_MAX) {
        tat = TAT_MAX;
    }
    return (tat << RPM_TAG_BITS) | rpm_tag(st->rpm);
}

/* The key's entry, claiming a free one or taking over the entry with the
 * least debt (smallest TAT: a full bucket first) when all its candidates
 * belong to other keys.  NULL after too many lost races. */
static entry_t *find(cr_ratetable_t *t, apr_uint64_t h, int *evicted)
{
    apr_uint32_t n = t->nentries;
    apr_uint32_t probes = n < CR_RATETABLE_PROBES ? n : CR_RATETABLE_PROBES;
    apr_uint32_t start = (apr_uint32_t)(((h >> 32) * n) >> 32), i, idx;
    int attempt;

    for (attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        entry_t *victim = NULL;
        apr_uint64_t vtag = 0, vstate = 0;

        for (i = 0, idx = start; i < probes; i++) {
            entry_t *e = &t->entries[idx];
            apr_uint64_t tag = LOAD(&e->tag);

            if (++idx == n) {
                idx = 0;
            }
            if (tag == h) {
                return e;
            }
            if (tag == 0) {
                if (CAS(&e->tag, &tag, h) || tag == h) {
                    return e;
                }
                /* another key took it first: it is not ours, go on */
            }
            {
                apr_uint64_t s = LOAD(&e->state);

                if (!victim || word_tat(t, s) < word_tat(t, vstate)) {
                    victim = e;
                    vtag = tag;
                    vstate = s;
                }
            }
        }
        /* Every candidate belongs to another key.  Forget the victim's
         * state first (if it is still what was read), then give the entry
         * to this key (if it still belongs to the victim's key).  A race
         * lost at either step means the neighbourhood changed: look
         * again. */
        if (CAS(&victim->state, &vstate, 0)) {
            apr_uint64_t expect = vtag;

            if (CAS(&victim->tag, &expect, h)) {
                __atomic_fetch_add(&t->evictions, 1, __ATOMIC_RELAXED);
                *evicted = 1;
                return victim;
            }
        }
    }
    return NULL;
}

apr_status_t cr_ratetable_take(cr_ratetable_t *t, const char *key_id,
                               apr_int64_t rpm, apr_time_t now,
                               cr_rate_result_t *result, int *evicted)
{
    return cr_ratetable_take_fnv(t, cr_rate_id_fnv(key_id), rpm, now, result,
                                 evicted);
}

/* One decision at now, or (read_clock) at the time read after the state
 * is loaded. */
static apr_status_t take(cr_ratetable_t *t, apr_uint64_t key_fnv,
                         apr_int64_t rpm, apr_time_t now, int read_clock,
                         cr_rate_result_t *result, int *evicted)
{
    apr_uint64_t h = key_hash(key_fnv);
    int attempt;

    *evicted = 0;
    if (rpm > CR_RATE_MAX_RPM) {
        rpm = CR_RATE_MAX_RPM;
    }
    for (attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        entry_t *e = find(t, h, evicted);
        apr_uint64_t word, next, rpm_word;
        cr_rate_state_t st;

        if (!e) {
            return APR_EAGAIN;
        }
        word = LOAD(&e->state);
        rpm_word = LOAD(&e->rpm);
        if (read_clock) {
            now = apr_time_now();
        }
        unpack(t, word, rpm_word, rpm, &st);
        cr_rate_take(&st, rpm, now, result);
        next = pack(t, &st);
        if (rpm_word != (apr_uint64_t)rpm) {
            /* Before the state: whoever reads the new state's tag finds
             * its rpm (tags differ from the old rpm's). */
            STORE(&e->rpm, (apr_uint64_t)rpm);
        }
        if (next == word || CAS(&e->state, &word, next)) {
            if (LOAD(&e->tag) == h) {
                return APR_SUCCESS;
            }
            /* The entry went to another key between the lookup and the
             * update: this request counts in the new key's bucket (it is
             * limited a little more); decide it again on ours. */
        }
    }
    return APR_EAGAIN;
}

apr_status_t cr_ratetable_take_fnv(cr_ratetable_t *t, apr_uint64_t key_fnv,
                                   apr_int64_t rpm, apr_time_t now,
                                   cr_rate_result_t *result, int *evicted)
{
    return take(t, key_fnv, rpm, now, 0, result, evicted);
}

apr_status_t cr_ratetable_take_now(cr_ratetable_t *t, apr_uint64_t key_fnv,
                                   apr_int64_t rpm, cr_rate_result_t *result,
                                   int *evicted)
{
    return take(t, key_fnv, rpm, 0, 1, result, evicted);
}
