/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"

/* The marks of a log sink's queue (log-queue.h) and the progress rule (README, "Logs": the log
 * backlog). Pure: the sinks feed it the queue's fill and whether their reader took anything,
 * with the time; any thread asks it, without the lock, what the service should do.
 *
 * - Past the high-water mark the service sheds new jobs (POST /enqueue answers 503) rather than
 *   drop their entries, until the queue is back under the low-water mark. Above the low-water
 *   mark the sink is "behind": delivery from the spool waits and rejections are summarised.
 * - Past the high-water mark there is room for what is owed: entries of jobs admitted before the
 *   shedding began (the owed bytes of log_backlog_init); an entry is dropped only past that.
 * - When the reader has taken nothing for LOG_BACKLOG_STALL_USEC while the queue held something
 *   (journald stopped), the sink is stalled: nothing is shed, entries past the bound are dropped
 *   and counted as they always were, so that a dead journald stops nothing. The first entry it
 *   takes again ends the stall. */

/* 4 MiB: about half a second of the service's full rate at ~350 bytes an entry, to ride out a
 * hiccup of journald's (a rotation, a flush, a core shared with the service) without shedding. */
#define LOG_BACKLOG_HIGH_BYTES (4 * 1024 * 1024)
/* 1 MiB: shedding stops once journald has taken three quarters of the high-water mark, so that a
 * backlog sheds in stretches of some 0.1 s or more instead of flapping entry by entry. */
#define LOG_BACKLOG_LOW_BYTES (1024 * 1024)
/* Room past the owed entries for the rest (start and stop lines, the rate-limited summaries):
 * 1 MiB. */
#define LOG_BACKLOG_SLACK_BYTES (1024 * 1024)
/* 3 s without a single entry taken: longer than journald's rotations and flushes take on a
 * healthy disk, short enough that a dead journald sheds clients for 3 s only once. */
#define LOG_BACKLOG_STALL_USEC (3 * 1000000ULL)
/* An entry counts at least this much in a queue's fill: 16k small entries fill the 4 MiB mark. */
#define LOG_BACKLOG_MIN_ENTRY_BYTES 256

typedef enum LogPressure {
    LOG_PRESSURE_NONE,    /* at or under the low-water mark */
    LOG_PRESSURE_BEHIND,  /* over it: the spool waits, rejections are summarised */
    LOG_PRESSURE_SHED,    /* past the high-water mark, not yet back under the low one */
    LOG_PRESSURE_STALLED, /* over the low-water mark and nothing taken for the stall time */
} LogPressure;

typedef struct LogBacklog {
    size_t high, low, max; /* bytes; max: the bound past which an entry is dropped */
    uint64_t stall_usec;
    /* Written under the log lock by the sink, read by any thread (relaxed atomics). */
    size_t fill;
    bool shedding;
    uint64_t progress_usec; /* when the reader last took something, or the queue was empty */
} LogBacklog;

/* The marks above, and a bound of high + owed_bytes + the slack. */
#define LOG_BACKLOG_INIT(owed_bytes)                                                               \
    {                                                                                              \
        .high = LOG_BACKLOG_HIGH_BYTES, .low = LOG_BACKLOG_LOW_BYTES,                              \
        .max = LOG_BACKLOG_HIGH_BYTES + (owed_bytes) + LOG_BACKLOG_SLACK_BYTES,                    \
        .stall_usec = LOG_BACKLOG_STALL_USEC,                                                      \
    }
void log_backlog_init(LogBacklog *b, size_t owed_bytes);
/* The queue now holds `fill` bytes; `took`: the reader took something since the last call. */
void log_backlog_update(LogBacklog *b, size_t fill, bool took, uint64_t now_usec);
/* At or under the low-water mark, not shedding: LOG_PRESSURE_NONE without asking the clock. */
static inline bool log_backlog_quiet(const LogBacklog *b)
{
    return relaxed_load_size(&b->fill) <= b->low && !relaxed_load_bool(&b->shedding);
}
/* What the service should do now; from any thread. */
LogPressure log_backlog_pressure(const LogBacklog *b, uint64_t now_usec);
/* Whether an entry of l bytes fits under the bound. */
static inline bool log_backlog_fits(const LogBacklog *b, size_t fill, size_t l)
{
    return fill + l <= b->max;
}
