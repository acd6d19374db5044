/* Licensed under the Apache License, Version 2.0. */

/*
 * test_console.c: unit tests of the console's httpd-independent core
 * (cr_console_page): HTML escaping of everything a record, a user or a
 * request puts on a page, the one page that shows a key, the language
 * choice, the message catalogue, the CSRF token, the same-origin test and
 * the static assets.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_time.h>

#include <openssl/crypto.h>

#include "cr_console_page.h"
#include "cr_key.h"

static apr_pool_t *pool;

static void setup(void)
{
    apr_initialize();
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    apr_terminate();
}

/*
 * CRYPTO_memcmp is interposed (the core is linked statically into this
 * program, so its calls resolve here first): the test can then see that
 * the CSRF check compares through it and not with strcmp.  It still
 * compares correctly, so OpenSSL itself is unaffected.
 */
static int memcmp_calls;

int CRYPTO_memcmp(const void *in_a, const void *in_b, size_t len)
{
    const unsigned char *a = in_a, *b = in_b;
    unsigned char diff = 0;
    size_t i;

    memcmp_calls++;
    for (i = 0; i < len; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff != 0;
}

/* A name that tries both to open a tag and to break out of an attribute. */
#define HOSTILE "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;"
#define HOSTILE_ESCAPED "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&gt;" \
    "&lt;img src=x onerror=alert(2)&gt;&amp;amp;"

/* A fixed "now": 2026-11-27T12:00:00Z. */
#define NOW (apr_time_from_sec(1795780800))

static const unsigned char secret_a[CR_CONSOLE_SECRET_LEN] =
    "0123456789abcdef0123456789abcdef";
static const unsigned char secret_b[CR_CONSOLE_SECRET_LEN] =
    "0123456789abcdef0123456789abcdeF";

static int count_of(const char *haystack, const char *needle)
{
    int n = 0;
    const char *at = haystack;

    while ((at = strstr(at, needle)) != NULL) {
        n++;
        at += strlen(needle);
    }
    return n;
}

/* The value of the first attribute name="..." after from (NULL if none). */
static const char *attribute(const char *page, const char *from,
                             const char *name)
{
    const char *start = strstr(page, from);
    const char *open, *close;

    if (start == NULL) {
        return NULL;
    }
    open = strstr(start, apr_pstrcat(pool, name, "=\"", NULL));
    if (open == NULL) {
        return NULL;
    }
    open += strlen(name) + 2;
    close = strchr(open, '"');
    if (close == NULL) {
        return NULL;
    }
    return apr_pstrndup(pool, open, close - open);
}

static cr_key_record_t *make_record(const char *id, const char *name,
                                    const char *models)
{
    cr_key_record_t *rec = apr_pcalloc(pool, sizeof(*rec));

    rec->id = id;
    rec->name = name;
    rec->models = cr_key_parse_models(pool, models);
    rec->rpm = 60;
    rec->tpm = CR_KEY_LIMIT_UNSET;
    rec->quota = CR_KEY_LIMIT_UNSET;
    rec->quota_period = CR_QUOTA_UNSET;
    rec->created_at = NOW - apr_time_from_sec(3600);
    rec->expires_at = 0;
    rec->status = CR_KEY_ACTIVE;
    rec->hint = "sk-ab...c66a";
    return rec;
}

static cr_console_ctx_t make_ctx(cr_console_lang_e lang)
{
    cr_console_ctx_t ctx;

    ctx.lang = lang;
    ctx.self = "/console";
    ctx.user = "alice";
    ctx.csrf = cr_console_csrf_token(pool, secret_a, sizeof(secret_a),
                                     "alice");
    ctx.now = NOW;
    ctx.default_tpm = 0;
    return ctx;
}

/* A page a browser would run nothing from: no raw hostile markup. */
static void assert_no_hostile_markup(const char *page)
{
    ck_assert_ptr_nonnull(page);
    ck_assert_ptr_null(strstr(page, HOSTILE));
    ck_assert_ptr_null(strstr(page, "<script>alert"));
    ck_assert_ptr_null(strstr(page, "<img"));
    ck_assert_ptr_null(strstr(page, "\"'>"));
}

/* ------------------------------------------------------------------ */

START_TEST(escape_html_replaces_all_five)
{
    ck_assert_str_eq(cr_console_escape_html(pool, HOSTILE), HOSTILE_ESCAPED);
    ck_assert_str_eq(cr_console_escape_html(pool, "a&b<c>d\"e'f"),
                     "a&amp;b&lt;c&gt;d&#34;e&#39;f");
    ck_assert_str_eq(cr_console_escape_html(pool, "&&"), "&amp;&amp;");
    ck_assert_str_eq(cr_console_escape_html(pool, "plain ci-bot 新增"),
                     "plain ci-bot 新增");
    ck_assert_str_eq(cr_console_escape_html(pool, ""), "");
    ck_assert_str_eq(cr_console_escape_html(pool, NULL), "");
}
END_TEST

/* The cell of a row (by its class) as text, NULL if none. */
static const char *row_cell(const char *page, const char *id,
                            const char *cls)
{
    const char *row = strstr(page, apr_pstrcat(pool, "<tr data-id=\"", id,
                                               NULL));
    const char *cell, *end;

    if (row == NULL) {
        return NULL;
    }
    cell = strstr(row, apr_pstrcat(pool, "class=\"", cls, "\">", NULL));
    if (cell == NULL) {
        return NULL;
    }
    cell = strchr(cell, '>') + 1;
    end = strstr(cell, "</td>");
    return end ? apr_pstrndup(pool, cell, end - cell) : NULL;
}

START_TEST(parse_limit_cases)
{
    static const struct {
        const char *in;
        int ok;
        apr_int64_t value;
    } cases[] = {
        {"", 1, CR_KEY_LIMIT_UNSET},
        {"   ", 1, CR_KEY_LIMIT_UNSET},
        {"0", 1, 0},
        {"5000", 1, 5000},
        {" 42 ", 1, 42},
        {"007", 1, 7},
        {"1000000000000", 1, APR_INT64_C(1000000000000)},
        {"1000000000001", 0, 0},
        {"99999999999999999999999999", 0, 0},
        {"-1", 0, 0},
        {"+1", 0, 0},
        {"1.5", 0, 0},
        {"1e3", 0, 0},
        {"0x10", 0, 0},
        {"1 000", 0, 0},
        {"ten", 0, 0},
        {"12abc", 0, 0},
        {"\"><script>", 0, 0},
    };
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        apr_int64_t v = -12345;
        int ok = cr_console_parse_limit(cases[i].in, &v);

        ck_assert_msg(ok == cases[i].ok, "parse_limit(\"%s\")", cases[i].in);
        if (ok) {
            ck_assert_msg(v == cases[i].value, "parse_limit(\"%s\") = %"
                          APR_INT64_T_FMT, cases[i].in, v);
        }
    }
    {
        apr_int64_t v = 0;
        ck_assert_int_eq(cr_console_parse_limit(NULL, &v), 1);
        ck_assert(v == CR_KEY_LIMIT_UNSET);
    }
}
END_TEST

