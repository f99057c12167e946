/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "breaker.h"

#define SEC 1000000ULL

static void fail_n(Breaker *b, unsigned n, uint64_t now)
{
    for (unsigned i = 0; i < n; i++) {
        bool probe;
        assert_true(breaker_allow(b, now, &probe));
        assert_false(probe);
        breaker_record(b, false, probe, now);
    }
}

static void test_opens_after_threshold_consecutive_failures(void **state)
{
    (void)state;
    Breaker b;
    breaker_init(&b, 3, 5 * SEC);
    fail_n(&b, 2, 0);
    assert_int_equal(breaker_state(&b, 0), BREAKER_CLOSED);
    /* a success in between resets the count */
    breaker_record(&b, true, false, 0);
    fail_n(&b, 2, 0);
    assert_int_equal(breaker_state(&b, 0), BREAKER_CLOSED);
    fail_n(&b, 1, 10);
    assert_int_equal(breaker_state(&b, 10), BREAKER_OPEN);
    bool probe;
    assert_false(breaker_allow(&b, 11, &probe));
    assert_false(probe);
    assert_int_equal(breaker_retry_after_usec(&b, 10 + SEC), 4 * SEC);
}

static void test_half_open_lets_one_probe_through(void **state)
{
    (void)state;
    Breaker b;
    breaker_init(&b, 1, 5 * SEC);
    fail_n(&b, 1, 0);
    assert_int_equal(breaker_state(&b, 5 * SEC - 1), BREAKER_OPEN);
    assert_int_equal(breaker_state(&b, 5 * SEC), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_retry_after_usec(&b, 5 * SEC), 0);
    bool probe;
    assert_true(breaker_allow(&b, 5 * SEC, &probe));
    assert_true(probe);
    /* while the probe is out, the others fail fast */
    bool other;
    assert_false(breaker_allow(&b, 5 * SEC + 1, &other));
    assert_false(other);
    assert_true(breaker_retry_after_usec(&b, 5 * SEC + 1) > 0);
    breaker_record(&b, true, true, 6 * SEC);
    assert_int_equal(breaker_state(&b, 6 * SEC), BREAKER_CLOSED);
    assert_true(breaker_allow(&b, 6 * SEC, &other));
    assert_false(other);
}

static void test_failed_probe_opens_again(void **state)
{
    (void)state;
    Breaker b;
    breaker_init(&b, 2, 5 * SEC);
    fail_n(&b, 2, 0);
    bool probe;
    assert_true(breaker_allow(&b, 5 * SEC, &probe));
    assert_true(probe);
    breaker_record(&b, false, true, 7 * SEC);
    assert_int_equal(breaker_state(&b, 7 * SEC), BREAKER_OPEN);
    assert_int_equal(breaker_retry_after_usec(&b, 7 * SEC), 5 * SEC);
    assert_int_equal(breaker_state(&b, 12 * SEC), BREAKER_HALF_OPEN);
}

static void test_late_results_do_not_extend_the_cooldown(void **state)
{
    (void)state;
    Breaker b;
    breaker_init(&b, 1, 5 * SEC);
    fail_n(&b, 1, 0);
    /* a call started before it opened fails later: the cool-down still ends at 5 s */
    breaker_record(&b, false, false, 3 * SEC);
    assert_int_equal(breaker_state(&b, 5 * SEC), BREAKER_HALF_OPEN);
    /* and a late success closes it: the worker answers */
    breaker_record(&b, true, false, 4 * SEC);
    assert_int_equal(breaker_state(&b, 4 * SEC), BREAKER_CLOSED);
}

/* A neutral outcome (a delivery from the spool answered with an HTTP error): the probe's leaves
 * the breaker half-open, the next call is the probe; a neutral call neither counts towards the
 * threshold nor resets the count. */
static void test_neutral_probe_leaves_it_half_open(void **state)
{
    (void)state;
    Breaker b;
    breaker_init(&b, 2, 5 * SEC);
    fail_n(&b, 2, 0);
    bool probe;
    assert_true(breaker_allow(&b, 5 * SEC, &probe));
    assert_true(probe);
    breaker_record_neutral(&b, true);
    assert_int_equal(breaker_state(&b, 6 * SEC), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_retry_after_usec(&b, 6 * SEC), 0);
    assert_true(breaker_allow(&b, 6 * SEC, &probe));
    assert_true(probe);
    bool other;
    assert_false(breaker_allow(&b, 6 * SEC, &other));
    breaker_record(&b, true, true, 7 * SEC);
    assert_int_equal(breaker_state(&b, 7 * SEC), BREAKER_CLOSED);

    /* closed: one failure, neutral ones, one failure: opens (threshold 2) */
    fail_n(&b, 1, 8 * SEC);
    for (int i = 0; i < 10; i++) {
        assert_true(breaker_allow(&b, 8 * SEC, &probe));
        breaker_record_neutral(&b, probe);
    }
    assert_int_equal(breaker_state(&b, 8 * SEC), BREAKER_CLOSED);
    fail_n(&b, 1, 9 * SEC);
    assert_int_equal(breaker_state(&b, 9 * SEC), BREAKER_OPEN);
}

static void test_threshold_zero_never_opens(void **state)
{
    (void)state;
    Breaker b;
    breaker_init(&b, 0, 5 * SEC);
    fail_n(&b, 1000, 0);
    assert_int_equal(breaker_state(&b, 0), BREAKER_CLOSED);
    assert_string_equal(breaker_state_to_string(BREAKER_HALF_OPEN), "half-open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_threshold_consecutive_failures),
        cmocka_unit_test(test_half_open_lets_one_probe_through),
        cmocka_unit_test(test_failed_probe_opens_again),
        cmocka_unit_test(test_late_results_do_not_extend_the_cooldown),
        cmocka_unit_test(test_neutral_probe_leaves_it_half_open),
        cmocka_unit_test(test_threshold_zero_never_opens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
