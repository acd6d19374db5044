/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_time.c: RFC 3339 times, "+N<unit>" relative times, and OpenAI style
 * durations.  Calendar arithmetic is APR's (apr_time_exp_gmt_get,
 * apr_time_exp_gmt); only the strict text syntax is parsed here, so no
 * timezone database is ever consulted.
 */

#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "cr_num.h"
#include "cr_time.h"

/* Latest time cr_time_format_rfc3339() can write with a four-digit year. */
#define CR_TIME_MAX_SECONDS APR_INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* Two digits of v (0..99) at out. */
static char *put2(char *out, int v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
    return out + 2;
}

apr_size_t cr_time_put_rfc3339(char *buf, apr_time_t t)
{
    apr_time_exp_t xt;
    int year;
    char *out = buf;

    if (apr_time_exp_gmt(&xt, t) != APR_SUCCESS) {
        return 0;
    }
    year = xt.tm_year + 1900;
    if (year < 0 || year > 9999) {
        /* Not four digits: what "%04d" makes of it. */
        return (apr_size_t)apr_snprintf(buf, CR_TIME_RFC3339_SIZE,
                                        "%04d-%02d-%02dT%02d:%02d:%02dZ",
                                        year, xt.tm_mon + 1, xt.tm_mday,
                                        xt.tm_hour, xt.tm_min, xt.tm_sec);
    }
    out = put2(out, year / 100);
    out = put2(out, year % 100);
    *out++ = '-';
    out = put2(out, xt.tm_mon + 1);
    *out++ = '-';
    out = put2(out, xt.tm_mday);
    *out++ = 'T';
    out = put2(out, xt.tm_hour);
    *out++ = ':';
    out = put2(out, xt.tm_min);
    *out++ = ':';
    out = put2(out, xt.tm_sec);
    *out++ = 'Z';
    *out = '\0';
    return (apr_size_t)(out - buf);
}

const char *cr_time_format_rfc3339(apr_pool_t *p, apr_time_t t)
{
    char buf[CR_TIME_RFC3339_SIZE];
    apr_size_t n = cr_time_put_rfc3339(buf, t);

    return n ? apr_pstrmemdup(p, buf, n) : NULL;
}

/* Exactly n decimal digits at *s; advances *s. */
static int parse_digits(const char **s, int n, int *value)
{
    int v = 0;

    while (n-- > 0) {
        if (!apr_isdigit(**s)) {
            return 0;
        }
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    *value = v;
    return 1;
}

static int is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31 };
    if (month == 2 && is_leap_year(year)) {
        return 29;
    }
    return days[month - 1];
}

