/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_tokenstore.c: where token buckets and quotas live (httpd glue of
 * cr_tokens.c; SPEC section 11).
 *
 * A table of its own in anonymous shared memory, made once in the parent
 * and kept in the process pool, so it survives graceful and ordinary
 * restarts (the parent lives on).  Each key has one slot, found by a 64-bit
 * hash of its id (claimed with a compare-and-swap, never given back), with
 * two words: the tpm bucket and the quota count.  Every change is one
 * compare-and-swap on one word, so counts are exact across processes and
 * threads without a lock.
 *
 * With ClawdRouterStateFile the quota words are written to a file at every
 * restart and when the server stops (and read back when it starts), so
 * quotas also survive a full stop and start.
 */

#include <stdlib.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "apr_atomic.h"
#include "apr_file_io.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "cr_tokens.h"
#include "cr_tokenshared.h"
#include "cr_tokenstore.h"

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(clawdrouter);
#endif

#define TOKENS_USERDATA_KEY "clawdrouter-tokenstore-shm"
#define TOKENS_MAGIC APR_UINT64_C(0x434c54304b454e53)   /* "CLT0KENS" */
/* Slots probed from a key's first slot before the table counts as full. */
#define TOKENS_PROBE 64

typedef struct {
    volatile apr_uint64_t tag;      /* hash of the key id, 0 = free */
    volatile apr_uint64_t tat;      /* tpm bucket (cr_tokens.h) */
    volatile apr_uint64_t quota;    /* quota word (cr_tokens.h) */
} token_slot;

typedef struct {
    apr_uint64_t magic;
    apr_uint64_t nslots;            /* a power of two */
    token_slot slots[1];
} token_table;

typedef struct {
    apr_shm_t *shm;
    token_table *table;
    const char *state_file;
    pid_t parent;
} token_keeper;

static token_table *tokens_table;   /* in every process after post_config */

/* The slot of the key whose id's FNV-1a is key_fnv (cr_rate_id_fnv; the
 * slot's tag, never 0, is also what the state file keeps). */
static token_slot *find_slot(apr_uint64_t key_fnv, int claim)
{
    token_table *t = tokens_table;
    apr_uint64_t h = key_fnv ? key_fnv : 1, i;

    if (!t) {
        return NULL;
    }
    for (i = 0; i < TOKENS_PROBE && i < t->nslots; i++) {
        token_slot *slot = &t->slots[(h + i) & (t->nslots - 1)];
        apr_uint64_t tag = apr_atomic_read64(&slot->tag);

        if (tag == h) {
            return slot;
        }
        if (tag == 0) {
            if (!claim) {
                return NULL;
            }
            tag = apr_atomic_cas64(&slot->tag, h, 0);
            if (tag == 0 || tag == h) {
                return slot;
            }
        }
    }
    return NULL;
}

/* Write the quota words to the state file (parent, at stop). */
static apr_status_t write_state(void *data)
{
    token_keeper *k = data;
    apr_pool_t *p;
    apr_file_t *f;
    const char *tmp;
    apr_uint64_t i;
    apr_status_t rv;

    if (!k->state_file || !k->table || getpid() != k->parent) {
        return APR_SUCCESS;
    }
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    tmp = apr_pstrcat(p, k->state_file, ".tmp", NULL);
    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                       | APR_FOPEN_TRUNCATE | APR_FOPEN_BUFFERED,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS) {
        apr_file_printf(f, "clawdrouter-tokens 1\n");
        for (i = 0; i < k->table->nslots; i++) {
            token_slot *slot = &k->table->slots[i];
            apr_uint64_t tag = apr_atomic_read64(&slot->tag);
            apr_uint64_t q = apr_atomic_read64(&slot->quota);
            if (tag && q) {
                apr_file_printf(f, "%" APR_UINT64_T_HEX_FMT " %"
                                APR_UINT64_T_HEX_FMT "\n", tag, q);
            }
        }
        rv = apr_file_close(f);
        if (rv == APR_SUCCESS) {
            rv = apr_file_rename(tmp, k->state_file, p);
        }
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, NULL, CRLOGNO(0711)
                     "token state file %s cannot be written",
                     k->state_file);
    }
    apr_pool_destroy(p);
    return APR_SUCCESS;
}

/* Read the state file into a fresh table (parent, at start). */
static void read_state(token_keeper *k, server_rec *s, apr_pool_t *ptemp)
{
    apr_file_t *f;
    char line[128];
    int n = 0;
    apr_status_t rv;

    rv = apr_file_open(&f, k->state_file, APR_FOPEN_READ
                       | APR_FOPEN_BUFFERED, APR_OS_DEFAULT, ptemp);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return;
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CRLOGNO(0712)
                     "token state file %s cannot be read; quotas start "
                     "from 0", k->state_file);
        return;
    }
    if (apr_file_gets(line, sizeof(line), f) != APR_SUCCESS
        || strcmp(line, "clawdrouter-tokens 1\n") != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CRLOGNO(0713)
                     "token state file %s is not one; quotas start from 0",
                     k->state_file);
        apr_file_close(f);
        return;
    }
    while (apr_file_gets(line, sizeof(line), f) == APR_SUCCESS) {
        char *end;
        apr_uint64_t tag = (apr_uint64_t)strtoull(line, &end, 16);
        apr_uint64_t q = (apr_uint64_t)strtoull(end, &end, 16);
        apr_uint64_t i;

        if (!tag || (*end != '\n' && *end != '\0')) {
            continue;
        }
        for (i = 0; i < TOKENS_PROBE; i++) {
            token_slot *slot = &k->table->slots[(tag + i)
                                                & (k->table->nslots - 1)];
            if (slot->tag == 0 || slot->tag == tag) {
                slot->tag = tag;
                slot->quota = q;
                n++;
                break;
            }
        }
    }
    apr_file_close(f);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CRLOGNO(0714)
                 "token state file %s: quotas of %d keys read",
                 k->state_file, n);
}

