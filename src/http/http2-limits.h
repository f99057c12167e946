/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <sys/time.h>

#include "conn.h"

typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;

/* Limits libh2o 2.2.5 lacks for HTTP/2 (HTTP2=on), read from its connection state (the
 * h2o/http2_internal.h it installs):
 *  - in time, checked once a second by the server's sweep (http2_limits_check): a request must be
 * received whole within the request timeout, like HTTP/1's (libh2o's HTTP/2 idle timeout restarts
 * at every frame, so a client sending a PING now and then kept unfinished requests, and their
 * buffered bodies, open for ever), and an answer must not stall longer than that (a client that
 * never opens its flow-control window held its streams for ever);
 *  - in size, after every read (read-guard.c): a header block still arriving in CONTINUATION
 *    frames over HEAD_MAX_BYTES, or a request with more than HEADERS_MAX fields (libh2o has no
 *    such limit for HTTP/2, and a one-byte HPACK index becomes a whole header field).
 * A connection that breaks one is closed. */
/* Closes c when it carries HTTP/2 and is over the time limits (now: the wall clock). */
void http2_limits_check(Conn *c, const struct timeval *now, uint64_t timeout_ms);

/* The HTTP/2 connection a socket serves, or NULL for HTTP/1. */
h2o_http2_conn_t *http2_conn_of_socket(h2o_socket_t *sock);
/* Why a connection is over a limit, or NULL. now is the wall clock, as libh2o's request
 * timestamps are. */
const char *http2_conn_over_time_limits(h2o_http2_conn_t *conn, const struct timeval *now,
                                        uint64_t timeout_ms);
const char *http2_conn_over_size_limits(h2o_http2_conn_t *conn);
