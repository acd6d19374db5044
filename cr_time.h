/* Licensed under the Apache License, Version 2.0. */

/* cr_time.h: RFC 3339 times, "+N<unit>" relative times, and durations. */
#ifndef CR_TIME_H
#define CR_TIME_H

#include <apr_pools.h>
#include <apr_time.h>

/* "2026-11-27T17:32:41Z" (UTC, whole seconds). */
const char *cr_time_format_rfc3339(apr_pool_t *p, apr_time_t t);

/* The same text, NUL-terminated, in buf (CR_TIME_RFC3339_SIZE bytes);
 * returns its length, 0 if t cannot be written. */
#define CR_TIME_RFC3339_SIZE 32
apr_size_t cr_time_put_rfc3339(char *buf, apr_time_t t);

/* RFC 3339: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"; 't' and 'z'
 * accepted too.  APR_SUCCESS or APR_EINVAL. */
apr_status_t cr_time_parse_rfc3339(const char *s, apr_time_t *t);

/* An --expires value: RFC 3339, or "+N" with unit s, m, h or d relative to
 * now (N a positive integer, no overflow).  APR_SUCCESS or APR_EINVAL. */
apr_status_t cr_time_parse_expires(const char *s, apr_time_t now,
                                   apr_time_t *t);

/* An OpenAI style duration: "250ms", "1s", "6m0s", "1h2m3s".  Durations of
 * one second or more are rounded up to whole seconds; below a second,
 * whole milliseconds (at least "1ms" for a positive d, "0s" for d <= 0). */
const char *cr_time_format_duration(apr_pool_t *p, apr_interval_time_t d);

/* The same text, NUL-terminated, in buf (CR_TIME_DURATION_SIZE bytes);
 * returns its length. */
#define CR_TIME_DURATION_SIZE 32
apr_size_t cr_time_put_duration(char *buf, apr_interval_time_t d);

/* True for one caller per `every` seconds of `now` (apr_time_sec): *last is
 * an atomic word shared by the process's threads, 0 = never.  Outage lines
 * use it to be logged at most once per interval per process. */
int cr_time_once_per(apr_uint32_t *last, apr_uint32_t now,
                     apr_uint32_t every);

#endif /* CR_TIME_H */
