/* Licensed under the Apache License, Version 2.0. */

/*
 * mod_clawdrouter_config.c: the module's configuration records (create and
 * merge) and its directives.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_DEFAULT */
#endif
#include <dlfcn.h>
#include <errno.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "mod_proxy.h"

#include "apr_strings.h"
#include "apr_lib.h"

#include "mod_clawdrouter.h"
#include "mod_clawdrouter_keystore.h"
#include "cr_keycache.h"
#include "cr_metrics.h"
#include "cr_models.h"
#include "cr_ratestore.h"
#include "cr_route.h"
#include "cr_store.h"

/* mod_proxy's worker API, looked up at configuration time: the module is
 * not linked against mod_proxy.so, so it loads whatever the LoadModule
 * order (Debian's a2enmod sorts clawdrouter before proxy). */
typedef proxy_worker *(*cr_proxy_get_worker_fn)(apr_pool_t *,
                                                proxy_balancer *,
                                                proxy_server_conf *,
                                                const char *);
typedef char *(*cr_proxy_define_worker_fn)(apr_pool_t *, proxy_worker **,
                                           proxy_balancer *,
                                           proxy_server_conf *,
                                           const char *, int);

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

void *cr_config_create_server(apr_pool_t *p, server_rec *s)
{
    cr_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)s;
    conf->upstreams = apr_array_make(p, 4, sizeof(cr_upstream_t));
    conf->routes = apr_array_make(p, 8, sizeof(cr_route_t));
    conf->locations = apr_array_make(p, 2, sizeof(const char *));
    conf->max_body = CR_DEFAULT_MAX_BODY;
    conf->rate_failure = CR_RATE_FAIL_OPEN;
    conf->key_cache_entries = -1;
    conf->models_ttl = CR_DEFAULT_MODELS_TTL;
    conf->models = apr_array_make(p, 4, sizeof(cr_model_decl_t));
    return conf;
}

void *cr_config_merge_server(apr_pool_t *p, void *basev, void *addv)
{
    cr_server_conf *base = basev;
    cr_server_conf *add = addv;
    cr_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->key_store = add->key_store ? add->key_store : base->key_store;
    /* A virtual host's own upstreams and routes come first, then the main
     * server's: its routes win, and it may still use the main server's. */
    conf->upstreams = apr_array_append(p, add->upstreams, base->upstreams);
    conf->routes = apr_array_append(p, add->routes, base->routes);
    conf->locations = apr_array_append(p, add->locations, base->locations);
    conf->default_rpm = add->default_rpm_set ? add->default_rpm
                                             : base->default_rpm;
    conf->default_rpm_set = add->default_rpm_set || base->default_rpm_set;
    conf->max_body = add->max_body_set ? add->max_body : base->max_body;
    conf->max_body_set = add->max_body_set || base->max_body_set;
    conf->default_tpm = add->default_tpm_set ? add->default_tpm
                                             : base->default_tpm;
    conf->default_tpm_set = add->default_tpm_set || base->default_tpm_set;
    conf->models_ttl = add->models_ttl_set ? add->models_ttl
                                           : base->models_ttl;
    conf->models_ttl_set = add->models_ttl_set || base->models_ttl_set;
    conf->models = apr_array_append(p, add->models, base->models);
    conf->state_file = base->state_file;
    /* The rate store is server-wide: always the main server's. */
    conf->rate_store = base->rate_store;
    conf->rate_failure = base->rate_failure;
    conf->rate_failure_set = base->rate_failure_set;
    conf->rate_store_data = base->rate_store_data;
    conf->key_cache_entries = base->key_cache_entries;
    conf->metrics_series = base->metrics_series;
    conf->metrics_series_set = base->metrics_series_set;
    return conf;
}

void *cr_config_create_dir(apr_pool_t *p, char *path)
{
    cr_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = -1;
    conf->stream_usage = -1;
    conf->location = path;
    return conf;
}

void *cr_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    cr_dir_conf *base = basev;
    cr_dir_conf *add = addv;
    cr_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = (add->enabled != -1) ? add->enabled : base->enabled;
    /* The URL mapping is relative to the section that said "On". */
    conf->location = (add->enabled != -1) ? add->location : base->location;
    conf->max_body = add->max_body_set ? add->max_body : base->max_body;
    conf->max_body_set = add->max_body_set || base->max_body_set;
    conf->stream_usage = add->stream_usage != -1 ? add->stream_usage
                                                 : base->stream_usage;
    return conf;
}


cr_server_conf *cr_config_server(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &clawdrouter_module);
}

cr_dir_conf *cr_config_dir(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &clawdrouter_module);
}

