/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* W3C Trace Context level 1 (README.md, "POST /enqueue", traceparent): the client's
 * `traceparent` continued, or a new trace started; `tracestate` passed on, bounded. Nothing else
 * of OpenTelemetry: no span is recorded or exported, the ids go to the logs. */

#define TRACE_ID_LEN 32
#define SPAN_ID_LEN 16
/* "00-" trace-id "-" parent-id "-" flags */
#define TRACEPARENT_LEN 55
/* The spec lets a vendor truncate a longer tracestate and asks it to pass on at least 512
 * characters: the most kept, with the job in the spool too. */
#define TRACESTATE_MAX 512
/* The spec's most list-members in a tracestate; more, and it is dropped. */
#define TRACESTATE_MEMBERS_MAX 32

/* The trace of one job request: ours is one span (span_id), the parent of every attempt the
 * worker sees, inline or from the spool. */
typedef struct Trace {
    char trace_id[TRACE_ID_LEN + 1];
    char span_id[SPAN_ID_LEN + 1];
    /* "00-<trace_id>-<span_id>-<flags>": what the worker is sent, and the spool keeps */
    char traceparent[TRACEPARENT_LEN + 1];
    char tracestate[TRACESTATE_MAX + 1]; /* "" when none */
} Trace;

/* A traceparent header's value (not NUL-terminated) as W3C Trace Context level 1 reads it: version
 * 00 exactly 55 characters; a later version (not ff) its first four fields, followed by nothing
 * or '-'; lowercase hex, trace-id and parent-id not all zero. On success the trace id (NUL-
 * terminated) and the flags. */
bool trace_parent_parse(const char *s, size_t len, char ret_trace_id[static TRACE_ID_LEN + 1],
                        uint8_t *ret_flags);

/* The tracestate header lines (n of them, values and lengths) combined with ',' as one list, as
 * the spec says of several lines: the list-members, checked (key=value, the spec's characters)
 * and written without blanks or empty members into ret (TRACESTATE_MAX + 1 bytes). Over
 * TRACESTATE_MAX, members over 128 characters are dropped first, then members from the end, as
 * the spec says a vendor truncates. A malformed list, or one of over TRACESTATE_MEMBERS_MAX
 * members, is dropped whole: returns -EINVAL and ret is "". Else the length written. */
int tracestate_normalize(const char *const *values, const size_t *lens, size_t n,
                         char ret[static TRACESTATE_MAX + 1]);

/* A request's trace: the client's traceparent (NULL: none) continued with a new span id of ours,
 * else a new trace (a random trace id, flags 00) whose tracestate is dropped; tracestate
 * (normalized already, or NULL) is kept only with a valid traceparent. */
void trace_begin(Trace *t, const char *traceparent, size_t len, const char *tracestate);

/* A trace as stored with a spooled job (Trace.traceparent and .tracestate): the same ids again,
 * so that every delivery has the request's span for parent; the tracestate checked again
 * (tracestate_normalize). A job stored without one (spooled by an older release), or with one
 * that does not parse, gets a new trace. */
void trace_restore(Trace *t, const char *traceparent, const char *tracestate);
