/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RFC3339_MAX sizeof("-9223372036854775808-12-31T23:59:59Z")
#define GO_DURATION_MAX 40

/* "2024-01-15T10:30:00Z": RFC 3339, UTC, whole seconds. */
int format_rfc3339(time_t t, char buf[static RFC3339_MAX]);

/* format_rfc3339() of time(NULL), made at most once a second: the one timestamp of answers and
 * log lines. Storage of the calling thread's, rewritten by its call in a later second; "" should
 * the time not be formattable. */
const char *rfc3339_now(void);

/* Go's time.Duration.String() for a non-negative count of nanoseconds:
 * "0s", "850ns", "1.5µs", "150ms", "45s", "1m5s", "2h15m30.5s". */
void format_go_duration(uint64_t nsec, char buf[static GO_DURATION_MAX]);
