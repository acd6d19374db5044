/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_key.c: API keys (generation, hashing) and their JSON records.
 */

#include <pthread.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_general.h>
#include <apr_fnmatch.h>
#include <openssl/evp.h>

#include "cr_key.h"
#include "cr_cred.h"
#include "cr_json.h"
#include "cr_time.h"

#define CR_KEY_ID_PREFIX      "key_"
#define CR_KEY_ID_CHARS       16
#define CR_KEY_MAX_GLOB_LEN   255
#define CR_KEY_MAX_NAME_LEN   256

static const char base62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* n base62 characters after prefix.  Bytes >= 248 (= 4 * 62) are thrown
 * away, so every character is equally likely (no modulo bias). */
static apr_status_t random_base62(apr_pool_t *p, const char *prefix,
                                  apr_size_t n, const char **out)
{
    apr_size_t plen = strlen(prefix), have = 0, i;
    unsigned char bytes[64];
    char *buf = apr_palloc(p, plen + n + 1);
    apr_status_t rv;

    memcpy(buf, prefix, plen);
    while (have < n) {
        rv = apr_generate_random_bytes(bytes, sizeof(bytes));
        if (rv != APR_SUCCESS) {
            return rv;
        }
        for (i = 0; i < sizeof(bytes) && have < n; i++) {
            if (bytes[i] < 248) {
                buf[plen + have++] = base62[bytes[i] % 62];
            }
        }
    }
    buf[plen + n] = '\0';
    memset(bytes, 0, sizeof(bytes));
    *out = buf;
    return APR_SUCCESS;
}

apr_status_t cr_key_generate(apr_pool_t *p, const char **key)
{
    return random_base62(p, CR_KEY_PREFIX, CR_KEY_RANDOM_CHARS, key);
}

apr_status_t cr_key_new_id(apr_pool_t *p, const char **id)
{
    return random_base62(p, CR_KEY_ID_PREFIX, CR_KEY_ID_CHARS, id);
}

/* SHA-256, fetched from the provider once per process: EVP_sha256()
 * makes EVP_Digest fetch it again on every call (about a third of the
 * hash's cost on a key).  A thread that loses the race to store it frees
 * its own. */
static const EVP_MD *sha256(void)
{
    static EVP_MD *cached;
    EVP_MD *md = __atomic_load_n(&cached, __ATOMIC_ACQUIRE), *expect = NULL;

    if (md) {
        return md;
    }
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!md) {
        return EVP_sha256();
    }
    if (!__atomic_compare_exchange_n(&cached, &expect, md, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        EVP_MD_free(md);
        md = expect;
    }
    return md;
}

/* One digest context per thread, made on the thread's first hash and
 * kept: EVP_Digest makes and frees a context (and the provider's state in
 * it) on every call, more than the compression of a key's one block
 * costs.  pthread frees it when the thread ends. */
static pthread_key_t md_ctx_key;
static pthread_once_t md_ctx_once = PTHREAD_ONCE_INIT;
static int md_ctx_key_made;

static void md_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void md_ctx_key_make(void)
{
    md_ctx_key_made = pthread_key_create(&md_ctx_key, md_ctx_free) == 0;
}

