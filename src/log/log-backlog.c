/* SPDX-License-Identifier: MIT */
#include "log-backlog.h"

void log_backlog_init(LogBacklog *b, size_t owed_bytes)
{
    *b = (LogBacklog)LOG_BACKLOG_INIT(owed_bytes);
}

/* The shedding state has hysteresis: it turns on at the high-water mark and off only under the
 * low one. Progress is any entry taken, or a queue that was or is empty: the stall time counts
 * from when the queue began to hold something, or from the last entry taken. */
void log_backlog_update(LogBacklog *b, size_t fill, bool took, uint64_t now_usec)
{
    if (took || fill == 0 || b->fill == 0)
        __atomic_store_n(&b->progress_usec, now_usec, __ATOMIC_RELAXED);
    bool shedding = b->shedding;
    if (fill >= b->high)
        shedding = true;
    else if (fill <= b->low)
        shedding = false;
    __atomic_store_n(&b->shedding, shedding, __ATOMIC_RELAXED);
    __atomic_store_n(&b->fill, fill, __ATOMIC_RELAXED);
}

LogPressure log_backlog_pressure(const LogBacklog *b, uint64_t now_usec)
{
    if (log_backlog_quiet(b))
        return LOG_PRESSURE_NONE;
    bool shedding = __atomic_load_n(&b->shedding, __ATOMIC_RELAXED);
    uint64_t progress = __atomic_load_n(&b->progress_usec, __ATOMIC_RELAXED);
    if (now_usec > progress && now_usec - progress >= b->stall_usec)
        return LOG_PRESSURE_STALLED;
    return shedding ? LOG_PRESSURE_SHED : LOG_PRESSURE_BEHIND;
}
