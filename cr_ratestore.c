/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_ratestore.c: the rate stores behind ClawdRouterRateStore.
 *
 * - shm: a fixed table of keys in anonymous shared memory, updated with
 *   atomic operations only (cr_ratetable.c: no lock, so a child killed at
 *   any instant blocks nobody).  The segment is kept in the process pool,
 *   so it survives graceful restarts.
 * - memcache:// and redis://: the slot grid of cr_rate.h.  Each admitted
 *   request claims a slot with an atomic create-if-absent (memcached add,
 *   Redis INCR returning 1); no read-modify-write decides an admission.
 *
 * docs/RATELIMIT.md holds the design and the exactness argument.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "ap_mpm.h"
#include "util_mutex.h"

#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_memcache.h"
#include "apr_network_io.h"
#include "apr_redis.h"
#include "apr_shm.h"
#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "cr_rate.h"
#include "cr_ratestore.h"
#include "cr_time.h"
#include "cr_ratetable.h"

APLOG_USE_MODULE(clawdrouter);

/* Registered only so that configurations with the "Mutex pthread
 * clawdrouter-ratestore" line older READMEs advised still start; the
 * table needs no lock. */
#define RATE_MUTEX_TYPE    "clawdrouter-ratestore"
#define SHM_USERDATA_KEY   "clawdrouter-ratestore-shm2"
#define OUTAGE_LOG_EVERY   10                 /* seconds */
#define HINT_TTL           86400              /* seconds */
#define REMOTE_KEY_PREFIX  "clawdrouter:rl:"
#define REDIS_INIT_WAIT    (200 * 1000)       /* us a Redis loser waits */

/* ------------------------------------------------------------------ */
/* Settings and per-process state                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    apr_status_t (*post_config)(apr_pool_t *pconf, server_rec *s);
    apr_status_t (*child_init)(apr_pool_t *p, server_rec *s);
    apr_status_t (*take)(request_rec *r, const char *key_id,
                         apr_uint64_t key_fnv, apr_int64_t rpm,
                         cr_rate_result_t *result);
} ratestore_backend;

/* Lives in the process pool: the same table for every generation of
 * children until Apache stops. */
typedef struct {
    apr_shm_t *shm;
    apr_uint32_t nentries;
} shm_keeper;

typedef struct {
    const char *host;
    apr_port_t port;
} remote_server;

static int shm_entries = CR_RATE_SHM_ENTRIES_DEFAULT;
static const ratestore_backend *backend;
static shm_keeper *keeper;
static cr_ratetable_t *table;
static apr_array_header_t *remote_servers;     /* of remote_server */
static apr_memcache_t *memcache;
static apr_redis_t *redis;
static apr_memcache_server_t **memcache_servers;   /* per child */
static apr_redis_server_t *redis_server;            /* per child */
static int remote_pool_size = 1;                    /* per child */
static apr_uint32_t outage_logged_at;           /* apr_time_sec, atomic */
static apr_uint32_t store_down;                 /* atomic flag */

static cr_server_conf *main_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &clawdrouter_module);
}

/* ------------------------------------------------------------------ */
/* Directives                                                          */
/* ------------------------------------------------------------------ */

/* "H:P[,H:P]" into an array; NULL and *err on a bad list. */
static apr_array_header_t *parse_servers(apr_pool_t *p, const char *list,
                                         int max, const char **err)
{
    apr_array_header_t *out = apr_array_make(p, 2, sizeof(remote_server));
    char *copy = apr_pstrdup(p, list), *last, *item;

    for (item = apr_strtok(copy, ",", &last); item;
         item = apr_strtok(NULL, ",", &last)) {
        remote_server *srv = apr_array_push(out);
        char *scope = NULL, *host = NULL;

        if (apr_parse_addr_port(&host, &scope, &srv->port, item, p)
            != APR_SUCCESS || !host || scope || srv->port == 0) {
            *err = apr_psprintf(p, "'%s' is not HOST:PORT", item);
            return NULL;
        }
        srv->host = host;
    }
    if (out->nelts == 0 || out->nelts > max) {
        *err = out->nelts ? "too many servers" : "no server";
        return NULL;
    }
    return out;
}

