/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_console_page.c: the console's pages, httpd-independent.
 *
 * The pages are plain HTML forms that work without JavaScript; app.js only
 * adds the copy button's clipboard access and a confirm() before a revoke.
 * CSS and JS are served by the module itself (the machine may have no
 * internet), so the Content-Security-Policy can forbid every inline script
 * and style.
 */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cr_console_page.h"
#include "cr_time.h"

/* ---------------------------------------------------------------------
 * The message catalogue: {English, Chinese} per id, in enum order.
 */
static const char *const catalogue[CR_MSG__COUNT][2] = {
    /* TITLE */ {"ClawdRouter console", "ClawdRouter 控制台"},
    /* KEYS */ {"API keys", "API 密钥"},
    /* KEYS_INTRO */
    {"Clients call the gateway with these keys. A key is shown once, when "
     "it is created; the gateway keeps only its hash.",
     "客户端使用这些密钥调用网关。密钥只在创建时显示一次，网关只保存它的哈希值。"},
    /* NEW_KEY */ {"New key", "新增密钥"},
    /* NAME */ {"Name", "名称"},
    /* NAME_HINT */ {"e.g. ci-bot", "例如 ci-bot"},
    /* MODELS */ {"Allowed models", "允许的模型"},
    /* MODELS_HINT */
    {"Comma separated globs, e.g. gpt-*,claude-*; * means every model.",
     "以逗号分隔的通配符，例如 gpt-*,claude-*；* 表示所有模型。"},
    /* RPM */ {"Requests per minute", "每分钟请求数"},
    /* RPM_HINT */
    {"Empty: the server's default. 0: no limit.",
     "留空：使用服务器默认值。0：不限。"},
    /* EXPIRES */ {"Expires", "过期时间"},
    /* NEVER */ {"Never", "永不过期"},
    /* DAYS_1 */ {"In 1 day", "1 天后"},
    /* DAYS_7 */ {"In 7 days", "7 天后"},
    /* DAYS_30 */ {"In 30 days", "30 天后"},
    /* DAYS_90 */ {"In 90 days", "90 天后"},
    /* DAYS_365 */ {"In 1 year", "1 年后"},
    /* CREATE */ {"Create key", "创建密钥"},
    /* CANCEL */ {"Cancel", "取消"},
    /* ID */ {"ID", "ID"},
    /* KEY */ {"Key", "密钥"},
    /* CREATED */ {"Created", "创建时间"},
    /* STATUS */ {"Status", "状态"},
    /* ACTIONS */ {"Actions", "操作"},
    /* ACTIVE */ {"Active", "有效"},
    /* REVOKED */ {"Revoked", "已吊销"},
    /* EXPIRED */ {"Expired", "已过期"},
    /* REVOKE */ {"Revoke", "吊销"},
    /* RPM_DEFAULT */ {"Server default", "服务器默认"},
    /* RPM_UNLIMITED */ {"No limit", "不限"},
    /* ALL_MODELS */ {"All models", "所有模型"},
    /* NO_KEYS */
    {"No keys yet. Press “New key” to create one.",
     "还没有密钥。点击“新增密钥”创建一个。"},
    /* CREATED_TITLE */ {"Key created", "密钥已创建"},
    /* CREATED_WARNING */
    {"This is the only time this key is shown. Copy it now and keep it "
     "somewhere safe: it cannot be shown again, and anyone who has it can "
     "use the gateway.",
     "此密钥只显示这一次。请立即复制并妥善保管：之后无法再次查看，"
     "任何持有它的人都可以使用网关。"},
    /* COPY */ {"Copy", "复制"},
    /* COPIED */ {"Copied to the clipboard.", "已复制到剪贴板。"},
    /* SELECTED */
    {"The key is selected: press Ctrl+C (⌘C) to copy it.",
     "密钥已选中：请按 Ctrl+C（⌘C）复制。"},
    /* BACK */ {"Back to keys", "返回密钥列表"},
    /* CONFIRM_REVOKE */ {"Revoke this key?", "确定吊销此密钥？"},
    /* CONFIRM_REVOKE_TEXT */
    {"Clients using it are refused from their next request. This cannot "
     "be undone.",
     "使用此密钥的客户端将从下一个请求起被拒绝。此操作无法撤销。"},
    /* REVOKED_NOTICE */ {"The key was revoked.", "密钥已吊销。"},
    /* SIGNED_IN_AS */ {"Signed in as", "当前用户"},
    /* ERR_NAME */
    {"The name is too long (at most 128 bytes) or has control characters.",
     "名称过长（最多 128 字节）或含有控制字符。"},
    /* ERR_MODELS */
    {"Allowed models: give one or more comma separated globs, such as "
     "gpt-* or *.",
     "允许的模型：请填写一个或多个以逗号分隔的通配符，例如 gpt-* 或 *。"},
    /* ERR_RPM */
    {"Requests per minute must be a whole number, 0 or more.",
     "每分钟请求数必须是大于或等于 0 的整数。"},
    /* ERR_EXPIRES */ {"The expiry is not valid.", "过期时间无效。"},
    /* ERR_CREATE */
    {"The key could not be created; the server's error log says why.",
     "无法创建密钥，原因见服务器错误日志。"},
    /* ERR_REVOKE */
    {"The key could not be revoked; the server's error log says why.",
     "无法吊销密钥，原因见服务器错误日志。"},
    /* ERR_NOT_FOUND */ {"There is no such key.", "密钥不存在。"},
    /* ERR_STORE */
    {"The key store cannot be read; the server's error log says why.",
     "无法读取密钥库，原因见服务器错误日志。"},
    /* ERR_FORBIDDEN_TITLE */ {"Request refused", "请求被拒绝"},
    /* ERR_FORBIDDEN */
    {"This form was sent from another site, or the page is out of date. "
     "Reload the console and try again.",
     "该表单来自其他站点，或页面已过期。请刷新控制台后重试。"},
    /* ERR_BAD_REQUEST */
    {"The request was not understood.", "无法理解该请求。"},
    /* ERROR_TITLE */ {"Something went wrong", "出错了"},
    /* LANGUAGE */ {"Language", "语言"},
    /* KEY_LABEL */ {"Your new key", "你的新密钥"},
    /* ERR_HOST_TITLE */ {"Wrong server name", "服务器名称不符"},
    /* ERR_HOST */
    {"This console answers only to its own server names (ServerName, "
     "ServerAlias) and the address it listens on; the Host of this "
     "request is not one of them.",
     "该控制台只响应本服务器的名称（ServerName、ServerAlias）及其监听地址；"
     "此请求的 Host 不在其中。"},
    /* TPM */ {"Tokens per minute", "每分钟令牌数"},
    /* TPM_HINT */
    {"Input + output tokens. Empty: the server's default. 0: no limit.",
     "输入 + 输出令牌。留空：使用服务器默认值。0：不限。"},
    /* QUOTA */ {"Token quota", "令牌配额"},
    /* QUOTA_HINT */
    {"Tokens per period. Empty or 0: no quota.",
     "每个周期的令牌数。留空或 0：不限配额。"},
    /* QUOTA_PERIOD */ {"Quota period", "配额周期"},
    /* PER_DAY */ {"per day (UTC)", "每天（UTC）"},
    /* PER_MONTH */ {"per month (UTC)", "每月（UTC）"},
    /* IN_TOTAL */ {"in total", "总计"},
    /* USED */ {"Tokens used", "已用令牌"},
    /* USED_TODAY */ {"today", "今天"},
    /* USED_MONTH */ {"this month", "本月"},
    /* USED_TOTAL */ {"in total", "总计"},
    /* TPM_DEFAULT */ {"Default", "默认"},
    /* ERR_TPM */
    {"Tokens per minute must be a whole number from 0 to 1000000000000, "
     "or empty.",
     "每分钟令牌数必须是 0 到 1000000000000 之间的整数，或留空。"},
    /* ERR_QUOTA */
    {"The token quota must be a whole number from 0 to 1000000000000, "
     "or empty.",
     "令牌配额必须是 0 到 1000000000000 之间的整数，或留空。"},
    /* ERR_QUOTA_PERIOD */
    {"The quota period must be day, month or total.",
     "配额周期必须是 day（每天）、month（每月）或 total（总计）。"},
};

