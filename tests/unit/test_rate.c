/* Licensed under the Apache License, Version 2.0. */

/*
 * test_rate.c: the rate-limit arithmetic of cr_rate.c with an injected
 * clock: GCRA (shared memory store) and the slot grid (memcached/Redis).
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cr_rate.h"
#include "cr_ratetable.h"

#define SEC(n) ((apr_time_t)(n) * APR_USEC_PER_SEC)
#define T0 ((apr_time_t)1764000000 * APR_USEC_PER_SEC)

/* Take count requests at now; returns how many were admitted. */
static int take_many(cr_rate_state_t *st, apr_int64_t rpm, apr_time_t now,
                     int count, cr_rate_result_t *last)
{
    int admitted = 0, i;
    cr_rate_result_t res;

    for (i = 0; i < count; i++) {
        cr_rate_take(st, rpm, now, &res);
        admitted += res.allowed;
    }
    if (last) {
        *last = res;
    }
    return admitted;
}

START_TEST(test_interval)
{
    ck_assert_int_eq(cr_rate_interval(60), SEC(1));
    ck_assert_int_eq(cr_rate_interval(1), SEC(60));
    /* 60 s / 7 rounds up: 7 intervals never fit in less than a minute. */
    ck_assert_int_eq(cr_rate_interval(7), 8571429);
    ck_assert_int_ge(7 * cr_rate_interval(7), SEC(60));
    ck_assert_int_eq(cr_rate_interval(CR_RATE_MAX_RPM * 1000), 1);
}
END_TEST

START_TEST(test_first_request)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    cr_rate_take(&st, 10, T0, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.limit, 10);
    ck_assert_int_eq(res.remaining, 9);
    ck_assert_int_eq(res.reset, SEC(6));
    ck_assert_int_eq(res.retry_after, 0);
    ck_assert_int_eq(st.tat, T0 + SEC(6));
    ck_assert_int_eq(st.rpm, 10);
}
END_TEST

START_TEST(test_burst_admits_exactly_rpm)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;
    apr_int64_t rpms[] = {1, 2, 7, 10, 60, 1000};
    unsigned i;

    for (i = 0; i < sizeof(rpms) / sizeof(rpms[0]); i++) {
        memset(&st, 0, sizeof(st));
        ck_assert_int_eq(take_many(&st, rpms[i], T0, (int)rpms[i] - 1, &res),
                         rpms[i] - 1);
        cr_rate_take(&st, rpms[i], T0, &res);
        ck_assert_int_eq(res.allowed, 1);
        ck_assert_int_eq(res.remaining, 0);
        /* The rest of a 3 x N burst is refused, and says when to retry. */
        ck_assert_int_eq(take_many(&st, rpms[i], T0, 2 * (int)rpms[i], &res),
                         0);
        ck_assert_int_eq(res.remaining, 0);
        ck_assert_int_eq(res.retry_after, cr_rate_interval(rpms[i]));
        ck_assert_int_eq(res.reset, rpms[i] * cr_rate_interval(rpms[i]));
    }
}
END_TEST

START_TEST(test_remaining_counts_down)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;
    int i;

    for (i = 1; i <= 5; i++) {
        cr_rate_take(&st, 5, T0, &res);
        ck_assert_int_eq(res.allowed, 1);
        ck_assert_int_eq(res.remaining, 5 - i);
        ck_assert_int_eq(res.reset, i * SEC(12));
    }
}
END_TEST

START_TEST(test_exact_refill_moment)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 10, T0, 10, NULL);
    /* One microsecond before the first refill: refused, retry in 1 us. */
    cr_rate_take(&st, 10, T0 + SEC(6) - 1, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, 1);
    /* At the refill moment: exactly one admitted. */
    cr_rate_take(&st, 10, T0 + SEC(6), &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 0);
    cr_rate_take(&st, 10, T0 + SEC(6), &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, SEC(6));
}
END_TEST

