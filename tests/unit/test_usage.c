/* Licensed under the Apache License, Version 2.0. */

/*
 * test_usage.c: the usage scanner of cr_usage.c, fed every response
 * format in pieces of every size (an event split anywhere), and the
 * taking out of the usage-only chunk as the output filter does it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "cr_usage.h"
#include "../../fuzz/usage_ref.h"

#define OPENAI_CHUNK(delta, finish) \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0," \
    "\"delta\":" delta ",\"finish_reason\":" finish "}]}\n\n"

#define OPENAI_USAGE_CHUNK \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[]," \
    "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7," \
    "\"total_tokens\":18,\"prompt_tokens_details\":{\"cached_tokens\":3}," \
    "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n"

static const char openai_stream_head[] =
    OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    OPENAI_CHUNK("{\"content\":\"Hello \\\"usage\\\":{\"}", "null")
    OPENAI_CHUNK("{}", "\"stop\"");

static const char openai_stream[] =
    OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    OPENAI_CHUNK("{\"content\":\"Hello \\\"usage\\\":{\"}", "null")
    OPENAI_CHUNK("{}", "\"stop\"")
    OPENAI_USAGE_CHUNK
    "data: [DONE]\n\n";

static const char openai_stream_stripped[] =
    OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    OPENAI_CHUNK("{\"content\":\"Hello \\\"usage\\\":{\"}", "null")
    OPENAI_CHUNK("{}", "\"stop\"")
    "data: [DONE]\n\n";

static const char openai_json[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":"
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"a usage: {\\\"prompt_tokens\\\": 99}\",\"usage\":{\"prompt_tokens\":"
    "500}}}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,"
    "\"total_tokens\":14}}";

static const char embeddings_json[] =
    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
    "\"embedding\":[0.1,-0.2,3e-5]}],\"model\":\"text-embedding-3-small\","
    "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}";

static const char responses_json[] =
    "{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\","
    "\"output\":[],\"usage\":{\"input_tokens\":21,\"input_tokens_details\":"
    "{\"cached_tokens\":0},\"output_tokens\":13,\"output_tokens_details\":"
    "{\"reasoning_tokens\":2},\"total_tokens\":34}}";

static const char responses_stream[] =
    "event: response.created\r\n"
    "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\","
    "\"usage\":null}}\r\n\r\n"
    "event: response.output_text.delta\r\n"
    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"}}\"}\r\n"
    "\r\n"
    ": a comment\r\n\r\n"
    "event: response.completed\r\n"
    "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\","
    "\"output\":[{\"usage\":{\"input_tokens\":1000}}],"
    "\"usage\":{\"input_tokens\":21,\"output_tokens\":13,"
    "\"total_tokens\":34}}}\r\n\r\n";

static const char anthropic_json[] =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
    "\"usage\":{\"input_tokens\":9,\"cache_creation_input_tokens\":100,"
    "\"cache_read_input_tokens\":20,\"output_tokens\":5}}";

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
    "\"content\":[],\"usage\":{\"input_tokens\":9,"
    "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":20,"
    "\"output_tokens\":1}}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{},\"usage\":"
    "{\"output_tokens\":15}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/* A data field split over two lines, as SSE allows. */
static const char two_line_data[] =
    "data: {\"choices\":[],\n"
    "data: \"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n";

static const char error_json[] =
    "{\"error\":{\"message\":\"mock error 500\",\"type\":\"server_error\","
    "\"param\":null,\"code\":\"mock_500\"}}";

/* Feed text to a fresh scanner in pieces of size n (0: at cut only). */
static void scan(const char *text, size_t len, cr_usage_format_e fmt,
                 size_t piece, cr_usage_t *u)
{
    size_t off = 0;

    cr_usage_init(u, fmt, 0);
    while (off < len) {
        size_t n = len - off < piece ? len - off : piece;
        ck_assert_uint_eq(cr_usage_feed(u, text + off, n, NULL), n);
        off += n;
    }
}