const char *cr_console_msg(cr_console_lang_e lang, cr_console_msg_e id)
{
    if ((int)id < 0 || id >= CR_MSG__COUNT) {
        return "";
    }
    return catalogue[id][lang == CR_CONSOLE_ZH ? 1 : 0];
}

const char *cr_console_lang_code(cr_console_lang_e lang)
{
    return lang == CR_CONSOLE_ZH ? "zh" : "en";
}

int cr_console_lang_parse(const char *s, cr_console_lang_e *lang)
{
    if (s == NULL) {
        return 0;
    }
    /* "zh", "zh-CN", "zh_TW"..., but not "zhx". */
    if (strncasecmp(s, "zh", 2) == 0 && !apr_isalpha(s[2])) {
        *lang = CR_CONSOLE_ZH;
        return 1;
    }
    if (strncasecmp(s, "en", 2) == 0 && !apr_isalpha(s[2])) {
        *lang = CR_CONSOLE_EN;
        return 1;
    }
    return 0;
}

/* A q-value ("1", "0.8", "0.125") in thousandths; -1 if malformed. */
static int parse_qvalue(const char *s, const char *end)
{
    int value, scale = 100;

    if (s >= end || (*s != '0' && *s != '1')) {
        return -1;
    }
    value = (*s++ - '0') * 1000;
    if (s < end && *s == '.') {
        for (s++; s < end && apr_isdigit(*s) && scale > 0; s++) {
            value += (*s - '0') * scale;
            scale /= 10;
        }
    }
    while (s < end && apr_isspace(*s)) {
        s++;
    }
    if (s != end || value > 1000) {
        return -1;
    }
    return value;
}

cr_console_lang_e cr_console_choose_lang(const char *param,
                                         const char *cookie,
                                         const char *accept_language)
{
    cr_console_lang_e lang = CR_CONSOLE_EN, candidate;
    int best_q = 0;
    const char *s = accept_language;

    if (cr_console_lang_parse(param, &lang)
        || cr_console_lang_parse(cookie, &lang)) {
        return lang;
    }
    /* Accept-Language: tag[;q=x], ... (RFC 9110 12.5.4) */
    while (s != NULL && *s) {
        const char *item_end = strchr(s, ',');
        const char *tag_end, *param_start;
        char tag[64];
        int q = 1000;

        if (item_end == NULL) {
            item_end = s + strlen(s);
        }
        while (s < item_end && apr_isspace(*s)) {
            s++;
        }
        tag_end = s;
        while (tag_end < item_end && *tag_end != ';'
               && !apr_isspace(*tag_end)) {
            tag_end++;
        }
        for (param_start = tag_end; param_start < item_end; param_start++) {
            if (*param_start == ';') {
                const char *v = param_start + 1;
                while (v < item_end && apr_isspace(*v)) {
                    v++;
                }
                if (strncasecmp(v, "q=", 2) == 0) {
                    const char *v_end = v + 2;
                    while (v_end < item_end && *v_end != ';') {
                        v_end++;
                    }
                    q = parse_qvalue(v + 2, v_end);
                }
            }
        }
        if (q > best_q && tag_end - s >= 2
            && (apr_size_t)(tag_end - s) < sizeof(tag)) {
            memcpy(tag, s, tag_end - s);
            tag[tag_end - s] = '\0';
            if (cr_console_lang_parse(tag, &candidate)) {
                best_q = q;
                lang = candidate;
            }
        }
        s = *item_end ? item_end + 1 : item_end;
    }
    return lang;
}

const char *cr_console_escape_html(apr_pool_t *p, const char *s)
{
    apr_size_t extra = 0, i, j;
    char *out;

    if (s == NULL) {
        return "";
    }
    for (i = 0; s[i]; i++) {
        switch (s[i]) {
        case '&': extra += 4; break;     /* &amp; */
        case '<': case '>': extra += 3; break;
        case '"': case '\'': extra += 4; break;    /* &#34; &#39; */
        default: break;
        }
    }
    if (extra == 0) {
        return s;
    }
    out = apr_palloc(p, i + extra + 1);
    for (i = 0, j = 0; s[i]; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: out[j++] = s[i]; continue;
        }
        memcpy(out + j, rep, strlen(rep));
        j += strlen(rep);
    }
    out[j] = '\0';
    return out;
}

const char *cr_console_csrf_token(apr_pool_t *p, const unsigned char *secret,
                                  apr_size_t secret_len, const char *user)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    /* The prefix keeps an anonymous token apart from one of a user named
     * like the anonymous marker. */
    const char *subject = user ? apr_pstrcat(p, "user:", user, NULL)
                               : "anonymous";
    char *hex;
    unsigned int i;

    if (secret == NULL || secret_len == 0
        || HMAC(EVP_sha256(), secret, (int)secret_len,
                (const unsigned char *)subject, strlen(subject),
                mac, &mac_len) == NULL) {
        return NULL;
    }
    hex = apr_palloc(p, mac_len * 2 + 1);
    for (i = 0; i < mac_len; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[mac[i] >> 4];
        hex[2 * i + 1] = digits[mac[i] & 0xf];
    }
    hex[2 * mac_len] = '\0';
    return hex;
}

int cr_console_csrf_valid(apr_pool_t *p, const unsigned char *secret,
                          apr_size_t secret_len, const char *user,
                          const char *token)
{
    const char *expected = cr_console_csrf_token(p, secret, secret_len, user);

    if (expected == NULL || token == NULL
        || strlen(token) != strlen(expected)) {
        return 0;
    }
    return CRYPTO_memcmp(expected, token, strlen(expected)) == 0;
}