const char *cr_ratestore_cmd_store(cmd_parms *cmd, void *dummy,
                                   const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *list = NULL;
    int max = 1;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcmp(arg, "shm")) {
        main_conf(cmd->server)->rate_store = "shm";
        return NULL;
    }
    if (!strncmp(arg, "memcache://", 11)) {
        list = arg + 11;
        max = 64;             /* bits of live_servers() */
    }
    else if (!strncmp(arg, "redis://", 8)) {
        list = arg + 8;
    }
    if (!list || !parse_servers(cmd->temp_pool, list, max, &err)) {
        return apr_psprintf(cmd->pool, "%s: expected shm, "
                            "memcache://HOST:PORT[,HOST:PORT] or "
                            "redis://HOST:PORT, got '%s'%s%s",
                            cmd->cmd->name, arg, list ? ": " : "",
                            list ? err : "");
    }
    main_conf(cmd->server)->rate_store = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

const char *cr_ratestore_cmd_failure(cmd_parms *cmd, void *dummy,
                                     const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    cr_server_conf *conf = main_conf(cmd->server);

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "open")) {
        conf->rate_failure = CR_RATE_FAIL_OPEN;
    }
    else if (!strcasecmp(arg, "closed")) {
        conf->rate_failure = CR_RATE_FAIL_CLOSED;
    }
    else {
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           ": expected open or closed", NULL);
    }
    conf->rate_failure_set = 1;
    return NULL;
}

const char *cr_ratestore_cmd_shm_entries(cmd_parms *cmd, void *dummy,
                                         const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_int64_t n;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!cr_directive_number(arg, 1, 10000000, &n)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           ": expected a number of keys from 1 to 10000000",
                           NULL);
    }
    shm_entries = (int)n;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Outage reporting: one line per interval per process                 */
/* ------------------------------------------------------------------ */

static server_rec *main_server;                 /* for lines without r */
static cr_ratestore_kind_e configured_kind;     /* even if child_init failed */

static apr_status_t store_failed(request_rec *r, apr_status_t rv,
                                 const char *what)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    server_rec *s = r ? r->server : main_server;

    apr_atomic_set32(&store_down, 1);
    if (s && cr_time_once_per(&outage_logged_at, now, OUTAGE_LOG_EVERY)) {
        const char *policy = main_conf(s)->rate_failure
                             == CR_RATE_FAIL_CLOSED ? "refused (503)"
                                                    : "served unlimited";
        if (r) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0201)
                          "rate store %s unreachable (%s); requests are %s "
                          "while it is down (logged at most every %d s)",
                          main_conf(s)->rate_store, what, policy,
                          OUTAGE_LOG_EVERY);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CRLOGNO(0722)
                         "rate store %s unreachable (%s); requests are %s "
                         "while it is down (logged at most every %d s)",
                         main_conf(s)->rate_store, what, policy,
                         OUTAGE_LOG_EVERY);
        }
    }
    return rv == APR_SUCCESS ? APR_EGENERAL : rv;
}

static void store_worked(request_rec *r)
{
    server_rec *s = r ? r->server : main_server;

    if (apr_atomic_read32(&store_down)
        && apr_atomic_cas32(&store_down, 0, 1) == 1 && s) {
        if (r) {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, CRLOGNO(0202)
                          "rate store %s reachable again",
                          main_conf(s)->rate_store);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, CRLOGNO(0723)
                         "rate store %s reachable again",
                         main_conf(s)->rate_store);
        }
        apr_atomic_set32(&outage_logged_at, 0);
    }
}

/* ------------------------------------------------------------------ */
/* shm                                                                  */
/* ------------------------------------------------------------------ */