/* Every piece size and every single cut give the same counts. */
static void check_counts(const char *text, cr_usage_format_e fmt,
                         int seen, apr_int64_t in, apr_int64_t out)
{
    size_t len = strlen(text), piece, cut;
    cr_usage_t u;
    apr_int64_t gi = -1, go = -1;

    for (piece = 1; piece <= len; piece++) {
        scan(text, len, fmt, piece, &u);
        ck_assert_int_eq(cr_usage_result(&u, &gi, &go), seen);
        if (seen) {
            ck_assert_int_eq(gi, in);
            ck_assert_int_eq(go, out);
        }
    }
    for (cut = 0; cut <= len; cut++) {
        cr_usage_init(&u, fmt, 0);
        cr_usage_feed(&u, text, cut, NULL);
        cr_usage_feed(&u, text + cut, len - cut, NULL);
        ck_assert_int_eq(cr_usage_result(&u, &gi, &go), seen);
        if (seen) {
            ck_assert_int_eq(gi, in);
            ck_assert_int_eq(go, out);
        }
    }
}

/* The output filter's use of the signals, over a plain buffer: bytes of an
 * event are held from its start until the scanner says it is kept (or it
 * ends); a usage-only event is dropped.  Returns the bytes the client
 * gets, in out (NUL-terminated). */
static size_t strip(const char *text, size_t len, size_t piece, char *out,
                    cr_usage_t *u)
{
    size_t off = 0, olen = 0, held_from = 0;
    int holding = 0;

    cr_usage_init(u, CR_USAGE_SSE, 1);
    while (off < len) {
        size_t end = off + piece < len ? off + piece : len;
        size_t pos = off;

        while (pos < end) {
            cr_usage_signal_e sig;
            size_t n = cr_usage_feed(u, text + pos, end - pos, &sig);

            if (!holding) {
                memcpy(out + olen, text + pos, n);
                olen += n;
            }
            pos += n;
            switch (sig) {
            case CR_USAGE_SIG_EVENT_START:
                holding = 1;
                held_from = pos;
                break;
            case CR_USAGE_SIG_KEEP:
                memcpy(out + olen, text + held_from, pos - held_from);
                olen += pos - held_from;
                holding = 0;
                break;
            case CR_USAGE_SIG_EVENT_END:
                if (holding && !cr_usage_event_is_usage_only(u)) {
                    memcpy(out + olen, text + held_from, pos - held_from);
                    olen += pos - held_from;
                }
                holding = 0;
                break;
            default:
                break;
            }
        }
        off = end;
    }
    if (holding) {
        memcpy(out + olen, text + held_from, len - held_from);
        olen += len - held_from;
    }
    out[olen] = '\0';
    return olen;
}

static void check_strip(const char *text, const char *expected,
                        apr_int64_t in, apr_int64_t out)
{
    size_t len = strlen(text), piece;
    char *buf = malloc(len + 1);
    cr_usage_t u;
    apr_int64_t gi, go;

    for (piece = 1; piece <= len; piece++) {
        size_t n = strip(text, len, piece, buf, &u);
        ck_assert_uint_eq(n, strlen(expected));
        ck_assert_str_eq(buf, expected);
        ck_assert_int_eq(cr_usage_result(&u, &gi, &go), 1);
        ck_assert_int_eq(gi, in);
        ck_assert_int_eq(go, out);
    }
    free(buf);
}

START_TEST(test_openai_stream)
{
    check_counts(openai_stream, CR_USAGE_SSE, 1, 11, 7);
    /* Without the usage chunk: no usage, nothing guessed. */
    check_counts(openai_stream_head, CR_USAGE_SSE, 0, 0, 0);
}
END_TEST

START_TEST(test_openai_json)
{
    /* Nested "usage" members and text that looks like usage do not
     * count: only the top-level object's. */
    check_counts(openai_json, CR_USAGE_JSON, 1, 9, 5);
}
END_TEST

START_TEST(test_embeddings)
{
    check_counts(embeddings_json, CR_USAGE_JSON, 1, 8, 0);
}
END_TEST

START_TEST(test_responses)
{
    check_counts(responses_json, CR_USAGE_JSON, 1, 21, 13);
    check_counts(responses_stream, CR_USAGE_SSE, 1, 21, 13);
}
END_TEST

START_TEST(test_anthropic)
{
    /* Cache tokens count as input. */
    check_counts(anthropic_json, CR_USAGE_JSON, 1, 129, 5);
    /* message_start's input, the last cumulative message_delta's output
     * (overwritten, not added). */
    check_counts(anthropic_stream, CR_USAGE_SSE, 1, 129, 15);
}
END_TEST