/* This thread's context, or NULL (then EVP_Digest is used). */
static EVP_MD_CTX *thread_md_ctx(void)
{
    EVP_MD_CTX *ctx;

    if (pthread_once(&md_ctx_once, md_ctx_key_make) != 0
        || !md_ctx_key_made) {
        return NULL;
    }
    ctx = pthread_getspecific(md_ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (ctx && pthread_setspecific(md_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            ctx = NULL;
        }
    }
    return ctx;
}

/* SHA-256 of len bytes: EVP_DigestInit_ex2 on this thread's context
 * (measured in docs/BENCHMARKS.md against EVP_Digest, SHA256() and
 * EVP_Q_digest, which fetch or allocate on every call). */
static int sha256_digest(const char *data, apr_size_t len,
                         unsigned char *md, unsigned int *mdlen)
{
    EVP_MD_CTX *ctx = thread_md_ctx();

    if (!ctx) {
        return EVP_Digest(data, len, md, mdlen, sha256(), NULL);
    }
    return EVP_DigestInit_ex2(ctx, sha256(), NULL)
           && EVP_DigestUpdate(ctx, data, len)
           && EVP_DigestFinal_ex(ctx, md, mdlen);
}

const char *cr_key_hash(apr_pool_t *p, const char *key)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char *out;

    if (key == NULL
        || !sha256_digest(key, strlen(key), md, &mdlen)
        || mdlen * 2 != CR_KEY_HASH_HEX_LEN) {
        return NULL;
    }
    out = apr_palloc(p, CR_KEY_HASH_HEX_LEN + 1);
    for (i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[CR_KEY_HASH_HEX_LEN] = '\0';
    return out;
}

int cr_key_id_wellformed(const char *id)
{
    apr_size_t i;

    if (id == NULL || strncmp(id, CR_KEY_ID_PREFIX, 4) != 0) {
        return 0;
    }
    for (i = 4; i < 4 + CR_KEY_ID_CHARS; i++) {
        if (!apr_isalnum(id[i]) || (unsigned char)id[i] >= 0x80) {
            return 0;
        }
    }
    return id[i] == '\0';
}

static int glob_ok(const char *glob)
{
    return glob != NULL && *glob != '\0'
           && strlen(glob) <= CR_KEY_MAX_GLOB_LEN;
}

apr_array_header_t *cr_key_parse_models(apr_pool_t *p, const char *list)
{
    apr_array_header_t *models;
    const char *start, *end;

    if (list == NULL) {
        return NULL;
    }
    models = apr_array_make(p, 4, sizeof(const char *));
    start = list;
    for (;;) {
        const char *glob, *a, *b;

        end = strchr(start, ',');
        if (end == NULL) {
            end = start + strlen(start);
        }
        /* Spaces around a glob ("gpt-*, claude-*") are not part of it. */
        a = start;
        b = end;
        while (a < b && *a == ' ') {
            a++;
        }
        while (b > a && b[-1] == ' ') {
            b--;
        }
        glob = apr_pstrmemdup(p, a, b - a);
        if (!glob_ok(glob)) {
            return NULL;
        }
        APR_ARRAY_PUSH(models, const char *) = glob;
        if (*end == '\0') {
            break;
        }
        start = end + 1;
    }
    return models;
}

int cr_key_glob_match(const char *glob, const char *name)
{
    /* The usual globs, "gpt-4o" and "gpt-*" (and "*"): no other special
     * character, so apr_fnmatch without flags compares the literal part
     * and '*' takes the rest, whatever it is. */
    apr_size_t n = strcspn(glob, "*?[\\");

    if (glob[n] == '\0') {
        return strcmp(glob, name) == 0;
    }
    if (glob[n] == '*' && glob[n + 1] == '\0') {
        return strncmp(glob, name, n) == 0;
    }
    return apr_fnmatch(glob, name, 0) == APR_SUCCESS;
}

int cr_key_model_allowed(const cr_key_record_t *rec, const char *model)
{
    int i;

    if (rec == NULL || rec->models == NULL || model == NULL) {
        return 0;
    }
    for (i = 0; i < rec->models->nelts; i++) {
        const char *glob = APR_ARRAY_IDX(rec->models, i, const char *);
        if (cr_key_glob_match(glob, model)) {
            return 1;
        }
    }
    return 0;
}

cr_key_usability_e cr_key_usability(const cr_key_record_t *rec,
                                    apr_time_t now)
{
    if (rec->status == CR_KEY_REVOKED) {
        return CR_KEY_IS_REVOKED;
    }
    if (rec->expires_at != 0 && now >= rec->expires_at) {
        return CR_KEY_IS_EXPIRED;
    }
    return CR_KEY_USABLE;
}

/* A required string member; NULL and *err set if absent or not a string. */
static const char *member_string(apr_pool_t *p, const cr_json_t *obj,
                                 const char *name, const char **err)
{
    cr_json_t *j = cr_json_get(p, obj, name);
    const char *s = j ? cr_json_string(p, j) : NULL;

    if (s == NULL) {
        *err = apr_psprintf(p, "\"%s\" is %s", name,
                            j ? "not a string" : "missing");
    }
    return s;
}

/* A required time member: RFC 3339 string, or null when nullable. */
static int member_time(apr_pool_t *p, const cr_json_t *obj, const char *name,
                       int nullable, apr_time_t *t, const char **err)
{
    cr_json_t *j = cr_json_get(p, obj, name);
    const char *s;

    if (j == NULL) {
        *err = apr_psprintf(p, "\"%s\" is missing", name);
        return 0;
    }
    if (nullable && cr_json_is_null(j)) {
        *t = 0;
        return 1;
    }
    s = cr_json_string(p, j);
    if (s == NULL || cr_time_parse_rfc3339(s, t) != APR_SUCCESS || *t <= 0) {
        *err = apr_psprintf(p, "\"%s\" is not an RFC 3339 time%s", name,
                            nullable ? " or null" : "");
        return 0;
    }
    return 1;
}

/* A token limit member: a non-negative integer, or null or absent (not
 * set; records made before the token limits have none). */
static int member_limit(apr_pool_t *p, cr_json_t *root, const char *name,
                        apr_int64_t *v, const char **err)
{
    cr_json_t *j = cr_json_get(p, root, name);

    if (j == NULL || cr_json_is_null(j)) {
        *v = CR_KEY_LIMIT_UNSET;
        return 1;
    }
    if (cr_json_type(j) != CR_JSON_INTEGER || cr_json_integer(j, v) != 0
        || *v < 0) {
        *err = apr_psprintf(p, "\"%s\" is not a non-negative integer or "
                            "null", name);
        return 0;
    }
    return 1;
}

cr_key_record_t *cr_key_record_parse(apr_pool_t *p, const char *json,
                                     apr_size_t len, const char **err)
{
    cr_key_record_t *rec;
    cr_json_t *root, *j;
    const char *status, *perr = NULL, *ignored;
    apr_size_t i, n;

    if (err == NULL) {
        err = &ignored;
    }
    *err = NULL;
    root = cr_json_parse(p, json, len, CR_JSON_REJECT_DUPLICATES, &perr);
    if (root == NULL) {
        *err = apr_psprintf(p, "not JSON: %s", perr ? perr : "parse error");
        return NULL;
    }
    if (cr_json_type(root) != CR_JSON_OBJECT) {
        *err = "not a JSON object";
        return NULL;
    }
    rec = apr_pcalloc(p, sizeof(*rec));

    if ((rec->id = member_string(p, root, "id", err)) == NULL) {
        return NULL;
    }
    if (!cr_key_id_wellformed(rec->id)) {
        *err = "\"id\" is not \"key_\" and 16 letters or digits";
        return NULL;
    }
    if ((rec->name = member_string(p, root, "name", err)) == NULL) {
        return NULL;
    }
    if (strlen(rec->name) > CR_KEY_MAX_NAME_LEN) {
        *err = "\"name\" is too long";
        return NULL;
    }

    j = cr_json_get(p, root, "models");
    if (j == NULL || cr_json_type(j) != CR_JSON_ARRAY
        || (n = cr_json_array_size(j)) == 0) {
        *err = "\"models\" is not a non-empty array";
        return NULL;
    }
    rec->models = apr_array_make(p, (int)n, sizeof(const char *));
    for (i = 0; i < n; i++) {
        cr_json_t *g = cr_json_array_get(p, j, i);
        const char *glob = g ? cr_json_string(p, g) : NULL;
        if (!glob_ok(glob)) {
            *err = "\"models\" holds something other than a glob";
            return NULL;
        }
        APR_ARRAY_PUSH(rec->models, const char *) = glob;
    }

    j = cr_json_get(p, root, "rpm");
    if (j == NULL) {
        *err = "\"rpm\" is missing";
        return NULL;
    }
    if (cr_json_is_null(j)) {
        rec->rpm = CR_KEY_RPM_UNSET;
    }
    else if (cr_json_type(j) != CR_JSON_INTEGER
             || cr_json_integer(j, &rec->rpm) != 0 || rec->rpm < 0) {
        *err = "\"rpm\" is not a non-negative integer or null";
        return NULL;
    }

    if (!member_limit(p, root, "tpm", &rec->tpm, err)
        || !member_limit(p, root, "quota", &rec->quota, err)) {
        return NULL;
    }
    j = cr_json_get(p, root, "quota_period");
    if (j == NULL || cr_json_is_null(j)) {
        rec->quota_period = CR_QUOTA_UNSET;
    }
    else {
        const char *name = cr_json_string(p, j);
        int period = name ? cr_key_parse_quota_period(name) : -1;
        if (period < 0) {
            *err = "\"quota_period\" is not \"day\", \"month\", "
                   "\"total\" or null";
            return NULL;
        }
        rec->quota_period = (cr_quota_period_e)period;
    }

    if (!member_time(p, root, "created_at", 0, &rec->created_at, err)
        || !member_time(p, root, "expires_at", 1, &rec->expires_at, err)) {
        return NULL;
    }

    if ((status = member_string(p, root, "status", err)) == NULL) {
        return NULL;
    }
    if (strcmp(status, "active") == 0) {
        rec->status = CR_KEY_ACTIVE;
    }
    else if (strcmp(status, "revoked") == 0) {
        rec->status = CR_KEY_REVOKED;
    }
    else {
        *err = "\"status\" is neither \"active\" nor \"revoked\"";
        return NULL;
    }

    /* The hint is for humans only; a record without one is still usable. */
    j = cr_json_get(p, root, "hint");
    if (j == NULL || cr_json_is_null(j)) {
        rec->hint = "";
    }
    else if ((rec->hint = cr_json_string(p, j)) == NULL) {
        *err = "\"hint\" is not a string";
        return NULL;
    }
    return rec;
}

int cr_key_parse_quota_period(const char *s)
{
    if (s == NULL) {
        return -1;
    }
    if (strcmp(s, "day") == 0) {
        return CR_QUOTA_DAY;
    }
    if (strcmp(s, "month") == 0) {
        return CR_QUOTA_MONTH;
    }
    if (strcmp(s, "total") == 0) {
        return CR_QUOTA_TOTAL;
    }
    return -1;
}

const char *cr_key_quota_period_name(cr_quota_period_e period)
{
    switch (period) {
    case CR_QUOTA_DAY:
        return "day";
    case CR_QUOTA_MONTH:
        return "month";
    case CR_QUOTA_TOTAL:
        return "total";
    default:
        return NULL;
    }
}

/* A token limit member: null or absent (records older than the token
 * limits) is not set. */
static int set_limit(cr_json_t *obj, const char *name, apr_int64_t v)
{
    return v < 0 ? cr_json_set_null(obj, name)
                 : cr_json_set_integer(obj, name, v);
}

const char *cr_key_record_to_json(apr_pool_t *p, const cr_key_record_t *rec,
                                  int pretty)
{
    cr_json_t *obj = cr_json_new_object(p);
    cr_json_t *models = cr_json_new_array(p);
    const char *created, *expires = NULL;
    int i, bad = 0;

    if (obj == NULL || models == NULL || rec->id == NULL
        || rec->models == NULL) {
        return NULL;
    }
    created = cr_time_format_rfc3339(p, rec->created_at);
    if (rec->expires_at != 0) {
        expires = cr_time_format_rfc3339(p, rec->expires_at);
        bad |= (expires == NULL);
    }
    for (i = 0; i < rec->models->nelts; i++) {
        bad |= cr_json_array_append_string(
                   models, APR_ARRAY_IDX(rec->models, i, const char *));
    }
    bad |= (created == NULL);
    bad |= cr_json_set_string(obj, "id", rec->id);
    bad |= cr_json_set_string(obj, "name", rec->name ? rec->name : "");
    bad |= cr_json_set(obj, "models", models);
    if (rec->rpm == CR_KEY_RPM_UNSET) {
        bad |= cr_json_set_null(obj, "rpm");
    }
    else {
        bad |= cr_json_set_integer(obj, "rpm", rec->rpm);
    }
    bad |= set_limit(obj, "tpm", rec->tpm);
    bad |= set_limit(obj, "quota", rec->quota);
    bad |= cr_json_set_string(obj, "quota_period",
                              cr_key_quota_period_name(rec->quota_period));
    bad |= cr_json_set_string(obj, "created_at", created);
    bad |= cr_json_set_string(obj, "expires_at", expires);
    bad |= cr_json_set_string(obj, "status", rec->status == CR_KEY_REVOKED
                                             ? "revoked" : "active");
    bad |= cr_json_set_string(obj, "hint", rec->hint ? rec->hint : "");
    if (bad) {
        return NULL;  /* e.g. a name that is not valid UTF-8 */
    }
    return cr_json_dump(p, obj, pretty ? CR_JSON_PRETTY : CR_JSON_COMPACT);
}