/* Length of host[:port] without the scheme's default port. */
static apr_size_t without_default_port(const char *scheme,
                                       apr_size_t scheme_len,
                                       const char *hostport, apr_size_t len)
{
    const char *port = NULL;

    if (scheme_len == 4 && strncasecmp(scheme, "http", 4) == 0) {
        port = ":80";
    }
    else if (scheme_len == 5 && strncasecmp(scheme, "https", 5) == 0) {
        port = ":443";
    }
    if (port && len > strlen(port)
        && strncmp(hostport + len - strlen(port), port, strlen(port)) == 0) {
        len -= strlen(port);
    }
    return len;
}

int cr_console_same_origin(const char *url, const char *host)
{
    const char *scheme_end, *authority, *end;
    apr_size_t url_len, host_len;

    if (url == NULL || host == NULL || *host == '\0') {
        return 0;
    }
    scheme_end = strstr(url, "://");
    if (scheme_end == NULL || scheme_end == url) {
        return 0;       /* "null", a relative or a malformed URL */
    }
    for (end = url; end < scheme_end; end++) {
        if (!apr_isalnum(*end) && *end != '+' && *end != '-' && *end != '.') {
            return 0;
        }
    }
    authority = scheme_end + 3;
    end = authority + strcspn(authority, "/?#");
    if (end == authority || memchr(authority, '@', end - authority)) {
        return 0;       /* no host, or credentials in it: not ours */
    }
    url_len = without_default_port(url, scheme_end - url, authority,
                                   end - authority);
    host_len = without_default_port(url, scheme_end - url, host,
                                    strlen(host));
    return url_len == host_len && strncasecmp(authority, host, url_len) == 0;
}