START_TEST(test_no_usage)
{
    check_counts(error_json, CR_USAGE_JSON, 0, 0, 0);
    check_counts("", CR_USAGE_JSON, 0, 0, 0);
    check_counts("<html>502</html>", CR_USAGE_JSON, 0, 0, 0);
    /* A stream cut in the middle of its usage object counts nothing. */
    check_counts("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,",
                 CR_USAGE_SSE, 0, 0, 0);
    /* An event that ends inside the object does not leak its numbers into
     * the next one. */
    check_counts("data: {\"usage\":{\"prompt_tokens\":4,\n\n"
                 "data: {\"x\":1,\"completion_tokens\":3}\n\n",
                 CR_USAGE_SSE, 0, 0, 0);
}
END_TEST

START_TEST(test_bad_numbers)
{
    /* Signs, fractions, exponents and over-long counts are ignored. */
    check_counts("{\"usage\":{\"prompt_tokens\":-4,\"completion_tokens\":2}}",
                 CR_USAGE_JSON, 1, 0, 2);
    check_counts("{\"usage\":{\"prompt_tokens\":4.5,\"completion_tokens\":2e3,"
                 "\"output_tokens\":7}}", CR_USAGE_JSON, 1, 0, 7);
    check_counts("{\"usage\":{\"prompt_tokens\":1234567890123456,"
                 "\"completion_tokens\":123456789012345}}",
                 CR_USAGE_JSON, 1, 0, 123456789012345LL);
    check_counts("{\"usage\":{\"prompt_tokens\":\"4\",\"total_tokens\":4}}",
                 CR_USAGE_JSON, 0, 0, 0);
    /* An escaped name matches nothing; a long name is not kept. */
    check_counts("{\"usage\":{\"prompt\\u005ftokens\":4,\"output_tokens\":1,"
                 "\"a_very_long_member_name_longer_than_kept\":3}}",
                 CR_USAGE_JSON, 1, 0, 1);
}
END_TEST

START_TEST(test_sse_lines)
{
    check_counts(two_line_data, CR_USAGE_SSE, 1, 4, 2);
    /* data without the space, CR line ends, a "data" field name prefix. */
    check_counts("database: {\"usage\":{\"prompt_tokens\":1}}\r"
                 "data:{\"usage\":{\"prompt_tokens\":6}}\r\r",
                 CR_USAGE_SSE, 1, 6, 0);
}
END_TEST

START_TEST(test_deep_nesting)
{
    /* Nesting deeper than the levels remembered still finds the top-level
     * usage after it. */
    char doc[4096];
    int i, n = 0;

    n += snprintf(doc + n, sizeof(doc) - n, "{\"a\":");
    for (i = 0; i < 300; i++) {
        doc[n++] = i % 2 ? '{' : '[';
        if (i % 2) {
            n += snprintf(doc + n, sizeof(doc) - n, "\"usage\":");
        }
    }
    doc[n++] = '1';
    for (i = 299; i >= 0; i--) {
        doc[n++] = i % 2 ? '}' : ']';
    }
    n += snprintf(doc + n, sizeof(doc) - n,
                  ",\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}");
    doc[n] = '\0';
    check_counts(doc, CR_USAGE_JSON, 1, 3, 4);
}
END_TEST

START_TEST(test_strip_usage_chunk)
{
    check_strip(openai_stream, openai_stream_stripped, 11, 7);
    check_strip(two_line_data, "", 4, 2);
}
END_TEST

START_TEST(test_strip_keeps_other_events)
{
    /* Anthropic and Responses streams go through whole. */
    check_strip(anthropic_stream, anthropic_stream, 129, 15);
    check_strip(responses_stream, responses_stream, 21, 13);
    /* An empty "choices" without usage (Azure's prompt_filter_results
     * chunk) is not the usage chunk. */
    check_strip("data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n"
                OPENAI_USAGE_CHUNK,
                "data: {\"choices\":[],\"prompt_filter_results\":[]}\n\n",
                11, 7);
    /* CRLF blank lines are taken out with the chunk. */
    check_strip("data: {\"choices\":[ ],\"usage\":{\"prompt_tokens\":2}}\r\n"
                "\r\ndata: [DONE]\r\n\r\n", "data: [DONE]\r\n\r\n", 2, 0);
}
END_TEST