START_TEST(parse_period_cases)
{
    cr_quota_period_e period = CR_QUOTA_DAY;

    ck_assert_int_eq(cr_console_parse_period("", &period), 1);
    ck_assert_int_eq(period, CR_QUOTA_UNSET);
    ck_assert_int_eq(cr_console_parse_period(NULL, &period), 1);
    ck_assert_int_eq(period, CR_QUOTA_UNSET);
    ck_assert_int_eq(cr_console_parse_period("day", &period), 1);
    ck_assert_int_eq(period, CR_QUOTA_DAY);
    ck_assert_int_eq(cr_console_parse_period("month", &period), 1);
    ck_assert_int_eq(period, CR_QUOTA_MONTH);
    ck_assert_int_eq(cr_console_parse_period("total", &period), 1);
    ck_assert_int_eq(period, CR_QUOTA_TOTAL);
    ck_assert_int_eq(cr_console_parse_period("week", &period), 0);
    ck_assert_int_eq(cr_console_parse_period("Day", &period), 0);
    ck_assert_int_eq(cr_console_parse_period("default", &period), 0);
    ck_assert_int_eq(cr_console_parse_period("<b>", &period), 0);
}
END_TEST

START_TEST(list_shows_tpm_quota_and_used_tokens)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    apr_array_header_t *records = apr_array_make(pool, 4, sizeof(void *));
    cr_key_record_t *set = make_record("key_AAAAAAAAAAAAAAAA", "set", "*");
    cr_key_record_t *dflt = make_record("key_BBBBBBBBBBBBBBBB", "dflt", "*");
    cr_key_record_t *zero = make_record("key_CCCCCCCCCCCCCCCC", "zero", "*");
    cr_key_record_t *full = make_record("key_DDDDDDDDDDDDDDDD", "full", "*");
    apr_int64_t used[4] = {1234, 0, 77, 600};
    const char *page, *cell;

    set->tpm = 5000;
    set->quota = 100000;
    set->quota_period = CR_QUOTA_DAY;
    zero->tpm = 0;
    zero->quota = 0;
    zero->quota_period = CR_QUOTA_TOTAL;
    full->quota = 500;
    full->quota_period = CR_QUOTA_TOTAL;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = set;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = dflt;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = zero;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = full;
    ctx.default_tpm = 777;

    page = cr_console_render_list(pool, &ctx, records, used,
                                  CR_CONSOLE_NO_MSG, CR_CONSOLE_NO_MSG,
                                  NULL);
    ck_assert_ptr_nonnull(strstr(page, "<th scope=\"col\">Tokens per minute"
                                 "</th><th scope=\"col\">Token quota</th>"
                                 "<th scope=\"col\">Tokens used</th>"));
    /* The key's own limits, as numbers. */
    ck_assert_str_eq(row_cell(page, set->id, "tpm"),
                     "<data class=\"tpm\" value=\"5000\">5,000</data>");
    ck_assert_str_eq(row_cell(page, set->id, "quota"),
                     "<data class=\"quota\" value=\"100000\">100,000</data>"
                     " <span class=\"period\">per day (UTC)</span>");
    cell = row_cell(page, set->id, "used");
    ck_assert_ptr_nonnull(strstr(cell, "<data class=\"used\" "
                                 "value=\"1234\">1,234</data>"));
    ck_assert_ptr_nonnull(strstr(cell, "today"));
    ck_assert_ptr_nonnull(strstr(cell, "<span class=\"share\">1%</span>"));
    /* None set: the server's default tpm, no quota, counted by month. */
    ck_assert_str_eq(row_cell(page, dflt->id, "tpm"),
                     "<span class=\"default\">Default <data class=\"tpm\" "
                     "value=\"777\">777</data></span>");
    ck_assert_str_eq(row_cell(page, dflt->id, "quota"), "No limit");
    ck_assert_str_eq(row_cell(page, dflt->id, "used"),
                     "<data class=\"used\" value=\"0\">0</data> "
                     "<span class=\"period\">this month</span>");
    /* 0: no limit, whatever the default. */
    ck_assert_str_eq(row_cell(page, zero->id, "tpm"), "No limit");
    ck_assert_str_eq(row_cell(page, zero->id, "quota"), "No limit");
    ck_assert_ptr_nonnull(strstr(row_cell(page, zero->id, "used"),
                                 "in total"));
    /* A quota used up. */
    ck_assert_ptr_nonnull(strstr(row_cell(page, full->id, "used"),
                                 "<span class=\"share full\">100%</span>"));

    /* Without a server default: "No limit"; without counts: a dash. */
    ctx.default_tpm = 0;
    ctx.lang = CR_CONSOLE_ZH;
    page = cr_console_render_list(pool, &ctx, records, NULL,
                                  CR_CONSOLE_NO_MSG, CR_CONSOLE_NO_MSG,
                                  NULL);
    ck_assert_str_eq(row_cell(page, dflt->id, "tpm"), "不限");
    ck_assert_str_eq(row_cell(page, dflt->id, "used"), "—");
    ck_assert_ptr_nonnull(strstr(row_cell(page, set->id, "quota"),
                                 "每天（UTC）"));
}
END_TEST

