/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The standard process metrics every Prometheus client library exports (process_start_time_seconds
 * is rendered with the service's own metrics). */

typedef struct ProcessStats {
    double cpu_seconds; /* user + system */
    bool have_memory;
    uint64_t resident_bytes, virtual_bytes;
    bool have_open_fds;
    uint64_t open_fds;
    bool have_max_fds;
    uint64_t max_fds; /* the soft RLIMIT_NOFILE; UINT64_MAX when unlimited */
} ProcessStats;

/* Parses /proc/PID/statm ("size resident shared …", in pages) into bytes. 0 or -EINVAL. */
int process_statm_parse(const char *statm, uint64_t page_size, uint64_t *ret_virtual,
                        uint64_t *ret_resident);

/* This process now: getrusage(), /proc/self/statm, /proc/self/fd, getrlimit(). What cannot be
 * read (no /proc) is left out. */
void process_stats_read(ProcessStats *ret);

/* The exposition text (format 0.0.4) of these stats into buf, NUL-terminated; returns buf, or ""
 * when it does not fit. */
#define PROCESS_METRICS_MAX 1536
const char *process_metrics_format(const ProcessStats *s, char *buf, size_t size);

/* process_stats_read() and process_metrics_format() in one: what GET /metrics appends. */
const char *process_metrics_text(char *buf, size_t size);