START_TEST(test_partial_and_full_refill)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 10, T0, 10, NULL);
    /* 20.5 s later, 3 requests have come back (one per 6 s). */
    ck_assert_int_eq(take_many(&st, 10, T0 + SEC(20) + 500000, 30, &res), 3);
    ck_assert_int_eq(res.retry_after, SEC(6) - SEC(2) - 500000);
    /* After a long idle time the bucket is full, never fuller. */
    ck_assert_int_eq(take_many(&st, 10, T0 + SEC(3600), 30, NULL), 10);
}
END_TEST

START_TEST(test_sustained_rate)
{
    cr_rate_state_t st = {0, 0};
    apr_time_t t;
    int admitted = 0;
    cr_rate_result_t res;

    /* A request every 100 ms for 10 minutes at 7 rpm: the full bucket
     * (7) plus 10 minutes of refill (70), minus the rounding of T. */
    for (t = 0; t < SEC(600); t += 100000) {
        cr_rate_take(&st, 7, T0 + t, &res);
        admitted += res.allowed;
    }
    ck_assert_int_le(admitted, 77);
    ck_assert_int_ge(admitted, 76);
}
END_TEST

START_TEST(test_clock_backwards)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    /* A small step back only costs the refill of that second: 7 s owed
     * after two requests, so 7 left (not 8), and no error. */
    cr_rate_take(&st, 10, T0, &res);
    cr_rate_take(&st, 10, T0 - SEC(1), &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.remaining, 7);
    ck_assert_int_eq(res.reset, SEC(13));

    /* An hour back on an empty bucket: empty, not empty for an hour. */
    memset(&st, 0, sizeof(st));
    take_many(&st, 10, T0, 10, NULL);
    cr_rate_take(&st, 10, T0 - SEC(3600), &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, SEC(6));
    ck_assert_int_le(res.reset, SEC(60));
    cr_rate_take(&st, 10, T0 - SEC(3600) + SEC(6), &res);
    ck_assert_int_eq(res.allowed, 1);
}
END_TEST

START_TEST(test_rpm_raised)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 5, T0, 5, NULL);
    cr_rate_take(&st, 5, T0, &res);
    ck_assert_int_eq(res.allowed, 0);
    /* Raised to 10: the 5 used stay used, 5 more are admitted at once. */
    cr_rate_take(&st, 10, T0, &res);
    ck_assert_int_eq(res.allowed, 1);
    ck_assert_int_eq(res.limit, 10);
    ck_assert_int_eq(res.remaining, 4);
    ck_assert_int_eq(take_many(&st, 10, T0, 10, NULL), 4);
}
END_TEST

START_TEST(test_rpm_lowered)
{
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t res;

    take_many(&st, 10, T0, 5, NULL);
    /* Lowered to 5 with 5 used: empty, first refill after 12 s. */
    cr_rate_take(&st, 5, T0, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.limit, 5);
    ck_assert_int_eq(res.retry_after, SEC(12));
    /* Lowered further to 2 with more used than the new bucket holds. */
    cr_rate_take(&st, 2, T0, &res);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.reset, SEC(60));
    ck_assert_int_eq(res.retry_after, SEC(30));
}
END_TEST

/* The slot grid, with the claims of one key kept in a small array. */
#define GRID_SLOTS 4096
typedef struct {
    apr_time_t anchor;
    unsigned char taken[GRID_SLOTS];
} grid_t;

static int grid_take(grid_t *g, apr_int64_t rpm, apr_time_t now,
                     cr_rate_result_t *res)
{
    apr_int64_t lo, hi, k;

    cr_rate_grid_window(g->anchor, rpm, now, &lo, &hi);
    for (k = lo; k <= hi; k++) {
        if (!g->taken[k]) {
            g->taken[k] = 1;
            cr_rate_grid_admitted(g->anchor, rpm, now, k, hi, res);
            return 1;
        }
    }
    cr_rate_grid_refused(g->anchor, rpm, now, hi + 1, res);
    return 0;
}

START_TEST(test_grid_window)
{
    apr_int64_t lo, hi;

    cr_rate_grid_window(T0, 10, T0, &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 9);
    cr_rate_grid_window(T0, 10, T0 + SEC(6) - 1, &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 9);
    cr_rate_grid_window(T0, 10, T0 + SEC(6), &lo, &hi);
    ck_assert_int_eq(lo, 1);
    ck_assert_int_eq(hi, 10);
    /* Another host whose clock is 12 s behind the anchor's. */
    cr_rate_grid_window(T0, 10, T0 - SEC(12), &lo, &hi);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, 7);
    cr_rate_grid_window(T0, 10, T0 - SEC(60), &lo, &hi);
    ck_assert_int_lt(hi, lo);
}
END_TEST

