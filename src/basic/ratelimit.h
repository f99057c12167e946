/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* At most one event per interval gets through; the one that does learns how many did not since
 * the last one that did. For log entries that a client can cause at will: pure state, time
 * passed in. */
typedef struct RateLimit {
    uint64_t interval_usec;
    uint64_t last_usec; /* of the last event let through */
    uint64_t suppressed;
    bool passed_any;
} RateLimit;

void ratelimit_init(RateLimit *r, uint64_t interval_usec);

/* Whether an event at `now` (monotonic) gets through; when it does, *ret_suppressed is how many
 * were held back since the last one that did. */
bool ratelimit_pass(RateLimit *r, uint64_t now, uint64_t *ret_suppressed);