START_TEST(create_form_has_token_fields)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    cr_console_form_t form = {"n", "*", "", "", "12", "3400", "total",
                              "quota"};
    const char *page;

    page = cr_console_render_list(pool, &ctx, NULL, NULL, CR_CONSOLE_NO_MSG,
                                  CR_CONSOLE_NO_MSG, NULL);
    ck_assert_ptr_nonnull(strstr(page, "<input name=\"tpm\" type=\"number\" "
                                 "min=\"0\" max=\"1000000000000\" "
                                 "step=\"1\""));
    ck_assert_ptr_nonnull(strstr(page, "<input name=\"quota\" "
                                 "type=\"number\" min=\"0\""));
    /* A fresh form counts the quota by month. */
    ck_assert_ptr_nonnull(strstr(page, "<select name=\"quota_period\">"
                                 "<option value=\"month\" selected>"));
    ck_assert_ptr_null(strstr(page, "aria-invalid"));

    /* A refused post keeps the values, and marks the field at fault. */
    page = cr_console_render_list(pool, &ctx, NULL, NULL, CR_CONSOLE_NO_MSG,
                                  CR_MSG_ERR_QUOTA, &form);
    ck_assert_str_eq(attribute(page, "name=\"tpm\"", "value"), "12");
    ck_assert_str_eq(attribute(page, "name=\"quota\"", "value"), "3400");
    ck_assert_ptr_nonnull(strstr(page, "<option value=\"total\" selected>"));
    ck_assert_ptr_nonnull(strstr(page, "value=\"3400\" aria-invalid=\"true\""
                                 " aria-describedby=\"error-quota\">"));
    ck_assert_ptr_nonnull(strstr(page, "<small class=\"field-error\" "
                                 "id=\"error-quota\">The token quota must"));
    ck_assert_int_eq(count_of(page, "aria-invalid"), 1);
}
END_TEST

START_TEST(created_view_shows_token_limits)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    cr_key_record_t *rec = make_record("key_AAAAbbbbCCCCdddd", "n", "*");
    const char *page;

    rec->tpm = 9000;
    rec->quota = 250000;
    rec->quota_period = CR_QUOTA_MONTH;
    page = cr_console_render_created(pool, &ctx, rec,
                                     "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_ptr_nonnull(strstr(page, "<span id=\"new-key-tpm\"><data "
                                 "class=\"tpm\" value=\"9000\">9,000</data>"
                                 "</span>"));
    ck_assert_ptr_nonnull(strstr(page, "<span id=\"new-key-quota\"><data "
                                 "class=\"quota\" value=\"250000\">250,000"
                                 "</data> <span class=\"period\">per month "
                                 "(UTC)</span></span>"));
    /* Groups of three, from the integer. */
    rec->tpm = APR_INT64_C(1000000000000);
    rec->quota = 999;
    page = cr_console_render_created(pool, &ctx, rec,
                                     "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_ptr_nonnull(strstr(page, "value=\"1000000000000\">"
                                 "1,000,000,000,000</data>"));
    ck_assert_ptr_nonnull(strstr(page, "value=\"999\">999</data>"));
    rec->tpm = 1000;
    rec->quota = 12345678;
    page = cr_console_render_created(pool, &ctx, rec,
                                     "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_ptr_nonnull(strstr(page, "value=\"1000\">1,000</data>"));
    ck_assert_ptr_nonnull(strstr(page, "value=\"12345678\">12,345,678</data>"));
}
END_TEST

START_TEST(list_escapes_every_record_field)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    apr_array_header_t *records = apr_array_make(pool, 1, sizeof(void *));
    cr_key_record_t *rec = make_record("key_" "AAAAbbbbCCCCdddd", HOSTILE,
                                       "gpt-*");
    const char *page, *confirm;

    /* Every free-text field of the record carries the hostile text. */
    APR_ARRAY_PUSH(rec->models, const char *) = HOSTILE;
    rec->hint = HOSTILE;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = rec;

    page = cr_console_render_list(pool, &ctx, records, NULL, CR_CONSOLE_NO_MSG,
                                  CR_CONSOLE_NO_MSG, NULL);
    assert_no_hostile_markup(page);
    /* name, hint and model chip, plus the revoke confirmation text. */
    ck_assert_int_ge(count_of(page, HOSTILE_ESCAPED), 4);

    /* The confirm() text stays inside its attribute, whole. */
    confirm = attribute(page, "<form", "data-confirm");
    ck_assert_ptr_nonnull(confirm);
    ck_assert_ptr_nonnull(strstr(confirm, HOSTILE_ESCAPED));
    ck_assert_ptr_nonnull(strstr(confirm, "key_AAAAbbbbCCCCdddd"));
    ck_assert_ptr_nonnull(strstr(confirm, "Revoke this key?"));
}
END_TEST

START_TEST(list_escapes_hostile_id_user_self_and_form)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_ZH);
    apr_array_header_t *records = apr_array_make(pool, 1, sizeof(void *));
    cr_console_form_t form;
    const char *page;

    /* An id never is like this, but a corrupt store must not become XSS. */
    APR_ARRAY_PUSH(records, cr_key_record_t *) =
        make_record(HOSTILE, "ok", "*");
    ctx.user = HOSTILE;
    ctx.self = "/con\"sole";
    form.name = HOSTILE;
    form.models = HOSTILE;
    form.rpm = HOSTILE;
    form.expires = HOSTILE;
    form.tpm = HOSTILE;
    form.quota = HOSTILE;
    form.quota_period = HOSTILE;
    form.invalid = "tpm";

    page = cr_console_render_list(pool, &ctx, records, NULL, CR_CONSOLE_NO_MSG,
                                  CR_MSG_ERR_NAME, &form);
    assert_no_hostile_markup(page);
    ck_assert_ptr_null(strstr(page, "/con\"sole"));
    ck_assert_ptr_nonnull(strstr(page, "href=\"/con&#34;sole?lang=en\""));
    /* id in data-id, the <code> cell and the hidden input; user; 5 form
     * inputs; and the id in the confirm text. */
    ck_assert_int_ge(count_of(page, HOSTILE_ESCAPED), 10);
    ck_assert_str_eq(attribute(page, "name=\"tpm\"", "value"),
                     HOSTILE_ESCAPED);
    ck_assert_str_eq(attribute(page, "name=\"quota\"", "value"),
                     HOSTILE_ESCAPED);
    /* The field the error is about says so. */
    ck_assert_ptr_nonnull(strstr(page, "aria-describedby=\"error-tpm\""));
    ck_assert_ptr_nonnull(strstr(page, "id=\"error-tpm\""));
    ck_assert_str_eq(attribute(page, "name=\"name\"", "value"),
                     HOSTILE_ESCAPED);
    ck_assert_str_eq(attribute(page, "name=\"models\"", "value"),
                     HOSTILE_ESCAPED);
    ck_assert_str_eq(attribute(page, "name=\"rpm\"", "value"),
                     HOSTILE_ESCAPED);
    ck_assert_str_eq(attribute(page, "<input type=\"hidden\" name=\"id\"",
                               "value"), HOSTILE_ESCAPED);
    /* No option is selected by a value that is none of them. */
    ck_assert_ptr_null(strstr(page, " selected>"));
}
END_TEST