START_TEST(test_format_for)
{
    ck_assert_int_eq(cr_usage_format_for(NULL), CR_USAGE_JSON);
    ck_assert_int_eq(cr_usage_format_for("application/json"), CR_USAGE_JSON);
    ck_assert_int_eq(cr_usage_format_for("text/event-stream"), CR_USAGE_SSE);
    ck_assert_int_eq(cr_usage_format_for("Text/Event-Stream; charset=utf-8"),
                     CR_USAGE_SSE);
    ck_assert_int_eq(cr_usage_format_for("text/event-streamx"),
                     CR_USAGE_JSON);
}
END_TEST

/* ---- asking for usage ---- */

static apr_pool_t *pool;

/* The body in pieces of size piece, as a kept brigade holds it. */
static apr_bucket_brigade *brigade_of(const char *text, size_t piece)
{
    apr_bucket_alloc_t *ba = apr_bucket_alloc_create(pool);
    apr_bucket_brigade *bb = apr_brigade_create(pool, ba);
    size_t len = strlen(text), off;

    for (off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_heap_create(text + off, n,
                                                           NULL, ba));
    }
    return bb;
}

static const char *flatten(apr_bucket_brigade *bb)
{
    char *out;
    apr_size_t len;

    ck_assert_int_eq(apr_brigade_pflatten(bb, &out, &len, pool),
                     APR_SUCCESS);
    return apr_pstrndup(pool, out, len);
}

/* The spans as cr_body.c reports them, found here by searching. */
static void spans(const char *body, cr_usage_request_t *req)
{
    const char *so = strstr(body, "\"stream_options\":");
    const char *end = strrchr(body, '}');

    memset(req, 0, sizeof(*req));
    req->object_end = end - body;
    if (so) {
        const char *v = so + strlen("\"stream_options\":");
        const char *iu = strstr(v, "\"include_usage\":");
        while (*v == ' ') {
            v++;
        }
        req->stream_options_start = v - body;
        if (*v == '{') {
            req->stream_options = 1;
            req->stream_options_end = strchr(v, '}') - body + 1;
        }
        else if (strncmp(v, "null", 4) == 0) {
            req->stream_options = 2;
            req->stream_options_end = req->stream_options_start + 4;
        }
        else {
            req->stream_options = 3;
            req->stream_options_end = strchr(v, ',') - body;
        }
        if (iu && req->stream_options == 1) {
            const char *iv = iu + strlen("\"include_usage\":");
            size_t n = strcspn(iv, ",}");
            req->include_usage_start = iv - body;
            req->include_usage_end = iv - body + (apr_off_t)n;
            req->include_usage = strncmp(iv, "true", n) == 0 && n == 4 ? 1
                                 : strncmp(iv, "false", 5) == 0 ? 2 : 3;
        }
    }
}

static void check_request(const char *body, const char *expected)
{
    size_t piece;

    for (piece = 1; piece <= strlen(body); piece++) {
        apr_bucket_brigade *bb = brigade_of(body, piece);
        cr_usage_request_t req;
        int changed = -1;
        apr_off_t delta = -1;

        spans(body, &req);
        ck_assert_int_eq(cr_usage_request_usage(bb, &req, &changed, &delta),
                         APR_SUCCESS);
        ck_assert_str_eq(flatten(bb), expected);
        ck_assert_int_eq(changed, strcmp(body, expected) != 0);
        ck_assert_int_eq(delta, (apr_off_t)strlen(expected)
                                - (apr_off_t)strlen(body));
        apr_brigade_destroy(bb);
    }
}

START_TEST(test_request_usage)
{
    /* Absent: added at the end of the top-level object. */
    check_request("{\"model\":\"m\",\"stream\":true}",
                  "{\"model\":\"m\",\"stream\":true,"
                  "\"stream_options\":{\"include_usage\":true}}");
    check_request("{\"model\":\"m\",\"stream\":true}\n",
                  "{\"model\":\"m\",\"stream\":true,"
                  "\"stream_options\":{\"include_usage\":true}}\n");
    /* Other stream_options kept. */
    check_request("{\"stream_options\":{\"x\":1 },\"model\":\"m\"}",
                  "{\"stream_options\":{\"x\":1 ,\"include_usage\":true},"
                  "\"model\":\"m\"}");
    check_request("{\"stream_options\":{ },\"model\":\"m\"}",
                  "{\"stream_options\":{ \"include_usage\":true},"
                  "\"model\":\"m\"}");
    check_request("{\"stream_options\":{\"include_usage\":false,\"x\":2},"
                  "\"model\":\"m\"}",
                  "{\"stream_options\":{\"include_usage\":true,\"x\":2},"
                  "\"model\":\"m\"}");
    check_request("{\"stream_options\":{\"include_usage\":null},"
                  "\"model\":\"m\"}",
                  "{\"stream_options\":{\"include_usage\":true},"
                  "\"model\":\"m\"}");
    check_request("{\"stream_options\": null,\"model\":\"m\"}",
                  "{\"stream_options\": {\"include_usage\":true},"
                  "\"model\":\"m\"}");
    /* Already true, or not an object: unchanged. */
    check_request("{\"stream_options\":{\"include_usage\":true},"
                  "\"model\":\"m\"}",
                  "{\"stream_options\":{\"include_usage\":true},"
                  "\"model\":\"m\"}");
    check_request("{\"stream_options\":\"x\",\"model\":\"m\"}",
                  "{\"stream_options\":\"x\",\"model\":\"m\"}");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Today's scanner against the reference (fuzz/usage_ref.h)            */
/* ------------------------------------------------------------------ */

static unsigned long long rng_state = 88172645463325252ULL;

static unsigned int rng(unsigned int n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned int)(rng_state % n);
}

