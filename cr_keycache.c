/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keycache.c: the per-process key record cache (see cr_keycache.h).
 *
 * A direct-mapped table indexed by a keyed tag of the presented key: a
 * lookup is one slot, a new record replaces whatever shared its slot.
 *
 * The tag is SipHash-2-4 with 128-bit output (cr_siphash.c) under 16
 * random bytes drawn when the cache is made (once per child process).
 * A slot keeps the tag, never the key, with the record; a lookup tags
 * the presented key, finds the slot and compares all 128 bits.  So a hit
 * costs no SHA-256: the key's SHA-256 is computed only on a miss, to
 * fetch the record from the store, and the record is then cached under
 * the tag.  To be answered with a cached record, a key must have the
 * same tag as a key that was valid a moment ago: under a secret key
 * that no request can read, that is 2^-128 per try (SipHash is a PRF:
 * its tags of chosen inputs tell nothing about the tags of others).
 *
 * Each slot keeps the record's strings back to back in one malloc'd
 * block, after the offsets of each string, so a hit is one allocation
 * and one copy into the request pool, and no parse.  The table belongs
 * to the process, not to a pool that requests share, hence malloc and a
 * mutex.
 */

#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/stat.h>
#endif

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_info.h>
#include <apr_dbm.h>
#if APR_HAS_THREADS
#include <apr_thread_mutex.h>
#endif

#ifdef __linux__
#include <sys/vfs.h>
#endif

#include "cr_keycache.h"
#include "cr_rate.h"
#include "cr_store.h"
#include "cr_siphash.h"

/* What a change to one of the store's files changes (times in
 * nanoseconds where stat() gives them, else microseconds). */
typedef struct {
    int present;
    apr_uint64_t inode;
    apr_uint64_t device;
    apr_int64_t size;
    apr_int64_t mtime;
    apr_int64_t ctime;
} file_state;

typedef struct {
    file_state files[2];       /* sdbm has two files, other DBMs one */
} store_state;

typedef struct {
    cr_siphash128_t tag;       /* of the key whose record this is */
    char *block;               /* NULL: an empty slot; else the offsets
                                * (apr_uint32_t, 3 + nmodels) of id, name,
                                * hint and the models in strings, then the
                                * strings, each NUL-ended */
    apr_size_t strings_len;
    int nmodels;
    apr_int64_t rpm;
    apr_int64_t tpm;
    apr_int64_t quota;
    cr_quota_period_e quota_period;
    apr_time_t created_at;
    apr_time_t expires_at;
    cr_key_status_e status;
    apr_uint64_t id_fnv;       /* cr_rate_id_fnv of the record's id */
} cache_slot;

struct cr_keycache_t {
    const char *spec;
    const char *files[2];      /* the DBM's file names (second may be NULL) */
    apr_size_t nslots;         /* 0: no cache */
    cache_slot *slots;
    unsigned char secret[CR_SIPHASH_KEY_LEN];  /* the tags' key */
    apr_interval_time_t settle;
    store_state state;         /* of the files when the slots were read */
    int state_known;
    int local_fs;              /* -1 unknown, 0 no, 1 yes */
    cr_keycache_stats_t stats;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
};

static void cache_lock(cr_keycache_t *cache)
{
#if APR_HAS_THREADS
    if (cache->mutex) {
        apr_thread_mutex_lock(cache->mutex);
    }
#else
    (void)cache;
#endif
}

static void cache_unlock(cr_keycache_t *cache)
{
#if APR_HAS_THREADS
    if (cache->mutex) {
        apr_thread_mutex_unlock(cache->mutex);
    }
#else
    (void)cache;
#endif
}

static void flush_slots(cr_keycache_t *cache)
{
    apr_size_t i;

    for (i = 0; i < cache->nslots; i++) {
        free(cache->slots[i].block);
        cache->slots[i].block = NULL;
    }
}

