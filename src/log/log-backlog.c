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
        relaxed_store_u64(&b->progress_usec, now_usec);
    bool shedding = b->shedding;
    if (fill >= b->high)
        shedding = true;
    else if (fill <= b->low)
        shedding = false;
    relaxed_store_bool(&b->shedding, shedding);
    relaxed_store_size(&b->fill, fill);
}

LogPressure log_backlog_pressure(const LogBacklog *b, uint64_t now_usec)
{
    if (log_backlog_quiet(b))
        return LOG_PRESSURE_NONE;
    bool shedding = relaxed_load_bool(&b->shedding);
    uint64_t progress = relaxed_load_u64(&b->progress_usec);
    if (now_usec > progress && now_usec - progress >= b->stall_usec)
        return LOG_PRESSURE_STALLED;
    return shedding ? LOG_PRESSURE_SHED : LOG_PRESSURE_BEHIND;
}