static apr_status_t shm_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *keep = s->process->pool;
    apr_size_t size = cr_ratetable_size((apr_uint32_t)shm_entries);
    apr_status_t rv;

    (void)pconf;
    apr_pool_userdata_get((void **)&keeper, SHM_USERDATA_KEY, keep);
    if (!keeper) {
        keeper = apr_pcalloc(keep, sizeof(*keeper));
        apr_pool_userdata_set(keeper, SHM_USERDATA_KEY, NULL, keep);
    }
    if (keeper->shm && keeper->nentries != (apr_uint32_t)shm_entries) {
        /* Size changed: a new table; counts start again. */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, CRLOGNO(0204)
                     CR_DIR_RATE_SHM_ENTRIES " changed from %u to %d: "
                     "rate-limit counts start again",
                     keeper->nentries, shm_entries);
        apr_shm_destroy(keeper->shm);
        keeper->shm = NULL;
    }
    if (!keeper->shm) {
        rv = apr_shm_create(&keeper->shm, size, NULL, keep);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CRLOGNO(0205)
                         "cannot create %" APR_SIZE_T_FMT " bytes of "
                         "anonymous shared memory for the rate store",
                         size);
            return rv;
        }
        cr_ratetable_init(apr_shm_baseaddr_get(keeper->shm),
                          (apr_uint32_t)shm_entries, apr_time_now());
        keeper->nentries = (apr_uint32_t)shm_entries;
    }
    table = cr_ratetable_attach(apr_shm_baseaddr_get(keeper->shm),
                                keeper->nentries);
    if (!table) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CRLOGNO(0220)
                     "the shm rate table is not one this module made");
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* The segment is inherited from the parent: nothing to attach. */
static apr_status_t shm_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
    return table ? APR_SUCCESS : APR_EINIT;
}

/* One decision: no lock; the clock is read after the key's state. */
static apr_status_t shm_take(request_rec *r, const char *key_id,
                             apr_uint64_t key_fnv, apr_int64_t rpm,
                             cr_rate_result_t *result)
{
    int evicted = 0;
    apr_status_t rv = cr_ratetable_take_now(table, key_fnv, rpm, result,
                                            &evicted);

    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CRLOGNO(0221)
                      "shm rate table: key %s kept changing under "
                      "this request; treated as a store failure", key_id);
        return rv;
    }
    if (evicted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CRLOGNO(0207)
                      "shm rate table full around key %s: another key "
                      "gave way (least debt; %" APR_UINT64_T_FMT " so "
                      "far); raise " CR_DIR_RATE_SHM_ENTRIES, key_id,
                      cr_ratetable_evictions(table));
    }
    return APR_SUCCESS;
}

static const ratestore_backend shm_backend = {
    "shm", shm_post_config, shm_child_init, shm_take
};

/* ------------------------------------------------------------------ */
/* memcache and redis: the slot grid                                   */
/* ------------------------------------------------------------------ */

typedef enum { CLAIM_WON, CLAIM_LOST, CLAIM_FAILED } claim_e;

/* The primitives the slot grid needs from a server. */
typedef struct {
    /* APR_SUCCESS, APR_NOTFOUND (no such key) or a failure. */
    apr_status_t (*get)(apr_pool_t *p, const char *key, char **value);
    /* Set a hint (best effort). */
    apr_status_t (*set)(const char *key, const char *value,
                        apr_uint32_t ttl);
    /* Create key if absent; whoever creates it wins. */
    claim_e (*claim)(const char *key, const char *value, apr_uint32_t ttl,
                     apr_status_t *rv);
} remote_ops;

static int any_server_live(void);

/* apr-util answers APR_NOTFOUND both for an absent key and when it finds
 * no live server; the second is a failure (reading it as "no grid yet"
 * would start the key's bucket again). */
static apr_status_t not_found_or_down(apr_status_t rv)
{
    return rv == APR_NOTFOUND && !any_server_live() ? APR_EAGAIN : rv;
}

static apr_status_t mc_get(apr_pool_t *p, const char *key, char **value)
{
    apr_size_t len;
    apr_uint16_t flags;

    return not_found_or_down(apr_memcache_getp(memcache, p, key, value,
                                               &len, &flags));
}

static apr_status_t mc_set(const char *key, const char *value,
                           apr_uint32_t ttl)
{
    return apr_memcache_set(memcache, key, (char *)value, strlen(value),
                            ttl, 0);
}

static claim_e mc_claim(const char *key, const char *value,
                        apr_uint32_t ttl, apr_status_t *rv)
{
    *rv = apr_memcache_add(memcache, key, (char *)value, strlen(value),
                           ttl, 0);
    return *rv == APR_SUCCESS ? CLAIM_WON
           : *rv == APR_EEXIST ? CLAIM_LOST : CLAIM_FAILED;
}

