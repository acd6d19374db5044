/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_console_page.h: the console's pages (HTML, CSS, JS, messages in
 * Chinese and English), httpd-independent.
 *
 * Everything that a request handler would otherwise build by hand lives
 * here so that the unit tests can check it without an httpd: the language
 * choice, HTML escaping, the CSRF token, the same-origin test of an Origin
 * or Referer header, the static assets and the pages themselves.  Every
 * string that comes from a user, a record or a request is escaped here;
 * callers pass raw text.
 */
#ifndef CR_CONSOLE_PAGE_H
#define CR_CONSOLE_PAGE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "cr_key.h"

typedef enum {
    CR_CONSOLE_EN = 0,
    CR_CONSOLE_ZH = 1
} cr_console_lang_e;

/* The catalogue's messages (cr_console_msg gives the text). */
typedef enum {
    CR_MSG_TITLE = 0,
    CR_MSG_KEYS,
    CR_MSG_KEYS_INTRO,
    CR_MSG_NEW_KEY,
    CR_MSG_NAME,
    CR_MSG_NAME_HINT,
    CR_MSG_MODELS,
    CR_MSG_MODELS_HINT,
    CR_MSG_RPM,
    CR_MSG_RPM_HINT,
    CR_MSG_EXPIRES,
    CR_MSG_NEVER,
    CR_MSG_DAYS_1,
    CR_MSG_DAYS_7,
    CR_MSG_DAYS_30,
    CR_MSG_DAYS_90,
    CR_MSG_DAYS_365,
    CR_MSG_CREATE,
    CR_MSG_CANCEL,
    CR_MSG_ID,
    CR_MSG_KEY,
    CR_MSG_CREATED,
    CR_MSG_STATUS,
    CR_MSG_ACTIONS,
    CR_MSG_ACTIVE,
    CR_MSG_REVOKED,
    CR_MSG_EXPIRED,
    CR_MSG_REVOKE,
    CR_MSG_RPM_DEFAULT,
    CR_MSG_RPM_UNLIMITED,
    CR_MSG_ALL_MODELS,
    CR_MSG_NO_KEYS,
    CR_MSG_CREATED_TITLE,
    CR_MSG_CREATED_WARNING,
    CR_MSG_COPY,
    CR_MSG_COPIED,
    CR_MSG_SELECTED,
    CR_MSG_BACK,
    CR_MSG_CONFIRM_REVOKE,
    CR_MSG_CONFIRM_REVOKE_TEXT,
    CR_MSG_REVOKED_NOTICE,
    CR_MSG_SIGNED_IN_AS,
    CR_MSG_ERR_NAME,
    CR_MSG_ERR_MODELS,
    CR_MSG_ERR_RPM,
    CR_MSG_ERR_EXPIRES,
    CR_MSG_ERR_CREATE,
    CR_MSG_ERR_REVOKE,
    CR_MSG_ERR_NOT_FOUND,
    CR_MSG_ERR_STORE,
    CR_MSG_ERR_FORBIDDEN_TITLE,
    CR_MSG_ERR_FORBIDDEN,
    CR_MSG_ERR_BAD_REQUEST,
    CR_MSG_ERROR_TITLE,
    CR_MSG_LANGUAGE,
    CR_MSG_KEY_LABEL,
    CR_MSG_ERR_HOST_TITLE,
    CR_MSG_ERR_HOST,
    CR_MSG_TPM,
    CR_MSG_TPM_HINT,
    CR_MSG_QUOTA,
    CR_MSG_QUOTA_HINT,
    CR_MSG_QUOTA_PERIOD,
    CR_MSG_PER_DAY,
    CR_MSG_PER_MONTH,
    CR_MSG_IN_TOTAL,
    CR_MSG_USED,
    CR_MSG_USED_TODAY,
    CR_MSG_USED_MONTH,
    CR_MSG_USED_TOTAL,
    CR_MSG_TPM_DEFAULT,
    CR_MSG_ERR_TPM,
    CR_MSG_ERR_QUOTA,
    CR_MSG_ERR_QUOTA_PERIOD,
    CR_MSG__COUNT
} cr_console_msg_e;

#define CR_CONSOLE_NO_MSG (-1)

/* A catalogue entry; never NULL for a valid id. */
const char *cr_console_msg(cr_console_lang_e lang, cr_console_msg_e id);

/* "zh" or "en". */
const char *cr_console_lang_code(cr_console_lang_e lang);

/* "zh..." or "en..." (case-insensitive) to a language; 0 if neither. */
int cr_console_lang_parse(const char *s, cr_console_lang_e *lang);

