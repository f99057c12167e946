/* SPDX-License-Identifier: MIT */
/* Unit tests of src/basic/ratelimit.h: one event per interval, and the count of those held back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

#define SEC 1000000ULL

static void test_first_passes_then_one_per_interval(void **state)
{
    (void)state;
    RateLimit r;
    ratelimit_init(&r, SEC);
    uint64_t suppressed = 99;
    assert_true(ratelimit_pass(&r, 5 * SEC, &suppressed));
    assert_int_equal(suppressed, 0);
    for (uint64_t t = 5 * SEC + 1; t < 6 * SEC; t += SEC / 10)
        assert_false(ratelimit_pass(&r, t, &suppressed));
    assert_true(ratelimit_pass(&r, 6 * SEC, &suppressed));
    assert_int_equal(suppressed, 10);
    /* the count starts again */
    assert_false(ratelimit_pass(&r, 6 * SEC + 1, &suppressed));
    assert_true(ratelimit_pass(&r, 60 * SEC, &suppressed));
    assert_int_equal(suppressed, 1);
    assert_true(ratelimit_pass(&r, 61 * SEC, &suppressed));
    assert_int_equal(suppressed, 0);
}

/* A monotonic clock can read 0 at the very start: the first event still passes. */
static void test_first_event_at_time_zero(void **state)
{
    (void)state;
    RateLimit r;
    ratelimit_init(&r, SEC);
    uint64_t suppressed;
    assert_true(ratelimit_pass(&r, 0, &suppressed));
    assert_false(ratelimit_pass(&r, 0, &suppressed));
    assert_true(ratelimit_pass(&r, SEC, &suppressed));
    assert_int_equal(suppressed, 1);
}

/* Every event is either logged or counted in the next one that is. */
static void test_nothing_is_lost(void **state)
{
    (void)state;
    RateLimit r;
    ratelimit_init(&r, SEC);
    uint64_t passed = 0, reported = 0, suppressed;
    for (uint64_t t = 0; t < 10 * SEC; t += 3331)
        if (ratelimit_pass(&r, t, &suppressed))
            passed++, reported += suppressed;
    uint64_t events = (10 * SEC + 3330) / 3331;
    assert_true(ratelimit_pass(&r, 100 * SEC, &suppressed));
    passed++, reported += suppressed;
    assert_int_equal(passed + reported, events + 1);
    assert_true(passed >= 10 && passed <= 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_passes_then_one_per_interval),
        cmocka_unit_test(test_first_event_at_time_zero),
        cmocka_unit_test(test_nothing_is_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
