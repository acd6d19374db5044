/* Licensed under the Apache License, Version 2.0. */

/*
 * clawdrouter-keys: manage the API keys of a mod_clawdrouter key store
 * (SPEC section 3), in the spirit of htdbm.
 *
 *   clawdrouter-keys --store TYPE:PATH COMMAND [ARGS]
 *
 * Exit status: 0 success, 1 failure, 2 usage error; every failure writes
 * exactly one line on stderr.  A key is printed once, by create, and never
 * stored or shown again.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_env.h>

#include "cr_config.h"
#include "cr_key.h"
#include "cr_store.h"
#include "cr_keystore.h"
#include "cr_keysql.h"
#include "cr_time.h"
#include "cr_json.h"

#define PROG "clawdrouter-keys"
#define STORE_ENV "CLAWDROUTER_KEY_STORE"
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_NAME_LEN 256
#define MAX_RPM APR_INT64_C(1000000000)
#define MAX_TOKENS APR_INT64_C(1000000000000)

typedef struct {
    const char *store;
    cr_keystore_t *ks;
    const char *command;
    const char *id;
    const char *name;
    const char *models;
    const char *rpm;
    const char *tpm;
    const char *quota;
    const char *quota_period;
    const char *expires;
    const char *from;
    int json;
} cli_args;

static void usage(FILE *out)
{
    fprintf(out,
"usage: " PROG " [--store STORE] COMMAND [ARGS]\n"
"\n"
"Manage the API keys of a mod_clawdrouter key store.  The store is a DBM\n"
"file TYPE:PATH (TYPE: sdbm, gdbm, db, ndbm or default) or an SQL\n"
"database pgsql:CONNINFO, sqlite3:PATH or mysql:PARAMS, from --store or\n"
"the " STORE_ENV " environment variable.\n"
"\n"
"commands:\n"
"  create [--name N] [--models G1,G2] [--rpm N] [--tpm N] [--quota N]\n"
"         [--quota-period day|month|total] [--expires T] [--json]\n"
"                       make a key and print it (shown this once)\n"
"  list [--json]        every key's record (never a key)\n"
"  show ID [--json]     one record\n"
"  update ID [--name N] [--models G1,G2] [--rpm N|default]\n"
"         [--tpm N|default] [--quota N|default]\n"
"         [--quota-period day|month|total|default]\n"
"         [--expires T|never] [--json]\n"
"                       change a record\n"
"  revoke ID [--json]   the key stops working at once\n"
"  init                 SQL store: create the table " CR_KEYSQL_TABLE "\n"
"                       if it is missing\n"
"  import --from TYPE:PATH\n"
"                       SQL store: copy every record of a DBM store\n"
"\n"
"T is an RFC 3339 time (2026-12-31T23:59:59Z) or +N with a unit s, m, h\n"
"or d (+30d).  Models are fnmatch globs; \"*\" means every model.\n"
"--tpm is tokens (input + output) per minute, --quota tokens per\n"
"--quota-period (a UTC day, a UTC month, or in total; default month);\n"
"0 is no limit, \"default\" the server's (ClawdRouterDefaultTPM).\n"
"\n"
"options:\n"
"  --store STORE        the key store\n"
"  -h, --help           this help\n"
"  --version            the version\n"
"\n"
"exit status: 0 success, 1 failure, 2 usage error.\n");
}

/* One line on stderr, then the exit status. */
static int fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(int status, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (status == EXIT_USAGE) {
        fputs(" (see " PROG " --help)", stderr);
    }
    fputc('\n', stderr);
    return status;
}

/* A string fit for one line of a terminal: control characters become '?'. */
static const char *printable(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrdup(p, s ? s : "");
    char *c;

    for (c = out; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '?';
        }
    }
    return out;
}

/* Options: NAME, whether it takes a value, and where it is stored. */
typedef struct {
    const char *name;
    const char **slot;      /* for options with a value */
    int *flag;              /* for flags */
    const char *commands;   /* commands it applies to, " "-separated; NULL = all */
} option_def;

static int applies(const option_def *o, const char *command)
{
    const char *c;
    apr_size_t n;

    if (o->commands == NULL) {
        return 1;
    }
    n = strlen(command);
    for (c = o->commands; (c = strstr(c, command)) != NULL; c += n) {
        if ((c == o->commands || c[-1] == ' ')
            && (c[n] == ' ' || c[n] == '\0')) {
            return 1;
        }
    }
    return 0;
}