static const remote_ops mc_ops = { mc_get, mc_set, mc_claim };

static apr_status_t rd_get(apr_pool_t *p, const char *key, char **value)
{
    apr_size_t len;
    apr_uint16_t flags;

    return not_found_or_down(apr_redis_getp(redis, p, key, value, &len,
                                            &flags));
}

static apr_status_t rd_set(const char *key, const char *value,
                           apr_uint32_t ttl)
{
    return apr_redis_setex(redis, key, (char *)value, strlen(value), ttl, 0);
}

/* Redis has INCR but apr_redis has no SETNX: the request whose INCR
 * creates the key (returns 1) wins; the winner then stores its value with
 * a lifetime (INCR leaves the count, SETEX sets value and TTL; later INCRs
 * return 2 or more, so nobody else ever wins this key). */
static claim_e rd_claim(const char *key, const char *value,
                        apr_uint32_t ttl, apr_status_t *rv)
{
    apr_uint32_t count = 0;

    *rv = apr_redis_incr(redis, key, 1, &count);
    if (*rv != APR_SUCCESS) {
        return CLAIM_FAILED;
    }
    if (count != 1) {
        return CLAIM_LOST;
    }
    *rv = apr_redis_setex(redis, key, (char *)value, strlen(value), ttl, 0);
    return *rv == APR_SUCCESS ? CLAIM_WON : CLAIM_FAILED;
}

static const remote_ops rd_ops = { rd_get, rd_set, rd_claim };

static const remote_ops *ops;

static int parse_hint(const char *value, apr_time_t *anchor,
                      apr_int64_t *next)
{
    char *end;

    *anchor = apr_strtoi64(value, &end, 10);
    if (end == value || *end != ' ') {
        return 0;
    }
    value = end + 1;
    *next = apr_strtoi64(value, &end, 10);
    return end != value && *end == '\0' && *anchor > 0 && *next >= 0;
}

/* The key's grid: its anchor (the time of its first request) and the
 * first slot that may be free.  The record is created once, atomically. */
#define REMOTE_FAIL(rv_, what_) (*what = (what_), \
                                 (rv_) == APR_SUCCESS ? APR_EGENERAL : (rv_))

static apr_status_t remote_grid(request_rec *r, const char *hint_key,
                                apr_time_t now, apr_time_t *anchor,
                                apr_int64_t *next, const char **what)
{
    char *value = NULL;
    const char *fresh;
    apr_status_t rv;
    apr_interval_time_t waited = 0;

    rv = ops->get(r->pool, hint_key, &value);
    if (rv == APR_SUCCESS && parse_hint(value, anchor, next)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
        return REMOTE_FAIL(rv, "get");
    }
    /* No grid yet (or an unreadable one, which is replaced). */
    fresh = apr_psprintf(r->pool, "%" APR_TIME_T_FMT " 0", now);
    if (ops == &mc_ops) {
        if (rv == APR_SUCCESS) {
            rv = apr_memcache_set(memcache, hint_key, (char *)fresh,
                                  strlen(fresh), HINT_TTL, 0);
        }
        else {
            rv = apr_memcache_add(memcache, hint_key, (char *)fresh,
                                  strlen(fresh), HINT_TTL, 0);
        }
        if (rv == APR_SUCCESS) {
            *anchor = now;
            *next = 0;
            return APR_SUCCESS;
        }
        if (rv != APR_EEXIST) {
            return REMOTE_FAIL(rv, "add");
        }
    }
    else {
        claim_e won = rd_claim(apr_pstrcat(r->pool, hint_key, ":init",
                                           NULL), "1", 10, &rv);
        if (won == CLAIM_FAILED) {
            return REMOTE_FAIL(rv, "incr");
        }
        if (won == CLAIM_WON) {
            rv = rd_set(hint_key, fresh, HINT_TTL);
            if (rv != APR_SUCCESS) {
                return REMOTE_FAIL(rv, "setex");
            }
            *anchor = now;
            *next = 0;
            return APR_SUCCESS;
        }
    }
    /* Someone else created it at the same moment: read theirs. */
    for (;;) {
        rv = ops->get(r->pool, hint_key, &value);
        if (rv == APR_SUCCESS && parse_hint(value, anchor, next)) {
            return APR_SUCCESS;
        }
        if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
            return REMOTE_FAIL(rv, "get");
        }
        if (waited >= REDIS_INIT_WAIT) {
            /* The Redis winner died between its INCR and its SETEX, which
             * leaves a claim without a lifetime: drop it, so that the
             * next request claims again instead of waiting forever. */
            if (ops == &rd_ops) {
                apr_redis_delete(redis, apr_pstrcat(r->pool, hint_key,
                                                    ":init", NULL), 0);
            }
            return REMOTE_FAIL(APR_TIMEUP, "key record not created");
        }
        apr_sleep(2000);
        waited += 2000;
    }
}