/* The page's language: an explicit choice (the switch's query parameter,
 * then its cookie) wins; else the Accept-Language entry with the highest
 * q-value among zh* and en* (the first on a tie); else English. Any of
 * the three may be NULL. */
cr_console_lang_e cr_console_choose_lang(const char *param,
                                         const char *cookie,
                                         const char *accept_language);

/* s with & < > " ' replaced by character references (NULL gives ""). */
const char *cr_console_escape_html(apr_pool_t *p, const char *s);

/* CSRF token: lower-case hex HMAC-SHA256 (OpenSSL) keyed by the server's
 * console secret over the authenticated user (NULL: anonymous).  A page
 * embeds it; a post must send it back.  NULL on failure. */
#define CR_CONSOLE_SECRET_LEN 32
const char *cr_console_csrf_token(apr_pool_t *p, const unsigned char *secret,
                                  apr_size_t secret_len, const char *user);
/* Does token match?  Constant time (CRYPTO_memcmp). */
int cr_console_csrf_valid(apr_pool_t *p, const unsigned char *secret,
                          apr_size_t secret_len, const char *user,
                          const char *token);

/* Is url (an Origin, "scheme://host[:port]", or a Referer, a full URL) on
 * the host the request was sent to (its Host header, "host[:port]")?
 * Compares host and port, case-insensitively; "null" and anything without
 * "scheme://" are not. */
int cr_console_same_origin(const char *url, const char *host);

/* A static asset by name ("app.css", "app.js"); NULL if unknown. */
const char *cr_console_asset(const char *name, const char **content_type);

/* What every page needs to know. */
typedef struct {
    cr_console_lang_e lang;
    const char *self;       /* the console's URL path, %-escaped, raw otherwise */
    const char *user;       /* the signed-in user, or NULL */
    const char *csrf;       /* the token for forms */
    apr_time_t now;
    apr_int64_t default_tpm; /* ClawdRouterDefaultTPM of the server, 0 = none */
} cr_console_ctx_t;

/* The create form's values, kept when a post is refused. */
typedef struct {
    const char *name;
    const char *models;
    const char *rpm;
    const char *expires;
    const char *tpm;
    const char *quota;
    const char *quota_period;
    const char *invalid;    /* the field an error is about, or NULL */
} cr_console_form_t;

/* The largest tpm or quota the console (like clawdrouter-keys) accepts. */
#define CR_CONSOLE_MAX_TOKENS APR_INT64_C(1000000000000)

/* A tpm or quota field: "" (or only spaces) is not set
 * (CR_KEY_LIMIT_UNSET), else a whole number from 0 to
 * CR_CONSOLE_MAX_TOKENS in decimal digits only (no sign, point, exponent
 * or spaces inside).  0 if the text is none of these. */
int cr_console_parse_limit(const char *s, apr_int64_t *value);

/* A quota period field: "" is not set (CR_QUOTA_UNSET), else "day",
 * "month" or "total".  0 if the text is none of these. */
int cr_console_parse_period(const char *s, cr_quota_period_e *period);

/* The period a key's quota and used tokens are counted in: the record's,
 * a calendar month when it sets none (as the gateway counts). */
cr_quota_period_e cr_console_key_period(const cr_key_record_t *rec);

/* The key list, with the create form (open when form is not NULL).
 * records is an array of cr_key_record_t *, oldest first (shown newest
 * first).  used, when not NULL, holds the tokens each record's key used in
 * its current period (cr_console_key_period), in the same order; NULL
 * shows "—".  notice and error are message ids or CR_CONSOLE_NO_MSG. */
const char *cr_console_render_list(apr_pool_t *p,
                                   const cr_console_ctx_t *ctx,
                                   const apr_array_header_t *records,
                                   const apr_int64_t *used,
                                   int notice, int error,
                                   const cr_console_form_t *form);

/* The one view that ever shows a key: right after it was created. */
const char *cr_console_render_created(apr_pool_t *p,
                                      const cr_console_ctx_t *ctx,
                                      const cr_key_record_t *rec,
                                      const char *key);

/* The confirmation step of a revoke, for browsers without JavaScript. */
const char *cr_console_render_confirm_revoke(apr_pool_t *p,
                                             const cr_console_ctx_t *ctx,
                                             const cr_key_record_t *rec);

/* A page with one message and a way back (errors). */
const char *cr_console_render_message(apr_pool_t *p,
                                      const cr_console_ctx_t *ctx,
                                      cr_console_msg_e title,
                                      cr_console_msg_e text);

#endif /* CR_CONSOLE_PAGE_H */