static apr_status_t cache_cleanup(void *data)
{
    cr_keycache_t *cache = data;

    flush_slots(cache);
    free(cache->slots);
    cache->slots = NULL;
    cache->nslots = 0;
    memset(cache->secret, 0, sizeof(cache->secret));
    return APR_SUCCESS;
}

apr_status_t cr_keycache_create(apr_pool_t *p, const char *spec,
                                int entries, apr_interval_time_t settle,
                                int threads, cr_keycache_t **cache)
{
    cr_keycache_t *c = apr_pcalloc(p, sizeof(*c));
    const char *type, *path;

    c->spec = apr_pstrdup(p, spec);
    c->settle = settle;
    c->local_fs = -1;
    if (entries < 0 || entries > CR_KEYCACHE_MAX_ENTRIES) {
        return APR_EINVAL;
    }
    if (entries > 0
        && cr_store_parse_spec(p, spec, &type, &path) == APR_SUCCESS
        && apr_dbm_get_usednames_ex(p, type, path, &c->files[0],
                                    &c->files[1]) == APR_SUCCESS) {
        /* The tags' key: drawn once for this cache, that is once per
         * child process, and never shown anywhere. */
        apr_status_t rv = apr_generate_random_bytes(c->secret,
                                                    sizeof(c->secret));
        if (rv != APR_SUCCESS) {
            return rv;
        }
        c->slots = calloc(entries, sizeof(cache_slot));
        if (c->slots == NULL) {
            return APR_ENOMEM;
        }
        c->nslots = entries;
#if APR_HAS_THREADS
        /* A lock only where two threads can meet (a prefork child has
         * one, and its lookups then take none). */
        if (threads > 1) {
            rv = apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT,
                                         p);
            if (rv != APR_SUCCESS) {
                free(c->slots);
                return rv;
            }
        }
#else
        (void)threads;
#endif
        apr_pool_cleanup_register(p, c, cache_cleanup,
                                  apr_pool_cleanup_null);
    }
    *cache = c;
    return APR_SUCCESS;
}

/* stat() one file into f; 0 when it cannot be.  On Linux, stat() itself
 * (apr_stat converts every field it is asked for, and its permissions,
 * for about 190 instructions a call), with nanosecond times. */
static int stat_file(const char *file, file_state *f, apr_pool_t *p)
{
#ifdef __linux__
    struct stat sb;

    (void)p;
    if (stat(file, &sb) != 0) {
        return 0;
    }
    f->inode = (apr_uint64_t)sb.st_ino;
    f->device = (apr_uint64_t)sb.st_dev;
    f->size = (apr_int64_t)sb.st_size;
    f->mtime = (apr_int64_t)sb.st_mtim.tv_sec * 1000000000
               + sb.st_mtim.tv_nsec;
    f->ctime = (apr_int64_t)sb.st_ctim.tv_sec * 1000000000
               + sb.st_ctim.tv_nsec;
#else
    apr_finfo_t finfo;

    if (apr_stat(&finfo, file,
                 APR_FINFO_MTIME | APR_FINFO_CTIME | APR_FINFO_SIZE
                 | APR_FINFO_INODE | APR_FINFO_DEV, p) != APR_SUCCESS) {
        return 0;
    }
    f->inode = (apr_uint64_t)finfo.inode;
    f->device = (apr_uint64_t)finfo.device;
    f->size = (apr_int64_t)finfo.size;
    f->mtime = finfo.mtime;
    f->ctime = finfo.ctime;
#endif
    f->present = 1;
    return 1;
}

/* A file_state time as an apr_time_t. */
static apr_time_t state_time(apr_int64_t t)
{
#ifdef __linux__
    return (apr_time_t)(t / 1000);
#else
    return (apr_time_t)t;
#endif
}

/* stat() the store's files; non-zero when they can be compared.  Both
 * files of an sdbm store (.dir and .pag) are looked at: a write that
 * fits in its page changes .pag alone, and a store put back from a copy
 * may bring either file back alone. */
