/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_keycache.h: a per-process cache of key records read from the DBM key
 * store, so that a busy key costs two stat() calls per request instead of
 * opening the store and parsing its record, and no SHA-256: the cache is
 * indexed and checked by a keyed 128-bit tag of the presented key
 * (SipHash-2-4-128 under 16 random bytes drawn per process, see
 * cr_keycache.c); the key's SHA-256 is computed only on a miss, to read
 * the store.  A slot holds the tag and the record, never the key.
 *
 * "A revoked key is refused at once" (SPEC section 3) still holds: every
 * lookup first stats the store's files, and the whole cache is dropped as
 * soon as any of them differs (inode, size, mtime, ctime) from when the
 * cached records were read.  Two rules keep a change from hiding behind a
 * coarse file timestamp:
 *   - a record is cached only when the files' last change (the later of
 *     mtime and ctime) is at least `settle` in the past, so any later
 *     write carries a different timestamp;
 *   - the files are stat()ed before the record is read, never after.
 * ctime cannot be set by a user, so restoring an old copy with its old
 * mtime (cp -p, rsync -t) is still seen.  A store on a filesystem whose
 * stat() may answer from a client-side attribute cache (NFS, SMB, FUSE
 * and anything not known to be local) is never cached: each lookup reads
 * the store, as without a cache.
 */
#ifndef CR_KEYCACHE_H
#define CR_KEYCACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "cr_key.h"

/* Default records per process and default settle time. */
#define CR_KEYCACHE_DEFAULT_ENTRIES  1024
#define CR_KEYCACHE_MAX_ENTRIES      (1024 * 1024)
#define CR_KEYCACHE_SETTLE           apr_time_from_sec(2)

typedef struct cr_keycache_t cr_keycache_t;

typedef enum {
    CR_KEYCACHE_FOUND = 0,     /* *rec set */
    CR_KEYCACHE_NOT_FOUND,     /* no record for this key */
    CR_KEYCACHE_OPEN_FAILED,   /* the store cannot be opened (errbuf) */
    CR_KEYCACHE_READ_FAILED,   /* the record cannot be read (errbuf) */
    CR_KEYCACHE_HASH_FAILED    /* the key's SHA-256 cannot be computed */
} cr_keycache_result_e;

/* A cache of at most `entries` records of the store `spec` (0: no cache,
 * every lookup reads the store; such a cache cannot fail to be made).
 * Thread safe when `threads` (the most threads that use it at once) is
 * more than 1, with a mutex; with 1 (a prefork child, the CLI) it takes
 * no lock.  Allocate it per process (child_init): it is not shared
 * between processes, and its tags' secret is drawn here
 * (apr_generate_random_bytes; its failure is this call's). */
apr_status_t cr_keycache_create(apr_pool_t *p, const char *spec,
                                int entries, apr_interval_time_t settle,
                                int threads, cr_keycache_t **cache);

/* The record of the presented key `key` (NUL-ended), as cr_key_hash +
 * cr_store_open + cr_store_fetch_by_hash + cr_store_close would give it,
 * copied into p.  A hit computes no SHA-256.  *hit says whether the
 * cache answered; *rv is the status of a failure.  The key is not kept. */
cr_keycache_result_e cr_keycache_lookup(cr_keycache_t *cache, apr_pool_t *p,
                                        const char *key,
                                        cr_key_record_t **rec, int *hit,
                                        apr_status_t *rv, char *errbuf,
                                        apr_size_t errlen);

typedef struct {
    apr_uint64_t hits;         /* answered from the cache */
    apr_uint64_t reads;        /* answered by reading the store */
    apr_uint64_t flushes;      /* times the store changed under the cache */
    int local_fs;              /* -1 not known yet, 0 no (never cached), 1 */
} cr_keycache_stats_t;

void cr_keycache_stats(cr_keycache_t *cache, cr_keycache_stats_t *stats);

#endif /* CR_KEYCACHE_H */
