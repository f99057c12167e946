/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* What a raw HTTP/1 request head says of the framing of what follows it. libh2o 2.2.5 accepts
 * framing that two HTTP/1 parsers may read differently (RFC 9112 sections 2.2, 5.2, 6.1 and
 * 6.3): the first of two Content-Length headers wins, Transfer-Encoding overrides
 * Content-Length, folded lines are kept with an empty name, a bare LF ends a line. A proxy in
 * front that frames the request one way and this service another would serve the rest of the
 * bytes as a second request. libh2o also hides Content-Length and Transfer-Encoding from the
 * handler, so the raw head is read here (with the parser libh2o itself uses). */
typedef struct Http1Framing {
    int head_length; /* > 0 complete, 0 not yet, -1 not an HTTP/1 request (libh2o's to answer) */
    bool chunked;    /* Transfer-Encoding: the connection must not be reused after it */
    const char *problem;      /* ambiguous framing ("ambiguous request framing: …"), or NULL */
    long long content_length; /* -1: none, or not a number */
    const char *target;       /* the request target, in buf (complete heads only) */
    size_t target_len;
} Http1Framing;

/* Inspects the request head at the start of buf (len bytes). */
void http1_framing_inspect(const char *buf, size_t len, Http1Framing *ret);
