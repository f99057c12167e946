/* SPDX-License-Identifier: MIT */
#pragma once

#include <uv.h>

#include "server.h"

/* The largest HTTP/1 request head (request line and header fields) accepted. */
#define HEAD_MAX_BYTES (64 * 1024)

/* Holds an accepted connection's HTTP/1 request heads to HEAD_MAX_BYTES while they arrive.
 * libh2o 2.2.5 buffers up to its compile-time H2O_MAX_REQLEN (about 417 KB) of an unfinished
 * head per connection and has no setting for it, so the limit is kept in the read path: reads
 * stop at the limit, and a head that goes past it is answered 431 and the connection closed.
 * Call once, right after the connection is accepted. */
void head_limit_attach(Conn *c);
