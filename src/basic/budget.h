/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "atomics.h"

/* A share of something bounded (places, bytes) that every thread takes from: *used is the sum
 * taken, read and written only with atomics (basic/atomics.h). */

/* Takes n when that leaves *used at most max; false, taking nothing, when it would pass. */
static inline bool budget_take(size_t *used, size_t max, size_t n)
{
    return relaxed_add_within_size(used, max, n);
}

/* Takes n whatever max, but only while nothing is taken: one larger than the whole share goes
 * alone, or it never would. */
static inline bool budget_take_alone(size_t *used, size_t n)
{
    return relaxed_set_if_zero_size(used, n);
}

/* Gives back n taken before. */
static inline void budget_give(size_t *used, size_t n)
{
    (void)relaxed_sub_size(used, n);
}