int cr_console_parse_limit(const char *s, apr_int64_t *value)
{
    apr_int64_t n = 0;
    const char *c, *end;

    if (s == NULL) {
        *value = CR_KEY_LIMIT_UNSET;
        return 1;
    }
    while (apr_isspace(*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && apr_isspace(end[-1])) {
        end--;
    }
    if (end == s) {
        *value = CR_KEY_LIMIT_UNSET;
        return 1;
    }
    for (c = s; c < end; c++) {
        if (!apr_isdigit(*c)) {
            return 0;
        }
        n = n * 10 + (*c - '0');
        if (n > CR_CONSOLE_MAX_TOKENS) {
            return 0;
        }
    }
    *value = n;
    return 1;
}

int cr_console_parse_period(const char *s, cr_quota_period_e *period)
{
    int parsed;

    if (s == NULL || *s == '\0') {
        *period = CR_QUOTA_UNSET;
        return 1;
    }
    parsed = cr_key_parse_quota_period(s);
    if (parsed < 0) {
        return 0;
    }
    *period = (cr_quota_period_e)parsed;
    return 1;
}

cr_quota_period_e cr_console_key_period(const cr_key_record_t *rec)
{
    return rec->quota_period == CR_QUOTA_UNSET ? CR_QUOTA_MONTH
                                               : rec->quota_period;
}

/* ---------------------------------------------------------------------
 * Static assets.
 */
static const char app_css[] =
":root{--bg:#f5f6fa;--card:#fff;--text:#1f2330;--muted:#667085;"
"--line:#e4e7ec;--primary:#4f46e5;--primary-dark:#4338ca;--danger:#d92d20;"
"--ok-bg:#ecfdf3;--ok:#067647;--warn-bg:#fffaeb;--warn:#b54708;"
"--err-bg:#fef3f2;--radius:12px;"
"--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\","
"monospace}\n"
"*{box-sizing:border-box}\n"
"html{-webkit-text-size-adjust:100%}\n"
"body{margin:0;background:var(--bg);color:var(--text);font:15px/1.55 "
"system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,"
"\"PingFang SC\",\"Hiragino Sans GB\",\"Microsoft YaHei\","
"\"Noto Sans CJK SC\",\"WenQuanYi Micro Hei\",sans-serif}\n"
"a{color:var(--primary)}\n"
"code,.mono{font-family:var(--mono);font-size:.9em}\n"
".wrap{max-width:1280px;margin:0 auto;padding:0 20px}\n"
".topbar{background:#111827;color:#e5e7eb}\n"
".topbar .wrap{display:flex;align-items:center;justify-content:"
"space-between;gap:16px;min-height:56px;flex-wrap:wrap}\n"
".brand{color:#fff;text-decoration:none;font-weight:650;font-size:17px;"
"display:flex;align-items:center;gap:10px}\n"
".logo{display:inline-block;width:22px;height:22px;border-radius:6px;"
"background:linear-gradient(135deg,#818cf8,#4f46e5)}\n"
".tools{display:flex;align-items:center;gap:18px;font-size:14px;"
"flex-wrap:wrap}\n"
".user{color:#9ca3af}.user strong{color:#e5e7eb;font-weight:600}\n"
".lang{display:flex;border:1px solid #374151;border-radius:8px;"
"overflow:hidden}\n"
".lang a{color:#d1d5db;text-decoration:none;padding:4px 12px}\n"
".lang a[aria-current]{background:#374151;color:#fff}\n"
"main.wrap{padding:28px 20px 48px}\n"
".card{background:var(--card);border:1px solid var(--line);"
"border-radius:var(--radius);box-shadow:0 1px 2px rgba(16,24,40,.05);"
"padding:24px}\n"
".card+.card{margin-top:20px}\n"
".narrow{max-width:640px;margin:0 auto}\n"
"h1{font-size:22px;margin:0 0 4px;font-weight:650}\n"
".muted{color:var(--muted);margin:0}\n"
".head{display:flex;justify-content:space-between;align-items:flex-start;"
"gap:16px;flex-wrap:wrap;margin-bottom:18px}\n"
".btn{display:inline-flex;align-items:center;justify-content:center;"
"gap:6px;font:inherit;font-weight:600;font-size:14px;line-height:1;"
"padding:10px 16px;border-radius:8px;border:1px solid var(--line);"
"background:#fff;color:var(--text);cursor:pointer;text-decoration:none;"
"white-space:nowrap}\n"
".btn:hover{background:#f9fafb}\n"
".btn:focus-visible,input:focus-visible,select:focus-visible,"
"summary:focus-visible{outline:3px solid #c7d2fe;outline-offset:1px}\n"
".btn.primary{background:var(--primary);border-color:var(--primary);"
"color:#fff}\n"
".btn.primary:hover{background:var(--primary-dark)}\n"
".btn.danger{color:var(--danger);border-color:#fecdca}\n"
".btn.danger:hover{background:var(--err-bg)}\n"
".btn.danger.solid{background:var(--danger);color:#fff;"
"border-color:var(--danger)}\n"
".btn.small{padding:6px 12px;font-size:13px}\n"
"details.create{margin:0 0 20px}\n"
"details.create>summary{list-style:none;display:inline-flex}\n"
"details.create>summary::-webkit-details-marker{display:none}\n"
"details.create[open]>summary{background:var(--primary-dark)}\n"
".create-form{margin-top:14px;border:1px solid var(--line);"
"border-radius:10px;padding:18px;background:#fafbff}\n"
".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,"
"1fr));gap:16px}\n"
"label{display:flex;flex-direction:column;gap:6px;font-weight:600;"
"font-size:14px}\n"
"label small{font-weight:400;color:var(--muted);font-size:12.5px}\n"
"input,select{font:inherit;font-weight:400;padding:9px 11px;"
"border:1px solid #d0d5dd;border-radius:8px;background:#fff;"
"color:var(--text);width:100%}\n"
".form-actions{margin-top:16px;display:flex;gap:10px}\n"
".flash{border-radius:10px;padding:12px 16px;margin-bottom:18px;"
"border:1px solid}\n"
".flash.ok{background:var(--ok-bg);color:var(--ok);border-color:#abefc6}\n"
".flash.err{background:var(--err-bg);color:var(--danger);"
"border-color:#fecdca}\n"
".table-wrap{overflow-x:auto}\n"
"table{width:100%;border-collapse:collapse;font-size:14px}\n"
"th{text-align:left;font-size:12px;text-transform:uppercase;"
"letter-spacing:.04em;color:var(--muted);font-weight:600;"
"padding:10px 8px;border-bottom:1px solid var(--line);"
"vertical-align:bottom}\n"
"td{padding:12px 8px;border-bottom:1px solid var(--line);vertical-align:"
"middle}\n"
"tbody tr:last-child td{border-bottom:0}\n"
"tr.inactive td{color:var(--muted)}\n"
".name{font-weight:600;word-break:break-word}\n"
"table.keys td:first-child{min-width:150px}\n"
"table.keys code{white-space:nowrap}\n"
".hint{display:block;color:var(--muted);font-family:var(--mono);"
"font-size:12px;white-space:nowrap}\n"
".chip{display:inline-block;font-family:var(--mono);font-size:12px;"
"background:#f2f4f7;border:1px solid var(--line);border-radius:6px;"
"padding:1px 7px;margin:2px 4px 2px 0;white-space:nowrap}\n"
".badge{display:inline-block;border-radius:999px;padding:2px 10px;"
"font-size:12.5px;font-weight:600;white-space:nowrap}\n"
".badge.active{background:var(--ok-bg);color:var(--ok)}\n"
".badge.revoked{background:#f2f4f7;color:#475467}\n"
".badge.expired{background:var(--warn-bg);color:var(--warn)}\n"
"td.actions{text-align:right}\n"
"td.actions form{margin:0}\n"
".empty{text-align:center;color:var(--muted);padding:36px 12px}\n"
"time span{white-space:nowrap}\n"
"table.keys time span{display:block}\n"
"table.keys .clock{color:var(--muted);font-size:12.5px}\n"
".warning{display:flex;gap:12px;background:var(--warn-bg);color:#93370d;"
"border:1px solid #fedf89;border-radius:10px;padding:14px 16px;"
"margin:16px 0 20px;font-weight:500}\n"
".warning .icon{font-size:18px;line-height:1.3}\n"
".keybox{display:flex;gap:10px;margin-top:6px}\n"
".keybox input{font-family:var(--mono);font-size:15px;background:#f9fafb;"
"letter-spacing:.01em}\n"
".copy-status{min-height:1.5em;margin:8px 0 0;color:var(--ok);"
"font-size:14px}\n"
".facts{display:grid;grid-template-columns:max-content 1fr;gap:8px 24px;"
"margin:20px 0 24px;font-size:14px}\n"
".facts dt{color:var(--muted)}.facts dd{margin:0}\n"
".ok-title{display:flex;align-items:center;gap:10px}\n"
".ok-title .tick{display:inline-flex;width:28px;height:28px;"
"border-radius:50%;background:var(--ok-bg);color:var(--ok);"
"align-items:center;justify-content:center;font-size:16px}\n"
".row{display:flex;gap:10px;flex-wrap:wrap;margin-top:20px}\n"
".sr{position:absolute;width:1px;height:1px;overflow:hidden;"
"clip:rect(0 0 0 0);white-space:nowrap}\n"
"data{font-variant-numeric:tabular-nums}\n"
"td .period,td .default{color:var(--muted);font-size:12.5px}\n"
"td.used .period{display:block}\n"
".share{display:inline-block;margin-left:6px;font-size:12px;"
"border-radius:999px;padding:0 7px;background:#f2f4f7;color:#475467}\n"
".share.full{background:var(--err-bg);color:var(--danger)}\n"
".field-error{color:var(--danger)!important;font-weight:600!important}\n"
"input[aria-invalid=true],select[aria-invalid=true]{border-color:"
"var(--danger);background:var(--err-bg)}\n"
"@media (max-width:760px){\n"
"td.used .period{display:inline}\n"
"main.wrap{padding:16px 12px 32px}.card{padding:16px}\n"
"table,tbody,tr,td{display:block;width:100%}\n"
"thead{display:none}\n"
"tr{border:1px solid var(--line);border-radius:10px;margin-bottom:12px;"
"padding:6px 0}\n"
"td{border:0;padding:6px 12px;display:flex;gap:12px;"
"justify-content:space-between;text-align:right}\n"
"table.keys time span{display:inline}\n"
"td::before{content:attr(data-label);color:var(--muted);font-size:12px;"
"font-weight:600;text-align:left;flex:none;white-space:nowrap}\n"
"td.tpm::before,td.quota::before,td.used::before{margin-right:auto}\n"
"td.tpm,td.quota,td.used{gap:6px;align-items:baseline}\n"
"td.actions::before{content:none}\n"
"td.actions:empty{display:none}\n"
".keybox{flex-direction:column}\n"
".facts{grid-template-columns:1fr}\n"
"}\n";

static const char app_js[] =
"/* ClawdRouter console: copy button and revoke confirmation. The pages\n"
" * work without this file; it only makes them nicer. */\n"
"(function () {\n"
"  'use strict';\n"
"  function copyKey(button) {\n"
"    var input = document.getElementById(button.getAttribute('data-target'));\n"
"    var status = document.getElementById('copy-status');\n"
"    function say(text) { if (status) { status.textContent = text; } }\n"
"    function selectIt() {\n"
"      var copied = false;\n"
"      input.focus();\n"
"      input.select();\n"
"      input.setSelectionRange(0, input.value.length);\n"
"      try { copied = document.execCommand('copy'); } catch (e) { copied = false; }\n"
"      say(button.getAttribute(copied ? 'data-copied' : 'data-selected'));\n"
"    }\n"
"    if (navigator.clipboard && window.isSecureContext) {\n"
"      navigator.clipboard.writeText(input.value).then(function () {\n"
"        say(button.getAttribute('data-copied'));\n"
"      }, selectIt);\n"
"    } else {\n"
"      selectIt();\n"
"    }\n"
"  }\n"
"  var copy = document.getElementById('copy-key');\n"
"  if (copy) {\n"
"    copy.addEventListener('click', function () { copyKey(copy); });\n"
"    var key = document.getElementById(copy.getAttribute('data-target'));\n"
"    key.addEventListener('focus', function () { key.select(); });\n"
"  }\n"
"  var forms = document.querySelectorAll('form[data-confirm]');\n"
"  Array.prototype.forEach.call(forms, function (form) {\n"
"    form.addEventListener('submit', function (event) {\n"
"      if (!window.confirm(form.getAttribute('data-confirm'))) {\n"
"        event.preventDefault();\n"
"        return;\n"
"      }\n"
"      form.querySelector('input[name=confirm]').value = '1';\n"
"    });\n"
"  });\n"
"})();\n";

const char *cr_console_asset(const char *name, const char **content_type)
{
    if (name == NULL) {
        return NULL;
    }
    if (strcmp(name, "app.css") == 0) {
        *content_type = "text/css; charset=utf-8";
        return app_css;
    }
    if (strcmp(name, "app.js") == 0) {
        *content_type = "text/javascript; charset=utf-8";
        return app_js;
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * Pages.  A page is a list of string pieces joined at the end.
 */
typedef struct {
    apr_pool_t *p;
    apr_array_header_t *parts;
    const cr_console_ctx_t *ctx;
} page_t;

static void put(page_t *pg, const char *s)
{
    APR_ARRAY_PUSH(pg->parts, const char *) = s;
}

/* Escaped text. */
static void put_text(page_t *pg, const char *s)
{
    put(pg, cr_console_escape_html(pg->p, s));
}

static const char *msg(page_t *pg, int id)
{
    return cr_console_msg(pg->ctx->lang, (cr_console_msg_e)id);
}

/* A catalogue message, escaped (messages are trusted, but cheap safety). */
static void put_msg(page_t *pg, int id)
{
    put_text(pg, msg(pg, id));
}

static const char *self_url(page_t *pg, const char *query)
{
    return cr_console_escape_html(pg->p,
                                  apr_pstrcat(pg->p, pg->ctx->self, query,
                                              NULL));
}

static void put_hidden(page_t *pg, const char *name, const char *value)
{
    put(pg, "<input type=\"hidden\" name=\"");
    put(pg, name);
    put(pg, "\" value=\"");
    put_text(pg, value);
    put(pg, "\">");
}

static page_t *page_begin(apr_pool_t *p, const cr_console_ctx_t *ctx,
                          cr_console_msg_e title)
{
    page_t *pg = apr_pcalloc(p, sizeof(*pg));
    int zh = ctx->lang == CR_CONSOLE_ZH;

    pg->p = p;
    pg->ctx = ctx;
    pg->parts = apr_array_make(p, 256, sizeof(const char *));
    put(pg, "<!DOCTYPE html>\n<html lang=\"");
    put(pg, zh ? "zh-CN" : "en");
    put(pg, "\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n"
        "<meta name=\"referrer\" content=\"same-origin\">\n<title>");
    if (title != CR_MSG_TITLE) {
        put_msg(pg, title);
        put(pg, " · ");
    }
    put_msg(pg, CR_MSG_TITLE);
    put(pg, "</title>\n<link rel=\"icon\" href=\"data:image/svg+xml,"
        "%3Csvg xmlns=%27http://www.w3.org/2000/svg%27 viewBox=%270 0 16 16"
        "%27%3E%3Crect width=%2716%27 height=%2716%27 rx=%274%27 "
        "fill=%27%234f46e5%27/%3E%3C/svg%3E\">\n"
        "<link rel=\"stylesheet\" href=\"");
    put(pg, self_url(pg, "?asset=app.css"));
    put(pg, "\">\n<script src=\"");
    put(pg, self_url(pg, "?asset=app.js"));
    put(pg, "\" defer></script>\n</head>\n<body>\n"
        "<header class=\"topbar\"><div class=\"wrap\">\n<a class=\"brand\" "
        "href=\"");
    put(pg, self_url(pg, ""));
    put(pg, "\"><span class=\"logo\" aria-hidden=\"true\"></span>"
        "ClawdRouter</a>\n<div class=\"tools\">");
    if (ctx->user) {
        put(pg, "<span class=\"user\">");
        put_msg(pg, CR_MSG_SIGNED_IN_AS);
        put(pg, " <strong>");
        put_text(pg, ctx->user);
        put(pg, "</strong></span>");
    }
    put(pg, "<nav class=\"lang\" aria-label=\"");
    put_msg(pg, CR_MSG_LANGUAGE);
    put(pg, "\"><a href=\"");
    put(pg, self_url(pg, "?lang=zh"));
    put(pg, zh ? "\" lang=\"zh-CN\" aria-current=\"true\">"
               : "\" lang=\"zh-CN\">");
    put(pg, "中文</a><a href=\"");
    put(pg, self_url(pg, "?lang=en"));
    put(pg, zh ? "\" lang=\"en\">" : "\" lang=\"en\" aria-current=\"true\">");
    put(pg, "English</a></nav></div>\n</div></header>\n<main class=\"wrap\">\n");
    return pg;
}

static const char *page_end(page_t *pg)
{
    put(pg, "</main>\n</body>\n</html>\n");
    return apr_array_pstrcat(pg->p, pg->parts, 0);
}

/* "2026-11-27 17:32 UTC" inside a <time>. */
static void put_time(page_t *pg, apr_time_t t)
{
    apr_time_exp_t tm;
    const char *iso = cr_time_format_rfc3339(pg->p, t);

    apr_time_exp_gmt(&tm, t);
    put(pg, "<time datetime=\"");
    put_text(pg, iso);
    put(pg, "\">");
    put(pg, apr_psprintf(pg->p, "<span>%04d-%02d-%02d</span> "
                         "<span class=\"clock\">%02d:%02d UTC</span>",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min));
    put(pg, "</time>");
}

static int is_all_models(const cr_key_record_t *rec)
{
    return rec->models && rec->models->nelts == 1
           && strcmp(APR_ARRAY_IDX(rec->models, 0, const char *), "*") == 0;
}

static void put_models(page_t *pg, const cr_key_record_t *rec)
{
    int i;

    if (rec->models == NULL || rec->models->nelts == 0) {
        put(pg, "—");
        return;
    }
    if (is_all_models(rec)) {
        put(pg, "<span class=\"chip\" title=\"*\">");
        put_msg(pg, CR_MSG_ALL_MODELS);
        put(pg, "</span>");
        return;
    }
    for (i = 0; i < rec->models->nelts; i++) {
        put(pg, "<span class=\"chip\">");
        put_text(pg, APR_ARRAY_IDX(rec->models, i, const char *));
        put(pg, "</span>");
    }
}

static void put_rpm(page_t *pg, const cr_key_record_t *rec)
{
    if (rec->rpm == CR_KEY_RPM_UNSET) {
        put_msg(pg, CR_MSG_RPM_DEFAULT);
    }
    else if (rec->rpm == 0) {
        put_msg(pg, CR_MSG_RPM_UNLIMITED);
    }
    else {
        put(pg, apr_psprintf(pg->p, "%" APR_INT64_T_FMT, rec->rpm));
    }
}

/* n >= 0 in digits grouped by three: "1,250,000". */
static const char *grouped(apr_pool_t *p, apr_int64_t n)
{
    char digits[32], out[48];
    int len, i, o = 0;

    len = (int)apr_snprintf(digits, sizeof(digits), "%" APR_INT64_T_FMT,
                            n < 0 ? 0 : n);
    for (i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return apr_pstrdup(p, out);
}

/* A count as a number: made from the integer, never text from a record,
 * in a <data> whose value (plain digits) a script or a test can read. */
static void put_number(page_t *pg, const char *cls, apr_int64_t n)
{
    put(pg, apr_psprintf(pg->p, "<data class=\"%s\" value=\"%"
                         APR_INT64_T_FMT "\">%s</data>", cls, n,
                         grouped(pg->p, n)));
}

/* The key's tpm, "Default N" when it sets none and ClawdRouterDefaultTPM
 * applies, else "No limit". */
static void put_tpm(page_t *pg, const cr_key_record_t *rec)
{
    if (rec->tpm > 0) {
        put_number(pg, "tpm", rec->tpm);
    }
    else if (rec->tpm == CR_KEY_LIMIT_UNSET && pg->ctx->default_tpm > 0) {
        put(pg, "<span class=\"default\">");
        put_msg(pg, CR_MSG_TPM_DEFAULT);
        put(pg, " ");
        put_number(pg, "tpm", pg->ctx->default_tpm);
        put(pg, "</span>");
    }
    else {
        put_msg(pg, CR_MSG_RPM_UNLIMITED);
    }
}

static int period_msg(cr_quota_period_e period, int used)
{
    switch (period) {
    case CR_QUOTA_DAY:
        return used ? CR_MSG_USED_TODAY : CR_MSG_PER_DAY;
    case CR_QUOTA_TOTAL:
        return used ? CR_MSG_USED_TOTAL : CR_MSG_IN_TOTAL;
    default:
        return used ? CR_MSG_USED_MONTH : CR_MSG_PER_MONTH;
    }
}

/* "N per month (UTC)", or "No limit". */
static void put_quota(page_t *pg, const cr_key_record_t *rec)
{
    if (rec->quota > 0) {
        put_number(pg, "quota", rec->quota);
        put(pg, " <span class=\"period\">");
        put_msg(pg, period_msg(cr_console_key_period(rec), 0));
        put(pg, "</span>");
    }
    else {
        put_msg(pg, CR_MSG_RPM_UNLIMITED);
    }
}

/* "N this month", with the share of the quota when there is one. */
static void put_used(page_t *pg, const cr_key_record_t *rec,
                     const apr_int64_t *used)
{
    if (used == NULL || *used < 0) {
        put(pg, "—");
        return;
    }
    put_number(pg, "used", *used);
    put(pg, " <span class=\"period\">");
    put_msg(pg, period_msg(cr_console_key_period(rec), 1));
    put(pg, "</span>");
    if (rec->quota > 0) {
        apr_int64_t pct = *used >= rec->quota ? 100
                          : (*used * 100) / rec->quota;
        put(pg, apr_psprintf(pg->p, " <span class=\"share%s\">%"
                             APR_INT64_T_FMT "%%</span>",
                             *used >= rec->quota ? " full" : "", pct));
    }
}

static void put_expires(page_t *pg, const cr_key_record_t *rec)
{
    if (rec->expires_at == 0) {
        put_msg(pg, CR_MSG_NEVER);
    }
    else {
        put_time(pg, rec->expires_at);
    }
}

static void put_name(page_t *pg, const cr_key_record_t *rec)
{
    if (rec->name && *rec->name) {
        put_text(pg, rec->name);
    }
    else {
        put(pg, "—");
    }
}

static void put_cell(page_t *pg, int label, const char *cls)
{
    put(pg, "<td data-label=\"");
    put_msg(pg, label);
    if (cls) {
        put(pg, "\" class=\"");
        put(pg, cls);
    }
    put(pg, "\">");
}

static void put_revoke_form(page_t *pg, const cr_key_record_t *rec,
                            int confirmed, int solid)
{
    put(pg, "<form method=\"post\" action=\"");
    put(pg, self_url(pg, ""));
    put(pg, "\"");
    if (!confirmed) {
        /* app.js asks with confirm(); without it, the server asks. */
        put(pg, " class=\"revoke\" data-confirm=\"");
        put_text(pg, apr_pstrcat(pg->p, msg(pg, CR_MSG_CONFIRM_REVOKE), "\n",
                                 rec->name && *rec->name ? rec->name : "",
                                 rec->name && *rec->name ? " (" : "(",
                                 rec->id, ")\n\n",
                                 msg(pg, CR_MSG_CONFIRM_REVOKE_TEXT), NULL));
        put(pg, "\"");
    }
    put(pg, ">");
    put_hidden(pg, "csrf", pg->ctx->csrf);
    put_hidden(pg, "action", "revoke");
    put_hidden(pg, "id", rec->id);
    put_hidden(pg, "confirm", confirmed ? "1" : "");
    put(pg, solid ? "<button type=\"submit\" class=\"btn danger solid\">"
                  : "<button type=\"submit\" class=\"btn danger small\">");
    put_msg(pg, CR_MSG_REVOKE);
    put(pg, "</button></form>");
}

static void put_option(page_t *pg, const char *value, int label,
                       const char *selected)
{
    put(pg, "<option value=\"");
    put_text(pg, value);
    put(pg, selected && strcmp(selected, value) == 0 ? "\" selected>"
                                                     : "\">");
    put_msg(pg, label);
    put(pg, "</option>");
}

/* A whole-number field; the one an error is about says so next to it. */
static void put_number_input(page_t *pg, const cr_console_form_t *form,
                             const char *name, int label, int hint,
                             const char *value, const char *max, int error)
{
    int invalid = form && form->invalid && strcmp(form->invalid, name) == 0;

    put(pg, "<label>");
    put_msg(pg, label);
    put(pg, "<input name=\"");
    put(pg, name);
    put(pg, "\" type=\"number\" min=\"0\" max=\"");
    put(pg, max);
    put(pg, "\" step=\"1\" inputmode=\"numeric\" value=\"");
    put_text(pg, form && value ? value : "");
    if (invalid) {
        put(pg, apr_pstrcat(pg->p, "\" aria-invalid=\"true\" "
                            "aria-describedby=\"error-", name, NULL));
    }
    put(pg, "\"><small>");
    put_msg(pg, hint);
    put(pg, "</small>");
    if (invalid) {
        put(pg, apr_pstrcat(pg->p, "<small class=\"field-error\" "
                            "id=\"error-", name, "\">", NULL));
        put_msg(pg, error);
        put(pg, "</small>");
    }
    put(pg, "</label>\n");
}

static void put_create_form(page_t *pg, const cr_console_form_t *form)
{
    const char *period = form && form->quota_period && *form->quota_period
                         ? form->quota_period : "month";
    int period_invalid = form && form->invalid
                         && strcmp(form->invalid, "quota_period") == 0;

    put(pg, "<details class=\"create\" id=\"new\"");
    put(pg, form ? " open>" : ">");
    put(pg, "<summary class=\"btn primary\"><span aria-hidden=\"true\">+"
        "</span> ");
    put_msg(pg, CR_MSG_NEW_KEY);
    put(pg, "</summary>\n<form method=\"post\" action=\"");
    put(pg, self_url(pg, ""));
    put(pg, "\" class=\"create-form\" autocomplete=\"off\">");
    put_hidden(pg, "csrf", pg->ctx->csrf);
    put_hidden(pg, "action", "create");
    put(pg, "\n<div class=\"grid\">\n<label>");
    put_msg(pg, CR_MSG_NAME);
    put(pg, "<input name=\"name\" maxlength=\"128\" placeholder=\"");
    put_msg(pg, CR_MSG_NAME_HINT);
    put(pg, "\" value=\"");
    put_text(pg, form ? form->name : "");
    put(pg, "\"></label>\n<label>");
    put_msg(pg, CR_MSG_MODELS);
    put(pg, "<input name=\"models\" required spellcheck=\"false\" value=\"");
    put_text(pg, form && form->models ? form->models : "*");
    put(pg, "\"><small>");
    put_msg(pg, CR_MSG_MODELS_HINT);
    put(pg, "</small></label>\n");
    put_number_input(pg, form, "rpm", CR_MSG_RPM, CR_MSG_RPM_HINT,
                     form ? form->rpm : NULL, "999999999", CR_MSG_ERR_RPM);
    put(pg, "<label>");
    put_msg(pg, CR_MSG_EXPIRES);
    put(pg, "<select name=\"expires\">");
    put_option(pg, "", CR_MSG_NEVER, form ? form->expires : "");
    put_option(pg, "+1d", CR_MSG_DAYS_1, form ? form->expires : NULL);
    put_option(pg, "+7d", CR_MSG_DAYS_7, form ? form->expires : NULL);
    put_option(pg, "+30d", CR_MSG_DAYS_30, form ? form->expires : NULL);
    put_option(pg, "+90d", CR_MSG_DAYS_90, form ? form->expires : NULL);
    put_option(pg, "+365d", CR_MSG_DAYS_365, form ? form->expires : NULL);
    put(pg, "</select></label>\n");
    put_number_input(pg, form, "tpm", CR_MSG_TPM, CR_MSG_TPM_HINT,
                     form ? form->tpm : NULL, "1000000000000",
                     CR_MSG_ERR_TPM);
    put_number_input(pg, form, "quota", CR_MSG_QUOTA, CR_MSG_QUOTA_HINT,
                     form ? form->quota : NULL, "1000000000000",
                     CR_MSG_ERR_QUOTA);
    put(pg, "<label>");
    put_msg(pg, CR_MSG_QUOTA_PERIOD);
    put(pg, period_invalid ? "<select name=\"quota_period\" "
                             "aria-invalid=\"true\" "
                             "aria-describedby=\"error-quota_period\">"
                           : "<select name=\"quota_period\">");
    put_option(pg, "month", CR_MSG_PER_MONTH, period);
    put_option(pg, "day", CR_MSG_PER_DAY, period);
    put_option(pg, "total", CR_MSG_IN_TOTAL, period);
    put(pg, "</select>");
    if (period_invalid) {
        put(pg, "<small class=\"field-error\" id=\"error-quota_period\">");
        put_msg(pg, CR_MSG_ERR_QUOTA_PERIOD);
        put(pg, "</small>");
    }
    put(pg, "</label>\n</div>\n<div class=\"form-actions\">"
        "<button type=\"submit\" class=\"btn primary\">");
    put_msg(pg, CR_MSG_CREATE);
    put(pg, "</button></div>\n</form></details>\n");
}

static void put_key_row(page_t *pg, const cr_key_record_t *rec,
                        const apr_int64_t *used)
{
    cr_key_usability_e usable = cr_key_usability(rec, pg->ctx->now);

    put(pg, "<tr data-id=\"");
    put_text(pg, rec->id);
    put(pg, usable == CR_KEY_USABLE ? "\">" : "\" class=\"inactive\">");
    put_cell(pg, CR_MSG_NAME, NULL);
    put(pg, "<div><span class=\"name\">");
    put_name(pg, rec);
    put(pg, "</span>");
    if (rec->hint) {
        put(pg, "<span class=\"hint\">");
        put_text(pg, rec->hint);
        put(pg, "</span>");
    }
    put(pg, "</div></td>");
    put_cell(pg, CR_MSG_ID, NULL);
    put(pg, "<code>");
    put_text(pg, rec->id);
    put(pg, "</code></td>");
    put_cell(pg, CR_MSG_MODELS, NULL);
    put_models(pg, rec);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_RPM, NULL);
    put_rpm(pg, rec);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_TPM, "tpm");
    put_tpm(pg, rec);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_QUOTA, "quota");
    put_quota(pg, rec);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_USED, "used");
    put_used(pg, rec, used);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_CREATED, NULL);
    put_time(pg, rec->created_at);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_EXPIRES, NULL);
    put_expires(pg, rec);
    put(pg, "</td>");
    put_cell(pg, CR_MSG_STATUS, NULL);
    switch (usable) {
    case CR_KEY_USABLE:
        put(pg, "<span class=\"badge active\">");
        put_msg(pg, CR_MSG_ACTIVE);
        break;
    case CR_KEY_IS_REVOKED:
        put(pg, "<span class=\"badge revoked\">");
        put_msg(pg, CR_MSG_REVOKED);
        break;
    default:
        put(pg, "<span class=\"badge expired\">");
        put_msg(pg, CR_MSG_EXPIRED);
        break;
    }
    put(pg, "</span></td>");
    put_cell(pg, CR_MSG_ACTIONS, "actions");
    if (rec->status == CR_KEY_ACTIVE) {
        put_revoke_form(pg, rec, 0, 0);
    }
    put(pg, "</td></tr>\n");
}

