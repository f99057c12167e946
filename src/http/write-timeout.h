/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

/* The write timeout libh2o 2.2.5 lacks: its HTTP/1 clears the request timeout while a request is
 * processed and has none for writing, and its HTTP/2 idle timeout does not look at writes, so a
 * client that sends requests but never reads the answers held its connection (and a slot under
 * MAX_CONNECTIONS) for ever once the socket buffers were full. Checked once a second by the
 * server's sweep: a connection whose answer waits to be written without any byte of it going out
 * for timeout_ms (now: libuv's clock) is closed, and counted in *closed (NULL: not counted). */
void write_timeout_check(Conn *c, uint64_t now, uint64_t timeout_ms, uint64_t *closed);