/* Pieces of responses, the names looked for, and what trips a scanner up:
 * escapes, brackets in strings, line ends in every form, SSE fields, the
 * bytes the skipping mask takes for brackets at first ('Y' '_' 'y'
 * DEL). */
static const char *const ref_frags[] = {
    "{", "}", "[", "]", ":", ",", "\"", "\\", " ", "\n", "\r", "\n\n",
    "\r\n", "\r\r", "\t", "\"usage\"", "\"choices\"", "\"message\"",
    "\"response\"", "\"prompt_tokens\"", "\"completion_tokens\"",
    "\"input_tokens\"", "\"output_tokens\"",
    "\"cache_creation_input_tokens\"", "\"cache_read_input_tokens\"",
    "\"total_tokens\"", "\"x\"",
    "\"a_very_long_member_name_longer_than_kept_by_far\"",
    "\"us\\u0061ge\"", "\"usage\\\"\"", "0", "12", "-3", "4.5", "1e3",
    "1234567890123456", "123456789012345", "true", "null", "abc",
    "data: ", "data:", "event: x\n", ": comment\n", "data", "id: 1\n",
    "\"usage\":{", "\"choices\":[", "\"choices\":[]", "\"message\":{",
    "\"response\":{", "\"prompt_tokens\":", "\"output_tokens\":",
    "\"text\":\"", "\\\"", "\\\\", "{\"a\":[{\"b\":\"c{[\\\"]}\"}]}",
    "\xc3\xa9", "\xff", "Y", "_", "y", "\x7f"
};

