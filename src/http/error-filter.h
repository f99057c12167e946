/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

#include "metrics.h"
#include "ratelimit.h"

/* The error answers that h2o makes on its own (400 for a malformed request, 413 for a body over
 * the limit, 417, …): given the JSON shape of every other answer, counted by status in
 * /metrics, and logged, at most once a second since a client can cause them at will. */
typedef struct ErrorFilter {
    Metrics *metrics; /* NULL: not counted */
} ErrorFilter;

void error_filter_init(ErrorFilter *f);

/* Counts one error answer made before any route (by h2o, or by the read path: read-guard.h);
 * logs it unless one was logged less than a second ago by any loop, and then says how many were
 * not. `who`
 * made it; `what` describes it (the request, when there was one). */
void error_filter_note(ErrorFilter *f, const char *who, int status, const char *error,
                       const char *what);

/* Puts the filter on pathconf; responses that are already application/json pass through
 * untouched. Also notes, per connection, how much had been written when its last request was
 * done (see error_filter_on_socket_close). */
void error_filter_register(h2o_pathconf_t *pathconf, ErrorFilter *f);

/* For h2o_socket_t's on_close.cb of a client connection; data is its Conn. h2o 2.2.5's HTTP/1
 * answers bytes that do not parse as a request (or a request head over its 400 KiB buffer) with
 * a fixed "400 Bad Request" written straight to the socket, past every filter, and closes: that
 * is seen here, as a connection whose last bytes written since its last request were exactly
 * that answer. */
void error_filter_on_socket_close(void *conn);