START_TEST(created_escapes_and_shows_key_once_in_its_box)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    cr_key_record_t *rec = make_record("key_AAAAbbbbCCCCdddd", HOSTILE,
                                       "gpt-*");
    const char *key;
    const char *page;

    ck_assert_int_eq(cr_key_generate(pool, &key), APR_SUCCESS);
    APR_ARRAY_PUSH(rec->models, const char *) = HOSTILE;
    page = cr_console_render_created(pool, &ctx, rec, key);
    assert_no_hostile_markup(page);
    ck_assert_int_ge(count_of(page, HOSTILE_ESCAPED), 2);

    ck_assert_int_eq(count_of(page, key), 1);
    ck_assert_str_eq(attribute(page, "id=\"new-key\"", "value"), key);
    ck_assert_ptr_nonnull(strstr(page, "This is the only time this key"));
    ck_assert_ptr_nonnull(strstr(page, "id=\"copy-key\""));
}
END_TEST

START_TEST(created_escapes_a_hostile_key)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    cr_key_record_t *rec = make_record("key_AAAAbbbbCCCCdddd", "n", "*");
    const char *page = cr_console_render_created(pool, &ctx, rec, HOSTILE);

    assert_no_hostile_markup(page);
    ck_assert_str_eq(attribute(page, "id=\"new-key\"", "value"),
                     HOSTILE_ESCAPED);
}
END_TEST

START_TEST(confirm_revoke_escapes_and_posts_confirmed)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    cr_key_record_t *rec = make_record("key_AAAAbbbbCCCCdddd", HOSTILE,
                                       "gpt-*");
    const char *page;

    APR_ARRAY_PUSH(rec->models, const char *) = HOSTILE;
    page = cr_console_render_confirm_revoke(pool, &ctx, rec);
    assert_no_hostile_markup(page);
    ck_assert_int_ge(count_of(page, HOSTILE_ESCAPED), 2);
    ck_assert_str_eq(attribute(page, "name=\"confirm\"", "value"), "1");
    ck_assert_str_eq(attribute(page, "name=\"id\"", "value"),
                     "key_AAAAbbbbCCCCdddd");
    ck_assert_str_eq(attribute(page, "name=\"action\"", "value"), "revoke");
    ck_assert_str_eq(attribute(page, "name=\"csrf\"", "value"), ctx.csrf);
    /* Already the confirmation: no second confirm() in the way. */
    ck_assert_ptr_null(strstr(page, "data-confirm"));
    ck_assert_ptr_nonnull(strstr(page, "Revoke this key?"));
}
END_TEST

START_TEST(no_other_page_shows_a_key)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    apr_array_header_t *records = apr_array_make(pool, 2, sizeof(void *));
    cr_key_record_t *rec = make_record("key_AAAAbbbbCCCCdddd", "ci-bot",
                                       "*");
    const char *key, *hash, *pages[5];
    cr_console_form_t form = {"ci-bot", "*", "", "", "", "", "", NULL};
    int i;

    ck_assert_int_eq(cr_key_generate(pool, &key), APR_SUCCESS);
    hash = cr_key_hash(pool, key);
    ck_assert_ptr_nonnull(hash);
    /* The hint is derived from the key, as the store makes it. */
    rec->hint = apr_psprintf(pool, "%.5s...%s", key, key + strlen(key) - 4);
    APR_ARRAY_PUSH(records, cr_key_record_t *) = rec;

    pages[0] = cr_console_render_list(pool, &ctx, records, NULL,
                                      CR_MSG_REVOKED_NOTICE,
                                      CR_CONSOLE_NO_MSG, NULL);
    pages[1] = cr_console_render_list(pool, &ctx, records, NULL, CR_CONSOLE_NO_MSG,
                                      CR_MSG_ERR_CREATE, &form);
    pages[2] = cr_console_render_confirm_revoke(pool, &ctx, rec);
    pages[3] = cr_console_render_message(pool, &ctx, CR_MSG_ERROR_TITLE,
                                         CR_MSG_ERR_STORE);
    pages[4] = cr_console_render_created(pool, &ctx, rec, key);
    for (i = 0; i < 5; i++) {
        ck_assert_ptr_nonnull(pages[i]);
        ck_assert_ptr_null(strstr(pages[i], hash));
    }
    for (i = 0; i < 4; i++) {
        /* Neither the key nor any long piece of it. */
        ck_assert_ptr_null(strstr(pages[i], key));
        ck_assert_ptr_null(strstr(pages[i],
                                  apr_pstrndup(pool, key + 8, 24)));
    }
    ck_assert_ptr_nonnull(strstr(pages[4], key));
    /* The masked hint is what the list shows instead. */
    ck_assert_ptr_nonnull(strstr(pages[0], rec->hint));
}
END_TEST