static int read_state(cr_keycache_t *cache, apr_pool_t *p, store_state *st)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (cache->files[i] == NULL) {
            memset(&st->files[i], 0, sizeof(st->files[i]));
        }
        else if (!stat_file(cache->files[i], &st->files[i], p)) {
            return 0;
        }
    }
    return 1;
}

static int same_state(const store_state *a, const store_state *b)
{
    int i;

    for (i = 0; i < 2; i++) {
        const file_state *x = &a->files[i], *y = &b->files[i];
        if (x->present != y->present || x->inode != y->inode
            || x->device != y->device || x->size != y->size
            || x->mtime != y->mtime || x->ctime != y->ctime) {
            return 0;
        }
    }
    return 1;
}

/* Has every file been left alone for the settle time? */
static int settled(const cr_keycache_t *cache, const store_state *st,
                   apr_time_t now)
{
    int i;

    for (i = 0; i < 2; i++) {
        const file_state *f = &st->files[i];
        apr_time_t changed;

        if (!f->present) {
            continue;
        }
        changed = state_time(f->mtime > f->ctime ? f->mtime : f->ctime);
        if (changed > now - cache->settle) {
            return 0;            /* recent, or in the future */
        }
    }
    return 1;
}

/* Is the store on a filesystem whose stat() tells a change at once?
 * Only filesystems known to be local qualify (fail closed). */
static int local_filesystem(const char *file)
{
#ifdef __linux__
    static const unsigned long local_types[] = {
        0xEF53UL,          /* ext2, ext3, ext4 */
        0x58465342UL,      /* xfs */
        0x9123683EUL,      /* btrfs */
        0x01021994UL,      /* tmpfs */
        0x794C7630UL,      /* overlayfs */
        0x2FC12FC1UL,      /* zfs */
        0xF2F52010UL,      /* f2fs */
        0x52654973UL,      /* reiserfs */
        0x3153464AUL,      /* jfs */
        0xCA451A4EUL,      /* bcachefs */
        0
    };
    struct statfs sfs;
    int i;

    if (statfs(file, &sfs) != 0) {
        return 0;
    }
    for (i = 0; local_types[i]; i++) {
        if ((unsigned long)sfs.f_type == local_types[i]) {
            return 1;
        }
    }
    return 0;
#else
    (void)file;
    return 0;
#endif
}

static cache_slot *slot_of(const cr_keycache_t *cache,
                           const cr_siphash128_t *tag)
{
    /* A PRF's output: any 64 bits of it are uniform. */
    return &cache->slots[tag->lo % cache->nslots];
}

/* Where a record rebuilt in one allocation puts each part. */
#define REC_SIZE     APR_ALIGN_DEFAULT(sizeof(cr_key_record_t))
#define HEADER_SIZE  APR_ALIGN_DEFAULT(sizeof(apr_array_header_t))

/* The slot's record, rebuilt in p: one allocation for the record, its
 * models array and the strings, one copy of the strings.  Called with
 * the cache locked (the slot may be replaced as soon as it is not). */