static int is_command(const char *s)
{
    return strcmp(s, "create") == 0 || strcmp(s, "list") == 0
           || strcmp(s, "show") == 0 || strcmp(s, "update") == 0
           || strcmp(s, "revoke") == 0 || strcmp(s, "init") == 0
           || strcmp(s, "import") == 0;
}

/* Parse argv.  Returns -1 to go on, else an exit status. */
static int parse_args(apr_pool_t *p, int argc, const char *const *argv,
                      cli_args *a)
{
    int help = 0, version = 0, json = 0, i, k, no_more_options = 0;
    const char *positional[4];
    int npositional = 0;
    option_def opts[] = {
        { "--store",   &a->store,   NULL, NULL },
        { "--name",    &a->name,    NULL, "create update" },
        { "--models",  &a->models,  NULL, "create update" },
        { "--rpm",     &a->rpm,     NULL, "create update" },
        { "--tpm",     &a->tpm,     NULL, "create update" },
        { "--quota",   &a->quota,   NULL, "create update" },
        { "--quota-period", &a->quota_period, NULL, "create update" },
        { "--expires", &a->expires, NULL, "create update" },
        { "--from",    &a->from,    NULL, "import" },
        { "--json",    NULL,        &json, "create list show update revoke" },
        { "--help",    NULL,        &help, NULL },
        { "-h",        NULL,        &help, NULL },
        { "--version", NULL,        &version, NULL },
        { NULL, NULL, NULL, NULL }
    };
    int seen[sizeof(opts) / sizeof(opts[0])];

    memset(seen, 0, sizeof(seen));
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL, *eq;
        apr_size_t namelen;

        if (no_more_options || arg[0] != '-' || arg[1] == '\0') {
            if (npositional == (int)(sizeof(positional)
                                     / sizeof(positional[0]))) {
                return fail(EXIT_USAGE, "too many arguments");
            }
            positional[npositional++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            no_more_options = 1;
            continue;
        }
        eq = strchr(arg, '=');
        namelen = eq ? (apr_size_t)(eq - arg) : strlen(arg);
        for (k = 0; opts[k].name; k++) {
            if (strlen(opts[k].name) == namelen
                && strncmp(opts[k].name, arg, namelen) == 0) {
                break;
            }
        }
        if (opts[k].name == NULL) {
            return fail(EXIT_USAGE, "unknown option %s",
                        printable(p, apr_pstrmemdup(p, arg, namelen)));
        }
        if (seen[k]++) {
            return fail(EXIT_USAGE, "option %s given twice", opts[k].name);
        }
        if (opts[k].slot) {
            if (eq) {
                value = eq + 1;
            }
            else if (i + 1 < argc) {
                value = argv[++i];
            }
            else {
                return fail(EXIT_USAGE, "option %s needs a value",
                            opts[k].name);
            }
            *opts[k].slot = value;
        }
        else {
            if (eq) {
                return fail(EXIT_USAGE, "option %s takes no value",
                            opts[k].name);
            }
            *opts[k].flag = 1;
        }
    }

    if (help) {
        usage(stdout);
        return EXIT_OK;
    }
    if (version) {
        printf(PROG " (mod_clawdrouter) %s\n", PACKAGE_VERSION);
        return EXIT_OK;
    }
    if (npositional == 0) {
        return fail(EXIT_USAGE, "no command given");
    }
    a->command = positional[0];
    if (!is_command(a->command)) {
        return fail(EXIT_USAGE, "unknown command %s",
                    printable(p, a->command));
    }
    for (k = 0; opts[k].name; k++) {
        if (seen[k] && !applies(&opts[k], a->command)) {
            return fail(EXIT_USAGE, "option %s does not apply to %s",
                        opts[k].name, a->command);
        }
    }
    a->json = json;

    if (strcmp(a->command, "create") == 0
        || strcmp(a->command, "list") == 0
        || strcmp(a->command, "init") == 0
        || strcmp(a->command, "import") == 0) {
        if (npositional > 1) {
            return fail(EXIT_USAGE, "%s takes no argument", a->command);
        }
    }
    else {
        if (npositional < 2) {
            return fail(EXIT_USAGE, "%s needs a key id", a->command);
        }
        if (npositional > 2) {
            return fail(EXIT_USAGE, "%s takes one key id", a->command);
        }
        a->id = positional[1];
    }

    if (a->store == NULL) {
        char *env = NULL;
        if (apr_env_get(&env, STORE_ENV, p) == APR_SUCCESS && env && *env) {
            a->store = env;
        }
    }
    if (a->store == NULL) {
        return fail(EXIT_USAGE, "no key store: give --store TYPE:PATH or set "
                    STORE_ENV);
    }
    if ((strcmp(a->command, "init") == 0 || strcmp(a->command, "import") == 0)
        && !cr_keysql_is_spec(a->store)) {
        return fail(EXIT_USAGE, "%s needs an SQL store (pgsql:, sqlite3: "
                    "or mysql:)", a->command);
    }
    if (strcmp(a->command, "import") == 0
        && (a->from == NULL || cr_keysql_is_spec(a->from))) {
        return fail(EXIT_USAGE, "import needs --from TYPE:PATH, a DBM "
                    "store");
    }
    return -1;
}

