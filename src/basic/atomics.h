/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The atomics of every thread (README.md, "Development"): threads talk through mailboxes
 * (mailbox.h) and, for what a mailbox would be too heavy for, these few patterns, each named for
 * its memory order so that a reader sees what a value orders. No other file uses an atomic (nor
 * includes <stdatomic.h>: tests/layers checks it). They work on plain variables (GCC's __atomic
 * builtins), so the thread that owns a value may still read it plainly. */

/* Figures: a value one thread writes (or several add to) and others read for a number (metrics,
 * gauges, a loop's share of the connections, a fast-path hint that the owner checks again).
 * Nothing else is published with it, so relaxed: only the value itself is atomic. */
static inline size_t relaxed_load_size(const size_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void relaxed_store_size(size_t *p, size_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
/* Returns the value after. */
static inline size_t relaxed_add_size(size_t *p, size_t n)
{
    return __atomic_add_fetch(p, n, __ATOMIC_RELAXED);
}
/* Returns the value after. */
static inline size_t relaxed_sub_size(size_t *p, size_t n)
{
    return __atomic_sub_fetch(p, n, __ATOMIC_RELAXED);
}
/* One more, unless it is already at max: false then. */
static inline bool relaxed_inc_below_size(size_t *p, size_t max)
{
    size_t n = __atomic_load_n(p, __ATOMIC_RELAXED);
    do
        if (n >= max)
            return false;
    while (!__atomic_compare_exchange_n(p, &n, n + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return true;
}
/* n more, when that leaves *p at most max (a bounded share: places, bytes): false, adding
 * nothing, when it would pass. */
static inline bool relaxed_add_within_size(size_t *p, size_t max, size_t n)
{
    size_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    do
        if (n > max || cur > max - n)
            return false;
    while (
        !__atomic_compare_exchange_n(p, &cur, cur + n, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return true;
}
/* *p set to v when it is 0 (a share taken whole by one while no one holds any): whether it was. */
static inline bool relaxed_set_if_zero_size(size_t *p, size_t v)
{
    size_t zero = 0;
    return __atomic_compare_exchange_n(p, &zero, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
static inline unsigned relaxed_load_uint(const unsigned *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void relaxed_store_uint(unsigned *p, unsigned v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
/* Returns the value before. */
static inline unsigned relaxed_fetch_add_uint(unsigned *p, unsigned n)
{
    return __atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}
static inline uint64_t relaxed_load_u64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void relaxed_store_u64(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline void relaxed_add_u64(uint64_t *p, uint64_t n)
{
    (void)__atomic_add_fetch(p, n, __ATOMIC_RELAXED);
}
static inline bool relaxed_load_bool(const bool *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void relaxed_store_bool(bool *p, bool v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline int relaxed_load_int(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void relaxed_store_int(int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Slots under a cap shared by threads (every loop's connections, the calls to the worker), and
 * the mark of a thread that found the cap full (a paused listener, a queued call): sequentially
 * consistent. A taker that finds no slot leaves its mark and then gives its slot back; a freer
 * gives a slot and then looks for marks.
 * That is a store then a load of two variables on each side, which only a single total order
 * keeps from both missing the other (acquire/release would let each read the old value).
 * slot_take_* returns the count with this slot, slot_give_* the count after. */
static inline size_t slot_take_size(size_t *p)
{
    return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline size_t slot_give_size(size_t *p)
{
    return __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline unsigned slot_take_uint(unsigned *p)
{
    return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline unsigned slot_give_uint(unsigned *p)
{
    return __atomic_sub_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline void seq_cst_store_bool(bool *p, bool v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline bool seq_cst_load_bool(const bool *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
/* A mailbox's bell (mailbox.c): set, returning what it was; the receiver clears it with
 * seq_cst_store_bool() before it runs, in the same single order, so a ring after the clear posts
 * again. */
static inline bool seq_cst_exchange_bool(bool *p, bool v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

/* A flag that publishes what its thread did before setting it (a loop drained): release when
 * set, acquire when read, so whoever sees it set also sees that work done. */
static inline void release_store_bool(bool *p, bool v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline bool acquire_load_bool(const bool *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Requests handed over with a swap (a loop's request bits, a once-only message): acquire and
 * release both, as the one who swaps takes what the other side did before and hands over what
 * it did itself. Each returns the value before. */
static inline bool acq_rel_exchange_bool(bool *p, bool v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}
static inline unsigned acq_rel_exchange_uint(unsigned *p, unsigned v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}
static inline unsigned acq_rel_fetch_or_uint(unsigned *p, unsigned bits)
{
    return __atomic_fetch_or(p, bits, __ATOMIC_ACQ_REL);
}
