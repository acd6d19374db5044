/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_tokenshared.c: token buckets and quotas in memcached or Redis (httpd
 * glue; cr_tokenshared.h).
 *
 * Keys (the API key's id is "key_" + 16 base62, safe in both stores):
 *   clawdrouter:tk:ID:W         tokens charged in 60 s window W (tpm)
 *   clawdrouter:tq:ID:KINDN     tokens used in quota period N of KIND
 *                               (d = UTC day, m = UTC month, t = total)
 * A new window or period is a new key, so nothing is ever reset; each
 * key expires a while after it stops mattering (a window 3 minutes after
 * it began, a period an hour after it ended; a total count never).
 *
 * Every change is one atomic increment on the server: Redis INCRBY, then
 * EXPIREAT (idempotent: the same instant for every writer), pipelined in
 * one round trip; memcached incr, or add when the key does not exist yet
 * (and incr again if someone else added it first).  Admission reads the
 * keys it needs in one round trip (Redis MGET, memcached multi-get).
 *
 * apr_redis has neither EXPIRE nor MGET nor pipelining and returns 32-bit
 * counts, so Redis is spoken to directly here (RESP over a small pool of
 * connections per child, apr_reslist); memcached goes through the rate
 * store's apr_memcache client.  Failures are reported, and the failure
 * policy applied, exactly as for request limits (cr_ratestore.c).
 */

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_mpm.h"

#include "apr_hash.h"
#include "apr_memcache.h"
#include "apr_network_io.h"
#include "apr_reslist.h"
#include "apr_strings.h"

#include "mod_clawdrouter.h"
#include "cr_ratestore.h"
#include "cr_tokens.h"
#include "cr_tokenshared.h"

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(clawdrouter);
#endif

#define KEY_PREFIX        "clawdrouter:"
#define WINDOW_KEEP_SEC   180           /* a window key, from its start */
#define PERIOD_KEEP_SEC   3600          /* a quota key, past its period */
#define MC_RELATIVE_MAX   2592000       /* memcached: 30 days relative */
#define RD_TIMEOUT        apr_time_from_sec(1)
#define RD_TIMEOUT_HOLD   apr_time_from_sec(5)
#define NKEYS             3             /* prev window, window, quota */

int cr_tokenshared_active(void)
{
    return cr_ratestore_kind() != CR_RATESTORE_SHM;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                 */
/* ------------------------------------------------------------------ */

static const char *window_key(apr_pool_t *p, const char *id, apr_int64_t w)
{
    return apr_psprintf(p, KEY_PREFIX "tk:%s:%" APR_INT64_T_FMT, id, w);
}

static const char *quota_key(apr_pool_t *p, const char *id,
                             cr_quota_period_e period, apr_time_t now)
{
    return apr_psprintf(p, KEY_PREFIX "tq:%s:%c%" APR_INT64_T_FMT, id,
                        period == CR_QUOTA_DAY ? 'd'
                        : period == CR_QUOTA_MONTH ? 'm' : 't',
                        cr_tokens_period_index(period, now));
}

/* When a key stops mattering (seconds since the epoch; 0 = never). */
static apr_int64_t window_expiry(apr_int64_t w)
{
    return w * (CR_TOKENS_WINDOW / APR_USEC_PER_SEC) + WINDOW_KEEP_SEC;
}

static apr_int64_t quota_expiry(cr_quota_period_e period, apr_time_t now)
{
    apr_time_t end = cr_tokens_period_end(period, now);

    return end ? apr_time_sec(end) + PERIOD_KEEP_SEC : 0;
}

static int parse_count(const char *s, apr_size_t len, apr_int64_t *v)
{
    char *end;

    if (len == 0 || len > 20) {
        return 0;
    }
    *v = apr_strtoi64(s, &end, 10);
    return end == s + len && *v >= 0;
}

/* ------------------------------------------------------------------ */
/* Redis: RESP over pooled connections                                 */
/* ------------------------------------------------------------------ */

typedef struct {
    apr_pool_t *pool;
    apr_socket_t *sock;
    int answered;               /* has answered before: may go stale */
    apr_size_t len, pos;
    char buf[1024];
} rd_conn;

static apr_reslist_t *rd_conns;
static const char *rd_host;
static apr_port_t rd_port;
static volatile apr_time_t rd_timed_out_at;
/* Tries of one exchange: every pooled connection of the child may be one
 * the server closed (it restarted), each found out once and dropped. */
static int tries = 3;

static apr_status_t rd_construct(void **res, void *params, apr_pool_t *pool)
{
    apr_pool_t *p;
    apr_sockaddr_t *sa;
    rd_conn *c;
    apr_status_t rv;

    (void)params;
    rv = apr_pool_create(&p, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->pool = p;
    rv = apr_sockaddr_info_get(&sa, rd_host, APR_UNSPEC, rd_port, 0, p);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_create(&c->sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, p);
    }
    if (rv == APR_SUCCESS) {
        apr_socket_timeout_set(c->sock, RD_TIMEOUT);
        apr_socket_opt_set(c->sock, APR_TCP_NODELAY, 1);
        rv = apr_socket_connect(c->sock, sa);
    }
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(p);
        return rv;
    }
    *res = c;
    return APR_SUCCESS;
}

static apr_status_t rd_destruct(void *res, void *params, apr_pool_t *pool)
{
    rd_conn *c = res;

    (void)params;
    (void)pool;
    apr_socket_close(c->sock);
    apr_pool_destroy(c->pool);
    return APR_SUCCESS;
}

/* Append one command (argc words) in RESP to *out. */
static void rd_command(apr_pool_t *p, apr_array_header_t *out, int argc,
                       const char *const *argv)
{
    int i;

    APR_ARRAY_PUSH(out, const char *) = apr_psprintf(p, "*%d\r\n", argc);
    for (i = 0; i < argc; i++) {
        APR_ARRAY_PUSH(out, const char *) =
            apr_psprintf(p, "$%" APR_SIZE_T_FMT "\r\n%s\r\n",
                         strlen(argv[i]), argv[i]);
    }
}

static apr_status_t rd_fill(rd_conn *c)
{
    apr_size_t n;
    apr_status_t rv;

    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == sizeof(c->buf)) {
        return APR_ENOSPC;
    }
    n = sizeof(c->buf) - c->len;
    rv = apr_socket_recv(c->sock, c->buf + c->len, &n);
    if (n > 0) {
        c->len += n;
        return APR_SUCCESS;
    }
    return rv == APR_SUCCESS ? APR_EOF : rv;
}