/* A --tpm or --quota value: digits up to MAX_TOKENS, or "default". */
static int limit_arg(const char *arg, apr_int64_t *v)
{
    apr_int64_t n = 0;
    const char *s;

    if (strcmp(arg, "default") == 0) {
        *v = CR_KEY_LIMIT_UNSET;
        return 1;
    }
    for (s = arg; apr_isdigit(*s) && n <= MAX_TOKENS; s++) {
        n = n * 10 + (*s - '0');
    }
    if (*arg == '\0' || *s != '\0' || n > MAX_TOKENS) {
        return 0;
    }
    *v = n;
    return 1;
}

/* Turn the option values of create/update into a record of changes.
 * Returns -1 to go on, else an exit status. */
static int parse_changes(apr_pool_t *p, const cli_args *a, int is_create,
                         cr_key_record_t *c)
{
    const char *s;

    c->name = NULL;
    c->models = NULL;
    c->rpm = is_create ? CR_KEY_RPM_UNSET : CR_STORE_RPM_KEEP;
    c->tpm = is_create ? CR_KEY_LIMIT_UNSET : CR_STORE_RPM_KEEP;
    c->quota = is_create ? CR_KEY_LIMIT_UNSET : CR_STORE_RPM_KEEP;
    c->quota_period = is_create ? CR_QUOTA_UNSET
                                : (cr_quota_period_e)CR_STORE_PERIOD_KEEP;
    c->expires_at = is_create ? 0 : CR_STORE_EXPIRES_KEEP;

    if (a->name) {
        if (strlen(a->name) > MAX_NAME_LEN) {
            return fail(EXIT_USAGE, "--name is longer than %d bytes",
                        MAX_NAME_LEN);
        }
        for (s = a->name; *s; s++) {
            if ((unsigned char)*s < 0x20 || *s == 0x7f) {
                return fail(EXIT_USAGE, "--name contains a control "
                            "character");
            }
        }
        c->name = a->name;
    }
    if (a->models) {
        c->models = cr_key_parse_models(p, a->models);
        if (c->models == NULL) {
            return fail(EXIT_USAGE, "--models must be a comma separated list "
                        "of non-empty globs of at most 255 characters");
        }
    }
    if (a->rpm) {
        if (strcmp(a->rpm, "default") == 0) {
            c->rpm = CR_KEY_RPM_UNSET;
        }
        else {
            apr_int64_t n = 0;
            for (s = a->rpm; apr_isdigit(*s) && n <= MAX_RPM; s++) {
                n = n * 10 + (*s - '0');
            }
            if (*a->rpm == '\0' || *s != '\0' || n > MAX_RPM) {
                return fail(EXIT_USAGE, "--rpm must be a whole number from "
                            "0 to %" APR_INT64_T_FMT " or \"default\"",
                            MAX_RPM);
            }
            c->rpm = n;
        }
    }
    if (a->tpm && !limit_arg(a->tpm, &c->tpm)) {
        return fail(EXIT_USAGE, "--tpm must be a whole number from 0 to %"
                    APR_INT64_T_FMT " or \"default\"", MAX_TOKENS);
    }
    if (a->quota && !limit_arg(a->quota, &c->quota)) {
        return fail(EXIT_USAGE, "--quota must be a whole number from 0 to %"
                    APR_INT64_T_FMT " or \"default\"", MAX_TOKENS);
    }
    if (a->quota_period) {
        int period = cr_key_parse_quota_period(a->quota_period);
        if (strcmp(a->quota_period, "default") == 0) {
            c->quota_period = CR_QUOTA_UNSET;
        }
        else if (period < 0) {
            return fail(EXIT_USAGE, "--quota-period must be day, month, "
                        "total or default");
        }
        else {
            c->quota_period = (cr_quota_period_e)period;
        }
    }
    if (a->expires) {
        apr_time_t t;
        if (strcmp(a->expires, "never") == 0) {
            c->expires_at = 0;
        }
        else if (cr_time_parse_expires(a->expires, apr_time_now(), &t)
                 != APR_SUCCESS) {
            return fail(EXIT_USAGE, "--expires must be an RFC 3339 time "
                        "(2026-12-31T23:59:59Z), +N with a unit s, m, h or "
                        "d (+30d), or \"never\"");
        }
        else if (is_create && t <= apr_time_now()) {
            /* A key that never works is a mistake, not a request. */
            return fail(EXIT_USAGE, "--expires must be in the future for "
                        "create");
        }
        else {
            /* Whole seconds, as the record stores them. */
            c->expires_at = apr_time_from_sec(apr_time_sec(t));
            if (c->expires_at == 0) {
                c->expires_at = apr_time_from_sec(1);
            }
        }
    }
    return -1;
}

