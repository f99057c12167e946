/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o/linklist.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* The write timeout libh2o 2.2.5 lacks: its HTTP/1 clears the request timeout while a request is
 * processed and has none for writing, and its HTTP/2 idle timeout does not look at writes, so a
 * client that sends requests but never reads the answers held its connection (and a slot under
 * MAX_CONNECTIONS) for ever once the socket buffers were full. Checked once a second: a
 * connection whose answer waits to be written without any byte of it going out for the timeout
 * is closed. */
typedef struct WriteTimeout {
    uv_timer_t sweep;
    bool on;
    uint64_t timeout_ms;
    h2o_linklist_t *conns; /* the server's: every Conn of the loop */
    uint64_t *closed;      /* counts the connections closed here; NULL: not counted */
} WriteTimeout;

int write_timeout_start(WriteTimeout *w, uv_loop_t *loop, h2o_linklist_t *conns,
                        uint64_t timeout_ms, uint64_t *closed);
/* Stops the checks (the uv loop must run afterwards to close the timer). Takes a zeroed one. */
void write_timeout_stop(WriteTimeout *w);