static cr_key_record_t *slot_record(const cache_slot *slot, apr_pool_t *p)
{
    int nstr = 3 + slot->nmodels, i;
    apr_size_t elts_size = APR_ALIGN_DEFAULT(sizeof(const char *)
                                             * (apr_size_t)slot->nmodels);
    const apr_uint32_t *offs = (const apr_uint32_t *)(void *)slot->block;
    char *mem = apr_palloc(p, REC_SIZE + HEADER_SIZE + elts_size
                              + slot->strings_len);
    cr_key_record_t *rec = (cr_key_record_t *)(void *)mem;
    apr_array_header_t *models = (apr_array_header_t *)(void *)(mem
                                                                + REC_SIZE);
    const char **elts = (const char **)(void *)(mem + REC_SIZE
                                                + HEADER_SIZE);
    char *s = mem + REC_SIZE + HEADER_SIZE + elts_size;

    memcpy(s, slot->block + sizeof(apr_uint32_t) * (apr_size_t)nstr,
           slot->strings_len);
    rec->id = s + offs[0];
    rec->name = s + offs[1];
    rec->hint = s + offs[2];
    for (i = 0; i < slot->nmodels; i++) {
        elts[i] = s + offs[3 + i];
    }
    /* what apr_array_make would have made, full */
    models->pool = p;
    models->elt_size = (int)sizeof(const char *);
    models->nelts = slot->nmodels;
    models->nalloc = slot->nmodels;
    models->elts = (char *)elts;
    rec->models = models;
    rec->rpm = slot->rpm;
    rec->tpm = slot->tpm;
    rec->quota = slot->quota;
    rec->quota_period = slot->quota_period;
    rec->created_at = slot->created_at;
    rec->expires_at = slot->expires_at;
    rec->status = slot->status;
    rec->id_fnv = slot->id_fnv;
    return rec;
}

/* Copy rec into slot under tag; 0 when out of memory or too large (the
 * slot is left empty). */
static int fill_slot(cache_slot *slot, const cr_siphash128_t *tag,
                     const cr_key_record_t *rec)
{
    const char *fields[3];
    apr_size_t len = 0, n, head;
    apr_uint32_t *offs;
    char *out, *strings;
    int i, nmodels = rec->models ? rec->models->nelts : 0;

    fields[0] = rec->id ? rec->id : "";
    fields[1] = rec->name ? rec->name : "";
    fields[2] = rec->hint ? rec->hint : "";
    for (i = 0; i < 3; i++) {
        len += strlen(fields[i]) + 1;
    }
    for (i = 0; i < nmodels; i++) {
        len += strlen(APR_ARRAY_IDX(rec->models, i, const char *)) + 1;
    }
    free(slot->block);
    slot->block = NULL;
    if (len > APR_UINT32_MAX) {
        return 0;
    }
    head = sizeof(apr_uint32_t) * (apr_size_t)(3 + nmodels);
    out = malloc(head + len);
    if (out == NULL) {
        return 0;
    }
    offs = (apr_uint32_t *)(void *)out;
    strings = out + head;
    len = 0;
    for (i = 0; i < 3 + nmodels; i++) {
        const char *s = i < 3 ? fields[i]
                              : APR_ARRAY_IDX(rec->models, i - 3,
                                              const char *);
        n = strlen(s) + 1;
        offs[i] = (apr_uint32_t)len;
        memcpy(strings + len, s, n);
        len += n;
    }
    slot->block = out;
    slot->strings_len = len;
    slot->nmodels = nmodels;
    slot->rpm = rec->rpm;
    slot->tpm = rec->tpm;
    slot->quota = rec->quota;
    slot->quota_period = rec->quota_period;
    slot->created_at = rec->created_at;
    slot->expires_at = rec->expires_at;
    slot->status = rec->status;
    /* Where the rate and token tables keep the key, worked out once. */
    slot->id_fnv = cr_rate_id_fnv(fields[0]);
    slot->tag = *tag;
    return 1;
}

/* The lookup without a cache: the key's SHA-256, then open the store,
 * read the record, close. */
