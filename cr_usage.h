/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_usage.h: the token usage of a response, read as it passes (SPEC
 * section 11).  A small state machine over bytes, fed the response in
 * pieces of any size: a JSON document (application/json) or server-sent
 * events (text/event-stream) whose data lines are JSON documents.  It keeps
 * no copy of the response: only its position in the JSON structure, which
 * of the names it looks for the current member name is (the first
 * CR_USAGE_KEY_MAX bytes of a name are kept only when it is split between
 * two pieces) and the fields of a "usage" object being read, so its memory
 * is fixed whatever the response's size.  Levels where no name it looks
 * for can be are passed over: only their strings and brackets are
 * followed, sixty-four bytes at a time (and, where the CPU has AVX2, so are
 * the levels above a usage object, but for the names of their objects and
 * arrays).
 *
 * A "usage" object counts when it is a member of a document's top-level
 * object (OpenAI chat completions and their final stream chunk, embeddings,
 * the Responses API, Anthropic messages and message_delta events) or of its
 * top-level "message" or "response" object (Anthropic message_start, the
 * Responses API's response.completed).  Each such object overwrites the
 * fields it carries (Anthropic's message_delta usage is cumulative):
 *   input:  prompt_tokens | input_tokens, plus Anthropic's
 *           cache_creation_input_tokens and cache_read_input_tokens
 *   output: completion_tokens | output_tokens (0 when absent: embeddings)
 * Counts are whole non-negative numbers of at most 15 digits; anything
 * else in a field is ignored.
 */
#ifndef CR_USAGE_H
#define CR_USAGE_H

#include <apr.h>
#include <apr_buckets.h>

/* The first bytes of a member name split between two pieces that are kept
 * (longer names match no name the scanner looks for). */
#define CR_USAGE_KEY_MAX 32

typedef enum {
    CR_USAGE_JSON = 0,          /* one JSON document */
    CR_USAGE_SSE = 1            /* text/event-stream */
} cr_usage_format_e;

/* What cr_usage_feed stopped at (only when signals are asked for). */
typedef enum {
    CR_USAGE_SIG_NONE = 0,      /* consumed everything given */
    CR_USAGE_SIG_EVENT_START,   /* an event begins at data + consumed */
    CR_USAGE_SIG_KEEP,          /* the current event has a non-empty
                                 * top-level "choices": not usage-only */
    CR_USAGE_SIG_EVENT_END      /* the current event ended just before
                                 * data + consumed (its blank line
                                 * included) */
} cr_usage_signal_e;

/* Field indexes of a usage object. */
enum {
    CR_USAGE_F_INPUT = 0,       /* prompt_tokens, input_tokens */
    CR_USAGE_F_OUTPUT,          /* completion_tokens, output_tokens */
    CR_USAGE_F_CACHE_CREATION,  /* cache_creation_input_tokens */
    CR_USAGE_F_CACHE_READ,      /* cache_read_input_tokens */
    CR_USAGE_F__COUNT
};

typedef struct {
    /* Results. */
    int seen;                           /* a usage object was read */
    apr_int64_t field[CR_USAGE_F__COUNT];
    int field_set[CR_USAGE_F__COUNT];

    /* Configuration. */
    cr_usage_format_e format;
    int signals;                        /* stop at event boundaries */

    /* JSON structure. */
    unsigned int depth;
    apr_uint64_t objbits;               /* bit d: level d is an object */
    int lex;                            /* lexer state (cr_usage.c) */
    int expect_key;                     /* innermost object wants a name */
    int key;                            /* which name looked for the
                                         * current member name is
                                         * (cr_usage.c), -1 none */
    int key_len;                        /* bytes of a name split between
                                         * pieces in key_part, -1 none */
    char key_part[CR_USAGE_KEY_MAX];
    int top_key;                        /* kind of the level-1 member that
                                         * holds level 2 */
    unsigned int usage_depth;           /* depth inside a usage object, 0 */
    int field_idx;                      /* usage field whose value is
                                         * read, -1 none */
    int num_len;                        /* digits of that value, -1 bad */
    apr_int64_t num;
    apr_int64_t pending[CR_USAGE_F__COUNT];
    int pending_set[CR_USAGE_F__COUNT];
    int choices;                        /* 0 not at choices, 1 after its '[',
                                         * 2 it is empty, 3 not empty */

    /* Server-sent events. */
    int sse;                            /* line state (cr_usage.c) */
    int name_len;
    char name[8];
    int in_event;                       /* an event has begun */
    int event_usage;                    /* this event had a usage object */
    int event_choices_empty;            /* this event's "choices" is [] */
    int start_signalled;
} cr_usage_t;

/* Start reading a response of this format.  With signals, cr_usage_feed
 * returns at every event boundary of a stream (for a caller that takes
 * events out of it). */
void cr_usage_init(cr_usage_t *u, cr_usage_format_e format, int signals);

/* The format for a response's Content-Type (NULL: JSON). */
cr_usage_format_e cr_usage_format_for(const char *content_type);

/* Read len bytes.  Returns how many were consumed (all of them, unless a
 * signal stopped it: *signal, which may be NULL without signals). */
apr_size_t cr_usage_feed(cr_usage_t *u, const char *data, apr_size_t len,
                         cr_usage_signal_e *signal);

/* After CR_USAGE_SIG_EVENT_END: was that event the usage-only chunk of an
 * OpenAI stream ("choices":[] and a usage object)? */
int cr_usage_event_is_usage_only(const cr_usage_t *u);

/* The totals read so far: non-zero when a usage object was read. */
int cr_usage_result(const cr_usage_t *u, apr_int64_t *input,
                    apr_int64_t *output);

/* Where a request body asks for usage (the offsets of cr_body.h's
 * cr_body_info_t, into the body as received). */
typedef struct {
    apr_off_t object_end;          /* the top-level object's '}' */
    int stream_options;            /* 0 absent, 1 object, 2 null, 3 other */
    apr_off_t stream_options_start;
    apr_off_t stream_options_end;
    int include_usage;             /* 0 absent, 1 true, 2 false, 3 other */
    apr_off_t include_usage_start;
    apr_off_t include_usage_end;
} cr_usage_request_t;

/* Make a streamed chat request ask for usage: "include_usage":true in
 * "stream_options" (added, or replacing another value), the other
 * stream_options kept; "stream_options":null becomes an object; an absent
 * one is added before the top-level object's end.  The body is changed
 * where it lies, bucket by bucket (split with apr_brigade_partition; never
 * copied).  *changed is 0 when nothing was done: include_usage is already
 * true, or stream_options is neither an object nor null (the upstream
 * refuses that body anyway).  *delta is the change of the body's length. */
apr_status_t cr_usage_request_usage(apr_bucket_brigade *body,
                                    const cr_usage_request_t *req,
                                    int *changed, apr_off_t *delta);

#endif /* CR_USAGE_H */