static void put_flash(page_t *pg, int id, int ok)
{
    if (id == CR_CONSOLE_NO_MSG) {
        return;
    }
    put(pg, ok ? "<div class=\"flash ok\" role=\"status\">"
               : "<div class=\"flash err\" role=\"alert\">");
    put_msg(pg, id);
    put(pg, "</div>\n");
}

const char *cr_console_render_list(apr_pool_t *p,
                                   const cr_console_ctx_t *ctx,
                                   const apr_array_header_t *records,
                                   const apr_int64_t *used,
                                   int notice, int error,
                                   const cr_console_form_t *form)
{
    page_t *pg = page_begin(p, ctx, CR_MSG_KEYS);
    int i;

    put_flash(pg, notice, 1);
    put_flash(pg, error, 0);
    put(pg, "<section class=\"card\">\n<div class=\"head\"><div><h1>");
    put_msg(pg, CR_MSG_KEYS);
    put(pg, "</h1><p class=\"muted\">");
    put_msg(pg, CR_MSG_KEYS_INTRO);
    put(pg, "</p></div></div>\n");
    put_create_form(pg, form);
    put(pg, "<div class=\"table-wrap\"><table class=\"keys\">\n<thead><tr>");
    {
        static const int heads[] = {CR_MSG_NAME, CR_MSG_ID, CR_MSG_MODELS,
                                    CR_MSG_RPM, CR_MSG_TPM, CR_MSG_QUOTA,
                                    CR_MSG_USED, CR_MSG_CREATED,
                                    CR_MSG_EXPIRES, CR_MSG_STATUS};
        apr_size_t h;
        for (h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
            put(pg, "<th scope=\"col\">");
            put_msg(pg, heads[h]);
            put(pg, "</th>");
        }
        put(pg, "<th scope=\"col\"><span class=\"sr\">");
        put_msg(pg, CR_MSG_ACTIONS);
        put(pg, "</span></th>");
    }
    put(pg, "</tr></thead>\n<tbody>\n");
    if (records == NULL || records->nelts == 0) {
        put(pg, "<tr><td colspan=\"11\" class=\"empty\">");
        put_msg(pg, CR_MSG_NO_KEYS);
        put(pg, "</td></tr>\n");
    }
    else {
        /* Newest first: the key just made is at the top. */
        for (i = records->nelts - 1; i >= 0; i--) {
            put_key_row(pg, APR_ARRAY_IDX(records, i,
                                          const cr_key_record_t *),
                        used ? &used[i] : NULL);
        }
    }
    put(pg, "</tbody></table></div>\n</section>\n");
    return page_end(pg);
}

