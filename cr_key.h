/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_key.h: API keys and their records.
 *
 * A key is "sk-" and 48 base62 characters from apr_generate_random_bytes.
 * The store never holds a key: it holds its SHA-256 (lower-case hex) mapped
 * to a JSON record:
 *   {"id":"key_...","name":"...","models":["gpt-*"],"rpm":60,
 *    "created_at":"RFC3339","expires_at":"RFC3339"|null,
 *    "status":"active"|"revoked","hint":"sk-ab...c66a"}
 * "rpm" is null when the record sets none (the server default applies).
 * Token limits (SPEC section 11): "tpm" (tokens per minute), "quota"
 * (tokens per "quota_period": "day", "month" (UTC calendar) or "total");
 * null or absent = not set (tpm: ClawdRouterDefaultTPM; quota: none;
 * quota_period: "month"), 0 = no limit.
 */
#ifndef CR_KEY_H
#define CR_KEY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define CR_KEY_PREFIX        "sk-"
#define CR_KEY_RANDOM_CHARS  48
#define CR_KEY_HASH_HEX_LEN  64
#define CR_KEY_RPM_UNSET     (-1)
#define CR_KEY_LIMIT_UNSET   (-1)

typedef enum {
    CR_QUOTA_UNSET = -1,
    CR_QUOTA_DAY = 0,
    CR_QUOTA_MONTH = 1,
    CR_QUOTA_TOTAL = 2
} cr_quota_period_e;

typedef enum {
    CR_KEY_ACTIVE = 0,
    CR_KEY_REVOKED = 1
} cr_key_status_e;

typedef struct {
    const char *id;              /* "key_" + 16 base62 characters */
    const char *name;            /* may be "" */
    apr_array_header_t *models;  /* of const char *, fnmatch globs; "*" = all */
    apr_int64_t rpm;             /* >= 0, or CR_KEY_RPM_UNSET */
    apr_int64_t tpm;             /* >= 0, or CR_KEY_LIMIT_UNSET */
    apr_int64_t quota;           /* >= 0, or CR_KEY_LIMIT_UNSET */
    cr_quota_period_e quota_period;
    apr_time_t created_at;
    apr_time_t expires_at;       /* 0 = never */
    cr_key_status_e status;
    const char *hint;            /* masked key, for humans */
    apr_uint64_t id_fnv;         /* cr_rate_id_fnv(id) when the key cache
                                  * knows it, else 0 (not stored) */
} cr_key_record_t;

typedef enum {
    CR_KEY_USABLE = 0,
    CR_KEY_IS_REVOKED,
    CR_KEY_IS_EXPIRED
} cr_key_usability_e;

/* A fresh key "sk-" + CR_KEY_RANDOM_CHARS base62 (unbiased). */
apr_status_t cr_key_generate(apr_pool_t *p, const char **key);
/* A fresh record id "key_" + 16 base62. */
apr_status_t cr_key_new_id(apr_pool_t *p, const char **id);
/* Lower-case hex SHA-256 of the key (OpenSSL EVP). NULL on failure. */
const char *cr_key_hash(apr_pool_t *p, const char *key);

/* Is id "key_" followed by exactly 16 base62 characters? */
int cr_key_id_wellformed(const char *id);

/* Record <-> JSON.  parse returns NULL and sets *err on a bad record. */
cr_key_record_t *cr_key_record_parse(apr_pool_t *p, const char *json,
                                     apr_size_t len, const char **err);
const char *cr_key_record_to_json(apr_pool_t *p, const cr_key_record_t *rec,
                                  int pretty);

/* Comma separated globs ("gpt-*,claude-*") to an array; NULL if empty or
 * a glob is empty or longer than 255 characters. */
apr_array_header_t *cr_key_parse_models(apr_pool_t *p, const char *list);

/* Does glob match name as apr_fnmatch(glob, name, 0) says (without its
 * call for a literal or a literal followed by one '*')? */
int cr_key_glob_match(const char *glob, const char *name);

/* Does any of the record's globs match model (apr_fnmatch, no flags)? */
int cr_key_model_allowed(const cr_key_record_t *rec, const char *model);

/* "day", "month", "total" <-> cr_quota_period_e (-1 for anything else;
 * CR_QUOTA_UNSET names NULL). */
int cr_key_parse_quota_period(const char *s);
const char *cr_key_quota_period_name(cr_quota_period_e period);

cr_key_usability_e cr_key_usability(const cr_key_record_t *rec,
                                    apr_time_t now);

#endif /* CR_KEY_H */