START_TEST(list_order_status_and_revoke_forms)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    apr_array_header_t *records = apr_array_make(pool, 3, sizeof(void *));
    cr_key_record_t *oldest = make_record("key_0000000000000001", "oldest",
                                          "*");
    cr_key_record_t *revoked = make_record("key_0000000000000002", "gone",
                                           "gpt-*,claude-*");
    cr_key_record_t *newest = make_record("key_0000000000000003", "newest",
                                          "gpt-*");
    const char *page, *a, *b, *c;

    revoked->status = CR_KEY_REVOKED;
    newest->rpm = 0;
    newest->expires_at = NOW + apr_time_from_sec(86400);
    oldest->rpm = CR_KEY_RPM_UNSET;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = oldest;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = revoked;
    APR_ARRAY_PUSH(records, cr_key_record_t *) = newest;

    page = cr_console_render_list(pool, &ctx, records, NULL,
                                  CR_MSG_REVOKED_NOTICE, CR_CONSOLE_NO_MSG,
                                  NULL);
    a = strstr(page, "data-id=\"key_0000000000000003\"");
    b = strstr(page, "data-id=\"key_0000000000000002\"");
    c = strstr(page, "data-id=\"key_0000000000000001\"");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert(a < b && b < c);
    /* Revoke forms for the two active keys only, each with the token. */
    ck_assert_int_eq(count_of(page, "value=\"revoke\""), 2);
    ck_assert_ptr_null(strstr(page, "name=\"id\" value=\"key_0000000000000002\""));
    ck_assert_int_eq(count_of(page, ctx.csrf), 3);      /* + create form */
    ck_assert_int_eq(count_of(page, "badge active"), 2);
    ck_assert_int_eq(count_of(page, "badge revoked"), 1);
    ck_assert_ptr_nonnull(strstr(page, "No limit"));
    ck_assert_ptr_nonnull(strstr(page, "Server default"));
    ck_assert_ptr_nonnull(strstr(page, "All models"));
    ck_assert_ptr_nonnull(strstr(page, "claude-*"));
    ck_assert_ptr_nonnull(strstr(page, "The key was revoked."));
    ck_assert_ptr_nonnull(strstr(page, "role=\"status\""));
    ck_assert_ptr_null(strstr(page, "No keys yet."));
    /* The create form is closed when no form values are given. */
    ck_assert_ptr_nonnull(strstr(page, "<details class=\"create\" id=\"new\">"));
}
END_TEST

START_TEST(list_expired_key_and_empty_list)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    apr_array_header_t *records = apr_array_make(pool, 1, sizeof(void *));
    cr_key_record_t *rec = make_record("key_0000000000000001", "", "*");
    cr_console_form_t form = {"", "*", "", "+30d", "", "", "", NULL};
    const char *page;

    rec->expires_at = NOW - apr_time_from_sec(1);
    APR_ARRAY_PUSH(records, cr_key_record_t *) = rec;
    page = cr_console_render_list(pool, &ctx, records, NULL, CR_CONSOLE_NO_MSG,
                                  CR_CONSOLE_NO_MSG, NULL);
    ck_assert_int_eq(count_of(page, "badge expired"), 1);
    ck_assert_ptr_nonnull(strstr(page, "class=\"inactive\""));

    page = cr_console_render_list(pool, &ctx, NULL, NULL, CR_CONSOLE_NO_MSG,
                                  CR_MSG_ERR_RPM, &form);
    ck_assert_ptr_nonnull(strstr(page, "No keys yet."));
    ck_assert_ptr_nonnull(strstr(page, "role=\"alert\""));
    ck_assert_ptr_nonnull(strstr(page, "Requests per minute must be"));
    ck_assert_ptr_nonnull(strstr(page, "<details class=\"create\" id=\"new\" open>"));
    ck_assert_ptr_nonnull(strstr(page, "<option value=\"+30d\" selected>"));
    /* The expiry, and the quota period's default. */
    ck_assert_ptr_nonnull(strstr(page, "<option value=\"month\" selected>"));
    ck_assert_int_eq(count_of(page, " selected>"), 2);
}
END_TEST

START_TEST(pages_have_no_inline_script_or_style)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_ZH);
    apr_array_header_t *records = apr_array_make(pool, 1, sizeof(void *));
    cr_key_record_t *rec = make_record("key_0000000000000001", "n", "*");
    const char *pages[4];
    int i;

    APR_ARRAY_PUSH(records, cr_key_record_t *) = rec;
    pages[0] = cr_console_render_list(pool, &ctx, records, NULL, CR_CONSOLE_NO_MSG,
                                      CR_CONSOLE_NO_MSG, NULL);
    pages[1] = cr_console_render_created(pool, &ctx, rec,
                                         "sk-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL");
    pages[2] = cr_console_render_confirm_revoke(pool, &ctx, rec);
    pages[3] = cr_console_render_message(pool, &ctx,
                                         CR_MSG_ERR_FORBIDDEN_TITLE,
                                         CR_MSG_ERR_FORBIDDEN);
    for (i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(strstr(pages[i], "<html lang=\"zh-CN\">"));
        ck_assert_ptr_null(strstr(pages[i], "<script>"));
        ck_assert_ptr_null(strstr(pages[i], "<style"));
        ck_assert_ptr_null(strstr(pages[i], " style=\""));
        ck_assert_ptr_null(strstr(pages[i], " onclick="));
        ck_assert_ptr_null(strstr(pages[i], "javascript:"));
        ck_assert_ptr_nonnull(strstr(pages[i],
                                     "<script src=\"/console?asset=app.js\""));
        ck_assert_ptr_nonnull(strstr(pages[i], "当前用户"));
    }
    ck_assert_ptr_nonnull(strstr(pages[0], "新增密钥"));
    ck_assert_ptr_nonnull(strstr(pages[3], "请求被拒绝"));
    ck_assert_ptr_nonnull(strstr(pages[3], "该表单来自其他站点"));
}
END_TEST