START_TEST(test_grid_burst_and_refill)
{
    static grid_t g;
    cr_rate_result_t res;
    int admitted = 0, i;

    memset(&g, 0, sizeof(g));
    g.anchor = T0;
    /* A 3 x N burst spread over most of one interval admits exactly N. */
    for (i = 0; i < 30; i++) {
        admitted += grid_take(&g, 10, T0 + i * 190000, &res);
    }
    ck_assert_int_eq(admitted, 10);
    ck_assert_int_eq(res.allowed, 0);
    ck_assert_int_eq(res.retry_after, T0 + SEC(6) - (T0 + 29 * 190000));
    /* 20.5 s after the anchor: three slots have entered the window. */
    admitted = 0;
    for (i = 0; i < 30; i++) {
        admitted += grid_take(&g, 10, T0 + SEC(20) + 500000, &res);
    }
    ck_assert_int_eq(admitted, 3);
    /* Idle for an hour: exactly N again, with N - 1 remaining first. */
    ck_assert_int_eq(grid_take(&g, 10, T0 + SEC(3600), &res), 1);
    ck_assert_int_eq(res.remaining, 9);
    admitted = 1;
    for (i = 0; i < 30; i++) {
        admitted += grid_take(&g, 10, T0 + SEC(3600), &res);
    }
    ck_assert_int_eq(admitted, 10);
}
END_TEST

START_TEST(test_grid_matches_gcra_from_fresh_bucket)
{
    static grid_t g;
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t a, b;
    apr_time_t t;

    memset(&g, 0, sizeof(g));
    g.anchor = T0;
    /* Same requests, same decisions, whenever the grid's anchor is the
     * first request and the key is never idle for a whole bucket. */
    for (t = 0; t < SEC(300); t += 700000) {
        cr_rate_take(&st, 13, T0 + t, &a);
        grid_take(&g, 13, T0 + t, &b);
        ck_assert_int_eq(a.allowed, b.allowed);
        ck_assert_int_eq(a.remaining, b.remaining);
        if (!a.allowed) {
            ck_assert_int_eq(a.retry_after, b.retry_after);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* The lock-free shm table (cr_ratetable.c)                             */
/* ------------------------------------------------------------------ */

/* Memory shared with forked children, as apr_shm gives the module. */
static void *shared(apr_size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(m, MAP_FAILED);
    return m;
}

static int table_take_many(cr_ratetable_t *t, const char *id,
                           apr_int64_t rpm, apr_time_t now, int count)
{
    cr_rate_result_t res;
    int admitted = 0, evicted, i;

    for (i = 0; i < count; i++) {
        ck_assert_int_eq(cr_ratetable_take(t, id, rpm, now, &res, &evicted),
                         APR_SUCCESS);
        admitted += res.allowed;
    }
    return admitted;
}

START_TEST(test_table_matches_gcra)
{
    apr_size_t size = cr_ratetable_size(100);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 100, T0);
    cr_rate_state_t st = {0, 0};
    cr_rate_result_t a, b;
    apr_time_t now;
    int evicted;

    ck_assert_ptr_eq(cr_ratetable_attach(t, 100), t);
    ck_assert_ptr_null(cr_ratetable_attach(t, 101));
    /* The same decisions as cr_rate_take under a lock, rpm changes
     * included (raised, then lowered). */
    for (now = T0; now < T0 + SEC(400); now += 300000) {
        apr_int64_t rpm = now < T0 + SEC(100) ? 10
                          : now < T0 + SEC(200) ? 40 : 7;

        cr_rate_take(&st, rpm, now, &a);
        ck_assert_int_eq(cr_ratetable_take(t, "key_A", rpm, now, &b,
                                           &evicted), APR_SUCCESS);
        ck_assert_int_eq(evicted, 0);
        ck_assert_int_eq(a.allowed, b.allowed);
        ck_assert_int_eq(a.remaining, b.remaining);
        ck_assert_int_eq(a.reset, b.reset);
        ck_assert_int_eq(a.retry_after, b.retry_after);
    }
    free(t);
}
END_TEST

/* The key hash both shm tables place a key by: FNV-1a 64 (the token
 * table's state file keeps it, so it must not change), and a take by
 * hash counts in the same bucket as a take by id. */
START_TEST(test_table_by_fnv)
{
    apr_size_t size = cr_ratetable_size(100);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 100, T0);
    cr_rate_result_t res;
    int evicted, i;

    ck_assert(cr_rate_id_fnv("") == APR_UINT64_C(0xcbf29ce484222325));
    ck_assert(cr_rate_id_fnv("a") == APR_UINT64_C(0xaf63dc4c8601ec8c));
    ck_assert(cr_rate_id_fnv("foobar") == APR_UINT64_C(0x85944171f73967e8));
    for (i = 0; i < 10; i++) {
        ck_assert_int_eq(cr_ratetable_take_fnv(t, cr_rate_id_fnv("key_A"), 20,
                                               T0, &res, &evicted),
                         APR_SUCCESS);
        ck_assert_int_eq(res.allowed, 1);
    }
    /* 10 of the 20 taken: the id's own takes see them. */
    ck_assert_int_eq(table_take_many(t, "key_A", 20, T0, 20), 10);
    ck_assert_int_eq(table_take_many(t, "key_B", 20, T0, 20), 20);
    free(t);
}
END_TEST

START_TEST(test_table_burst_and_keys_apart)
{
    apr_size_t size = cr_ratetable_size(1000);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 1000, T0);

    ck_assert_int_eq(table_take_many(t, "key_A", 5, T0, 20), 5);
    ck_assert_int_eq(table_take_many(t, "key_B", 3, T0, 20), 3);
    /* A minute later both buckets are full again. */
    ck_assert_int_eq(table_take_many(t, "key_A", 5, T0 + SEC(60), 20), 5);
    ck_assert_int_eq(table_take_many(t, "key_B", 3, T0 + SEC(60), 20), 3);
    ck_assert_int_eq(cr_ratetable_evictions(t), 0);
    free(t);
}
END_TEST

