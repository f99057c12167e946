/* SPDX-License-Identifier: MIT */
/* Unit tests of src/worker/backoff.h: exponential backoff with equal jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"

/* d = min(cap, base * 2^(retry-1)), computed without overflow. */
static uint64_t ceiling(unsigned retry, uint64_t base, uint64_t cap)
{
    uint64_t d = base;
    for (unsigned i = 1; i < retry; i++) {
        if (d >= cap)
            break;
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    }
    return d < cap ? d : cap;
}

/* xorshift64*: deterministic "random" values for the test. */
static uint64_t next_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void check_bounds(unsigned retry, uint64_t base, uint64_t cap, uint64_t rnd)
{
    uint64_t d = ceiling(retry, base, cap);
    uint64_t v = backoff_delay_usec(retry, base, cap, rnd);
    if (v < d / 2 || v > d || v > cap)
        fail_msg("retry %u base %llu cap %llu rnd %llu: %llu not in [%llu, %llu]", retry,
                 (unsigned long long)base, (unsigned long long)cap, (unsigned long long)rnd,
                 (unsigned long long)v, (unsigned long long)(d / 2), (unsigned long long)d);
}

static void test_expected_ceilings(void **state)
{
    (void)state;
    /* The real parameters: 100 ms doubling, capped at 2 s. */
    assert_int_equal(BACKOFF_BASE_USEC, 100000);
    assert_int_equal(BACKOFF_CAP_USEC, 2000000);
    static const uint64_t want[] = {0,       100000,  200000,  400000,  800000,  1600000, 2000000,
                                    2000000, 2000000, 2000000, 2000000, 2000000, 2000000};
    for (unsigned retry = 1; retry <= 12; retry++)
        assert_int_equal(ceiling(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC), want[retry]);
}

static void test_bounds_real_parameters(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (unsigned retry = 1; retry <= 12; retry++) {
        check_bounds(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0);
        check_bounds(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 1);
        check_bounds(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, UINT64_MAX);
        check_bounds(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, UINT64_MAX - 1);
        check_bounds(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, (uint64_t)INT64_MAX);
        for (int k = 0; k < 10000; k++)
            check_bounds(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, next_rnd(&s));
    }
}

static void test_bounds_other_parameters(void **state)
{
    (void)state;
    static const struct {
        uint64_t base, cap;
    } params[] = {
        {1, 1}, {1, 1000}, {3, 1000}, {7, 7}, {1000, 999999}, {250000, 30000000},
        {1, 2}, {5, 3}, /* base above the cap: the cap wins */
    };
    uint64_t s = 12345;
    for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++)
        for (unsigned retry = 1; retry <= 12; retry++) {
            check_bounds(retry, params[p].base, params[p].cap, 0);
            check_bounds(retry, params[p].base, params[p].cap, UINT64_MAX);
            for (int k = 0; k < 1000; k++)
                check_bounds(retry, params[p].base, params[p].cap, next_rnd(&s));
        }
}

static void test_extremes_of_jitter(void **state)
{
    (void)state;
    /* rnd 0 gives the low end, d/2; the whole range [d/2, d] is reachable. */
    for (unsigned retry = 1; retry <= 12; retry++) {
        uint64_t d = ceiling(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC);
        assert_int_equal(backoff_delay_usec(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0), d / 2);
        bool seen_low = false, seen_high = false;
        for (uint64_t rnd = 0; rnd <= d - d / 2; rnd++) {
            uint64_t v = backoff_delay_usec(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, rnd);
            seen_low = seen_low || v == d / 2;
            seen_high = seen_high || v == d;
        }
        assert_true(seen_low);
        assert_true(seen_high);
    }
}

static void test_jitter_varies(void **state)
{
    (void)state;
    /* Different random values give different delays (not a constant). */
    uint64_t s = 777;
    uint64_t first = backoff_delay_usec(3, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, next_rnd(&s));
    bool differs = false;
    for (int k = 0; k < 100 && !differs; k++)
        differs = backoff_delay_usec(3, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, next_rnd(&s)) != first;
    assert_true(differs);
}

static void test_grows_until_cap(void **state)
{
    (void)state;
    /* With the same rnd (the low and the high end), the delay doubles each retry until the cap. */
    uint64_t prev_low = 0;
    for (unsigned retry = 1; retry <= 12; retry++) {
        uint64_t low = backoff_delay_usec(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0);
        uint64_t d = ceiling(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC);
        uint64_t high = backoff_delay_usec(retry, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, d - d / 2);
        assert_int_equal(high, d);
        if (retry > 1) {
            if (d < BACKOFF_CAP_USEC)
                assert_int_equal(low, 2 * prev_low);
            else
                assert_true(low >= prev_low);
        }
        prev_low = low;
    }
    assert_int_equal(backoff_delay_usec(1, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0), 50000);
    assert_int_equal(backoff_delay_usec(2, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0), 100000);
    assert_int_equal(backoff_delay_usec(5, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0), 800000);
    assert_int_equal(backoff_delay_usec(6, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0), 1000000);
    assert_int_equal(backoff_delay_usec(12, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0), 1000000);
}

/* Doubling a base near 2^64 must not wrap around to a tiny delay. */
static void test_no_overflow(void **state)
{
    (void)state;
    uint64_t v = backoff_delay_usec(2, 1ULL << 63, UINT64_MAX, 5);
    assert_true(v >= UINT64_MAX / 2);
    check_bounds(2, 1ULL << 63, UINT64_MAX, 5);
    check_bounds(64, 1, UINT64_MAX, 12345);
}

static void test_never_exceeds_cap(void **state)
{
    (void)state;
    uint64_t s = 42;
    /* Even for absurd retry numbers (no overflow of the doubling). */
    static const unsigned retries[] = {13, 20, 63, 64, 65, 100, 1000, 100000, UINT32_MAX};
    for (size_t i = 0; i < sizeof(retries) / sizeof(retries[0]); i++) {
        for (int k = 0; k < 100; k++) {
            uint64_t v =
                backoff_delay_usec(retries[i], BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, next_rnd(&s));
            assert_true(v <= BACKOFF_CAP_USEC);
            assert_true(v >= BACKOFF_CAP_USEC / 2);
        }
        assert_true(backoff_delay_usec(retries[i], BACKOFF_BASE_USEC, BACKOFF_CAP_USEC,
                                       UINT64_MAX) <= BACKOFF_CAP_USEC);
        assert_int_equal(backoff_delay_usec(retries[i], BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0),
                         BACKOFF_CAP_USEC / 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_ceilings),
        cmocka_unit_test(test_bounds_real_parameters),
        cmocka_unit_test(test_bounds_other_parameters),
        cmocka_unit_test(test_extremes_of_jitter),
        cmocka_unit_test(test_jitter_varies),
        cmocka_unit_test(test_grows_until_cap),
        cmocka_unit_test(test_never_exceeds_cap),
        cmocka_unit_test(test_no_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
