/* SPDX-License-Identifier: MIT */
#include "backoff.h"

uint64_t backoff_delay_usec(unsigned retry, uint64_t base_usec, uint64_t cap_usec, uint64_t rnd)
{
    uint64_t d = base_usec < cap_usec ? base_usec : cap_usec;
    for (unsigned i = 1; i < retry && d < cap_usec; i++)
        d = d > cap_usec / 2 ? cap_usec : d * 2;
    uint64_t half = d / 2;
    return half + rnd % (d - half + 1);
}
