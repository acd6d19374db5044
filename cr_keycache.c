/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keycache.c: the per-process key record cache (see cr_keycache.h).
 *
 * A direct-mapped table indexed by the record's hash: a lookup is one
 * slot, a new record replaces whatever shared its slot.  Each slot keeps
 * the record's strings back to back in one malloc'd block, so a hit is
 * one copy into the request pool and no parse.  The table belongs to the
 * process, not to a pool that requests share, hence malloc and a mutex.
 */

#include <stdlib.h>
#include <string.h>

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
#include "cr_store.h"

/* What a change to one of the store's files changes. */
typedef struct {
    int present;
    apr_ino_t inode;
    apr_dev_t device;
    apr_off_t size;
    apr_time_t mtime;
    apr_time_t ctime;
} file_state;

typedef struct {
    file_state files[2];       /* sdbm has two files, other DBMs one */
} store_state;

typedef struct {
    char hash[CR_KEY_HASH_HEX_LEN + 1];   /* "" = empty slot */
    char *strings;             /* id, name, hint, models: each NUL-ended */
    apr_size_t strings_len;
    int nmodels;
    apr_int64_t rpm;
    apr_int64_t tpm;
    apr_int64_t quota;
    cr_quota_period_e quota_period;
    apr_time_t created_at;
    apr_time_t expires_at;
    cr_key_status_e status;
} cache_slot;

struct cr_keycache_t {
    const char *spec;
    const char *files[2];      /* the DBM's file names (second may be NULL) */
    apr_size_t nslots;         /* 0: no cache */
    cache_slot *slots;
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
    apr_thread_mutex_lock(cache->mutex);
#else
    (void)cache;
#endif
}

static void cache_unlock(cr_keycache_t *cache)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(cache->mutex);
#else
    (void)cache;
#endif
}

static void flush_slots(cr_keycache_t *cache)
{
    apr_size_t i;

    for (i = 0; i < cache->nslots; i++) {
        free(cache->slots[i].strings);
        cache->slots[i].strings = NULL;
        cache->slots[i].hash[0] = '\0';
    }
}

static apr_status_t cache_cleanup(void *data)
{
    cr_keycache_t *cache = data;

    flush_slots(cache);
    free(cache->slots);
    cache->slots = NULL;
    cache->nslots = 0;
    return APR_SUCCESS;
}

apr_status_t cr_keycache_create(apr_pool_t *p, const char *spec,
                                int entries, apr_interval_time_t settle,
                                cr_keycache_t **cache)
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
        c->slots = calloc(entries, sizeof(cache_slot));
        if (c->slots == NULL) {
            return APR_ENOMEM;
        }
        c->nslots = entries;
#if APR_HAS_THREADS
        {
            apr_status_t rv = apr_thread_mutex_create(&c->mutex,
                                                      APR_THREAD_MUTEX_DEFAULT,
                                                      p);
            if (rv != APR_SUCCESS) {
                free(c->slots);
                return rv;
            }
        }
#endif
        apr_pool_cleanup_register(p, c, cache_cleanup,
                                  apr_pool_cleanup_null);
    }
    *cache = c;
    return APR_SUCCESS;
}