int cr_tokenstore_post_config(apr_pool_t *pconf, apr_pool_t *ptemp,
                              server_rec *s)
{
    cr_server_conf *conf = cr_config_server(s);
    apr_pool_t *keep = s->process->pool;
    token_keeper *k = NULL;
    apr_uint64_t nslots = CR_TOKENS_SLOTS;
    apr_size_t size;
    apr_status_t rv;

    apr_pool_userdata_get((void **)&k, TOKENS_USERDATA_KEY, keep);
    if (!k) {
        k = apr_pcalloc(keep, sizeof(*k));
        apr_pool_userdata_set(k, TOKENS_USERDATA_KEY, NULL, keep);
    }
    if (conf->state_file) {
        k->state_file = apr_pstrdup(keep, conf->state_file);
    }
    else {
        k->state_file = NULL;
    }
    if (!k->table) {
        size = APR_OFFSETOF(token_table, slots)
               + (apr_size_t)nslots * sizeof(token_slot);
        rv = apr_shm_create(&k->shm, size, NULL, keep);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CRLOGNO(0710)
                         "the token store's shared memory (%" APR_SIZE_T_FMT
                         " bytes) cannot be made", size);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        k->table = apr_shm_baseaddr_get(k->shm);
        memset(k->table, 0, size);
        k->table->magic = TOKENS_MAGIC;
        k->table->nslots = nslots;
        if (k->state_file) {
            read_state(k, s, ptemp);
        }
    }
    /* Written when this configuration ends: at every restart and when the
     * server stops (a cleanup of pconf, which runs before the module is
     * unloaded; the process pool's would run after). */
    apr_pool_cleanup_register(pconf, k, write_state, apr_pool_cleanup_null);
    /* The parent's pid after httpd detached (which it does between the
     * first and the second reading of the configuration). */
    k->parent = getpid();
    tokens_table = k->table;
    return OK;
}

void cr_tokenstore_child_init(apr_pool_t *p, server_rec *s)
{
    cr_tokenshared_child_init(p, s);
}

apr_status_t cr_tokenstore_state(request_rec *r, const char *key_id,
                                 apr_uint64_t key_fnv,
                                 cr_quota_period_e period,
                                 apr_int64_t tpm, apr_time_t now,
                                 cr_rate_result_t *bucket,
                                 apr_int64_t *used)
{
    token_slot *slot;

    if (cr_tokenshared_active()) {
        return cr_tokenshared_state(r, key_id, period, tpm, now, bucket,
                                    used);
    }
    slot = find_slot(key_fnv, 1);
    if (!slot) {
        return APR_ENOSPC;
    }
    if (bucket && tpm > 0) {
        cr_tokens_check(apr_atomic_read64(&slot->tat), tpm, now, bucket);
    }
    if (used) {
        *used = cr_quota_used(apr_atomic_read64(&slot->quota), period, now);
    }
    return APR_SUCCESS;
}

apr_int64_t cr_tokenstore_used(const char *key_id, cr_quota_period_e period,
                               apr_time_t now)
{
    token_slot *slot;

    if (cr_tokenshared_active()) {
        apr_pool_t *p;
        apr_int64_t used = 0;

        if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
            return 0;
        }
        if (cr_tokenshared_used(p, key_id, period, now, &used)
            != APR_SUCCESS) {
            used = 0;
        }
        apr_pool_destroy(p);
        return used;
    }
    slot = find_slot(cr_rate_id_fnv(key_id), 0);
    return slot ? cr_quota_used(apr_atomic_read64(&slot->quota), period, now)
                : 0;
}

apr_status_t cr_tokenstore_charge(request_rec *r, const char *key_id,
                                  apr_uint64_t key_fnv,
                                  apr_int64_t tpm, int count_quota,
                                  cr_quota_period_e period,
                                  apr_time_t now, apr_int64_t tokens)
{
    token_slot *slot;
    apr_uint64_t old, want;

    if (cr_tokenshared_active()) {
        return cr_tokenshared_charge(r, key_id, tpm, count_quota, period,
                                     now, tokens);
    }
    slot = find_slot(key_fnv, 1);
    if (!slot) {
        return APR_ENOSPC;
    }
    if (tpm > 0) {
        do {
            old = apr_atomic_read64(&slot->tat);
            want = cr_tokens_charge(old, tpm, now, tokens);
        } while (apr_atomic_cas64(&slot->tat, want, old) != old);
    }
    if (count_quota) {
        do {
            old = apr_atomic_read64(&slot->quota);
            want = cr_quota_add(old, period, now, tokens);
        } while (apr_atomic_cas64(&slot->quota, want, old) != old);
    }
    return APR_SUCCESS;
}
