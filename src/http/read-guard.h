/* SPDX-License-Identifier: MIT */
#pragma once

#include "conn.h"
#include "http1-framing.h"

/* Checks on a connection's bytes in the read path, where libh2o 2.2.5 has no setting:
 *  - HTTP/1 request heads are held to HEAD_MAX_BYTES while they arrive (libh2o buffers up to
 *    its compile-time H2O_MAX_REQLEN, about 417 KB, per connection): reads stop at the limit,
 *    and a head that goes past it is answered 431 and the connection closed;
 *  - a whole HTTP/1 head with ambiguous framing (http1-framing.h) is answered 400 and closed
 *    before libh2o acts on it, which also covers a request it would upgrade to HTTP/2 (h2c);
 *  - after libh2o has parsed what arrived on an HTTP/2 connection, a header block over
 *    HEAD_MAX_BYTES or a request with over HEADERS_MAX fields closes it (http2-limits.h).
 * Call once, right after the connection is accepted. */
void read_guard_attach(Conn *c);

/* How an HTTP/1 request is framed, from its raw head (the read path has usually checked it
 * already); for HTTP/2 requests, nothing. */
void read_guard_request_framing(h2o_req_t *req, Http1Framing *ret);
