/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_ratetable.h: the shm rate store's table of keys, shared by every
 * process and thread of one host without a lock (docs/RATELIMIT.md).
 *
 * The table is a fixed array of entries in memory the caller provides
 * (an anonymous apr_shm segment in the module).  Each entry is three
 * 64-bit words updated only with atomic loads, stores and
 * compare-and-swap:
 *   tag    0 = free, else the 64-bit hash of the key id that owns it
 *   state  the key's GCRA state (its TAT and a tag of its rpm); 0 = never
 *          used, a full bucket
 *   rpm    the limit of the last update, to rescale a changed limit
 * No lock is ever held, so a process killed at any instant leaves every
 * entry in a state the others can use: a decision is one compare-and-swap
 * of one word, which happens completely or not at all.
 *
 * The key id is known by its 64-bit hash.  Two ids with the same hash
 * (about 1 in 2^64 per pair) share one bucket: each is then limited more,
 * never less.
 */
#ifndef CR_RATETABLE_H
#define CR_RATETABLE_H

#include <apr.h>
#include <apr_errno.h>
#include <apr_time.h>

#include "cr_rate.h"

/* Candidate entries per key (from its hash's slot on). */
#define CR_RATETABLE_PROBES 32

typedef struct cr_ratetable_t cr_ratetable_t;

/* Bytes a table of nentries (>= 1) entries needs. */
apr_size_t cr_ratetable_size(apr_uint32_t nentries);

/* Make an empty table in mem (cr_ratetable_size bytes, 8-byte aligned,
 * shared by every process that uses it); now is the table's epoch. */
cr_ratetable_t *cr_ratetable_init(void *mem, apr_uint32_t nentries,
                                  apr_time_t now);

/* The table made by cr_ratetable_init in mem, or NULL if mem does not
 * hold one of nentries entries. */
cr_ratetable_t *cr_ratetable_attach(void *mem, apr_uint32_t nentries);

/* Decide one request at time now for the key key_id (limit rpm > 0),
 * exactly as cr_rate_take does under a lock.  *evicted is set to 1 when
 * the key took over another key's entry (no room among its candidates).
 * APR_SUCCESS with *result filled; APR_EAGAIN if the entry kept changing
 * under it (contention beyond any realistic load: 1000 attempts). */
apr_status_t cr_ratetable_take(cr_ratetable_t *t, const char *key_id,
                               apr_int64_t rpm, apr_time_t now,
                               cr_rate_result_t *result, int *evicted);

/* The same, for the key whose cr_rate_id_fnv is key_fnv. */
apr_status_t cr_ratetable_take_fnv(cr_ratetable_t *t, apr_uint64_t key_fnv,
                                   apr_int64_t rpm, apr_time_t now,
                                   cr_rate_result_t *result, int *evicted);

/* The same at the current time (apr_time_now), read after the key's
 * state is loaded (again on each retry): a decision then never uses a
 * time older than the one of the decision whose state it continues, so
 * the remaining counts of a burst go down one by one, without two alike
 * (a clock read before the load could be older than another thread's
 * that committed in between). */
apr_status_t cr_ratetable_take_now(cr_ratetable_t *t, apr_uint64_t key_fnv,
                                   apr_int64_t rpm, cr_rate_result_t *result,
                                   int *evicted);

/* Keys that gave way to another since the table was made. */
apr_uint64_t cr_ratetable_evictions(const cr_ratetable_t *t);

#endif /* CR_RATETABLE_H */
