/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <uv.h>

#include "conn.h"

typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;

/* Limits libh2o 2.2.5 lacks for HTTP/2 (HTTP2=on), read from its connection state (the
 * h2o/http2_internal.h it installs):
 *  - in time, checked once a second: a request must be received whole within the request
 *    timeout, like HTTP/1's (libh2o's HTTP/2 idle timeout restarts at every frame, so a client
 *    sending a PING now and then kept unfinished requests, and their buffered bodies, open for
 *    ever), and an answer must not stall longer than that (a client that never opens its
 *    flow-control window held its streams for ever);
 *  - in size, after every read (read-guard.c): a header block still arriving in CONTINUATION
 *    frames over HEAD_MAX_BYTES, or a request with more than HEADERS_MAX fields (libh2o has no
 *    such limit for HTTP/2, and a one-byte HPACK index becomes a whole header field).
 * A connection that breaks one is closed. */
typedef struct Http2Limits {
    uv_timer_t sweep; /* the once-a-second check of the time limits */
    bool on;
    uint64_t request_timeout_ms;
    h2o_context_t *ctx; /* whose HTTP/2 connections are checked */
} Http2Limits;

int http2_limits_start(Http2Limits *l, uv_loop_t *loop, h2o_context_t *ctx,
                       uint64_t request_timeout_ms);
/* Stops the checks (the uv loop must run afterwards to close the timer). Takes a zeroed one. */
void http2_limits_stop(Http2Limits *l);

/* The HTTP/2 connection a socket serves, or NULL for HTTP/1. */
h2o_http2_conn_t *http2_conn_of_socket(h2o_socket_t *sock);
/* Why a connection is over a limit, or NULL. now is the wall clock, as libh2o's request
 * timestamps are. */
const char *http2_conn_over_time_limits(h2o_http2_conn_t *conn, const struct timeval *now,
                                        uint64_t timeout_ms);
const char *http2_conn_over_size_limits(h2o_http2_conn_t *conn);
