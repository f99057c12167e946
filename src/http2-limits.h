/* SPDX-License-Identifier: MIT */
#pragma once

#include "server.h"

/* Limits libh2o 2.2.5 lacks for HTTP/2, checked once a second over its HTTP/2 connections
 * while HTTP2=on:
 *  - a whole-request time limit like HTTP/1's: libh2o's HTTP/2 idle timeout restarts at every
 *    frame, so a client sending a PING now and then kept streams with unfinished requests (and
 *    their buffered bodies) open for ever;
 *  - the request-head limit (HEAD_MAX_BYTES): a header block still arriving in HEADERS and
 *    CONTINUATION frames may otherwise grow to libh2o's H2O_MAX_REQLEN (about 417 KB).
 * A connection that breaks either is closed. */
int http2_limits_start(Server *s, uint64_t request_timeout_ms);
/* Stops the checks (the uv loop must run afterwards to close the timer). */
void http2_limits_stop(Server *s);

/* Whether a connection has a request unfinished after timeout_ms or a header block over
 * HEAD_MAX_BYTES; now is the wall clock, as libh2o's request timestamps are. For tests. */
typedef struct st_h2o_http2_conn_t h2o_http2_conn_t;
const char *http2_conn_over_limits(h2o_http2_conn_t *conn, const struct timeval *now,
                                   uint64_t timeout_ms);