apr_off_t cr_config_max_body(const cr_dir_conf *dconf,
                             const cr_server_conf *sconf)
{
    return dconf->max_body_set ? dconf->max_body : sconf->max_body;
}

apr_size_t cr_config_location_prefix_len(const char *loc)
{
    apr_size_t n = strlen(loc);

    while (n > 0 && loc[n - 1] == '/') {
        n--;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Directives                                                          */
/* ------------------------------------------------------------------ */

static const char *cmd_key_store(cmd_parms *cmd, void *dummy,
                                 const char *arg)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    const char *type, *path;

    (void)dummy;
    if (strcasecmp(arg, CR_KEYSTORE_DBD_SPEC) == 0) {
        /* SQL through mod_dbd (mod_clawdrouter_keystore.c) */
        conf->key_store = CR_KEYSTORE_DBD_SPEC;
        return cr_keystore_dbd_configure(cmd);
    }
    if (cr_store_parse_spec(cmd->pool, arg, &type, &path) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not TYPE:PATH "
                            "(e.g. sdbm:/var/lib/clawdrouter/keys) or dbd",
                            cmd->cmd->name, arg);
    }
    conf->key_store = apr_pstrcat(cmd->pool, type, ":",
                                  ap_server_root_relative(cmd->pool, path),
                                  NULL);
    return NULL;
}

int cr_directive_number(const char *arg, apr_int64_t min, apr_int64_t max,
                        apr_int64_t *n)
{
    char *end;

    if (!apr_isdigit(*arg)) {
        return 0;
    }
    errno = 0;
    *n = apr_strtoi64(arg, &end, 10);
    return *end == '\0' && errno != ERANGE && *n >= min && *n <= max;
}

static const char *cmd_key_cache(cmd_parms *cmd, void *dummy,
                                 const char *arg)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_int64_t n;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!cr_directive_number(arg, 0, CR_KEYCACHE_MAX_ENTRIES, &n)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of records "
                            "from 0 (no cache) to %d", cmd->cmd->name, arg,
                            CR_KEYCACHE_MAX_ENTRIES);
    }
    conf->key_cache_entries = (int)n;
    return NULL;
}

static const char *cmd_metrics_series(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    cr_server_conf *conf = cr_config_server(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_int64_t n;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!cr_directive_number(arg, 0, CR_METRICS_MAX_SERIES, &n)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of label "
                            "sets from 0 (no metrics) to %d", cmd->cmd->name,
                            arg, CR_METRICS_MAX_SERIES);
    }
    conf->metrics_series = n;
    conf->metrics_series_set = 1;
    return NULL;
}

/* Give an upstream its own mod_proxy worker, as ProxyPass would, so that
 * backend connections are kept alive and reused.  balancer:// upstreams
 * use the balancer the administrator defines. */
static const char *define_upstream_worker(cmd_parms *cmd, const char *url)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    cr_proxy_get_worker_fn get_worker;
    cr_proxy_define_worker_fn define_worker;
    proxy_server_conf *pconf;
    proxy_worker *worker;
    char *err;

    if (!proxy) {
        return apr_psprintf(cmd->pool, "%s needs mod_proxy and mod_proxy_http"
                            " (LoadModule proxy_module, proxy_http_module)",
                            cmd->cmd->name);
    }
    if (strncasecmp(url, "balancer://", 11) == 0) {
        return NULL;
    }
    get_worker = (cr_proxy_get_worker_fn)dlsym(RTLD_DEFAULT,
                                               "ap_proxy_get_worker");
    define_worker = (cr_proxy_define_worker_fn)dlsym(RTLD_DEFAULT,
                                                     "ap_proxy_define_worker");
    if (!get_worker || !define_worker) {
        return apr_psprintf(cmd->pool, "%s: mod_proxy's worker API was not "
                            "found", cmd->cmd->name);
    }
    pconf = ap_get_module_config(cmd->server->module_config, proxy);
    worker = get_worker(cmd->temp_pool, NULL, pconf, url);
    if (worker) {
        return NULL;    /* a ProxyPass or <Proxy> already defines it */
    }
    err = define_worker(cmd->pool, &worker, NULL, pconf, url, 0);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    /* An unreachable upstream is answered 502 on every request, not 503
     * for a minute after one failure. */
    worker->s->retry = 0;
    worker->s->retry_set = 1;
    return NULL;
}