static void put_fact(page_t *pg, int label)
{
    put(pg, "<dt>");
    put_msg(pg, label);
    put(pg, "</dt><dd>");
}

const char *cr_console_render_created(apr_pool_t *p,
                                      const cr_console_ctx_t *ctx,
                                      const cr_key_record_t *rec,
                                      const char *key)
{
    page_t *pg = page_begin(p, ctx, CR_MSG_CREATED_TITLE);

    put(pg, "<section class=\"card narrow created\">\n<h1 class=\"ok-title\">"
        "<span class=\"tick\" aria-hidden=\"true\">✓</span>");
    put_msg(pg, CR_MSG_CREATED_TITLE);
    put(pg, "</h1>\n<div class=\"warning\" role=\"alert\"><span class=\"icon\""
        " aria-hidden=\"true\">⚠</span><span>");
    put_msg(pg, CR_MSG_CREATED_WARNING);
    put(pg, "</span></div>\n<label for=\"new-key\">");
    put_msg(pg, CR_MSG_KEY_LABEL);
    put(pg, "</label>\n<div class=\"keybox\"><input id=\"new-key\" "
        "type=\"text\" readonly spellcheck=\"false\" autocomplete=\"off\" "
        "value=\"");
    put_text(pg, key);
    put(pg, "\"><button type=\"button\" class=\"btn primary\" id=\"copy-key\""
        " data-target=\"new-key\" data-copied=\"");
    put_msg(pg, CR_MSG_COPIED);
    put(pg, "\" data-selected=\"");
    put_msg(pg, CR_MSG_SELECTED);
    put(pg, "\">");
    put_msg(pg, CR_MSG_COPY);
    put(pg, "</button></div>\n<p class=\"copy-status\" id=\"copy-status\" "
        "role=\"status\" aria-live=\"polite\"></p>\n<dl class=\"facts\">");
    put_fact(pg, CR_MSG_NAME);
    put_name(pg, rec);
    put(pg, "</dd>");
    put_fact(pg, CR_MSG_ID);
    put(pg, "<code id=\"new-key-id\">");
    put_text(pg, rec->id);
    put(pg, "</code></dd>");
    put_fact(pg, CR_MSG_MODELS);
    put_models(pg, rec);
    put(pg, "</dd>");
    put_fact(pg, CR_MSG_RPM);
    put_rpm(pg, rec);
    put(pg, "</dd>");
    put_fact(pg, CR_MSG_TPM);
    put(pg, "<span id=\"new-key-tpm\">");
    put_tpm(pg, rec);
    put(pg, "</span></dd>");
    put_fact(pg, CR_MSG_QUOTA);
    put(pg, "<span id=\"new-key-quota\">");
    put_quota(pg, rec);
    put(pg, "</span></dd>");
    put_fact(pg, CR_MSG_EXPIRES);
    put_expires(pg, rec);
    put(pg, "</dd></dl>\n<a class=\"btn\" id=\"back\" href=\"");
    put(pg, self_url(pg, ""));
    put(pg, "\">");
    put_msg(pg, CR_MSG_BACK);
    put(pg, "</a>\n</section>\n");
    return page_end(pg);
}

