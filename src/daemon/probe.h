/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --probe: a health check for container runtimes (HEALTHCHECK) that needs nothing but the
 * daemon itself: one HTTP/1.1 GET over a plain TCP socket, healthy when answered 200 with a
 * whole head. */

typedef struct ProbeTarget {
    char host[256]; /* a name or an address, IPv6 without its brackets */
    char port[6];
    char path[1024]; /* starts with '/' */
} ProbeTarget;

/* Parses http://HOST[:PORT][/PATH] (an IPv6 address in brackets; PORT defaults to 80, PATH to
 * "/"), or a bare /PATH, which means http://127.0.0.1:default_port/PATH. 0, or -EINVAL. */
int probe_parse_url(const char *url, uint16_t default_port, ProbeTarget *ret);

/* The status code of a response whose first line is in buf ("HTTP/1.x NNN …"), or -1 when the
 * line is not complete or not HTTP/1. */
int probe_parse_status(const char *buf, size_t len);

/* The most of an answer's head the probe reads: a head that does not end within it fails. */
#define PROBE_HEAD_MAX (8 * 1024)

/* Whether buf holds the whole head of an answer: its status line and header lines up to the
 * empty line that ends them (CRLF or a bare LF). */
bool probe_head_complete(const char *buf, size_t len);

/* Sends GET to the target and reads the whole head of the answer (at most PROBE_HEAD_MAX bytes),
 * all within timeout_ms: the status code, or a negative errno (-ETIMEDOUT, -ECONNREFUSED,
 * -EPROTO for an answer that is not HTTP/1, -EBADMSG for a head that ends before its empty
 * line or is larger than PROBE_HEAD_MAX, -ENXIO when the name does not resolve). */
int probe_get(const ProbeTarget *t, int timeout_ms);

/* The whole of `argus-orchestrator --probe URL`: the exit status, 0 when the URL answered 200,
 * 1 when it did not (one line on stderr says why), 64 for a URL it cannot use. `port_env` is
 * $PORT (NULL when unset), the port of a bare /PATH. */
int probe_main(const char *url, const char *port_env, int timeout_ms);