START_TEST(test_table_full_gives_way)
{
    apr_size_t size = cr_ratetable_size(4);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 4, T0);
    char id[32];
    int i;

    /* 4 entries, 50 keys: every request is decided, keys give way. */
    for (i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "key_%d", i);
        ck_assert_int_eq(table_take_many(t, id, 2, T0 + i, 3), 2);
    }
    ck_assert_int_ge(cr_ratetable_evictions(t), 46);
    /* The last four keys kept their entries: their buckets are empty. */
    for (i = 46; i < 50; i++) {
        snprintf(id, sizeof(id), "key_%d", i);
        ck_assert_int_eq(table_take_many(t, id, 2, T0 + 100, 1), 0);
    }
    free(t);
}
END_TEST

#define HAMMER_THREADS 8
#define HAMMER_TAKES   2000
#define HAMMER_RPM     5000

typedef struct {
    cr_ratetable_t *t;
    int admitted;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *a = p;
    cr_rate_result_t res;
    char id[32];
    int i, evicted;

    for (i = 0; i < HAMMER_TAKES; i++) {
        if (cr_ratetable_take(a->t, "key_hot", HAMMER_RPM, T0, &res,
                              &evicted) == APR_SUCCESS) {
            a->admitted += res.allowed;
        }
        /* and other keys around it, some of which give way */
        snprintf(id, sizeof(id), "key_%d", i % 97);
        (void)cr_ratetable_take(a->t, id, 1000, T0, &res, &evicted);
    }
    return NULL;
}

/* Bursts at the real clock (cr_ratetable_take_now, as the module takes
 * them): threads race on a fresh key of 6 rpm, 3 tries each; exactly 6
 * are admitted and their remaining counts are 5 .. 0, none twice, in
 * every one of many rounds. */
#define BURST_THREADS 8
#define BURST_TRIES   3
#define BURST_RPM     6

