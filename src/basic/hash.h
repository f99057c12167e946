/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* The one string hash (64-bit FNV-1a): the worker's table of calls in flight takes its bucket
 * from the low bits (worker/inflight.c) and its shard from the high bits (worker/worker-shared.c),
 * so that the keys of one shard still spread over all its buckets. */
static inline uint64_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