const char *cr_console_render_confirm_revoke(apr_pool_t *p,
                                             const cr_console_ctx_t *ctx,
                                             const cr_key_record_t *rec)
{
    page_t *pg = page_begin(p, ctx, CR_MSG_CONFIRM_REVOKE);

    put(pg, "<section class=\"card narrow\">\n<h1>");
    put_msg(pg, CR_MSG_CONFIRM_REVOKE);
    put(pg, "</h1>\n<dl class=\"facts\">");
    put_fact(pg, CR_MSG_NAME);
    put_name(pg, rec);
    put(pg, "</dd>");
    put_fact(pg, CR_MSG_ID);
    put(pg, "<code>");
    put_text(pg, rec->id);
    put(pg, "</code></dd>");
    put_fact(pg, CR_MSG_MODELS);
    put_models(pg, rec);
    put(pg, "</dd></dl>\n<p>");
    put_msg(pg, CR_MSG_CONFIRM_REVOKE_TEXT);
    put(pg, "</p>\n<div class=\"row\">");
    put_revoke_form(pg, rec, 1, 1);
    put(pg, "<a class=\"btn\" href=\"");
    put(pg, self_url(pg, ""));
    put(pg, "\">");
    put_msg(pg, CR_MSG_CANCEL);
    put(pg, "</a></div>\n</section>\n");
    return page_end(pg);
}

const char *cr_console_render_message(apr_pool_t *p,
                                      const cr_console_ctx_t *ctx,
                                      cr_console_msg_e title,
                                      cr_console_msg_e text)
{
    page_t *pg = page_begin(p, ctx, title);

    put(pg, "<section class=\"card narrow\">\n<h1>");
    put_msg(pg, title);
    put(pg, "</h1>\n<p class=\"muted\">");
    put_msg(pg, text);
    put(pg, "</p>\n<div class=\"row\"><a class=\"btn\" href=\"");
    put(pg, self_url(pg, ""));
    put(pg, "\">");
    put_msg(pg, CR_MSG_BACK);
    put(pg, "</a></div>\n</section>\n");
    return page_end(pg);
}
