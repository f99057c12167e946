/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The watchdog's rule over the event loops: systemd is told WATCHDOG=1 only when every loop
 * showed life since the last look (its heartbeat counter moved) or has finished (drained), so
 * that one loop stuck in a callback stops the pings. Pure, for tests: seen[] holds each loop's
 * heartbeat at the last look and is updated; returns how many loops did not move, 0 when all
 * are alive. */
static inline size_t heartbeat_stuck(const uint64_t *beats, const bool *finished, uint64_t *seen,
                                     size_t n)
{
    size_t stuck = 0;
    for (size_t i = 0; i < n; i++) {
        if (beats[i] == seen[i] && !finished[i])
            stuck++;
        seen[i] = beats[i];
    }
    return stuck;
}