typedef struct {
    cr_ratetable_t *t;
    apr_uint64_t fnv;
    pthread_barrier_t *start;
    int remaining[BURST_TRIES];
    int admitted;
} burst_arg;

static void *burst_thread(void *p)
{
    burst_arg *a = p;
    cr_rate_result_t res;
    int i, evicted;

    pthread_barrier_wait(a->start);
    for (i = 0; i < BURST_TRIES; i++) {
        ck_assert_int_eq(cr_ratetable_take_now(a->t, a->fnv, BURST_RPM, &res,
                                               &evicted), APR_SUCCESS);
        if (res.allowed) {
            a->remaining[a->admitted++] = (int)res.remaining;
        }
    }
    return NULL;
}

START_TEST(test_table_burst_remaining_counts_down)
{
    apr_size_t size = cr_ratetable_size(256);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 256, apr_time_now());
    pthread_t th[BURST_THREADS];
    burst_arg args[BURST_THREADS];
    pthread_barrier_t start;
    int round, i, j;

    for (round = 0; round < 200; round++) {
        char id[32];
        int seen[BURST_RPM] = { 0 }, admitted = 0;

        snprintf(id, sizeof(id), "key_burst_%d", round);
        ck_assert_int_eq(pthread_barrier_init(&start, NULL, BURST_THREADS), 0);
        for (i = 0; i < BURST_THREADS; i++) {
            memset(&args[i], 0, sizeof(args[i]));
            args[i].t = t;
            args[i].fnv = cr_rate_id_fnv(id);
            args[i].start = &start;
            ck_assert_int_eq(pthread_create(&th[i], NULL, burst_thread,
                                            &args[i]), 0);
        }
        for (i = 0; i < BURST_THREADS; i++) {
            pthread_join(th[i], NULL);
            for (j = 0; j < args[i].admitted; j++) {
                ck_assert_int_ge(args[i].remaining[j], 0);
                ck_assert_int_lt(args[i].remaining[j], BURST_RPM);
                seen[args[i].remaining[j]]++;
            }
            admitted += args[i].admitted;
        }
        pthread_barrier_destroy(&start);
        ck_assert_int_eq(admitted, BURST_RPM);
        for (j = 0; j < BURST_RPM; j++) {
            ck_assert_msg(seen[j] == 1, "round %d: remaining %d reported "
                          "%d times", round, j, seen[j]);
        }
    }
    free(t);
}
END_TEST

START_TEST(test_table_threads_exact)
{
    apr_size_t size = cr_ratetable_size(64);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 64, T0);
    pthread_t th[HAMMER_THREADS];
    hammer_arg args[HAMMER_THREADS];
    int i, total = 0;

    for (i = 0; i < HAMMER_THREADS; i++) {
        args[i].t = t;
        args[i].admitted = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].admitted;
    }
    /* 16,000 requests at one instant against a bucket of 5000; the hot
     * key may have given way to the others (64 entries, 98 keys), which
     * restarts it full: at least 5000, a multiple of whole buckets. */
    ck_assert_int_ge(total, HAMMER_RPM);
    free(t);
}
END_TEST

START_TEST(test_table_threads_exact_one_key)
{
    apr_size_t size = cr_ratetable_size(1000);
    cr_ratetable_t *t = cr_ratetable_init(malloc(size), 1000, T0);
    pthread_t th[HAMMER_THREADS];
    hammer_arg args[HAMMER_THREADS];
    int i, total = 0;

    for (i = 0; i < HAMMER_THREADS; i++) {
        args[i].t = t;
        args[i].admitted = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].admitted;
    }
    /* Room for every key: the hot key's bucket admits exactly 5000. */
    ck_assert_int_eq(cr_ratetable_evictions(t), 0);
    ck_assert_int_eq(total, HAMMER_RPM);
    free(t);
}
END_TEST

#define PROCS 4

/* Children take from one key at one instant; the admissions they count
 * in shared memory add up to exactly the bucket. */
