/* SPDX-License-Identifier: MIT */
#include "ratelimit.h"

void ratelimit_init(RateLimit *r, uint64_t interval_usec)
{
    *r = (RateLimit){.interval_usec = interval_usec};
}

bool ratelimit_pass(RateLimit *r, uint64_t now, uint64_t *ret_suppressed)
{
    if (r->passed_any && now - r->last_usec < r->interval_usec) {
        r->suppressed++;
        return false;
    }
    *ret_suppressed = r->suppressed;
    r->suppressed = 0;
    r->last_usec = now;
    r->passed_any = true;
    return true;
}