static apr_status_t remote_take_once(request_rec *r, const char *key_id,
                                     apr_int64_t rpm,
                                     cr_rate_result_t *result,
                                     const char **what)
{
    apr_time_t now = apr_time_now(), anchor;
    apr_int64_t next, lo, hi, k;
    apr_interval_time_t interval = cr_rate_interval(rpm);
    apr_uint32_t slot_ttl;
    const char *hint_key, *prefix;
    apr_status_t rv;

    if (rpm > CR_RATE_MAX_RPM) {
        rpm = CR_RATE_MAX_RPM;
    }
    /* A slot matters until its instant leaves every window: at most
     * N * T + T after it is claimed. */
    slot_ttl = (apr_uint32_t)((rpm * interval + interval)
                              / APR_USEC_PER_SEC + 2);
    /* The limit is part of the name: a changed rpm is a fresh bucket. */
    hint_key = apr_psprintf(r->pool, REMOTE_KEY_PREFIX "%s:%" APR_INT64_T_FMT,
                            key_id, rpm);
    rv = remote_grid(r, hint_key, now, &anchor, &next, what);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (now < anchor) {
        /* Read the clock just before the request that made the grid: the
         * two are simultaneous (otherwise the window would be short). */
        now = anchor;
    }
    prefix = apr_psprintf(r->pool, "%s:%" APR_TIME_T_FMT ":", hint_key,
                          anchor);
    cr_rate_grid_window(anchor, rpm, now, &lo, &hi);
    /* Every slot from lo up to the hint is taken (docs/RATELIMIT.md). */
    for (k = next > lo ? next : lo; k <= hi; k++) {
        const char *slot = apr_psprintf(r->pool, "%s%" APR_INT64_T_FMT,
                                        prefix, k);

        switch (ops->claim(slot, "1", slot_ttl, &rv)) {
        case CLAIM_WON:
            ops->set(hint_key, apr_psprintf(r->pool, "%" APR_TIME_T_FMT
                                            " %" APR_INT64_T_FMT, anchor,
                                            k + 1), HINT_TTL);
            cr_rate_grid_admitted(anchor, rpm, now, k, hi, result);
            return APR_SUCCESS;
        case CLAIM_LOST:
            continue;
        default:
            return REMOTE_FAIL(rv, "claim");
        }
    }
    if (next <= hi) {
        /* We have seen every slot of the window taken. */
        ops->set(hint_key, apr_psprintf(r->pool, "%" APR_TIME_T_FMT
                                        " %" APR_INT64_T_FMT, anchor,
                                        hi + 1), HINT_TTL);
        next = hi + 1;
    }
    cr_rate_grid_refused(anchor, rpm, now, next, result);
    return APR_SUCCESS;
}

/* Is any server marked live by apr-util? */
static int any_server_live(void)
{
    int i;

    if (redis_server) {
        return redis_server->status == APR_RC_SERVER_LIVE;
    }
    for (i = 0; memcache_servers && i < remote_servers->nelts; i++) {
        if (memcache_servers[i]->status == APR_MC_SERVER_LIVE) {
            return 1;
        }
    }
    return 0;
}

/* Whether a failure is the server's own (a new connection refused, no
 * answer in time) rather than a pooled connection it closed (it restarted,
 * or dropped an idle client), or apr-util's belief that it is dead. */
static int is_timeout(apr_status_t rv)
{
    return APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_ETIMEDOUT(rv);
}

