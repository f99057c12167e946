/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

#define BACKOFF_BASE_USEC (100 * 1000ULL)
#define BACKOFF_CAP_USEC (2 * 1000 * 1000ULL)

/* Delay before retry number `retry` (1 for the first retry): exponential from base, capped,
 * with "equal jitter": uniformly in [d/2, d] where d = min(cap, base * 2^(retry-1)).
 * `rnd` is any random 64-bit value. */
uint64_t backoff_delay_usec(unsigned retry, uint64_t base_usec, uint64_t cap_usec, uint64_t rnd);
