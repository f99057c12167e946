/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

/* Lingering close, as nginx's lingering_close, of an HTTP/1 connection answered before its
 * request was read whole (libh2o's own 413 and the 400s of its body reader, the read guard's
 * 431 and framing 400s): closing a socket with unread input makes the kernel send a reset,
 * which can destroy the answer before the client has read it. Such a connection instead shuts
 * its write side once the answer is out, then reads and drops what the client still sends
 * until it closes, for LINGER_MAX_MSEC (about: the server's once-a-second sweep ends it) or
 * LINGER_MAX_BYTES, whichever comes first, and only then closes.
 *
 * A lingering connection has left libh2o; it still counts against MAX_CONNECTIONS (the server's
 * total) but no longer among the server's open connections (n_conns), which the idle exit and
 * the drain wait for: the drain closes it at once. */

#define LINGER_MAX_MSEC 5000
#define LINGER_MAX_BYTES (2 * 1024 * 1024)

/* An answer that closes c is being sent before its request was read whole: keeps a duplicate
 * of c's descriptor, so that libh2o's close of c leaves the socket open for linger_start().
 * Once per connection; without a descriptor to spare, c simply closes as before. Takes NULL. */
void linger_arm(Conn *c);

/* From the close callback of c's handle (libh2o has closed it and freed c->sock): when c was
 * armed, and unless the server drains, c lingers on its handle (now a uv_poll_t on the
 * duplicate), to be closed again with on_done; returns whether it does. Otherwise the
 * duplicate is closed and the caller frees c. */
bool linger_start(Conn *c, uv_loop_t *loop, bool draining, uv_close_cb on_done);

/* From the once-a-second sweep: ends c's lingering when its time is up (now: uv_now). */
void linger_check(Conn *c, uint64_t now);

/* Ends c's lingering at once (the drain); on_done follows. */
void linger_end(Conn *c);