static int server_failed(apr_status_t rv)
{
    return APR_STATUS_IS_ECONNREFUSED(rv) || is_timeout(rv)
           || APR_STATUS_IS_EHOSTUNREACH(rv) || APR_STATUS_IS_ENETUNREACH(rv);
}

/* When the last failure was a timeout (apr_time_t, this process): for
 * REMOTE_TIMEOUT_HOLD no request waits for the server again. */
#define REMOTE_TIMEOUT_HOLD   apr_time_from_sec(5)
static volatile apr_time_t timed_out_at;

/* apr-util marks a server dead on any failure, a stale pooled connection's
 * included, and then finds no server (APR_NOTFOUND) for 5 s, trying it
 * again with a ping that may itself take a stale connection: after Redis
 * restarted, requests were refused long after it was back.  So the
 * gateway decides itself: when every server is marked dead, they are
 * all marked live again and the request tries them (a refused connection
 * costs microseconds), unless one timed out less than REMOTE_TIMEOUT_HOLD
 * ago.  With several memcached servers and some alive, a dead one stays
 * with apr-util (its keys go to the others meanwhile). */
static int revive_servers(void)
{
    int i;

    if (any_server_live()) {
        return 1;
    }
    if (timed_out_at && apr_time_now() - timed_out_at < REMOTE_TIMEOUT_HOLD) {
        return 0;
    }
    if (redis_server) {
        apr_redis_enable_server(redis, redis_server);
    }
    for (i = 0; memcache_servers && i < remote_servers->nelts; i++) {
        apr_memcache_enable_server(memcache, memcache_servers[i]);
    }
    return 1;
}

/* A failure on what may be a stale connection is tried again at once; a
 * refused or timed out connection ends that at once, and then the store
 * counts as down for this request.  Nothing is held against the next
 * request: once the server is back, it is used.  A stale connection may
 * fail twice: apr_redis reads the closed connection's end as an empty
 * reply, answers APR_EGENERAL and puts the connection back in the pool;
 * its next use fails to write (EPIPE) and drops it.  So up to twice as
 * many tries as the pool holds connections, and two more. */
static apr_status_t remote_take(request_rec *r, const char *key_id,
                                apr_uint64_t key_fnv, apr_int64_t rpm,
                                cr_rate_result_t *result)
{
    const char *what = "";
    apr_status_t rv;
    int attempt = 0;

    (void)key_fnv;              /* the servers' keys are made of key_id */
    for (;;) {
        if (!revive_servers()) {
            return store_failed(r, APR_TIMEUP, "timed out less than 5 s ago");
        }
        rv = remote_take_once(r, key_id, rpm, result, &what);
        if (rv == APR_SUCCESS) {
            store_worked(r);
            return APR_SUCCESS;
        }
        if (server_failed(rv) || ++attempt > 2 * remote_pool_size + 2) {
            if (is_timeout(rv)) {
                timed_out_at = apr_time_now();
            }
            return store_failed(r, rv, what);
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, CRLOGNO(0211)
                      "rate store %s: %s failed on a connection that may "
                      "be stale; trying again", main_conf(r->server)->rate_store,
                      what);
    }
}

static apr_status_t remote_post_config(apr_pool_t *pconf, server_rec *s)
{
    const char *spec = main_conf(s)->rate_store, *err = NULL;

    remote_servers = parse_servers(pconf, strstr(spec, "://") + 3, 64,
                                   &err);
    if (!remote_servers) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, CRLOGNO(0209)
                     "bad rate store '%s': %s", spec, err);
        return APR_EINVAL;
    }
    ops = !strncmp(spec, "redis://", 8) ? &rd_ops : &mc_ops;
    return APR_SUCCESS;
}