START_TEST(message_page_in_english)
{
    cr_console_ctx_t ctx = make_ctx(CR_CONSOLE_EN);
    const char *page;

    ctx.user = NULL;
    page = cr_console_render_message(pool, &ctx, CR_MSG_ERROR_TITLE,
                                     CR_MSG_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(page, "<html lang=\"en\">"));
    ck_assert_ptr_nonnull(strstr(page, "<title>Something went wrong · "
                                 "ClawdRouter console</title>"));
    ck_assert_ptr_nonnull(strstr(page, "There is no such key."));
    ck_assert_ptr_nonnull(strstr(page, "Back to keys"));
    ck_assert_ptr_null(strstr(page, "Signed in as"));
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(catalogue_complete_in_both_languages)
{
    int id, differ = 0;

    for (id = 0; id < CR_MSG__COUNT; id++) {
        const char *en = cr_console_msg(CR_CONSOLE_EN, (cr_console_msg_e)id);
        const char *zh = cr_console_msg(CR_CONSOLE_ZH, (cr_console_msg_e)id);

        ck_assert_msg(en != NULL && *en, "English message %d missing", id);
        ck_assert_msg(zh != NULL && *zh, "Chinese message %d missing", id);
        differ += strcmp(en, zh) != 0;
    }
    /* Only "ID" is the same in both. */
    ck_assert_int_eq(differ, CR_MSG__COUNT - 1);
    ck_assert_str_eq(cr_console_msg(CR_CONSOLE_ZH, CR_MSG_NEW_KEY),
                     "新增密钥");
    ck_assert_str_eq(cr_console_msg(CR_CONSOLE_EN, CR_MSG_NEW_KEY),
                     "New key");
    ck_assert_str_eq(cr_console_msg(CR_CONSOLE_EN, CR_MSG__COUNT), "");
    ck_assert_str_eq(cr_console_msg(CR_CONSOLE_EN, (cr_console_msg_e)-1), "");
    ck_assert_str_eq(cr_console_lang_code(CR_CONSOLE_ZH), "zh");
    ck_assert_str_eq(cr_console_lang_code(CR_CONSOLE_EN), "en");
}
END_TEST

START_TEST(lang_parse_cases)
{
    static const struct {
        const char *in;
        int ok;
        cr_console_lang_e lang;
    } cases[] = {
        {"zh", 1, CR_CONSOLE_ZH}, {"ZH", 1, CR_CONSOLE_ZH},
        {"zh-CN", 1, CR_CONSOLE_ZH}, {"zh_TW", 1, CR_CONSOLE_ZH},
        {"zh-Hant-TW", 1, CR_CONSOLE_ZH}, {"en", 1, CR_CONSOLE_EN},
        {"en-US", 1, CR_CONSOLE_EN}, {"En-gb", 1, CR_CONSOLE_EN},
        {"zhx", 0, 0}, {"english", 0, 0}, {"fr", 0, 0}, {"z", 0, 0},
        {"", 0, 0}, {"<script>", 0, 0}, {"e", 0, 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_console_lang_e lang = (cr_console_lang_e)7;
        int ok = cr_console_lang_parse(cases[i].in, &lang);

        ck_assert_msg(ok == cases[i].ok, "parse(\"%s\") gave %d",
                      cases[i].in, ok);
        if (ok) {
            ck_assert_msg(lang == cases[i].lang, "parse(\"%s\") language",
                          cases[i].in);
        }
    }
    ck_assert_int_eq(cr_console_lang_parse(NULL, NULL), 0);
}
END_TEST

START_TEST(choose_lang_cases)
{
    static const struct {
        const char *param, *cookie, *accept;
        cr_console_lang_e want;
    } cases[] = {
        {NULL, NULL, NULL, CR_CONSOLE_EN},
        {NULL, NULL, "", CR_CONSOLE_EN},
        {NULL, NULL, "zh", CR_CONSOLE_ZH},
        {NULL, NULL, "zh-CN", CR_CONSOLE_ZH},
        {NULL, NULL, "en-US", CR_CONSOLE_EN},
        {NULL, NULL, "zh-TW;q=0.5", CR_CONSOLE_ZH},
        {NULL, NULL, "zh-TW;q=0.5, en-US", CR_CONSOLE_EN},
        {NULL, NULL, "en-US;q=0.5, zh-TW", CR_CONSOLE_ZH},
        {NULL, NULL, "zh-CN,zh;q=0.9,en;q=0.8", CR_CONSOLE_ZH},
        {NULL, NULL, "en-US,en;q=0.9,zh-CN;q=0.8", CR_CONSOLE_EN},
        {NULL, NULL, "fr-FR, de;q=0.9, zh;q=0.3, en;q=0.2", CR_CONSOLE_ZH},
        {NULL, NULL, "fr-FR, de;q=0.9", CR_CONSOLE_EN},
        {NULL, NULL, "en;q=0.7, zh;q=0.700", CR_CONSOLE_EN},   /* tie */
        {NULL, NULL, "zh;q=0.7, en;q=0.7", CR_CONSOLE_ZH},     /* tie */
        {NULL, NULL, "zh;q=0, en;q=0", CR_CONSOLE_EN},
        {NULL, NULL, "en;q=0, zh;q=0.001", CR_CONSOLE_ZH},
        {NULL, NULL, "en;q=0.1, zh;q=2", CR_CONSOLE_EN},      /* bad q */
        {NULL, NULL, "en;q=0.1, zh;q=abc", CR_CONSOLE_EN},
        {NULL, NULL, "en;q=0.1, zh;q=", CR_CONSOLE_EN},
        {NULL, NULL, "en;q=0.1, zh ; q=0.9", CR_CONSOLE_ZH},
        {NULL, NULL, "  ZH-cn  ;Q=0.9 , EN;q=0.5", CR_CONSOLE_ZH},
        {NULL, NULL, "*", CR_CONSOLE_EN},
        {NULL, NULL, ",,;;q=1,,zhongwen", CR_CONSOLE_EN},
        {NULL, NULL, "garbage \x01\x7f;;==,", CR_CONSOLE_EN},
        {NULL, NULL, "x-zh, enx, zh-CN;q=0.4", CR_CONSOLE_ZH},
        /* The explicit choice wins over the header, the param over the
         * cookie; an unknown one is ignored. */
        {"zh", NULL, "en-US", CR_CONSOLE_ZH},
        {"en", "zh", "zh-CN", CR_CONSOLE_EN},
        {NULL, "zh", "en-US", CR_CONSOLE_ZH},
        {"fr", "zh", "en-US", CR_CONSOLE_ZH},
        {"fr", "de", "zh", CR_CONSOLE_ZH},
        {"", NULL, "zh", CR_CONSOLE_ZH},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_console_lang_e got = cr_console_choose_lang(cases[i].param,
                                                       cases[i].cookie,
                                                       cases[i].accept);
        ck_assert_msg(got == cases[i].want,
                      "choose(%s, %s, \"%s\") gave %s", cases[i].param,
                      cases[i].cookie, cases[i].accept,
                      cr_console_lang_code(got));
    }
}
END_TEST

START_TEST(choose_lang_long_header)
{
    /* A very long tag and many entries: no overflow, still a choice. */
    char *header = apr_pstrcat(pool, "en;q=0.2, ",
                               apr_psprintf(pool, "zh-%0*d;q=0.9", 500, 0),
                               NULL);
    int i;

    ck_assert_int_eq(cr_console_choose_lang(NULL, NULL, header),
                     CR_CONSOLE_EN);
    for (i = 0; i < 2000; i++) {
        header = apr_pstrcat(pool, header, ", fr;q=0.5", NULL);
    }
    header = apr_pstrcat(pool, header, ", zh;q=0.3", NULL);
    ck_assert_int_eq(cr_console_choose_lang(NULL, NULL, header),
                     CR_CONSOLE_ZH);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(csrf_token_shape_and_determinism)
{
    const char *t1 = cr_console_csrf_token(pool, secret_a, sizeof(secret_a),
                                           "alice");
    const char *t2 = cr_console_csrf_token(pool, secret_a, sizeof(secret_a),
                                           "alice");
    size_t i;

    ck_assert_ptr_nonnull(t1);
    ck_assert_ptr_nonnull(t2);
    ck_assert_uint_eq(strlen(t1), 64);
    for (i = 0; t1[i]; i++) {
        ck_assert_msg((t1[i] >= '0' && t1[i] <= '9')
                      || (t1[i] >= 'a' && t1[i] <= 'f'),
                      "token is not lower-case hex: %s", t1);
    }
    ck_assert_str_eq(t1, t2);
    /* Known answers, from `openssl dgst -sha256 -hmac KEY` over the
     * subject the header describes ("user:" + user, or "anonymous"). */
    ck_assert_str_eq(t1, "7cfd7689ca1fc0511c9da15d790db8bc"
                         "2d287b36ba9102c310001ce37a8676f9");
    ck_assert_str_eq(cr_console_csrf_token(pool, (const unsigned char *)"k",
                                           1, NULL),
                     "f8fd204a586e6bde8ac54d4d6ddb7056"
                     "67e3fb5aa0d2165f55e9b087f962b121");
}
END_TEST

START_TEST(csrf_token_differs_by_user_and_secret)
{
    const char *alice = cr_console_csrf_token(pool, secret_a,
                                              sizeof(secret_a), "alice");
    const char *bob = cr_console_csrf_token(pool, secret_a, sizeof(secret_a),
                                            "bob");
    const char *alice_b = cr_console_csrf_token(pool, secret_b,
                                                sizeof(secret_b), "alice");
    const char *anon = cr_console_csrf_token(pool, secret_a,
                                             sizeof(secret_a), NULL);
    const char *named_anon = cr_console_csrf_token(pool, secret_a,
                                                   sizeof(secret_a),
                                                   "anonymous");
    const char *empty = cr_console_csrf_token(pool, secret_a,
                                              sizeof(secret_a), "");
    const char *shorter = cr_console_csrf_token(pool, secret_a,
                                                sizeof(secret_a) - 1,
                                                "alice");

    ck_assert_str_ne(alice, bob);
    ck_assert_str_ne(alice, alice_b);
    ck_assert_str_ne(alice, shorter);
    ck_assert_str_ne(anon, named_anon);
    ck_assert_str_ne(anon, empty);
    ck_assert_str_ne(anon, alice);

    ck_assert_ptr_null(cr_console_csrf_token(pool, NULL, 32, "alice"));
    ck_assert_ptr_null(cr_console_csrf_token(pool, secret_a, 0, "alice"));
}
END_TEST

START_TEST(csrf_valid_accepts_own_refuses_others)
{
    const char *good = cr_console_csrf_token(pool, secret_a, sizeof(secret_a),
                                             "alice");
    char *tampered = apr_pstrdup(pool, good);
    char *upper = apr_pstrdup(pool, good);
    size_t i;

    tampered[10] = tampered[10] == 'a' ? 'b' : 'a';
    for (i = 0; upper[i]; i++) {
        if (upper[i] >= 'a' && upper[i] <= 'f') {
            upper[i] = (char)(upper[i] - 'a' + 'A');
        }
    }
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", good), 1);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "bob", good), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           NULL, good), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_b, sizeof(secret_b),
                                           "alice", good), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", tampered), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", upper), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice",
                                           apr_pstrndup(pool, good, 63)), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice",
                                           apr_pstrndup(pool, good, 32)), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice",
                                           apr_pstrcat(pool, good, "0",
                                                       NULL)), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", ""), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", NULL), 0);
    /* No secret: nothing is valid, not even an empty token. */
    ck_assert_int_eq(cr_console_csrf_valid(pool, NULL, 0, "alice", ""), 0);
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, 0, "alice",
                                           good), 0);
}
END_TEST

