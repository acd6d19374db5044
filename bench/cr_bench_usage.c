/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_bench_usage.c: the CPU cost of reading token usage (cr_usage.c) per
 * response and per streamed event, as the output filter pays it.  Prints
 * nanoseconds per JSON response, per SSE event scanned, and per SSE event
 * scanned with signals (the path that takes the usage chunk out).
 * Built and run by bench/usage_bench.py.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cr_usage.h"

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static const char chunk[] =
    "data: {\"id\": \"chatcmpl-0123456789abcdef01234567\", \"object\": "
    "\"chat.completion.chunk\", \"created\": 1796242236, \"model\": "
    "\"gpt-4o-mini\", \"system_fingerprint\": \"fp_mock\", \"choices\": "
    "[{\"index\": 0, \"delta\": {\"content\": \" mock\"}, \"logprobs\": "
    "null, \"finish_reason\": null}], \"usage\": null}\n\n";

static const char json[] =
    "{\"id\": \"chatcmpl-0123456789abcdef01234567\", \"object\": "
    "\"chat.completion\", \"created\": 1796242236, \"model\": "
    "\"gpt-4o-mini\", \"choices\": [{\"index\": 0, \"message\": {\"role\": "
    "\"assistant\", \"content\": \"Hello from the mock.\", \"refusal\": "
    "null}, \"logprobs\": null, \"finish_reason\": \"stop\"}], \"usage\": "
    "{\"prompt_tokens\": 9, \"completion_tokens\": 5, \"total_tokens\": 14},"
    " \"system_fingerprint\": \"fp_mock\"}";

int main(void)
{
    const int rounds = 2000000;
    cr_usage_t u;
    double t0, t1;
    apr_int64_t in, out;
    int i;

    t0 = now_ns();
    for (i = 0; i < rounds; i++) {
        cr_usage_init(&u, CR_USAGE_JSON, 0);
        cr_usage_feed(&u, json, sizeof(json) - 1, NULL);
    }
    t1 = now_ns();
    if (!cr_usage_result(&u, &in, &out) || in != 9) {
        return 1;
    }
    printf("usage_json_response_ns %.1f (%zu bytes)\n", (t1 - t0) / rounds,
           sizeof(json) - 1);

    cr_usage_init(&u, CR_USAGE_SSE, 0);
    t0 = now_ns();
    for (i = 0; i < rounds; i++) {
        cr_usage_feed(&u, chunk, sizeof(chunk) - 1, NULL);
    }
    t1 = now_ns();
    printf("usage_sse_event_ns %.1f (%zu bytes)\n", (t1 - t0) / rounds,
           sizeof(chunk) - 1);

    cr_usage_init(&u, CR_USAGE_SSE, 1);
    t0 = now_ns();
    for (i = 0; i < rounds; i++) {
        apr_size_t off = 0;
        while (off < sizeof(chunk) - 1) {
            cr_usage_signal_e sig;
            off += cr_usage_feed(&u, chunk + off, sizeof(chunk) - 1 - off,
                                 &sig);
        }
    }
    t1 = now_ns();
    printf("usage_sse_event_signals_ns %.1f\n", (t1 - t0) / rounds);
    printf("usage_state_bytes %zu\n", sizeof(cr_usage_t));
    return 0;
}