static apr_status_t remote_child_init(apr_pool_t *p, server_rec *s)
{
    int threads = 1, i;
    apr_status_t rv;

    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS
        || threads < 1) {
        threads = 1;
    }
    remote_pool_size = threads;
    if (ops == &mc_ops) {
        rv = apr_memcache_create(p, (apr_uint16_t)remote_servers->nelts, 0,
                                 &memcache);
        memcache_servers = apr_pcalloc(p, remote_servers->nelts
                                          * sizeof(*memcache_servers));
    }
    else {
        rv = apr_redis_create(p, 1, 0, &redis);
    }
    for (i = 0; rv == APR_SUCCESS && i < remote_servers->nelts; i++) {
        remote_server *srv = &APR_ARRAY_IDX(remote_servers, i,
                                            remote_server);
        if (ops == &mc_ops) {
            apr_memcache_server_t *ms;

            rv = apr_memcache_server_create(p, srv->host, srv->port, 0,
                                            threads, threads,
                                            60 * APR_USEC_PER_SEC, &ms);
            if (rv == APR_SUCCESS) {
                rv = apr_memcache_add_server(memcache, ms);
                memcache_servers[i] = ms;
            }
        }
        else {
            apr_redis_server_t *rs;

            rv = apr_redis_server_create(p, srv->host, srv->port, 0,
                                         threads, threads,
                                         60 * APR_USEC_PER_SEC, 1, &rs);
            if (rv == APR_SUCCESS) {
                rv = apr_redis_add_server(redis, rs);
                redis_server = rs;
            }
        }
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CRLOGNO(0210)
                     "cannot set up the client of rate store %s",
                     main_conf(s)->rate_store);
    }
    return rv;
}

static const ratestore_backend memcache_backend = {
    "memcache", remote_post_config, remote_child_init, remote_take
};

static const ratestore_backend redis_backend = {
    "redis", remote_post_config, remote_child_init, remote_take
};

/* ------------------------------------------------------------------ */
/* Hooks                                                               */
/* ------------------------------------------------------------------ */

int cr_ratestore_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp)
{
    apr_status_t rv;

    (void)plog;
    (void)ptemp;
    shm_entries = CR_RATE_SHM_ENTRIES_DEFAULT;
    backend = NULL;
    rv = ap_mutex_register(pconf, RATE_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
    return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

int cr_ratestore_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    const char *spec = main_conf(s)->rate_store;

    (void)plog;
    (void)ptemp;
    /* The first pass only checks the configuration. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if (!spec || !strcmp(spec, "shm")) {
        backend = &shm_backend;
    }
    else if (!strncmp(spec, "redis://", 8)) {
        backend = &redis_backend;
    }
    else {
        backend = &memcache_backend;
    }
    apr_atomic_set32(&store_down, 0);
    apr_atomic_set32(&outage_logged_at, 0);
    main_server = s;
    configured_kind = backend == &redis_backend ? CR_RATESTORE_REDIS
                      : backend == &memcache_backend ? CR_RATESTORE_MEMCACHE
                      : CR_RATESTORE_SHM;
    return backend->post_config(pconf, s) == APR_SUCCESS
           ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

void cr_ratestore_child_init(apr_pool_t *p, server_rec *s)
{
    if (backend && backend->child_init(p, s) != APR_SUCCESS) {
        backend = NULL;         /* every take reports the store as down */
    }
}

apr_status_t cr_ratestore_take(request_rec *r, const char *key_id,
                               apr_uint64_t key_fnv, apr_int64_t rpm,
                               cr_rate_result_t *result)
{
    if (!backend) {
        return store_failed(r, APR_EINIT, "not initialised");
    }
    return backend->take(r, key_id, key_fnv, rpm, result);
}

/* ------------------------------------------------------------------ */
/* For the token counts (cr_tokenshared.c)                             */
/* ------------------------------------------------------------------ */

cr_ratestore_kind_e cr_ratestore_kind(void)
{
    return configured_kind;
}

struct apr_memcache_t *cr_ratestore_memcache(void)
{
    return memcache;
}

void cr_ratestore_redis_addr(const char **host, apr_port_t *port)
{
    const remote_server *srv = &APR_ARRAY_IDX(remote_servers, 0,
                                              remote_server);

    *host = srv->host;
    *port = srv->port;
}

int cr_ratestore_revive(void)
{
    return revive_servers();
}

int cr_ratestore_any_live(void)
{
    return any_server_live();
}

apr_status_t cr_ratestore_failed(request_rec *r, apr_status_t rv,
                                 const char *what)
{
    return store_failed(r, rv, what);
}

void cr_ratestore_worked(request_rec *r)
{
    store_worked(r);
}