static cr_keycache_result_e read_store(apr_pool_t *p, const char *spec,
                                       const char *key,
                                       cr_key_record_t **rec,
                                       apr_status_t *rv, char *errbuf,
                                       apr_size_t errlen)
{
    const char *hash = cr_key_hash(p, key);
    cr_store_t *store;

    if (hash == NULL) {
        *rv = APR_EGENERAL;
        apr_cpystrn(errbuf, "the key's SHA-256 cannot be computed", errlen);
        return CR_KEYCACHE_HASH_FAILED;
    }
    *rv = cr_store_open(p, spec, 0, &store, errbuf, errlen);
    if (*rv != APR_SUCCESS) {
        return CR_KEYCACHE_OPEN_FAILED;
    }
    *rv = cr_store_fetch_by_hash(store, p, hash, rec);
    if (*rv != APR_SUCCESS && *rv != APR_NOTFOUND) {
        apr_cpystrn(errbuf, cr_store_last_error(store), errlen);
    }
    cr_store_close(store);
    if (*rv == APR_NOTFOUND) {
        return CR_KEYCACHE_NOT_FOUND;
    }
    return *rv == APR_SUCCESS ? CR_KEYCACHE_FOUND : CR_KEYCACHE_READ_FAILED;
}

cr_keycache_result_e cr_keycache_lookup(cr_keycache_t *cache, apr_pool_t *p,
                                        const char *key,
                                        cr_key_record_t **rec, int *hit,
                                        apr_status_t *rv, char *errbuf,
                                        apr_size_t errlen)
{
    store_state now_state;
    apr_time_t looked_at;
    cr_keycache_result_e result;
    cr_siphash128_t tag = { 0, 0 };
    cache_slot *slot;
    int cacheable = 0;

    *rv = APR_SUCCESS;
    *hit = 0;
    if (cache->nslots == 0 || key == NULL) {
        return read_store(p, cache->spec, key, rec, rv, errbuf, errlen);
    }

    /* A hit needs the files as they are now to be as they were when the
     * cached records were read; anything else drops the whole cache. */
    if (read_state(cache, p, &now_state)) {
        tag = cr_siphash24_128(cache->secret, key, strlen(key));
        cache_lock(cache);
        if (cache->local_fs == 0) {
            cache_unlock(cache);
            return read_store(p, cache->spec, key, rec, rv, errbuf,
                              errlen);
        }
        if (!cache->state_known || !same_state(&cache->state, &now_state)) {
            if (cache->state_known) {
                cache->stats.flushes++;
            }
            flush_slots(cache);
            cache->state = now_state;
            cache->state_known = 1;
        }
        slot = slot_of(cache, &tag);
        if (slot->block != NULL && cr_siphash128_equal(&slot->tag, &tag)) {
            *rec = slot_record(slot, p);
            cache->stats.hits++;
            cache_unlock(cache);
            *hit = 1;
            return CR_KEYCACHE_FOUND;
        }
        cache_unlock(cache);
        cacheable = 1;
    }

    /* A miss.  Before the record is read: a write after this point makes
     * the files differ from now_state, so what is read is never kept
     * under a state older than itself.  The clock is read before the
     * stat, so "settled" means settled when the files were looked at,
     * however long this thread then waits.  (Hence a second look at the
     * files on a miss: a hit needs no clock.) */
    looked_at = apr_time_now();
    cacheable = cacheable && read_state(cache, p, &now_state);
    result = read_store(p, cache->spec, key, rec, rv, errbuf, errlen);
    cacheable = cacheable && result == CR_KEYCACHE_FOUND
                && settled(cache, &now_state, looked_at);
    cache_lock(cache);
    if (cacheable && cache->local_fs < 0) {
        /* Decided once, on the first record worth caching: by then the
         * store's files exist. */
        cache->local_fs = local_filesystem(cache->files[0]);
    }
    cache->stats.reads++;
    if (cacheable && cache->local_fs == 1
        && same_state(&cache->state, &now_state)) {
        (void)fill_slot(slot_of(cache, &tag), &tag, *rec);
    }
    cache_unlock(cache);
    return result;
}

void cr_keycache_stats(cr_keycache_t *cache, cr_keycache_stats_t *stats)
{
    if (cache->nslots == 0) {
        memset(stats, 0, sizeof(*stats));
    }
    else {
        cache_lock(cache);
        *stats = cache->stats;
        cache_unlock(cache);
    }
    stats->local_fs = cache->local_fs;
}
