/* SPDX-License-Identifier: MIT */
#include "backoff.h"

uint64_t backoff_delay_usec(unsigned retry, uint64_t base_usec, uint64_t cap_usec, uint64_t rnd)
{
    uint64_t d = base_usec;
    for (unsigned i = 1; i < retry && d < cap_usec; i++)
        d *= 2;
    if (d > cap_usec)
        d = cap_usec;
    uint64_t half = d / 2;
    return half + rnd % (d - half + 1);
}
