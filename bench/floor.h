/* SPDX-License-Identifier: MIT */
#pragma once

/* What curl-floor and h2o-floor share: the clock, the RSS, and the one line they print. */
typedef struct FloorClock {
    double wall_s, cpu_us;
} FloorClock;

/* The monotonic clock and the process's CPU time (user + system), now. */
FloorClock floor_clock(void);
double floor_now_s(void);
/* VmRSS of this process in KiB, -1 if unknown. */
long floor_rss_kib(void);
/* "FLOOR <requests/s> <CPU µs per request> <failed> <rss KiB>" for what ran since `start`. */
void floor_report(FloorClock start, unsigned long done, unsigned long failed, long rss_kib);
