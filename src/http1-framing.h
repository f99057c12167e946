/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Framing that two HTTP/1 parsers may read differently (RFC 9112 sections 2.2, 5.2 and 6.3):
 * a proxy in front that frames the request one way and this service another would serve the
 * rest of the bytes as a second request. libh2o 2.2.5 accepts all of these (the first
 * Content-Length wins, Transfer-Encoding overrides it, folded lines are kept with an empty name,
 * a bare LF ends a line), and hides Content-Length and Transfer-Encoding from the handler, so
 * the raw head is read again here.
 *
 * Returns NULL when the request head at buf (len bytes, the request's own bytes first) is
 * unambiguous, else what is wrong with it, for the 400 answer. */
const char *http1_framing_problem(const char *buf, size_t len);
