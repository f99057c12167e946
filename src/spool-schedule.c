/* SPDX-License-Identifier: MIT */
#include "spool-schedule.h"

#include <stdio.h>

#include "backoff.h"

uint64_t spool_schedule_end_usec(const SpoolSchedule *s, uint64_t since_usec)
{
    if (s->max_age_usec == 0)
        return 0;
    return since_usec > UINT64_MAX - s->max_age_usec ? UINT64_MAX : since_usec + s->max_age_usec;
}

SpoolFate spool_schedule_failure(const SpoolSchedule *s, unsigned attempts, uint64_t since_usec,
                                 uint64_t now_usec, uint64_t retry_after_usec, uint64_t rnd,
                                 uint64_t *ret_due_usec)
{
    uint64_t end = spool_schedule_end_usec(s, since_usec);
    if (end && now_usec >= end)
        return SPOOL_FATE_EXPIRED;

    uint64_t cap = s->retry_max_usec ? s->retry_max_usec : 1;
    uint64_t delay = backoff_delay_usec(attempts ? attempts : 1, SPOOL_RETRY_BASE_USEC, cap, rnd);
    if (retry_after_usec > cap)
        retry_after_usec = cap;
    if (retry_after_usec > delay)
        delay = retry_after_usec;
    if (delay == 0)
        delay = 1;
    uint64_t due = now_usec + delay;
    if (end && due > end)
        due = end; /* one last try when its lifetime ends */
    *ret_due_usec = due;
    return SPOOL_FATE_RETRY;
}

void spool_schedule_expired_error(char *buf, size_t n, unsigned attempts, const char *last_error)
{
    snprintf(buf, n, "expired after %u attempts: %s", attempts,
             last_error && last_error[0] ? last_error : "no error recorded");
}