START_TEST(test_table_processes_exact)
{
    apr_size_t size = cr_ratetable_size(1000);
    cr_ratetable_t *t = cr_ratetable_init(shared(size), 1000, T0);
    int *counts = shared(PROCS * sizeof(int));
    pid_t pids[PROCS];
    int i, total = 0, status;

    for (i = 0; i < PROCS; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            counts[i] = table_take_many(t, "key_hot", 3000, T0, 3000);
            _exit(0);
        }
    }
    for (i = 0; i < PROCS; i++) {
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        total += counts[i];
    }
    ck_assert_int_eq(total, 3000);
    ck_assert_int_eq(table_take_many(t, "key_hot", 3000, T0, 10), 0);
}
END_TEST

/* Children killed with SIGKILL in the middle of their decisions (and of
 * claiming and taking over entries) leave a table that works, and is
 * exact, for everyone else. */
START_TEST(test_table_survives_sigkill)
{
    apr_size_t size = cr_ratetable_size(48);
    cr_ratetable_t *t = cr_ratetable_init(shared(size), 48, T0);
    int round, i, status;

    for (round = 0; round < 20; round++) {
        pid_t pids[PROCS];

        for (i = 0; i < PROCS; i++) {
            pids[i] = fork();
            ck_assert_int_ge(pids[i], 0);
            if (pids[i] == 0) {
                cr_rate_result_t res;
                char id[32];
                int k, evicted;

                for (k = 0;; k++) {
                    snprintf(id, sizeof(id), "key_%d", (k * 7 + i) % 150);
                    (void)cr_ratetable_take(t, id, 100, T0 + k, &res,
                                            &evicted);
                    (void)cr_ratetable_take(t, "key_hot", 100, T0, &res,
                                            &evicted);
                }
            }
        }
        usleep(2000 + (unsigned)(round * 700));
        for (i = 0; i < PROCS; i++) {
            kill(pids[i], SIGKILL);
            ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
            ck_assert(WIFSIGNALED(status));
        }
    }
    /* An hour later every bucket is full: a burst admits exactly N, for
     * the hot key and for a key never seen. */
    ck_assert_int_eq(table_take_many(t, "key_hot", 100, T0 + SEC(3600),
                                     300), 100);
    ck_assert_int_eq(table_take_many(t, "key_new", 7, T0 + SEC(3600), 30),
                     7);
    for (i = 0; i < 150; i += 10) {
        char id[32];

        snprintf(id, sizeof(id), "key_%d", i);
        ck_assert_int_eq(table_take_many(t, id, 3, T0 + SEC(7200), 10), 3);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rate");
    TCase *gcra = tcase_create("gcra");
    TCase *grid = tcase_create("grid");
    TCase *table = tcase_create("table");
    SRunner *sr;
    int failed;

    tcase_add_test(gcra, test_interval);
    tcase_add_test(gcra, test_first_request);
    tcase_add_test(gcra, test_burst_admits_exactly_rpm);
    tcase_add_test(gcra, test_remaining_counts_down);
    tcase_add_test(gcra, test_exact_refill_moment);
    tcase_add_test(gcra, test_partial_and_full_refill);
    tcase_add_test(gcra, test_sustained_rate);
    tcase_add_test(gcra, test_clock_backwards);
    tcase_add_test(gcra, test_rpm_raised);
    tcase_add_test(gcra, test_rpm_lowered);
    suite_add_tcase(s, gcra);
    tcase_add_test(grid, test_grid_window);
    tcase_add_test(grid, test_grid_burst_and_refill);
    tcase_add_test(grid, test_grid_matches_gcra_from_fresh_bucket);
    suite_add_tcase(s, grid);
    tcase_add_test(table, test_table_matches_gcra);
    tcase_add_test(table, test_table_by_fnv);
    tcase_add_test(table, test_table_burst_and_keys_apart);
    tcase_add_test(table, test_table_full_gives_way);
    tcase_add_test(table, test_table_threads_exact);
    tcase_add_test(table, test_table_burst_remaining_counts_down);
    tcase_add_test(table, test_table_threads_exact_one_key);
    tcase_add_test(table, test_table_processes_exact);
    tcase_add_test(table, test_table_survives_sigkill);
    tcase_set_timeout(table, 60);
    suite_add_tcase(s, table);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
