/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A share of something bounded (places, bytes) that every thread takes from: *used is the sum
 * taken, read and written only with atomics. */

/* Takes n when that leaves *used at most max; false, taking nothing, when it would pass. */
static inline bool budget_take(size_t *used, size_t max, size_t n)
{
    size_t cur = __atomic_load_n(used, __ATOMIC_RELAXED);
    do {
        if (n > max || cur > max - n)
            return false;
    } while (!__atomic_compare_exchange_n(used, &cur, cur + n, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

/* Gives back n taken before. */
static inline void budget_give(size_t *used, size_t n)
{
    __atomic_sub_fetch(used, n, __ATOMIC_RELAXED);
}