static const char *cmd_upstream(cmd_parms *cmd, void *dummy, int argc,
                                char *const argv[])
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    cr_upstream_t *up;
    const char *err;
    int proto, i;

    (void)dummy;
    if (argc < 3 || argc > 4) {
        return apr_psprintf(cmd->pool, "%s takes NAME PROTOCOL URL "
                            "[CREDENTIAL]", cmd->cmd->name);
    }
    for (i = 0; i < conf->upstreams->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(conf->upstreams, i, cr_upstream_t).name,
                    argv[0])) {
            return apr_psprintf(cmd->pool, "%s: upstream '%s' is defined "
                                "twice", cmd->cmd->name, argv[0]);
        }
    }
    proto = cr_route_parse_protocol(argv[1]);
    if (proto < 0) {
        return apr_psprintf(cmd->pool, "%s: protocol '%s' is not openai or "
                            "anthropic", cmd->cmd->name, argv[1]);
    }
    up = apr_array_push(conf->upstreams);
    up->name = apr_pstrdup(cmd->pool, argv[0]);
    up->protocol = (cr_protocol_e)proto;
    up->url = cr_route_normalize_url(cmd->pool, argv[2]);
    if (!up->url) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an http://, "
                            "https:// or balancer:// URL", cmd->cmd->name,
                            argv[2]);
    }
    up->credential = NULL;
    if (argc == 4) {
        /* Resolved now, while httpd still runs as root: a file: secret
         * may be readable by root only. */
        up->credential = cr_route_resolve_credential(cmd->pool, argv[3],
                                                     &err);
        if (!up->credential) {
            return apr_psprintf(cmd->pool, "%s %s: %s", cmd->cmd->name,
                                argv[0], err);
        }
    }
    return define_upstream_worker(cmd, up->url);
}

static const char *cmd_route(cmd_parms *cmd, void *dummy, const char *glob,
                             const char *name)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    cr_route_t *route;

    (void)dummy;
    if (!*glob) {
        return apr_psprintf(cmd->pool, "%s: empty model glob",
                            cmd->cmd->name);
    }
    route = apr_array_push(conf->routes);
    route->glob = glob;
    route->upstream_name = name;
    route->upstream = NULL;     /* resolved in post_config */
    return NULL;
}

static const char *cmd_enable(cmd_parms *cmd, void *dconf, int flag)
{
    cr_dir_conf *conf = dconf;
    const ap_directive_t *section = cmd->directive->parent;

    if (flag && (!section || strcasecmp(section->directive, "<Location")
                 || !cmd->path || *cmd->path != '/')) {
        return apr_psprintf(cmd->pool, "%s On belongs in a <Location> with "
                            "a plain path (the path below it is appended to "
                            "the upstream URL)", cmd->cmd->name);
    }
    conf->enabled = flag;
    conf->location = cmd->path;
    if (flag) {
        cr_server_conf *sconf =
            ap_get_module_config(cmd->server->module_config,
                                 &clawdrouter_module);
        APR_ARRAY_PUSH(sconf->locations, const char *) = cmd->path;
    }
    return NULL;
}

static const char *cmd_default_rpm(cmd_parms *cmd, void *dummy,
                                   const char *arg)
{
    cr_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &clawdrouter_module);
    apr_int64_t rpm;

    (void)dummy;
    if (!cr_directive_number(arg, 0, 100000000, &rpm)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from 0 to 100000000", cmd->cmd->name, arg);
    }
    conf->default_rpm = rpm;
    conf->default_rpm_set = 1;
    return NULL;
}

static const char *cmd_default_tpm(cmd_parms *cmd, void *dummy,
                                   const char *arg)
{
    cr_server_conf *conf = cr_config_server(cmd->server);
    apr_int64_t tpm;

    (void)dummy;
    if (!cr_directive_number(arg, 0, 1000000000, &tpm)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from 0 to 1000000000", cmd->cmd->name, arg);
    }
    conf->default_tpm = tpm;
    conf->default_tpm_set = 1;
    return NULL;
}

static const char *cmd_models_ttl(cmd_parms *cmd, void *dummy,
                                  const char *arg)
{
    cr_server_conf *conf = cr_config_server(cmd->server);
    apr_int64_t ttl;

    (void)dummy;
    if (!cr_directive_number(arg, 0, 31536000, &ttl)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds "
                            "from 0 (declared models only) to 31536000",
                            cmd->cmd->name, arg);
    }
    conf->models_ttl = ttl;
    conf->models_ttl_set = 1;
    return NULL;
}

static const char *cmd_model(cmd_parms *cmd, void *dummy, const char *name,
                             const char *upstream)
{
    cr_server_conf *conf = cr_config_server(cmd->server);
    cr_model_decl_t *decl;
    const char *c;

    (void)dummy;
    if (!*name || strlen(name) > CR_MODELS_MAX_ID) {
        return apr_psprintf(cmd->pool, "%s: a model name of 1 to %d "
                            "characters", cmd->cmd->name, CR_MODELS_MAX_ID);
    }
    for (c = name; *c; c++) {
        if (apr_iscntrl(*c)) {
            return apr_psprintf(cmd->pool, "%s: control character in the "
                                "model name", cmd->cmd->name);
        }
    }
    decl = apr_array_push(conf->models);
    decl->name = name;
    decl->upstream_name = upstream;  /* checked in post_config */
    return NULL;
}