/* The next line of the reply, without its CRLF (valid until the next). */
static apr_status_t rd_line(rd_conn *c, char **line, apr_size_t *len)
{
    for (;;) {
        char *start = c->buf + c->pos;
        char *nl = memchr(start, '\n', c->len - c->pos);
        apr_status_t rv;

        if (nl && nl > start && nl[-1] == '\r') {
            nl[-1] = '\0';
            *line = start;
            *len = (apr_size_t)(nl - 1 - start);
            c->pos = (apr_size_t)(nl + 1 - c->buf);
            return APR_SUCCESS;
        }
        rv = rd_fill(c);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
}

/* One reply holding a count: ":N", "$len" + digits, "$-1" (nil: 0), or
 * "*N" (an array header: *v = N).  An error reply or anything else is a
 * failure. */
static apr_status_t rd_value(rd_conn *c, char *type, apr_int64_t *v)
{
    char *line;
    apr_size_t len;
    apr_int64_t n;
    apr_status_t rv = rd_line(c, &line, &len);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    *type = line[0];
    *v = 0;
    if ((line[0] == ':' || line[0] == '*')
        && parse_count(line + 1, len - 1, v)) {
        return APR_SUCCESS;
    }
    if (line[0] == '$') {
        if (!strcmp(line, "$-1")) {
            return APR_SUCCESS;
        }
        if (!parse_count(line + 1, len - 1, &n)) {
            return APR_EGENERAL;
        }
        rv = rd_line(c, &line, &len);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        return (apr_int64_t)len == n && parse_count(line, len, v)
               ? APR_SUCCESS : APR_EGENERAL;
    }
    return APR_EGENERAL;
}

/* Send the commands in one write and read nreplies replies; an array reply
 * is flattened into its elements.  vals gets up to nvals counts. */
static apr_status_t rd_exchange_once(rd_conn *c, const char *cmd,
                                     int nreplies, apr_int64_t *vals,
                                     int nvals)
{
    apr_size_t left = strlen(cmd), n;
    apr_status_t rv;
    int i, got = 0;

    c->pos = c->len = 0;
    while (left > 0) {
        n = left;
        rv = apr_socket_send(c->sock, cmd, &n);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        cmd += n;
        left -= n;
    }
    for (i = 0; i < nreplies; i++) {
        char type;
        apr_int64_t v, k;

        rv = rd_value(c, &type, &v);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (type == '*') {
            for (k = 0; k < v; k++) {
                apr_int64_t e;

                rv = rd_value(c, &type, &e);
                if (rv != APR_SUCCESS) {
                    return rv;
                }
                if (got < nvals) {
                    vals[got++] = e;
                }
            }
        }
        else if (got < nvals) {
            vals[got++] = v;
        }
    }
    return got == nvals ? APR_SUCCESS : APR_EGENERAL;
}

static int is_timeout(apr_status_t rv)
{
    return APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_ETIMEDOUT(rv);
}

/* A pooled connection that fails may be one Redis closed (it restarted):
 * it is dropped and the command tried again on another, up to as many
 * times as the pool holds connections and two more; a new connection that fails, or a timeout, ends it at once. */
static apr_status_t rd_exchange(request_rec *r, apr_pool_t *p,
                                apr_array_header_t *cmd, int nreplies,
                                apr_int64_t *vals, int nvals)
{
    const char *text = apr_array_pstrcat(p, cmd, 0);
    apr_status_t rv = APR_EINIT;
    int attempt;

    if (!rd_conns) {
        return cr_ratestore_failed(r, rv, "not initialised");
    }
    if (rd_timed_out_at
        && apr_time_now() - rd_timed_out_at < RD_TIMEOUT_HOLD) {
        return cr_ratestore_failed(r, APR_TIMEUP,
                                   "timed out less than 5 s ago");
    }
    for (attempt = 0; attempt < tries; attempt++) {
        rd_conn *c;
        int stale;

        rv = apr_reslist_acquire(rd_conns, (void **)&c);
        if (rv != APR_SUCCESS) {
            break;              /* no connection could be made */
        }
        rv = rd_exchange_once(c, text, nreplies, vals, nvals);
        if (rv == APR_SUCCESS) {
            c->answered = 1;
            apr_reslist_release(rd_conns, c);
            cr_ratestore_worked(r);
            return APR_SUCCESS;
        }
        stale = c->answered && !is_timeout(rv);
        apr_reslist_invalidate(rd_conns, c);
        if (!stale) {
            break;
        }
    }
    if (is_timeout(rv)) {
        rd_timed_out_at = apr_time_now();
    }
    return cr_ratestore_failed(r, rv, "token counts");
}

/* ------------------------------------------------------------------ */
/* memcached: through the rate store's client                          */
/* ------------------------------------------------------------------ */

/* apr-util answers APR_NOTFOUND both for an absent key and when it has no
 * live server. */
static apr_status_t mc_down_if_none(apr_status_t rv)
{
    return rv == APR_NOTFOUND && !cr_ratestore_any_live() ? APR_EAGAIN : rv;
}

static apr_uint32_t mc_ttl(apr_int64_t expiry, apr_time_t now)
{
    apr_int64_t rel;

    if (expiry == 0) {
        return 0;               /* never */
    }
    rel = expiry - apr_time_sec(now);
    if (rel > MC_RELATIVE_MAX) {
        return (apr_uint32_t)expiry;    /* memcached: an absolute time */
    }
    return rel < 1 ? 1 : (apr_uint32_t)rel;
}

/* incr, or add when there is no such key yet (incr again if another
 * process added it first): never a read-modify-write. */
static apr_status_t mc_increment(apr_memcache_t *mc, apr_pool_t *p,
                                 const char *key, apr_int64_t n,
                                 apr_uint32_t ttl)
{
    char *value = apr_psprintf(p, "%" APR_INT64_T_FMT, n);
    apr_uint32_t now_value;
    apr_status_t rv = APR_EGENERAL;
    int i;

    for (i = 0; i < 2; i++) {
        rv = apr_memcache_incr(mc, key, (apr_int32_t)n, &now_value);
        if (rv != APR_NOTFOUND) {
            return rv;
        }
        if (!cr_ratestore_any_live()) {
            return APR_EAGAIN;
        }
        rv = apr_memcache_add(mc, key, value, strlen(value), ttl, 0);
        if (rv != APR_EEXIST) {
            return rv;
        }
    }
    return rv;
}

static apr_status_t mc_read(request_rec *r, apr_pool_t *p, int nkeys,
                            const char **keys, apr_int64_t *vals)
{
    apr_memcache_t *mc = cr_ratestore_memcache();
    apr_status_t rv = APR_EINIT;
    int attempt, i;

    for (attempt = 0; mc && attempt < tries; attempt++) {
        apr_hash_t *values = NULL;
        apr_pool_t *tmp;

        if (!cr_ratestore_revive()) {
            return cr_ratestore_failed(r, APR_TIMEUP,
                                       "timed out less than 5 s ago");
        }
        for (i = 0; i < nkeys; i++) {
            apr_memcache_add_multget_key(p, keys[i], &values);
        }
        if (apr_pool_create(&tmp, p) != APR_SUCCESS) {
            return cr_ratestore_failed(r, APR_ENOMEM, "memory");
        }
        rv = apr_memcache_multgetp(mc, tmp, p, values);
        apr_pool_destroy(tmp);
        for (i = 0; rv == APR_SUCCESS && i < nkeys; i++) {
            apr_memcache_value_t *v = apr_hash_get(values, keys[i],
                                                   APR_HASH_KEY_STRING);

            vals[i] = 0;
            if (!v) {
                rv = APR_EGENERAL;
            }
            else if (v->status == APR_SUCCESS) {
                if (!parse_count(v->data, v->len, &vals[i])) {
                    vals[i] = 0;    /* not a count: treated as none */
                }
            }
            else {
                rv = mc_down_if_none(v->status);
                if (rv == APR_NOTFOUND) {
                    rv = APR_SUCCESS;
                }
            }
        }
        if (rv == APR_SUCCESS) {
            cr_ratestore_worked(r);
            return APR_SUCCESS;
        }
        if (APR_STATUS_IS_ECONNREFUSED(rv) || rv == APR_EAGAIN
            || is_timeout(rv)) {
            break;
        }
    }
    return cr_ratestore_failed(r, rv, "token counts: get");
}

static apr_status_t mc_add(request_rec *r, apr_pool_t *p, int nkeys,
                           const char **keys, const apr_int64_t *n,
                           const apr_uint32_t *ttl)
{
    apr_memcache_t *mc = cr_ratestore_memcache();
    apr_status_t rv = APR_EINIT;
    int i, attempt;

    for (i = 0; mc && i < nkeys; i++) {
        for (attempt = 0; attempt < tries; attempt++) {
            if (!cr_ratestore_revive()) {
                return cr_ratestore_failed(r, APR_TIMEUP,
                                           "timed out less than 5 s ago");
            }
            rv = mc_increment(mc, p, keys[i], n[i], ttl[i]);
            if (rv == APR_SUCCESS || APR_STATUS_IS_ECONNREFUSED(rv)
                || rv == APR_EAGAIN || is_timeout(rv)) {
                break;
            }
        }
        if (rv != APR_SUCCESS) {
            return cr_ratestore_failed(r, rv, "token counts: incr");
        }
    }
    if (rv == APR_SUCCESS) {
        cr_ratestore_worked(r);
        return APR_SUCCESS;
    }
    return cr_ratestore_failed(r, rv, "token counts: not initialised");
}

/* ------------------------------------------------------------------ */
/* The interface                                                        */
/* ------------------------------------------------------------------ */

void cr_tokenshared_child_init(apr_pool_t *p, server_rec *s)
{
    int threads = 1;
    apr_status_t rv;

    rd_conns = NULL;
    rd_timed_out_at = 0;
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS
        || threads < 1) {
        threads = 1;
    }
    tries = threads + 2;
    if (cr_ratestore_kind() != CR_RATESTORE_REDIS) {
        return;
    }
    cr_ratestore_redis_addr(&rd_host, &rd_port);
    rd_host = apr_pstrdup(p, rd_host);
    rv = apr_reslist_create(&rd_conns, 0, threads, threads,
                            apr_time_from_sec(60), rd_construct, rd_destruct,
                            NULL, p);
    if (rv != APR_SUCCESS) {
        rd_conns = NULL;
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CRLOGNO(0720)
                     "cannot set up the token counts' connections to "
                     "Redis %s:%d", rd_host, (int)rd_port);
        return;
    }
    /* Connections go before the pool's subpools, which they live in. */
    apr_reslist_cleanup_order_set(rd_conns, APR_RESLIST_CLEANUP_FIRST);
}