apr_status_t cr_time_parse_rfc3339(const char *s, apr_time_t *t)
{
    int year, month, day, hour, minute, second;
    int off_hour = 0, off_minute = 0, off_sign = 0;
    apr_int64_t usec = 0;
    apr_time_exp_t xt;
    apr_time_t result;

    if (s == NULL) {
        return APR_EINVAL;
    }
    if (!parse_digits(&s, 4, &year) || *s++ != '-'
        || !parse_digits(&s, 2, &month) || *s++ != '-'
        || !parse_digits(&s, 2, &day)
        || (*s != 'T' && *s != 't')) {
        return APR_EINVAL;
    }
    s++;
    if (!parse_digits(&s, 2, &hour) || *s++ != ':'
        || !parse_digits(&s, 2, &minute) || *s++ != ':'
        || !parse_digits(&s, 2, &second)) {
        return APR_EINVAL;
    }
    if (*s == '.') {
        /* A fraction: at least one digit; microseconds kept, rest dropped. */
        apr_int64_t scale = 100000;
        s++;
        if (!apr_isdigit(*s)) {
            return APR_EINVAL;
        }
        while (apr_isdigit(*s)) {
            usec += (*s - '0') * scale;
            scale /= 10;
            s++;
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    }
    else if (*s == '+' || *s == '-') {
        off_sign = (*s == '+') ? 1 : -1;
        s++;
        if (!parse_digits(&s, 2, &off_hour) || *s++ != ':'
            || !parse_digits(&s, 2, &off_minute)
            || off_hour > 23 || off_minute > 59) {
            return APR_EINVAL;
        }
    }
    else {
        return APR_EINVAL;
    }
    if (*s != '\0') {
        return APR_EINVAL;
    }
    /* Leap seconds (":60") are refused: APR's calendar has none. */
    if (month < 1 || month > 12 || day < 1
        || day > days_in_month(year, month)
        || hour > 23 || minute > 59 || second > 59) {
        return APR_EINVAL;
    }

    memset(&xt, 0, sizeof(xt));
    xt.tm_year = year - 1900;
    xt.tm_mon = month - 1;
    xt.tm_mday = day;
    xt.tm_hour = hour;
    xt.tm_min = minute;
    xt.tm_sec = second;
    if (apr_time_exp_gmt_get(&result, &xt) != APR_SUCCESS) {
        return APR_EINVAL;  /* before 1970 */
    }
    /* "+02:00" means local time is ahead of UTC: subtract the offset. */
    result -= (apr_time_t)off_sign
              * apr_time_from_sec((apr_int64_t)off_hour * 3600
                                  + (apr_int64_t)off_minute * 60);
    *t = result + usec;
    return APR_SUCCESS;
}

apr_status_t cr_time_parse_expires(const char *s, apr_time_t now,
                                   apr_time_t *t)
{
    apr_int64_t n = 0, unit, limit;
    apr_time_t result;
    const char *c;

    if (s == NULL || *s == '\0') {
        return APR_EINVAL;
    }
    if (*s != '+') {
        if (cr_time_parse_rfc3339(s, &result) != APR_SUCCESS
            || result <= 0
            || apr_time_sec(result) > CR_TIME_MAX_SECONDS) {
            return APR_EINVAL;
        }
        *t = result;
        return APR_SUCCESS;
    }

    c = s + 1;
    if (!apr_isdigit(*c)) {
        return APR_EINVAL;
    }
    while (apr_isdigit(*c)) {
        /* Any N past the year 9999 is refused below; stop well before
         * the 64-bit arithmetic could overflow. */
        if (n > CR_TIME_MAX_SECONDS) {
            return APR_EINVAL;
        }
        n = n * 10 + (*c - '0');
        c++;
    }
    switch (*c) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return APR_EINVAL;
    }
    if (c[1] != '\0' || n <= 0 || now < 0) {
        return APR_EINVAL;
    }
    limit = CR_TIME_MAX_SECONDS - apr_time_sec(now);
    if (limit <= 0 || n > limit / unit) {
        return APR_EINVAL;
    }
    result = now + apr_time_from_sec(n * unit);
    *t = result;
    return APR_SUCCESS;
}

apr_size_t cr_time_put_duration(char *buf, apr_interval_time_t d)
{
    apr_int64_t secs, h, m;
    char *out = buf;

    if (d <= 0) {
        memcpy(buf, "0s", 3);
        return 2;
    }
    if (d < APR_USEC_PER_SEC) {
        apr_int64_t ms = (d + 999) / 1000;
        if (ms >= 1000) {
            memcpy(buf, "1s", 3);
            return 2;
        }
        /* 1 to 999 */
        if (ms >= 100) {
            *out++ = (char)('0' + ms / 100);
        }
        if (ms >= 10) {
            *out++ = (char)('0' + ms / 10 % 10);
        }
        *out++ = (char)('0' + ms % 10);
        memcpy(out, "ms", 3);
        return (apr_size_t)(out + 2 - buf);
    }
    secs = (d + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;
    h = secs / 3600;
    m = (secs % 3600) / 60;
    secs %= 60;
    /* h has at most 16 digits (an apr_interval_time_t in seconds). */
    if (h > 0) {
        out = cr_num_put_uint64(out, (apr_uint64_t)h);
        *out++ = 'h';
    }
    if (h > 0 || m > 0) {
        out = cr_num_put_uint64(out, (apr_uint64_t)m);
        *out++ = 'm';
    }
    out = cr_num_put_uint64(out, (apr_uint64_t)secs);
    *out++ = 's';
    *out = '\0';
    return (apr_size_t)(out - buf);
}

/* Written by hand, not with apr_psprintf: it is in every rate-limited
 * response's headers. */
const char *cr_time_format_duration(apr_pool_t *p, apr_interval_time_t d)
{
    char buf[CR_TIME_DURATION_SIZE];
    apr_size_t n;

    if (d <= 0) {
        return "0s";
    }
    if (d < APR_USEC_PER_SEC && (d + 999) / 1000 >= 1000) {
        return "1s";
    }
    n = cr_time_put_duration(buf, d);
    return apr_pstrmemdup(p, buf, n);
}

int cr_time_once_per(apr_uint32_t *last, apr_uint32_t now,
                     apr_uint32_t every)
{
    apr_uint32_t prev = apr_atomic_read32(last);

    if (prev != 0 && now - prev < every) {
        return 0;
    }
    /* Of the threads that saw the interval end, the one that moves *last
     * on is the one that logs. */
    return apr_atomic_cas32(last, now, prev) == prev;
}