static const char *cmd_state_file(cmd_parms *cmd, void *dummy,
                                  const char *arg)
{
    cr_server_conf *conf = cr_config_server(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    conf->state_file = ap_server_root_relative(cmd->pool, arg);
    if (!conf->state_file) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid path",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *cmd_stream_usage(cmd_parms *cmd, void *dconf, int flag)
{
    cr_dir_conf *conf = dconf;

    (void)cmd;
    conf->stream_usage = flag;
    return NULL;
}

static const char *cmd_max_body(cmd_parms *cmd, void *dconf,
                                const char *arg)
{
    apr_off_t size;

    if (apr_strtoff(&size, arg, NULL, 10) != APR_SUCCESS || size <= 0
        || !apr_isdigit(*arg)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive number "
                            "of bytes", cmd->cmd->name, arg);
    }
    if (cmd->path) {
        cr_dir_conf *conf = dconf;
        conf->max_body = size;
        conf->max_body_set = 1;
    }
    else {
        cr_server_conf *conf =
            ap_get_module_config(cmd->server->module_config,
                                 &clawdrouter_module);
        conf->max_body = size;
        conf->max_body_set = 1;
    }
    return NULL;
}

const command_rec cr_config_cmds[] = {
    AP_INIT_TAKE1(CR_DIR_KEY_STORE, cmd_key_store, NULL, RSRC_CONF,
                  "the DBM key store, TYPE:PATH (e.g. sdbm:/var/lib/clawdrouter/keys)"),
    AP_INIT_TAKE_ARGV(CR_DIR_UPSTREAM, cmd_upstream, NULL, RSRC_CONF,
                      "an upstream: NAME openai|anthropic URL [CREDENTIAL]"),
    AP_INIT_TAKE2(CR_DIR_ROUTE, cmd_route, NULL, RSRC_CONF,
                  "route models matching a glob to a named upstream"),
    AP_INIT_FLAG(CR_DIR_ENABLE, cmd_enable, NULL, ACCESS_CONF,
                 "On to serve this URL space as the gateway"),
    AP_INIT_TAKE1(CR_DIR_RATE_STORE, cr_ratestore_cmd_store, NULL, RSRC_CONF,
                  "where rate counters live: shm, memcache://H:P[,H:P] or redis://H:P"),
    AP_INIT_TAKE1(CR_DIR_RATE_FAILURE, cr_ratestore_cmd_failure, NULL,
                  RSRC_CONF,
                  "open or closed: serve or refuse while a shared rate store is down"),
    AP_INIT_TAKE1(CR_DIR_DEFAULT_RPM, cmd_default_rpm, NULL, RSRC_CONF,
                  "requests per minute for keys whose record sets none (0 = no limit)"),
    AP_INIT_TAKE1(CR_DIR_MAX_BODY, cmd_max_body, NULL, RSRC_CONF | ACCESS_CONF,
                  "largest request body inspected and forwarded, in bytes"),
    AP_INIT_TAKE1(CR_DIR_KEY_CACHE, cmd_key_cache, NULL, RSRC_CONF,
                  "key records each child keeps between requests (0 = read the store every time)"),
    AP_INIT_TAKE1(CR_DIR_DEFAULT_TPM, cmd_default_tpm, NULL, RSRC_CONF,
                  "tokens per minute for keys whose record sets none (0 = no limit)"),
    AP_INIT_TAKE1(CR_DIR_STATE_FILE, cmd_state_file, NULL, RSRC_CONF,
                  "file that keeps token quota counts across a full restart"),
    AP_INIT_TAKE1(CR_DIR_METRICS_SERIES, cmd_metrics_series, NULL, RSRC_CONF,
                  "label sets kept per metric before new ones count as _other (default 10000, 0 = no metrics)"),
    AP_INIT_FLAG(CR_DIR_STREAM_USAGE, cmd_stream_usage, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "On (default) to ask the upstream for the usage of streamed OpenAI chats that do not"),
    AP_INIT_TAKE1(CR_DIR_MODELS_TTL, cmd_models_ttl, NULL, RSRC_CONF,
                  "seconds an upstream's own /models list is kept (default 300, 0 = declared models only)"),
    AP_INIT_TAKE2(CR_DIR_MODEL, cmd_model, NULL, RSRC_CONF,
                  "a model NAME that GET /models lists for UPSTREAM-NAME"),
    CR_RATESTORE_COMMANDS
    {NULL}
};