START_TEST(csrf_valid_compares_with_crypto_memcmp)
{
    const char *good = cr_console_csrf_token(pool, secret_a, sizeof(secret_a),
                                             "alice");
    char *tampered = apr_pstrdup(pool, good);

    tampered[63] = tampered[63] == '0' ? '1' : '0';
    memcmp_calls = 0;
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", good), 1);
    ck_assert_int_ge(memcmp_calls, 1);
    memcmp_calls = 0;
    ck_assert_int_eq(cr_console_csrf_valid(pool, secret_a, sizeof(secret_a),
                                           "alice", tampered), 0);
    ck_assert_int_ge(memcmp_calls, 1);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(same_origin_cases)
{
    static const struct {
        const char *url, *host;
        int want;
    } cases[] = {
        /* Origin headers */
        {"https://console.example.com", "console.example.com", 1},
        {"https://CONSOLE.Example.COM", "console.example.com", 1},
        {"http://127.0.0.1:8080", "127.0.0.1:8080", 1},
        {"http://127.0.0.1:8081", "127.0.0.1:8080", 0},
        {"http://127.0.0.1", "127.0.0.1:8080", 0},
        {"http://127.0.0.1:8080", "127.0.0.1", 0},
        {"http://[::1]:8080", "[::1]:8080", 1},
        {"http://[::1]:8081", "[::1]:8080", 0},
        {"https://example.com:443", "example.com", 1},
        {"https://example.com", "example.com:443", 1},
        {"http://example.com", "example.com:80", 1},
        {"https://example.com", "example.com:80", 0},
        {"https://evil.example", "console.example.com", 0},
        {"https://console.example.co", "console.example.com", 0},
        {"https://console.example.com.evil.example", "console.example.com", 0},
        {"https://evil-console.example.com", "console.example.com", 0},
        /* Referer headers */
        {"https://console.example.com/console?lang=zh", "console.example.com", 1},
        {"https://console.example.com?x", "console.example.com", 1},
        {"https://console.example.com#frag", "console.example.com", 1},
        {"http://127.0.0.1:8080/console", "127.0.0.1:8080", 1},
        {"https://evil.example/https://console.example.com",
         "console.example.com", 0},
        {"https://evil.example/?r=https://console.example.com/",
         "console.example.com", 0},
        {"https://console.example.com@evil.example/", "console.example.com", 0},
        {"https://user:pw@console.example.com/", "console.example.com", 0},
        /* No origin at all, or not one */
        {"null", "console.example.com", 0},
        {"", "console.example.com", 0},
        {"console.example.com", "console.example.com", 0},
        {"//console.example.com/", "console.example.com", 0},
        {"/console", "console.example.com", 0},
        {"://console.example.com", "console.example.com", 0},
        {"ht tp://console.example.com", "console.example.com", 0},
        {"https://", "console.example.com", 0},
        {"https:///console", "console.example.com", 0},
        {"https://console.example.com", "", 0},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = cr_console_same_origin(cases[i].url, cases[i].host);
        ck_assert_msg(got == cases[i].want, "same_origin(\"%s\", \"%s\") "
                      "gave %d", cases[i].url, cases[i].host, got);
    }
    ck_assert_int_eq(cr_console_same_origin(NULL, "console.example.com"), 0);
    ck_assert_int_eq(cr_console_same_origin("https://console.example.com",
                                            NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(assets_by_name)
{
    const char *type = NULL;
    const char *css, *js;

    css = cr_console_asset("app.css", &type);
    ck_assert_ptr_nonnull(css);
    ck_assert_str_eq(type, "text/css; charset=utf-8");
    ck_assert_uint_gt(strlen(css), 100);
    type = NULL;
    js = cr_console_asset("app.js", &type);
    ck_assert_ptr_nonnull(js);
    ck_assert_str_eq(type, "text/javascript; charset=utf-8");
    /* What the pages rely on app.js for. */
    ck_assert_ptr_nonnull(strstr(js, "copy-key"));
    ck_assert_ptr_nonnull(strstr(js, "data-confirm"));
    /* Served locally: nothing fetched from elsewhere. */
    ck_assert_ptr_null(strstr(css, "http://"));
    ck_assert_ptr_null(strstr(css, "https://"));
    ck_assert_ptr_null(strstr(js, "https://"));

    type = "unchanged";
    ck_assert_ptr_null(cr_console_asset("app.html", &type));
    ck_assert_ptr_null(cr_console_asset("../app.css", &type));
    ck_assert_ptr_null(cr_console_asset("APP.CSS", &type));
    ck_assert_ptr_null(cr_console_asset("", &type));
    ck_assert_ptr_null(cr_console_asset(NULL, &type));
    ck_assert_str_eq(type, "unchanged");
}
END_TEST

static Suite *console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *tc;

    tc = tcase_create("pages");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, escape_html_replaces_all_five);
    tcase_add_test(tc, list_escapes_every_record_field);
    tcase_add_test(tc, parse_limit_cases);
    tcase_add_test(tc, parse_period_cases);
    tcase_add_test(tc, list_shows_tpm_quota_and_used_tokens);
    tcase_add_test(tc, create_form_has_token_fields);
    tcase_add_test(tc, created_view_shows_token_limits);
    tcase_add_test(tc, list_escapes_hostile_id_user_self_and_form);
    tcase_add_test(tc, created_escapes_and_shows_key_once_in_its_box);
    tcase_add_test(tc, created_escapes_a_hostile_key);
    tcase_add_test(tc, confirm_revoke_escapes_and_posts_confirmed);
    tcase_add_test(tc, no_other_page_shows_a_key);
    tcase_add_test(tc, list_order_status_and_revoke_forms);
    tcase_add_test(tc, list_expired_key_and_empty_list);
    tcase_add_test(tc, pages_have_no_inline_script_or_style);
    tcase_add_test(tc, message_page_in_english);
    suite_add_tcase(s, tc);

    tc = tcase_create("language");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, catalogue_complete_in_both_languages);
    tcase_add_test(tc, lang_parse_cases);
    tcase_add_test(tc, choose_lang_cases);
    tcase_add_test(tc, choose_lang_long_header);
    suite_add_tcase(s, tc);

    tc = tcase_create("csrf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, csrf_token_shape_and_determinism);
    tcase_add_test(tc, csrf_token_differs_by_user_and_secret);
    tcase_add_test(tc, csrf_valid_accepts_own_refuses_others);
    tcase_add_test(tc, csrf_valid_compares_with_crypto_memcmp);
    suite_add_tcase(s, tc);

    tc = tcase_create("origin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, same_origin_cases);
    suite_add_tcase(s, tc);

    tc = tcase_create("assets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, assets_by_name);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(console_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
