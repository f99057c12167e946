/* SPDX-License-Identifier: MIT */
/* Unit tests of src/log/log-backlog.h: the log queue's marks (shed past the high-water mark, until
 * back under the low one), the bound past them for what is owed, and the progress rule (no entry
 * taken for the stall time: stop shedding, drop as before). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "log-backlog.h"

#define SEC 1000000ULL
#define MIB (1024 * 1024)

static void test_marks_are_ordered(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, 3 * MIB);
    assert_true(b.low < b.high);
    assert_int_equal(b.max, b.high + 3 * MIB + LOG_BACKLOG_SLACK_BYTES);
    assert_true(log_backlog_fits(&b, b.high, 3 * MIB));
    assert_false(log_backlog_fits(&b, b.max, 1));
}

/* Quiet under the low-water mark, behind over it, shedding from the high-water mark until the
 * queue is back under the low one (hysteresis). */
static void test_shed_between_the_marks(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, 0);
    uint64_t t = 100 * SEC;
    log_backlog_update(&b, 0, false, t);
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_NONE);
    assert_true(log_backlog_quiet(&b));
    log_backlog_update(&b, b.low + 1, false, t);
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_BEHIND);
    assert_false(log_backlog_quiet(&b));
    log_backlog_update(&b, b.high - 1, true, t);
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_BEHIND);
    log_backlog_update(&b, b.high, false, t);
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_SHED);
    /* draining: still shedding between the marks */
    for (size_t fill = b.high; fill > b.low; fill -= 64 * 1024) {
        t += 1000;
        log_backlog_update(&b, fill, true, t);
        assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_SHED);
    }
    log_backlog_update(&b, b.low, true, t);
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_NONE);
    /* rising again: behind, not shedding, until the high-water mark */
    log_backlog_update(&b, b.high - 1, false, t);
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_BEHIND);
}

/* journald alive but slow: as long as it takes an entry within the stall time, the service
 * sheds, however long the backlog lasts. */
static void test_slow_progress_keeps_shedding(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, 0);
    uint64_t t = 5 * SEC;
    log_backlog_update(&b, 0, false, t);
    log_backlog_update(&b, b.high, false, t);
    for (int i = 0; i < 100; i++) {
        t += b.stall_usec - 1;
        assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_SHED);
        log_backlog_update(&b, b.high, true, t); /* one entry taken, one more queued */
    }
    assert_int_equal(log_backlog_pressure(&b, t), LOG_PRESSURE_SHED);
}

/* journald stopped: after the stall time without an entry taken, nothing is shed (entries past
 * the bound are dropped instead); the first entry taken sheds again until the queue drains. */
static void test_no_progress_falls_back(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, MIB);
    uint64_t t = 7 * SEC;
    log_backlog_update(&b, 0, false, t);
    log_backlog_update(&b, 1000, false, t); /* the stall time counts from here */
    log_backlog_update(&b, b.high, false, t + SEC);
    assert_int_equal(log_backlog_pressure(&b, t + SEC), LOG_PRESSURE_SHED);
    assert_int_equal(log_backlog_pressure(&b, t + b.stall_usec - 1), LOG_PRESSURE_SHED);
    assert_int_equal(log_backlog_pressure(&b, t + b.stall_usec), LOG_PRESSURE_STALLED);
    /* more entries queued (jobs admitted again) do not count as progress */
    log_backlog_update(&b, b.max, false, t + 10 * SEC);
    assert_int_equal(log_backlog_pressure(&b, t + 10 * SEC), LOG_PRESSURE_STALLED);
    assert_false(log_backlog_fits(&b, b.max, 1));
    /* journald runs again */
    log_backlog_update(&b, b.max - 4096, true, t + 11 * SEC);
    assert_int_equal(log_backlog_pressure(&b, t + 11 * SEC), LOG_PRESSURE_SHED);
    log_backlog_update(&b, 0, true, t + 12 * SEC);
    assert_int_equal(log_backlog_pressure(&b, t + 100 * SEC), LOG_PRESSURE_NONE);
}

/* A stall under the low-water mark is nobody's concern: nothing is shed, nothing waits. */
static void test_small_stall_is_quiet(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, 0);
    log_backlog_update(&b, 4096, false, SEC);
    assert_int_equal(log_backlog_pressure(&b, 100 * SEC), LOG_PRESSURE_NONE);
}

/* The stall time counts from when the queue began to hold something, also on the first update
 * (a clock that started long before). */
static void test_stall_counts_from_the_first_entry(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, 0);
    uint64_t t = 1000 * SEC;
    log_backlog_update(&b, b.high, false, t);
    assert_int_equal(log_backlog_pressure(&b, t + 1), LOG_PRESSURE_SHED);
    assert_int_equal(log_backlog_pressure(&b, t + b.stall_usec), LOG_PRESSURE_STALLED);
}

/* A queue that empties without an entry taken (lost to a failed allocation, discarded at exit)
 * starts the stall time again: it counts from when the queue last began to hold something. */
static void test_emptied_queue_restarts_the_clock(void **state)
{
    (void)state;
    LogBacklog b;
    log_backlog_init(&b, 0);
    uint64_t t = 50 * SEC;
    log_backlog_update(&b, b.high, true, t);
    log_backlog_update(&b, 0, false, t + 2 * SEC);
    t += 2 * SEC + 1;
    log_backlog_update(&b, b.high, false, t); /* the stall time counts from here */
    assert_int_equal(log_backlog_pressure(&b, t - 2 * SEC - 1 + b.stall_usec), LOG_PRESSURE_SHED);
    assert_int_equal(log_backlog_pressure(&b, t + b.stall_usec - 1), LOG_PRESSURE_SHED);
    assert_int_equal(log_backlog_pressure(&b, t + b.stall_usec), LOG_PRESSURE_STALLED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marks_are_ordered),
        cmocka_unit_test(test_shed_between_the_marks),
        cmocka_unit_test(test_slow_progress_keeps_shedding),
        cmocka_unit_test(test_no_progress_falls_back),
        cmocka_unit_test(test_small_stall_is_quiet),
        cmocka_unit_test(test_stall_counts_from_the_first_entry),
        cmocka_unit_test(test_emptied_queue_restarts_the_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