static const char *const ref_templates[] = {
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":"
    "1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,"
    "\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\","
    "\"content\":\"Hello from the bench upstream.\"}}],\"usage\":"
    "{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}",
    openai_stream, openai_json, embeddings_json, responses_json,
    responses_stream, anthropic_json, anthropic_stream, two_line_data,
    "{\n  \"id\": \"x\",\n  \"choices\": [\n    {\n      \"message\": "
    "{\"content\": \"a \\\"usage\\\": {\\n}\\\\\"}\n    }\n  ],\n  \"usage\": "
    "{\n    \"prompt_tokens\": 5,\n    \"completion_tokens\": 6\n  }\n}\n"
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A random input: fragments strung together, a response repeated and
 * mutated, or deep nesting followed by a usage object. */
static size_t ref_input(char *buf, size_t cap)
{
    size_t n = 0;
    unsigned int mode = rng(3), k;

    if (mode == 0) {
        for (k = rng(200); k > 0 && n < cap - 64; k--) {
            const char *f = ref_frags[rng(N_OF(ref_frags))];
            memcpy(buf + n, f, strlen(f));
            n += strlen(f);
        }
    }
    else if (mode == 1) {
        const char *t = ref_templates[rng(N_OF(ref_templates))];
        size_t l = strlen(t);

        for (k = 1 + rng(3); k > 0 && n + l < cap; k--) {
            memcpy(buf + n, t, l);
            n += l;
        }
        for (k = rng(6); k > 0; k--) {
            size_t at = n ? rng((unsigned int)n) : 0;
            unsigned int kind = rng(3);

            if (kind == 0 && n > 0) {
                size_t d = 1 + rng(8);
                if (at + d > n) {
                    d = n - at;
                }
                memmove(buf + at, buf + at + d, n - at - d);
                n -= d;
            }
            else if (kind == 1) {
                const char *f = ref_frags[rng(N_OF(ref_frags))];
                size_t fl = strlen(f);
                if (n + fl < cap) {
                    memmove(buf + at + fl, buf + at, n - at);
                    memcpy(buf + at, f, fl);
                    n += fl;
                }
            }
            else if (n > 0) {
                buf[at] = (char)rng(256);
            }
        }
    }
    else {
        static const char tail[] =
            "\"usage\":{\"prompt_tokens\":3,\"output_tokens\":4}}\n\n";
        unsigned int d = rng(80);

        if (rng(2)) {
            memcpy(buf, "data: ", 6);
            n = 6;
        }
        buf[n++] = '{';
        for (k = 0; k < d && n < cap - 200; k++) {
            const char *f = ref_frags[rng(N_OF(ref_frags))];
            memcpy(buf + n, f, strlen(f));
            n += strlen(f);
            if (rng(2)) {
                buf[n++] = "{[\"]}:,"[rng(7)];
            }
        }
        memcpy(buf + n, tail, sizeof(tail) - 1);
        n += sizeof(tail) - 1;
    }
    return n;
}

/* The same counts, signals and offsets as the reference on random inputs
 * fed in random pieces of 1 to 40 bytes and whole, in both formats, with
 * and without signals.  CR_USAGE_REF_INPUTS sets how many (30,000 here;
 * the landing of the structural scanner ran 2,000,000). */
START_TEST(test_against_reference)
{
    static char buf[16384];
    unsigned char sizes[64];
    const char *env = getenv("CR_USAGE_REF_INPUTS");
    long count = env ? atol(env) : 30000, i;
    size_t j;

    for (i = 0; i < count; i++) {
        size_t len = ref_input(buf, sizeof(buf));
        unsigned int top = 1 + rng(40);
        cr_usage_t a;
        ref_usage_t b;
        apr_int64_t ai = 0, ao = 0, bi = 0, bo = 0;

        for (j = 0; j < sizeof(sizes); j++) {
            sizes[j] = (unsigned char)rng(top);
        }
        ck_assert_uint_eq(ref_usage_compare(buf, len, CR_USAGE_JSON, 0,
                                            sizes, sizeof(sizes)), 0);
        ck_assert_uint_eq(ref_usage_compare(buf, len, CR_USAGE_SSE, 0,
                                            sizes, sizeof(sizes)), 0);
        ck_assert_uint_eq(ref_usage_compare(buf, len, CR_USAGE_SSE, 1,
                                            sizes, sizeof(sizes)), 0);
        /* Whole, in one call. */
        cr_usage_init(&a, CR_USAGE_JSON, 0);
        ref_usage_init(&b, CR_USAGE_JSON, 0);
        ck_assert_uint_eq(cr_usage_feed(&a, buf, len, NULL), len);
        ref_usage_feed(&b, buf, len, NULL);
        ck_assert_int_eq(cr_usage_result(&a, &ai, &ao),
                         ref_usage_result(&b, &bi, &bo));
        ck_assert_int_eq(ai, bi);
        ck_assert_int_eq(ao, bo);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("usage");
    TCase *scan_tc = tcase_create("scan");
    TCase *strip_tc = tcase_create("strip");
    TCase *req_tc = tcase_create("request");
    SRunner *sr;
    int failed;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    tcase_add_test(req_tc, test_request_usage);
    suite_add_tcase(s, req_tc);
    tcase_set_timeout(scan_tc, 60);
    tcase_set_timeout(strip_tc, 60);
    tcase_add_test(scan_tc, test_openai_stream);
    tcase_add_test(scan_tc, test_openai_json);
    tcase_add_test(scan_tc, test_embeddings);
    tcase_add_test(scan_tc, test_responses);
    tcase_add_test(scan_tc, test_anthropic);
    tcase_add_test(scan_tc, test_no_usage);
    tcase_add_test(scan_tc, test_bad_numbers);
    tcase_add_test(scan_tc, test_sse_lines);
    tcase_add_test(scan_tc, test_deep_nesting);
    tcase_add_test(scan_tc, test_format_for);
    tcase_add_test(scan_tc, test_against_reference);
    suite_add_tcase(s, scan_tc);
    tcase_add_test(strip_tc, test_strip_usage_chunk);
    tcase_add_test(strip_tc, test_strip_keeps_other_events);
    suite_add_tcase(s, strip_tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