/* stat() the store's files; non-zero when they can be compared. */
static int read_state(cr_keycache_t *cache, apr_pool_t *p, store_state *st)
{
    int i;

    memset(st, 0, sizeof(*st));
    for (i = 0; i < 2; i++) {
        apr_finfo_t finfo;

        if (cache->files[i] == NULL) {
            continue;
        }
        if (apr_stat(&finfo, cache->files[i],
                     APR_FINFO_MTIME | APR_FINFO_CTIME | APR_FINFO_SIZE
                     | APR_FINFO_INODE | APR_FINFO_DEV, p) != APR_SUCCESS) {
            return 0;
        }
        st->files[i].present = 1;
        st->files[i].inode = finfo.inode;
        st->files[i].device = finfo.device;
        st->files[i].size = finfo.size;
        st->files[i].mtime = finfo.mtime;
        st->files[i].ctime = finfo.ctime;
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
        changed = f->mtime > f->ctime ? f->mtime : f->ctime;
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

static apr_size_t slot_of(const cr_keycache_t *cache, const char *hash)
{
    apr_uint64_t h = 0;
    int i;

    /* The hash is SHA-256 hex: its first 16 digits are uniform. */
    for (i = 0; i < 16 && hash[i]; i++) {
        /* '0'-'9' as apr_isdigit (C locale) says, without its call */
        h = h * 16 + (apr_uint64_t)(hash[i] >= '0' && hash[i] <= '9'
                                    ? hash[i] - '0'
                                    : (hash[i] | 0x20) - 'a' + 10);
    }
    return (apr_size_t)(h % cache->nslots);
}

/* The slot's record, rebuilt in p. */
static cr_key_record_t *slot_record(const cache_slot *slot, apr_pool_t *p)
{
    cr_key_record_t *rec = apr_pcalloc(p, sizeof(*rec));
    const char *s = apr_pmemdup(p, slot->strings, slot->strings_len);
    int i;

    rec->id = s;
    s += strlen(s) + 1;
    rec->name = s;
    s += strlen(s) + 1;
    rec->hint = s;
    s += strlen(s) + 1;
    rec->models = apr_array_make(p, slot->nmodels, sizeof(const char *));
    for (i = 0; i < slot->nmodels; i++) {
        APR_ARRAY_PUSH(rec->models, const char *) = s;
        s += strlen(s) + 1;
    }
    rec->rpm = slot->rpm;
    rec->tpm = slot->tpm;
    rec->quota = slot->quota;
    rec->quota_period = slot->quota_period;
    rec->created_at = slot->created_at;
    rec->expires_at = slot->expires_at;
    rec->status = slot->status;
    return rec;
}

/* Copy rec into slot; 0 when out of memory (the slot is left empty). */
static int fill_slot(cache_slot *slot, const char *hash,
                     const cr_key_record_t *rec)
{
    const char *fields[3];
    apr_size_t len = 0, n;
    char *out;
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
    free(slot->strings);
    slot->hash[0] = '\0';
    slot->strings = out = malloc(len);
    if (out == NULL) {
        return 0;
    }
    for (i = 0; i < 3 + nmodels; i++) {
        const char *s = i < 3 ? fields[i]
                              : APR_ARRAY_IDX(rec->models, i - 3,
                                              const char *);
        n = strlen(s) + 1;
        memcpy(out, s, n);
        out += n;
    }
    slot->strings_len = len;
    slot->nmodels = nmodels;
    slot->rpm = rec->rpm;
    slot->tpm = rec->tpm;
    slot->quota = rec->quota;
    slot->quota_period = rec->quota_period;
    slot->created_at = rec->created_at;
    slot->expires_at = rec->expires_at;
    slot->status = rec->status;
    apr_cpystrn(slot->hash, hash, sizeof(slot->hash));
    return 1;
}

/* The lookup without a cache: open the store, read the record, close. */
static cr_keycache_result_e read_store(apr_pool_t *p, const char *spec,
                                       const char *hash,
                                       cr_key_record_t **rec,
                                       apr_status_t *rv, char *errbuf,
                                       apr_size_t errlen)
{
    cr_store_t *store;

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
                                        const char *hash,
                                        cr_key_record_t **rec, int *hit,
                                        apr_status_t *rv, char *errbuf,
                                        apr_size_t errlen)
{
    store_state now_state;
    apr_time_t looked_at;
    cr_keycache_result_e result;
    cache_slot *slot;
    int cacheable;

    *rv = APR_SUCCESS;
    *hit = 0;
    if (cache->nslots == 0 || strlen(hash) != CR_KEY_HASH_HEX_LEN) {
        return read_store(p, cache->spec, hash, rec, rv, errbuf, errlen);
    }

    /* Before the record is read: a write after this point makes the
     * files differ from now_state, so what is read is never kept under a
     * state older than itself.  The clock is read before the stat, so
     * "settled" means settled when the files were looked at, however
     * long this thread then waits. */
    looked_at = apr_time_now();
    cacheable = read_state(cache, p, &now_state);
    if (cacheable) {
        cache_lock(cache);
        if (cache->local_fs == 0) {
            cache_unlock(cache);
            return read_store(p, cache->spec, hash, rec, rv, errbuf,
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
        slot = &cache->slots[slot_of(cache, hash)];
        if (slot->hash[0] != '\0' && strcmp(slot->hash, hash) == 0) {
            *rec = slot_record(slot, p);
            cache->stats.hits++;
            cache_unlock(cache);
            *hit = 1;
            return CR_KEYCACHE_FOUND;
        }
        cache_unlock(cache);
    }

    result = read_store(p, cache->spec, hash, rec, rv, errbuf, errlen);
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
        (void)fill_slot(&cache->slots[slot_of(cache, hash)], hash, *rec);
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