static const char *models_text(apr_pool_t *p, const cr_key_record_t *rec)
{
    const char *s = "";
    int i;

    for (i = 0; i < rec->models->nelts; i++) {
        s = apr_pstrcat(p, s, i ? "," : "",
                        APR_ARRAY_IDX(rec->models, i, const char *), NULL);
    }
    return printable(p, s);
}

static const char *rpm_text(apr_pool_t *p, const cr_key_record_t *rec)
{
    return rec->rpm == CR_KEY_RPM_UNSET
           ? "default"
           : apr_psprintf(p, "%" APR_INT64_T_FMT, rec->rpm);
}

static const char *limit_text(apr_pool_t *p, apr_int64_t v)
{
    return v < 0 ? "default" : apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static const char *status_text(const cr_key_record_t *rec, apr_time_t now)
{
    switch (cr_key_usability(rec, now)) {
    case CR_KEY_IS_REVOKED: return "revoked";
    case CR_KEY_IS_EXPIRED: return "expired";
    default:                return "active";
    }
}

static const char *expires_text(apr_pool_t *p, const cr_key_record_t *rec)
{
    return rec->expires_at ? cr_time_format_rfc3339(p, rec->expires_at)
                           : "never";
}

static int print_record(apr_pool_t *p, const cr_key_record_t *rec, int json)
{
    if (json) {
        const char *text = cr_key_record_to_json(p, rec, 0);
        if (text == NULL) {
            return fail(EXIT_FAIL, "cannot encode record %s", rec->id);
        }
        printf("%s\n", text);
        return EXIT_OK;
    }
    printf("id:         %s\n", rec->id);
    printf("name:       %s\n", *rec->name ? printable(p, rec->name) : "-");
    printf("status:     %s\n", status_text(rec, apr_time_now()));
    printf("models:     %s\n", models_text(p, rec));
    printf("rpm:        %s\n", rpm_text(p, rec));
    printf("tpm:        %s\n", limit_text(p, rec->tpm));
    printf("quota:      %s\n", limit_text(p, rec->quota));
    printf("quota_period: %s\n", rec->quota_period == CR_QUOTA_UNSET
                                  ? "default"
                                  : cr_key_quota_period_name(
                                        rec->quota_period));
    printf("created_at: %s\n", cr_time_format_rfc3339(p, rec->created_at));
    printf("expires_at: %s\n", expires_text(p, rec));
    printf("hint:       %s\n", printable(p, rec->hint));
    return EXIT_OK;
}

static int cmd_create(apr_pool_t *p, const cli_args *a)
{
    cr_key_record_t tmpl, *rec;
    const char *key, *err = NULL;
    int status;

    memset(&tmpl, 0, sizeof(tmpl));
    if ((status = parse_changes(p, a, 1, &tmpl)) >= 0) {
        return status;
    }
    if (tmpl.models == NULL) {
        tmpl.models = cr_key_parse_models(p, "*");
    }
    if (cr_keystore_create(a->ks, NULL, p, &tmpl, &key, &rec, &err)
        != APR_SUCCESS) {
        return fail(EXIT_FAIL, "%s", err ? err : "cannot create a key");
    }
    if (a->json) {
        const char *text = cr_key_record_to_json(p, rec, 0), *perr;
        cr_json_t *obj = text ? cr_json_parse(p, text, strlen(text), 0, &perr)
                              : NULL;
        if (obj == NULL || cr_json_set_string(obj, "key", key) != 0
            || (text = cr_json_dump(p, obj, CR_JSON_COMPACT)) == NULL) {
            /* The record is stored; without its key it is useless. */
            return fail(EXIT_FAIL, "key %s was created but cannot be "
                        "printed as JSON; revoke it", rec->id);
        }
        printf("%s\n", text);
    }
    else {
        printf("%s\n", key);
    }
    return EXIT_OK;
}

static int cmd_list(apr_pool_t *p, const cli_args *a)
{
    apr_array_header_t *recs;
    const char *err = NULL;
    apr_time_t now = apr_time_now();
    int i, c;
    /* Columns: id, name, status, models, rpm, created, expires. */
    enum { NCOL = 7 };
    static const char *const heads[NCOL] = {
        "ID", "NAME", "STATUS", "MODELS", "RPM", "CREATED", "EXPIRES"
    };
    int width[NCOL];
    const char ***rows;

    if (cr_keystore_list(a->ks, NULL, p, &recs, &err) != APR_SUCCESS) {
        return fail(EXIT_FAIL, "%s", err ? err : "cannot list the store");
    }

    if (a->json) {
        fputc('[', stdout);
        for (i = 0; i < recs->nelts; i++) {
            const cr_key_record_t *rec =
                APR_ARRAY_IDX(recs, i, cr_key_record_t *);
            const char *text = cr_key_record_to_json(p, rec, 0);
            if (text == NULL) {
                return fail(EXIT_FAIL, "cannot encode record %s", rec->id);
            }
            printf("%s%s", i ? "," : "", text);
        }
        fputs("]\n", stdout);
        return EXIT_OK;
    }

    rows = apr_pcalloc(p, sizeof(*rows) * (recs->nelts + 1));
    for (c = 0; c < NCOL; c++) {
        width[c] = (int)strlen(heads[c]);
    }
    for (i = 0; i < recs->nelts; i++) {
        const cr_key_record_t *rec = APR_ARRAY_IDX(recs, i, cr_key_record_t *);
        const char **row = apr_pcalloc(p, sizeof(*row) * NCOL);
        row[0] = rec->id;
        row[1] = *rec->name ? printable(p, rec->name) : "-";
        row[2] = status_text(rec, now);
        row[3] = models_text(p, rec);
        row[4] = rpm_text(p, rec);
        row[5] = cr_time_format_rfc3339(p, rec->created_at);
        row[6] = expires_text(p, rec);
        for (c = 0; c < NCOL; c++) {
            if ((int)strlen(row[c]) > width[c]) {
                width[c] = (int)strlen(row[c]);
            }
        }
        rows[i] = row;
    }
    for (i = -1; i < recs->nelts; i++) {
        for (c = 0; c < NCOL; c++) {
            const char *cell = (i < 0) ? heads[c] : rows[i][c];
            if (c < NCOL - 1) {
                printf("%-*s  ", width[c], cell);
            }
            else {
                printf("%s\n", cell);
            }
        }
    }
    return EXIT_OK;
}

static int cmd_show(apr_pool_t *p, const cli_args *a)
{
    cr_key_record_t *rec;
    const char *err = NULL;

    if (cr_keystore_get(a->ks, NULL, p, a->id, &rec, &err) != APR_SUCCESS) {
        return fail(EXIT_FAIL, "%s", err ? err : "cannot read the key");
    }
    return print_record(p, rec, a->json);
}

static int cmd_update(apr_pool_t *p, const cli_args *a)
{
    cr_key_record_t changes, *rec;
    const char *err = NULL;
    int status;

    memset(&changes, 0, sizeof(changes));
    if ((status = parse_changes(p, a, 0, &changes)) >= 0) {
        return status;
    }
    if (!a->name && !a->models && !a->rpm && !a->expires && !a->tpm
        && !a->quota && !a->quota_period) {
        return fail(EXIT_USAGE, "update needs at least one of --name, "
                    "--models, --rpm, --tpm, --quota, --quota-period, "
                    "--expires");
    }
    if (cr_keystore_update(a->ks, NULL, p, a->id, &changes, &rec, &err)
        != APR_SUCCESS) {
        return fail(EXIT_FAIL, "%s", err ? err : "cannot update the key");
    }
    return print_record(p, rec, a->json);
}

static int cmd_revoke(apr_pool_t *p, const cli_args *a)
{
    cr_key_record_t *rec;
    const char *err = NULL;

    if (cr_keystore_revoke(a->ks, NULL, p, a->id, &rec, &err) != APR_SUCCESS) {
        return fail(EXIT_FAIL, "%s", err ? err : "cannot revoke the key");
    }
    if (a->json) {
        return print_record(p, rec, 1);
    }
    printf("revoked %s\n", rec->id);
    return EXIT_OK;
}

/* Copy every record of the DBM store a->from into the SQL store; a record
 * whose hash or id is there already is left as it is (and counted). */
static int cmd_import(apr_pool_t *p, const cli_args *a)
{
    cr_keysql_conn_t *c = cr_keystore_sql_conn(a->ks);
    apr_array_header_t *recs;
    cr_store_t *store;
    char buf[512] = "";
    int i, copied = 0, skipped = 0;

    if (cr_store_open(p, a->from, 0, &store, buf, sizeof(buf))
        != APR_SUCCESS) {
        return fail(EXIT_FAIL, "%s", buf);
    }
    if (cr_store_list(store, p, &recs) != APR_SUCCESS) {
        int status = fail(EXIT_FAIL, "%s", cr_store_last_error(store));
        cr_store_close(store);
        return status;
    }
    for (i = 0; i < recs->nelts; i++) {
        cr_key_record_t *rec = APR_ARRAY_IDX(recs, i, cr_key_record_t *);
        cr_key_record_t *same, *there;
        const char *hash, *err = NULL;
        apr_status_t rv;

        if (cr_store_fetch_by_id(store, p, rec->id, &same, &hash)
            != APR_SUCCESS) {
            int status = fail(EXIT_FAIL, "%s", cr_store_last_error(store));
            cr_store_close(store);
            return status;
        }
        rv = cr_keysql_get(c, p, rec->id, &there, NULL, &err);
        if (rv == APR_SUCCESS) {
            skipped++;
            continue;
        }
        if (rv != APR_NOTFOUND
            || cr_keysql_put_new(c, p, hash, same, &err) != APR_SUCCESS) {
            cr_store_close(store);
            return fail(EXIT_FAIL, "key %s: %s", rec->id,
                        err ? err : "cannot copy");
        }
        copied++;
    }
    cr_store_close(store);
    printf("imported %d record%s", copied, copied == 1 ? "" : "s");
    if (skipped) {
        printf(", %d already there", skipped);
    }
    printf("\n");
    return EXIT_OK;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *pool;
    cli_args args;
    int status;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fputs(PROG ": cannot initialise APR\n", stderr);
        return EXIT_FAIL;
    }
    atexit(apr_terminate);
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        fputs(PROG ": out of memory\n", stderr);
        return EXIT_FAIL;
    }

    memset(&args, 0, sizeof(args));
    status = parse_args(pool, argc, argv, &args);
    if (status < 0 && cr_keysql_is_spec(args.store)) {
        const char *err = NULL;
        if (cr_keystore_sql_open(pool, args.store,
                                 strcmp(args.command, "init") == 0,
                                 &args.ks, &err) != APR_SUCCESS) {
            status = fail(EXIT_FAIL, "%s", err);
        }
    }
    else if (status < 0
             && cr_keystore_dbm_create(pool, args.store, 0, 0, 1, &args.ks)
                != APR_SUCCESS) {
        status = fail(EXIT_FAIL, "cannot use the key store");
    }
    if (status < 0) {
        if (strcmp(args.command, "init") == 0) {
            printf("table " CR_KEYSQL_TABLE " ready\n");
            status = EXIT_OK;
        }
        else if (strcmp(args.command, "import") == 0) {
            status = cmd_import(pool, &args);
        }
        else if (strcmp(args.command, "create") == 0) {
            status = cmd_create(pool, &args);
        }
        else if (strcmp(args.command, "list") == 0) {
            status = cmd_list(pool, &args);
        }
        else if (strcmp(args.command, "show") == 0) {
            status = cmd_show(pool, &args);
        }
        else if (strcmp(args.command, "update") == 0) {
            status = cmd_update(pool, &args);
        }
        else {
            status = cmd_revoke(pool, &args);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (status == EXIT_OK) {
            status = fail(EXIT_FAIL, "cannot write the output");
        }
    }
    apr_pool_destroy(pool);
    return status;
}