static apr_status_t shared_state(request_rec *r, apr_pool_t *p,
                                 const char *key_id,
                                 cr_quota_period_e period, apr_int64_t tpm,
                                 apr_time_t now, cr_rate_result_t *bucket,
                                 apr_int64_t *used)
{
    const char *keys[NKEYS];
    apr_int64_t vals[NKEYS] = { 0, 0, 0 };
    apr_int64_t w = cr_tokens_window_index(now);
    int nkeys = 0, with_tpm = bucket && tpm > 0;
    apr_status_t rv;

    if (with_tpm) {
        keys[nkeys++] = window_key(p, key_id, w - 1);
        keys[nkeys++] = window_key(p, key_id, w);
    }
    if (used) {
        keys[nkeys++] = quota_key(p, key_id, period, now);
        *used = 0;
    }
    if (nkeys == 0) {
        return APR_SUCCESS;
    }
    if (cr_ratestore_kind() == CR_RATESTORE_REDIS) {
        apr_array_header_t *cmd = apr_array_make(p, 8, sizeof(char *));
        const char *argv[1 + NKEYS];
        int i;

        argv[0] = "MGET";
        for (i = 0; i < nkeys; i++) {
            argv[1 + i] = keys[i];
        }
        rd_command(p, cmd, 1 + nkeys, argv);
        rv = rd_exchange(r, p, cmd, 1, vals, nkeys);
    }
    else {
        rv = mc_read(r, p, nkeys, keys, vals);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (with_tpm) {
        cr_tokens_window_check(vals[0], vals[1], tpm, now, bucket);
    }
    if (used) {
        *used = vals[nkeys - 1];
    }
    return APR_SUCCESS;
}

apr_status_t cr_tokenshared_state(request_rec *r, const char *key_id,
                                  cr_quota_period_e period, apr_int64_t tpm,
                                  apr_time_t now, cr_rate_result_t *bucket,
                                  apr_int64_t *used)
{
    return shared_state(r, r->pool, key_id, period, tpm, now, bucket, used);
}

apr_status_t cr_tokenshared_used(apr_pool_t *p, const char *key_id,
                                 cr_quota_period_e period, apr_time_t now,
                                 apr_int64_t *used)
{
    return shared_state(NULL, p, key_id, period, 0, now, NULL, used);
}

apr_status_t cr_tokenshared_charge(request_rec *r, const char *key_id,
                                   apr_int64_t tpm, int count_quota,
                                   cr_quota_period_e period, apr_time_t now,
                                   apr_int64_t tokens)
{
    apr_pool_t *p = r->pool;
    const char *keys[2];
    apr_int64_t expiry[2], n[2];
    int nkeys = 0, i;

    if (tokens <= 0) {
        return APR_SUCCESS;
    }
    if (tokens > APR_INT32_MAX) {
        tokens = APR_INT32_MAX;     /* memcached incr takes 32 bits */
    }
    if (tpm > 0) {
        apr_int64_t w = cr_tokens_window_index(now);

        keys[nkeys] = window_key(p, key_id, w);
        expiry[nkeys] = window_expiry(w);
        n[nkeys++] = tokens;
    }
    if (count_quota) {
        keys[nkeys] = quota_key(p, key_id, period, now);
        expiry[nkeys] = quota_expiry(period, now);
        n[nkeys++] = tokens;
    }
    if (nkeys == 0) {
        return APR_SUCCESS;
    }
    if (cr_ratestore_kind() == CR_RATESTORE_REDIS) {
        apr_array_header_t *cmd = apr_array_make(p, 16, sizeof(char *));
        apr_int64_t vals[4];
        int nreplies = 0;

        for (i = 0; i < nkeys; i++) {
            const char *incr[3], *exp[3];

            incr[0] = "INCRBY";
            incr[1] = keys[i];
            incr[2] = apr_psprintf(p, "%" APR_INT64_T_FMT, n[i]);
            rd_command(p, cmd, 3, incr);
            nreplies++;
            if (expiry[i]) {
                exp[0] = "EXPIREAT";
                exp[1] = keys[i];
                exp[2] = apr_psprintf(p, "%" APR_INT64_T_FMT, expiry[i]);
                rd_command(p, cmd, 3, exp);
                nreplies++;
            }
        }
        return rd_exchange(r, p, cmd, nreplies, vals, nreplies);
    }
    else {
        apr_uint32_t ttl[2];

        for (i = 0; i < nkeys; i++) {
            ttl[i] = mc_ttl(expiry[i], now);
        }
        return mc_add(r, p, nkeys, keys, n, ttl);
    }
}
