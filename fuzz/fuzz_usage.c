/* Licensed under the Apache License, Version 2.0. */

/*
 * fuzz_usage.c: the response usage scanner (cr_usage_feed).  The first
 * byte chooses the format (bit 0) and the size of the pieces the response
 * arrives in (as brigades do); the rest is the response.  Fed whole, in
 * pieces, and in pieces with signals (as the output filter feeds it when it
 * takes the usage chunk out), the scanner must read the same usage, consume
 * every byte, and never report a negative count.  And it must do exactly
 * what the scanner before the structural one did (fuzz/usage_ref.h):
 * the same counts, signals and offsets, fed in pieces of 1 to 40 bytes
 * whose sizes come from the input's first bytes, in both formats.
 */

#include "fuzz_common.h"
#include "cr_usage.h"
#include "usage_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cr_usage_t whole, pieces, sig;
    cr_usage_format_e fmt;
    const char *text;
    size_t len, piece, off, events = 0;
    apr_int64_t wi = 0, wo = 0, pi = 0, po = 0, si = 0, so = 0;
    int ws, ps, ss, holding = 0;

    if (size < 1) {
        return 0;
    }
    fmt = (data[0] & 1) ? CR_USAGE_SSE : CR_USAGE_JSON;
    piece = (size_t)(data[0] >> 1) + 1;
    text = (const char *)data + 1;
    len = size - 1;

    cr_usage_init(&whole, fmt, 0);
    FUZZ_CHECK(cr_usage_feed(&whole, text, len, NULL) == len);

    cr_usage_init(&pieces, fmt, 0);
    for (off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        FUZZ_CHECK(cr_usage_feed(&pieces, text + off, n, NULL) == n);
    }

    cr_usage_init(&sig, fmt, 1);
    for (off = 0; off < len;) {
        size_t n = len - off < piece ? len - off : piece, pos = 0;
        while (pos < n) {
            cr_usage_signal_e s;
            size_t used = cr_usage_feed(&sig, text + off + pos, n - pos, &s);
            FUZZ_CHECK(used <= n - pos);
            /* A stop consumes nothing only at an event's boundary (the
             * end of one whose blank line ended with a lone CR). */
            FUZZ_CHECK(used > 0 || s == CR_USAGE_SIG_EVENT_START
                       || s == CR_USAGE_SIG_EVENT_END);
            FUZZ_CHECK(s != CR_USAGE_SIG_NONE || used == n - pos);
            FUZZ_CHECK(fmt == CR_USAGE_SSE || s == CR_USAGE_SIG_NONE);
            if (s == CR_USAGE_SIG_EVENT_START) {
                FUZZ_CHECK(!holding);
                holding = 1;
                events++;
            }
            else if (s == CR_USAGE_SIG_EVENT_END) {
                holding = 0;
            }
            pos += used;
        }
        off += n;
    }
    FUZZ_CHECK(events <= len);

    ws = cr_usage_result(&whole, &wi, &wo);
    ps = cr_usage_result(&pieces, &pi, &po);
    ss = cr_usage_result(&sig, &si, &so);
    FUZZ_CHECK(ws == ps && ws == ss);
    if (ws) {
        FUZZ_CHECK(wi == pi && wo == po && wi == si && wo == so);
        FUZZ_CHECK(wi >= 0 && wo >= 0);
    }

    /* Against the reference: whole, and in pieces of varying sizes. */
    {
        const unsigned char *sizes = (const unsigned char *)text;
        size_t nsizes = len < 16 ? len : 16;
        unsigned char one = (unsigned char)(piece - 1);

        FUZZ_CHECK(ref_usage_compare(text, len, CR_USAGE_JSON, 0, sizes,
                                     nsizes) == 0);
        FUZZ_CHECK(ref_usage_compare(text, len, CR_USAGE_SSE, 0, sizes,
                                     nsizes) == 0);
        FUZZ_CHECK(ref_usage_compare(text, len, CR_USAGE_SSE, 1, sizes,
                                     nsizes) == 0);
        FUZZ_CHECK(ref_usage_compare(text, len, fmt, 0, &one, 1) == 0);
    }
    return 0;
}
